"""Tables 2-5 of the paper rebuilt from our outputs, each with the paper's numbers side by side.

Each table is one tidy numeric frame (written as CSV, for scripts) and one display frame of formatted
cells (Markdown and LaTeX, for people). A cell we did not run is "—" in the display and empty in the
CSV: it is never filled in from the paper or from a neighbouring cell.

Statistics (docs/evaluation.md, "std"; docs/saliency_metrics.md, "What is scored"; docs/pipeline.md):
- Table 3/5: mean and std over *all episodes of all seeds* pooled (population std, ddof 0).
- Table 4: each seed's score is its mean over defined inputs; the table shows mean and std over seeds
  (population std, ddof 0; with one seed the std is 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fls.atomic import atomic_write_text
from fls.games import GAMES
from fls.models import ARCHS, model_summaries
from fls.report import paper
from fls.report.inputs import METRICS, read_eval, read_score, score_uses_synthetic_gaze
from fls.layout import INFINITE_GAME, GridConfig, Layout

MISSING = "—"
METRIC_LABELS = {
    "nss": "NSS (higher is better)",
    "kl": "KL (lower is better)",
    "sauc": "shuffled AUC (0.5 = chance)",
    "sauc_exact": "shuffled AUC in closed form (the expectation of the 100-draw estimate, no Monte Carlo noise)",
}


@dataclass
class Table:
    name: str  # file stem, e.g. "table3_scores"
    title: str
    data: pd.DataFrame  # numeric, tidy: the CSV
    display: pd.DataFrame  # formatted string cells: Markdown / LaTeX
    notes: list[str] = field(default_factory=list)


def fmt_pm(mean: float, std: float, decimals: int) -> str:
    """"m ± s" (or "m" when std is NaN), "—" when the mean is missing."""
    if mean is None or not np.isfinite(mean):
        return MISSING
    if round(float(mean), decimals) == 0:
        mean = 0.0  # no "-0"
    if std is None or not np.isfinite(std):
        return f"{mean:,.{decimals}f}"
    return f"{mean:,.{decimals}f} ± {std:,.{decimals}f}"


def fmt_score(mean: float, std: float = math.nan) -> str:
    """Game scores as the paper prints them (integers), with one decimal below 100 so small scores stay visible."""
    big = mean is not None and np.isfinite(mean) and abs(mean) >= 100
    return fmt_pm(mean, std, 0 if big else 1)


def fmt_score_diff(value: float) -> str:
    big = value is not None and np.isfinite(value) and abs(value) >= 100
    return fmt_num(value, 0 if big else 1, signed=True)


def fmt_num(value: float | None, decimals: int, signed: bool = False) -> str:
    if value is None or not np.isfinite(value):
        return MISSING
    if round(float(value), decimals) == 0:
        value = 0.0  # no "-0"
    return f"{value:+,.{decimals}f}" if signed else f"{value:,.{decimals}f}"


def _ordered(values: Iterable[str], order: Sequence[str]) -> list[str]:
    """Unique values, known ones in ``order`` first, unknown ones after in first-seen order."""
    seen = list(dict.fromkeys(values))
    rank = {v: i for i, v in enumerate(order)}
    return sorted(seen, key=lambda v: (rank.get(v, len(rank)), seen.index(v)))


def _arch_order() -> list[str]:
    return list(ARCHS)


_GAME_ORDER = [*GAMES, INFINITE_GAME]


def _seeds_cell(found: int, expected: int) -> str:
    return f"{found}/{expected}" if expected else (str(found) if found else MISSING)


# --------------------------------------------------------------------------------------------- Table 2
def table2(ours: list[dict] | None = None) -> Table:
    """Parameter counts with Breakout's 4 actions: ``fls.models.model_summaries(4)`` against Table 2."""
    if ours is None:
        ours = model_summaries(4)
    published = paper.paper_params()
    rows = []
    for r in ours:
        p = published.get(r["arch"])
        rows.append({"arch": r["arch"], "params": int(r["params"]), "paper_params": p, "diff": (r["params"] - p) if p is not None else None})
    for arch, p in published.items():
        if arch not in {r["arch"] for r in ours}:
            rows.append({"arch": arch, "params": None, "paper_params": p, "diff": None})
    data = pd.DataFrame(rows, columns=["arch", "params", "paper_params", "diff"]).astype(
        {"params": "Int64", "paper_params": "Int64", "diff": "Int64"}
    )
    display = pd.DataFrame(
        {
            "arch": data["arch"],
            "params (ours)": [_int_cell(v) for v in data["params"]],
            "params (paper)": [_int_cell(v) for v in data["paper_params"]],
            "diff": [_int_cell(v, signed=True) for v in data["diff"]],
        }
    )
    return Table("table2_params", "Table 2: trainable parameters with Breakout's 4 actions", data, display,
                 ["The paper lists 8 of the 15 architectures; the others have no published count (—)."])


def _int_cell(v, signed: bool = False) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return MISSING
    return f"{int(v):+,d}" if signed else f"{int(v):,d}"


# --------------------------------------------------------------------------------------------- Table 3/5
def _pooled_eval(layout: Layout, game: str, arch: str, seeds: Sequence[int]) -> tuple[float, float, int, int]:
    """(mean, std, episodes, seeds found) over all episodes of the seeds that were evaluated."""
    chunks = [r.rewards for s in seeds if (r := read_eval(layout.eval_dir(game, arch, s))) is not None]
    if not chunks:
        return math.nan, math.nan, 0, 0
    allr = np.concatenate(chunks)
    return float(allr.mean()), float(allr.std()), int(allr.size), len(chunks)


def table3(grid: GridConfig, layout: Layout) -> Table:
    """Evaluation score per arch x game (mean ± std over all episodes of all seeds) against Table 3."""
    published = paper.paper_scores()
    ours_cells = {(a, g) for a in grid.archs for g in grid.games}
    archs = _ordered([a for a, _ in published] + list(grid.archs), _arch_order())
    games = _ordered([g for _, g in published] + list(grid.games), _GAME_ORDER)
    rows = []
    for a in archs:
        for g in games:
            if (a, g) not in published and (a, g) not in ours_cells:
                continue
            expected = len(grid.seeds) if (a, g) in ours_cells else 0
            m, s, n, found = _pooled_eval(layout, g, a, grid.seeds) if expected else (math.nan, math.nan, 0, 0)
            pm, ps = published.get((a, g), (math.nan, math.nan))
            rows.append(dict(arch=a, game=g, mean=m, std=s, episodes=n, seeds=found, seeds_expected=expected,
                             paper_mean=pm, paper_std=ps, diff=m - pm))
    data = pd.DataFrame(rows, columns=["arch", "game", "mean", "std", "episodes", "seeds", "seeds_expected",
                                       "paper_mean", "paper_std", "diff"])
    display = pd.DataFrame(
        {
            "arch": data["arch"],
            "game": data["game"],
            "ours (mean ± std)": [fmt_score(m, s) for m, s in zip(data["mean"], data["std"])],
            "episodes": [str(n) if n else MISSING for n in data["episodes"]],
            "seeds": [_seeds_cell(f, e) for f, e in zip(data["seeds"], data["seeds_expected"])],
            "paper (mean ± std)": [fmt_score(m, s) for m, s in zip(data["paper_mean"], data["paper_std"])],
            "ours − paper": [fmt_score_diff(d) for d in data["diff"]],
        }
    )
    return Table("table3_scores", "Table 3: evaluation score (whole-game, unclipped; mean ± std over all episodes of all seeds)",
                 data, display)


def table5(grid: GridConfig, layout: Layout) -> Table:
    """Breakout vs BreakoutInfinite for the same Breakout models, against Table 5."""
    published = paper.paper_infinite()
    archs = _ordered([a for a, _ in published] + list(grid.infinite_archs), _arch_order())
    rows = []
    for a in archs:
        row: dict = {"arch": a}
        ran = a in grid.infinite_archs
        for g, key in (("Breakout", "breakout"), (INFINITE_GAME, "infinite")):
            m, s, n, found = _pooled_eval(layout, g, a, grid.seeds) if ran else (math.nan, math.nan, 0, 0)
            pm, ps = published.get((a, g), (math.nan, math.nan))
            row.update({f"{key}_mean": m, f"{key}_std": s, f"{key}_episodes": n, f"{key}_seeds": found,
                        f"paper_{key}_mean": pm, f"paper_{key}_std": ps})
        row["gain"] = row["infinite_mean"] - row["breakout_mean"]
        row["paper_gain"] = row["paper_infinite_mean"] - row["paper_breakout_mean"]
        row["seeds_expected"] = len(grid.seeds) if ran else 0
        rows.append(row)
    data = pd.DataFrame(rows)
    display = pd.DataFrame(
        {
            "arch": data["arch"],
            "Breakout (ours)": [fmt_score(m, s) for m, s in zip(data["breakout_mean"], data["breakout_std"])],
            "BreakoutInfinite (ours)": [fmt_score(m, s) for m, s in zip(data["infinite_mean"], data["infinite_std"])],
            "gain (ours)": [fmt_score_diff(v) for v in data["gain"]],
            "seeds": [_seeds_cell(min(b, i), e) for b, i, e in zip(data["breakout_seeds"], data["infinite_seeds"], data["seeds_expected"])],
            "Breakout (paper)": [fmt_score(m, s) for m, s in zip(data["paper_breakout_mean"], data["paper_breakout_std"])],
            "BreakoutInfinite (paper)": [fmt_score(m, s) for m, s in zip(data["paper_infinite_mean"], data["paper_infinite_std"])],
            "gain (paper)": [fmt_score_diff(v) for v in data["paper_gain"]],
        }
    )
    return Table("table5_breakout_infinite", "Table 5: the same Breakout models on Breakout and BreakoutInfinite", data, display)


# --------------------------------------------------------------------------------------------- Table 4
def _seed_scores(dirs: Iterable[Path]) -> tuple[dict[str, float], dict[str, float], int]:
    """Mean and std over seeds of each metric, and how many seeds had a score."""
    per_seed = [s for d in dirs if (s := read_score(d)) is not None]
    means, stds = {}, {}
    for metric in METRICS:
        vals = np.asarray([s[metric] for s in per_seed if np.isfinite(s[metric])], dtype=np.float64)
        means[metric] = float(vals.mean()) if vals.size else math.nan
        stds[metric] = float(vals.std()) if vals.size else math.nan
    return means, stds, len(per_seed)


def table4(grid: GridConfig, layout: Layout) -> Table:
    """NSS / KL / sAUC against human gaze per model x game (mean ± std over seeds), plus reference rows."""
    published = paper.paper_saliency()
    paper_archs = [a for _, a, _ in published]
    archs = _ordered(paper_archs + list(grid.score_archs), _arch_order())
    games = _ordered([g for _, _, g in published] + list(grid.score_games), _GAME_ORDER)
    # (row label, method, arch, how to find its per-seed dirs, seeds expected)
    row_specs: list[tuple[str, str, str, object, int]] = []
    for a in archs:
        ran = a in grid.score_archs
        row_specs.append((a, "attention", a, (lambda g, a=a: [layout.score_dir("attention", a, g, s) for s in grid.seeds]) if ran else None,
                          len(grid.seeds) if ran else 0))
    for method in grid.reference_methods:
        row_specs.append((method, method, "", lambda g, m=method: [layout.reference_dir(m, g)], 1))
    for method in grid.posthoc_methods:
        for a in grid.posthoc_archs:
            row_specs.append((f"{method} ({a})", method, a,
                              lambda g, m=method, a=a: [layout.score_dir(m, a, g, s) for s in grid.seeds], len(grid.seeds)))
    rows = []
    synthetic = 0
    for label, method, arch, finder, expected in row_specs:
        for g in games:
            ran = finder is not None and g in grid.score_games
            means, stds, found = _seed_scores(finder(g)) if ran else ({}, {}, 0)
            synthetic += sum(score_uses_synthetic_gaze(d) for d in finder(g)) if ran else 0
            for metric in METRICS:
                pm, ps = published.get((metric, arch, g), (math.nan, math.nan)) if method == "attention" else (math.nan, math.nan)
                m = means.get(metric, math.nan)
                rows.append(dict(metric=metric, model=label, method=method, arch=arch, game=g, mean=m,
                                 std=stds.get(metric, math.nan) if expected > 1 else math.nan,
                                 seeds=found, seeds_expected=expected if ran else 0,
                                 paper_mean=pm, paper_std=ps, diff=m - pm))
    data = pd.DataFrame(rows, columns=["metric", "model", "method", "arch", "game", "mean", "std", "seeds",
                                       "seeds_expected", "paper_mean", "paper_std", "diff"])
    disp_rows = []
    for metric in METRICS:
        for label in dict.fromkeys(data["model"]):
            sub = data[(data["metric"] == metric) & (data["model"] == label)]
            cells = {"metric": metric, "model": label}
            for r in sub.itertuples(index=False):
                ours = fmt_pm(r.mean, r.std, 3)
                theirs = fmt_pm(r.paper_mean, r.paper_std, 3)
                cells[r.game] = ours if theirs == MISSING else f"{ours} (paper {theirs})"
            disp_rows.append(cells)
    display = pd.DataFrame(disp_rows, columns=["metric", "model", *games]).fillna(MISSING)
    notes = [
        "Cell: ours mean ± std over seeds (paper mean ± std). Each seed's value is the mean over all defined "
        "network inputs of all Atari-HEAD trials of the game; undefined inputs are dropped, never zeroed.",
        "Reference rows (uniform, center_bias: model-free; perturbation/gradient: post-hoc saliency of a trained "
        "network) have no published numbers.",
        "Metrics: " + "; ".join(f"{k} = {v}" for k, v in METRIC_LABELS.items()) + ".",
    ]
    if synthetic:
        notes.insert(0, f"**{synthetic} of the scores above were computed against SYNTHETIC gaze** (the offline "
                        "Atari-HEAD stand-in, `synthetic_gaze` in their summary.json): they test the code, they are not results.")
    return Table("table4_saliency", "Table 4: saliency metrics against human gaze (Atari-HEAD)", data, display, notes)


# --------------------------------------------------------------------------------------------- writers
def to_markdown(df: pd.DataFrame) -> str:
    def esc(v: object) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    cols = [esc(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def to_latex(df: pd.DataFrame, caption: str) -> str:
    def esc(v: object) -> str:
        s = str(v)
        for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#")):
            s = s.replace(a, b)
        return s.replace("±", r"$\pm$").replace("—", "--").replace("−", "$-$")

    lines = [r"\begin{table}", r"\centering", r"\begin{tabular}{" + "l" * len(df.columns) + "}", r"\hline",
             " & ".join(esc(c) for c in df.columns) + r" \\", r"\hline"]
    lines += [" & ".join(esc(v) for v in row) + r" \\" for row in df.itertuples(index=False)]
    lines += [r"\hline", r"\end{tabular}", r"\caption{" + esc(caption) + "}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(table: Table, out_dir: Path, header: str = "") -> dict[str, Path]:
    """``<name>.csv`` (numeric, empty = not run), ``<name>.md`` and ``<name>.tex`` (formatted), atomically."""
    out_dir = Path(out_dir)
    paths = {ext: out_dir / f"{table.name}.{ext}" for ext in ("csv", "md", "tex")}
    atomic_write_text(paths["csv"], table.data.to_csv(index=False, float_format="%.6g"))
    md = [f"# {table.title}", ""]
    if header:
        md += [header, ""]
    md += [to_markdown(table.display)]
    md += [f"- {n}" for n in table.notes]
    atomic_write_text(paths["md"], "\n".join(md).rstrip() + "\n")
    atomic_write_text(paths["tex"], to_latex(table.display, table.title))
    return paths
