"""``fls report``: every table and figure, an index page, and a flat metrics file for ``dvc metrics``.

The report only reads stage outputs for the cells the current ``grid`` asks for (see ``layout``), and
labels everything with the params profile, because a quick-profile number next to a paper number looks
like a comparison and is not one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fls.atomic import atomic_write_json, atomic_write_text
from fls.config import ConfigError, build_config, load_config, read_params, resolved
from fls.report import appendix_figures, demo_summary, figures, perception, seed_stats, table4_corrections, tables
from fls.report import authors as authors_report
from fls.layout import GridConfig, Layout
from fls.runinfo import write_run_info
from fls.settings import check_fields, setting


@dataclass
class ReportConfig:
    """The ``report`` section of params.yaml."""

    panel_frames: int = setting(3, ge=0, help="Atari-HEAD inputs per gaze panel figure (rows).")
    panel_seed: int | None = setting(None, help="Which seed's models to draw (default: the first of grid.seeds).")
    atari_head: str = setting("data/atari_head/preprocessed", help="Preprocessed Atari-HEAD for the gaze panels.")
    atari_head_raw: str = setting(
        "", help="Raw download for the panels' RGB frames (empty: data/atari_head/<data.atari_head_source>).",
    )
    figures: bool = setting(True, help="False: tables only (no matplotlib work).")
    perception_steps: int = setting(200, ge=0, help="Figure 4: agent steps of each model's seeded rollout (0: no Figure 4).")
    perception_frames: int = setting(5, ge=0, help="Figure 4: frames shown per model, spread evenly over the rollout.")
    perception_seed: int = setting(1000, ge=0, help="Figure 4: env seed of the rollout (the evaluation's unseen seed).")

    def validate(self) -> None:
        check_fields(self, "report")  # bounds, from the declarations above


@dataclass
class ReportContext:
    profile: str
    atari_head_source: str
    grid: GridConfig


def load_context(params_file: Path) -> ReportContext:
    """Profile label, Atari-HEAD source and the validated grid from a params file."""
    params = read_params(params_file)
    profile = params.get("profile")
    if not isinstance(profile, str) or not profile:
        raise ConfigError(f"{params_file}: missing top-level 'profile' (a name such as quick or paper)")
    grid_raw = params.get("grid")
    if not isinstance(grid_raw, dict):
        raise ConfigError(f"{params_file}: missing section 'grid'")
    grid = build_config(GridConfig, grid_raw, source_names=(f"{params_file}:grid",))
    data = params.get("data")
    source = str(data.get("atari_head_source", "unknown")) if isinstance(data, dict) else "unknown"
    return ReportContext(profile=profile, atari_head_source=source, grid=grid)


def _profile_banner(ctx: ReportContext) -> str:
    lines = [f"**Profile: `{ctx.profile}`** (params `profile`)."]
    g = ctx.grid
    if g.import_seeds:
        lines.append(
            f"Seeds {list(g.import_seeds)} are the **authors' released weights** (`grid.import_seeds`, converted by "
            "`fls import-authors`), evaluated and scored by fls, not models fls trained"
            + (f"; seeds {g.trained_seeds} were trained by fls, and Tables 3-5 pool both kinds of seed per cell."
               if g.trained_seeds else ".")
        )
    if ctx.profile not in ("paper", "authors") and g.trained_seeds:
        lines.append(
            f"Numbers from the `{ctx.profile}` profile use tiny training budgets and few episodes: they check "
            "that the pipeline runs end to end and are **not comparable** to the paper's columns."
        )
    elif ctx.profile not in ("paper", "authors"):
        lines.append(
            f"The `{ctx.profile}` profile evaluates and scores with small budgets (few episodes, few inputs): its "
            "numbers check the pipeline and are **not comparable** to the paper's columns."
        )
    if ctx.atari_head_source != "zenodo":
        lines.append(
            f"Atari-HEAD source is `{ctx.atari_head_source}`: the gaze in Table 4 and the panels is a SYNTHETIC "
            "stand-in, not human data."
        )
    return " ".join(lines)


def build_report(
    params_file: Path, runs: Path, evals: Path, scores: Path, out: Path, overrides: dict[str, Any] | None = None
) -> dict[str, Path]:
    """Write tables (CSV/MD/TeX), figures (PNG + plot CSV), ``metrics.json`` and ``index.md`` under ``out``."""
    cfg = load_config(ReportConfig, params_file, "report", overrides)
    ctx = load_context(params_file)
    layout = Layout(runs=Path(runs), evals=Path(evals), scores=Path(scores))
    out = Path(out)
    banner = _profile_banner(ctx)
    built = [tables.table2(), tables.table3(ctx.grid, layout), tables.table4(ctx.grid, layout), tables.table5(ctx.grid, layout)]
    built += [seed_stats.table3b(ctx.grid, layout), seed_stats.table4b(ctx.grid, layout)]  # across-seed statistics
    if ctx.grid.score_variants:  # beside Table 4: what each scoring correction changes
        built.append(table4_corrections.table(ctx.grid, layout))
    comparison = authors_report.table(ctx.grid, layout)  # imported runs only (grid.import_seeds)
    if comparison is not None:
        built.append(comparison)
    written: dict[str, Path] = {}
    for t in built:
        for ext, p in tables.write_table(t, out / "tables", header=banner).items():
            written[f"{t.name}.{ext}"] = p
    figs: dict[str, Path] = {}
    title = f"profile: {ctx.profile}"
    if cfg.figures:
        fig3_title = f"Figure 3: reward curves (mean ± std over seeds) — {title}"
        if comparison is not None:
            fig3_title += "\ndashed: the authors' released runs' own training (event files)"
        curves = figures.write_curves(ctx.grid, layout, out / "figures" / "fig3_reward_curves.png", out / "fig3_curves.csv",
                                       fig3_title, reference=demo_summary.random_band())
        figs["fig3_reward_curves.png"] = curves["png"]
        written["fig3_curves.csv"] = curves["csv"]
        prof = seed_stats.write_profiles(ctx.grid, layout, out / "figures" / "performance_profiles.png",
                                         out / "performance_profiles.csv", f"Performance profiles — {title}")
        figs["performance_profiles.png"], written["performance_profiles.csv"] = prof["png"], prof["csv"]
        for game, p in figures.write_gaze_panels(
            ctx.grid, layout, Path(cfg.atari_head), out / "figures", frames=cfg.panel_frames, seed=cfg.panel_seed,
            title=f"Figure 5-style gaze panels — {title}",
            raw_dir=Path(cfg.atari_head_raw or f"data/atari_head/{ctx.atari_head_source}"),
        ).items():
            figs[p.name] = p
        for p in appendix_figures.write_extra_curves(ctx.grid, layout, out / "figures", title).values():
            figs[p.name] = p
        for p in appendix_figures.write_scatter_plots(ctx.grid, layout, out / "figures", title).values():
            figs[p.name] = p
        for game, p in perception.write_perception_panels(
            ctx.grid, layout, out / "figures", steps=cfg.perception_steps, frames=cfg.perception_frames,
            model_seed=cfg.panel_seed, env_seed=cfg.perception_seed, title=f"Figure 4-style perception — {title}",
        ).items():
            figs[p.name] = p
    written.update(figs)
    written["metrics.json"] = atomic_write_json(out / "metrics.json", seed_stats.flat_metrics(built))
    summary = demo_summary.paragraphs(ctx.profile, ctx.atari_head_source, built, ctx.grid,
                                      seed_stats.train_steps(ctx.grid, layout))
    written["index.md"] = atomic_write_text(out / "index.md", _index(ctx, built, figs, out, summary))
    write_run_info(out / "run_info.json", {"report": resolved(cfg), "grid": resolved(ctx.grid), "profile": ctx.profile},
                   stage="report")
    return written


def _index(ctx: ReportContext, built: list[tables.Table], figs: dict[str, Path], out: Path, summary: list[str]) -> str:
    g = ctx.grid
    lines = [
        f"# Free-Lunch Saliency reproduction report — profile `{ctx.profile}`",
        "",
        _profile_banner(ctx),
        "",
        "Grid of this report (params `grid`):",
        "",
        f"- runs: archs {g.archs} x games {g.games} x seeds {g.seeds} (trained by fls: seeds {g.trained_seeds}; "
        f"the authors' released weights: seeds {list(g.import_seeds)})",
        f"- BreakoutInfinite evaluation: archs {g.infinite_archs}",
        f"- scored against Atari-HEAD: archs {g.score_archs} x games {g.score_games}; "
        f"references {g.reference_methods}; post-hoc {g.posthoc_methods} on {g.posthoc_archs}",
        "",
        "A cell shown as — was not run in this profile (or its output is missing); it is never filled in.",
        "",
        "## Tables",
        "",
    ]
    for t in built:
        lines.append(f"- {t.title}: [Markdown](tables/{t.name}.md), [CSV](tables/{t.name}.csv), [LaTeX](tables/{t.name}.tex)")
    lines += ["", "## What this run shows", "", *summary, ""]
    comparison = next((t for t in built if t.name == authors_report.NAME), None)
    if comparison is not None:
        lines += [
            "## The authors' released weights: their numbers beside fls's",
            "",
            authors_report.summary_sentence(comparison) + f" Full table: [tables/{comparison.name}.md](tables/{comparison.name}.md) "
            "(what it can and cannot show: docs/authors_models.md).",
            "",
            tables.to_markdown(comparison.display).rstrip(),
            "",
            *[f"- {n}" for n in comparison.notes],
            "",
        ]
    lines += ["## Figures", ""]
    if not figs:
        lines.append("- (figures disabled or nothing to draw)")
    for name, p in figs.items():
        rel = p.relative_to(out).as_posix()
        lines += [f"- [{name}]({rel})", "", f"  ![{name}]({rel})", ""]
    if "fig3_reward_curves.png" in figs:
        lines.append("- Figure 3 data (long format, also the `dvc plots` source): [fig3_curves.csv](fig3_curves.csv)")
    lines += ["", "Machine-readable summary of our numbers: [metrics.json](metrics.json) (`dvc metrics show`).", ""]
    return "\n".join(lines)
