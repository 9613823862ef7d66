"""Table 3b / 4b, performance profiles and the free-lunch sentences: ``fls.report.stats`` applied to the runs.

Unit of the statistics: one *seed* (its mean evaluation score, or its mean saliency metric) whenever a cell
has at least 2 seeds, as Agarwal et al. recommend. A cell with one seed has no across-seed spread to
estimate; it falls back to one *episode* (or one Atari-HEAD input for Table 4) as the unit, and every row
says which level it used: episode-level intervals show the evaluation noise of that one trained agent,
not how much another seed would differ.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fls.atomic import atomic_write_text
from fls.report import stats
from fls.report.inputs import METRICS, read_eval, read_score
from fls.layout import GridConfig, Layout
from fls.report.tables import Table
from fls.stage_files import SCORE_PER_INPUT, TRAIN_SUMMARY

BASELINE = "nature_cnn"  # the architecture every other one is compared with (the "free lunch" question)
ALL_GAMES = "all games"


@dataclass
class CellScores:
    """One (arch, game): its per-seed mean scores and, per seed, the episode scores."""

    seed_means: np.ndarray
    episodes: list[np.ndarray]

    @property
    def level(self) -> str:
        return "seeds" if self.seed_means.size >= 2 else "episodes"

    def units(self, level: str) -> np.ndarray:
        return self.seed_means if level == "seeds" else np.concatenate(self.episodes)


def collect(grid: GridConfig, layout: Layout, game: str | None = None) -> dict[tuple[str, str], CellScores]:
    out = {}
    for arch in grid.archs:
        for g in [game] if game else grid.games:
            found = [r for s in grid.seeds if (r := read_eval(layout.eval_dir(g, arch, s))) is not None]
            if found:
                out[(arch, g)] = CellScores(np.array([r.mean for r in found]), [r.rewards for r in found])
    return out


def train_steps(grid: GridConfig, layout: Layout) -> dict[str, int]:
    """Agent steps of each finished fls training run (``summary.json`` ``global_step``), keyed arch/game/seed.

    Imported runs (the authors' weights) are left out: the budget sentence is about fls's own training.
    """
    out = {}
    for arch in grid.archs:
        for game in grid.games:
            for s in grid.seeds:
                p = layout.run_dir(arch, game, s) / TRAIN_SUMMARY
                if p.exists():
                    data = json.loads(p.read_text())
                    if data.get("source", "fls") == "fls":
                        out[f"{arch}/{game}/{s}"] = int(data.get("global_step", 0))
    return out


def _level(cells: Sequence[CellScores]) -> str:
    return "seeds" if cells and min(c.seed_means.size for c in cells) >= 2 else "episodes"


def table3b(grid: GridConfig, layout: Layout, *, seed: int = 0) -> Table:
    """IQM with 95 % stratified-bootstrap intervals and P(improvement over nature_cnn), per game and overall."""
    cells = collect(grid, layout)
    rows = []
    scopes = [(g, [g]) for g in grid.games] + ([(ALL_GAMES, list(grid.games))] if len(grid.games) > 1 else [])
    for scope, games in scopes:
        in_scope = [cells[(a, g)] for a in grid.archs for g in games if (a, g) in cells]
        level = _level(in_scope)  # one unit for the whole scope, so IQMs and P(better) compare like with like
        norm = scope == ALL_GAMES
        for arch in grid.archs:
            if any((arch, g) not in cells for g in games):
                continue  # a scope is only reported when every one of its games was evaluated
            q = stats.iqm_interval([_units(cells[(arch, g)], level, g, norm) for g in games], seed=seed)
            row = dict(scope=scope, arch=arch, level=level, normalised=norm, n=q.n,
                       iqm=q.point, iqm_low=q.low, iqm_high=q.high,
                       poi=math.nan, poi_low=math.nan, poi_high=math.nan, verdict="")
            if arch != BASELINE and all((BASELINE, g) in cells for g in games):
                p = stats.probability_of_improvement(
                    [_units(cells[(arch, g)], level, g, norm) for g in games],
                    [_units(cells[(BASELINE, g)], level, g, norm) for g in games], seed=seed)
                row.update(poi=p.point, poi_low=p.low, poi_high=p.high, verdict=stats.verdict(p))
            rows.append(row)
    data = pd.DataFrame(rows, columns=["scope", "arch", "level", "normalised", "n", "iqm", "iqm_low", "iqm_high",
                                       "poi", "poi_low", "poi_high", "verdict"])
    display = pd.DataFrame({
        "scope": data["scope"],
        "arch": data["arch"],
        "unit": [f"{lvl} (n = {n})" for lvl, n in zip(data["level"], data["n"])],
        "IQM [95 % CI]": [stats.Interval(a, b, c, 0).fmt(3 if nm else 1)
                          for a, b, c, nm in zip(data["iqm"], data["iqm_low"], data["iqm_high"], data["normalised"])],
        f"P(better than {BASELINE}) [95 % CI]": [stats.Interval(a, b, c, 0).fmt(2)
                                                  for a, b, c in zip(data["poi"], data["poi_low"], data["poi_high"])],
        "verdict": [v or "—" for v in data["verdict"]],
    })
    notes = [
        "IQM = mean of the middle 50 % of the units; intervals are 95 % stratified-bootstrap percentile intervals "
        f"({stats.REPS} replicates; strata = games). P(better) = P(X > Y) + 0.5 P(X = Y) for a random unit of each "
        "(averaged over games); 0.5 = no difference.",
        "Unit: `seeds` = one seed's mean evaluation score (cells with >= 2 seeds); `episodes` = one evaluation "
        "episode (a cell with one seed: the interval shows that agent's evaluation noise, not seed-to-seed variation).",
        f"`{ALL_GAMES}`: human-normalised scores (score - random) / (human - random), reference scores of Mnih et al. "
        "(2015) as in rliable; a scope appears only when every one of its games was evaluated.",
    ]
    return Table("table3b_iqm", "Table 3b: interquartile mean and probability of improvement over nature_cnn "
                 "(95 % stratified-bootstrap CIs)", data, display, notes)


def _units(cell: CellScores, level: str, game: str, normalise: bool) -> np.ndarray:
    u = cell.units(level)
    return stats.human_normalised(game, u) if normalise else u


def table4b(grid: GridConfig, layout: Layout, *, seed: int = 0) -> Table:
    """Each attention model's saliency metrics: mean with a 95 % bootstrap CI across seeds (inputs for 1 seed)."""
    rows = []
    for arch in grid.score_archs:
        for game in grid.score_games:
            dirs = [layout.score_dir("attention", arch, game, s) for s in grid.seeds]
            per_seed = [(d, sc) for d in dirs if (sc := read_score(d)) is not None]
            if not per_seed:
                continue
            level = "seeds" if len(per_seed) >= 2 else "inputs"
            table = pd.read_parquet(per_seed[0][0] / SCORE_PER_INPUT) if level == "inputs" else None
            for metric in METRICS:
                if level == "seeds":
                    values = np.array([sc[metric] for _, sc in per_seed])
                else:
                    values = table[metric].to_numpy(dtype=np.float64) if metric in table else np.array([])
                ci = stats.mean_interval(values, seed=seed)
                rows.append(dict(metric=metric, arch=arch, game=game, level=level, n=ci.n, mean=ci.point,
                                 low=ci.low, high=ci.high))
    data = pd.DataFrame(rows, columns=["metric", "arch", "game", "level", "n", "mean", "low", "high"])
    display = pd.DataFrame({
        "metric": data["metric"], "model": data["arch"], "game": data["game"],
        "unit": [f"{lvl} (n = {n})" for lvl, n in zip(data["level"], data["n"])],
        "mean [95 % CI]": [stats.Interval(m, lo, hi, 0).fmt(3) for m, lo, hi in zip(data["mean"], data["low"], data["high"])],
    })
    notes = ["Percentile bootstrap of the mean (95 %). Unit: `seeds` = one seed's mean over its defined inputs "
             "(>= 2 seeds); `inputs` = one Atari-HEAD network input of the single seed (its scoring noise only)."]
    return Table("table4b_saliency_ci", "Table 4b: saliency metrics with 95 % bootstrap CIs", data, display, notes)


def free_lunch_sentences(t3b: Table) -> list[str]:
    """"sparse_fls vs nature_cnn on Breakout: P(improvement) = 0.48 [0.31, 0.66]: indistinguishable." per row."""
    out = []
    for r in t3b.data.itertuples(index=False):
        if r.arch == BASELINE or not np.isfinite(r.poi):
            continue
        p = stats.Interval(r.poi, r.poi_low, r.poi_high, r.n)
        where = "over all games (human-normalised)" if r.scope == ALL_GAMES else f"on {r.scope}"
        out.append(f"{r.arch} vs {BASELINE} {where}: P(improvement) = {p.fmt(2)} ({r.level} as units): {stats.verdict(p)}.")
    return out


def write_profiles(grid: GridConfig, layout: Layout, png: Path, csv: Path, title: str, *, seed: int = 0) -> dict[str, Path]:
    """Performance profiles per game: fraction of units (seeds, or episodes for one seed) scoring above tau."""
    rows = []
    for game in grid.games:
        cells = collect(grid, layout, game)
        if not cells:
            continue
        level = _level(list(cells.values()))
        hi = max(float(np.max(c.units(level))) for c in cells.values())
        lo = min(0.0, min(float(np.min(c.units(level))) for c in cells.values()))
        taus = np.linspace(lo, hi if hi > lo else lo + 1.0, 60)
        for (arch, _), cell in cells.items():
            point, low, high = stats.performance_profile([cell.units(level)], taus, seed=seed)
            rows += [dict(game=game, arch=arch, level=level, tau=t, fraction=p, low=a, high=b)
                     for t, p, a, b in zip(taus, point, low, high)]
    data = pd.DataFrame(rows, columns=["game", "arch", "level", "tau", "fraction", "low", "high"])
    atomic_write_text(csv, data.to_csv(index=False, float_format="%.6g"))
    return {"csv": Path(csv), "png": plot_profiles(data, Path(png), title)}


# Which columns name a row in each table; every other numeric column that is ours (not paper_*, not the
# authors' own authors_*, not a difference to the paper, not a planned count) becomes one flat metric.
KEYS = {
    "table3_scores": ("arch", "game"),
    "table3b_iqm": ("arch", "scope"),
    "table4_saliency": ("metric", "model", "game"),
    "table4b_saliency_ci": ("metric", "arch", "game"),
    "table5_breakout_infinite": ("arch",),
    # fls.report.authors: fls's numbers (fls_*, welch_p, trials) for the authors' imported weights
    "authors_comparison": ("arch", "game", "seed"),
}


def flat_metrics(tables: Sequence[Table]) -> dict[str, float | int]:
    """``{"table3/sparse_fls/Breakout/mean": 6.5, ...}``: our numbers only, missing cells omitted."""
    out: dict[str, float | int] = {}
    for t in tables:
        keys = KEYS.get(t.name)
        if keys is None:
            continue
        prefix = t.name.split("_")[0]
        df = t.data
        values = [c for c in df.columns if c not in keys and pd.api.types.is_numeric_dtype(df[c])
                  and pd.api.types.is_bool_dtype(df[c]) is False
                  and not c.startswith(("paper", "authors_")) and "diff" not in c and "expected" not in c]
        for r in df.to_dict("records"):
            if r.get("seeds_expected", 1) == 0 or r.get("seeds", 1) == 0:
                continue  # not run in this profile (or its outputs are missing)
            name = "/".join(str(r[k]).replace(" ", "_") for k in keys)
            for c in values:
                v = r[c]
                if v is None or (isinstance(v, float) and not math.isfinite(v)):
                    continue
                out[f"{prefix}/{name}/{c}"] = int(v) if isinstance(v, (int, np.integer)) else round(float(v), 6)
    return out


def plot_profiles(data: pd.DataFrame, path: Path, title: str) -> Path:
    """One panel per game: fraction of units above tau per architecture, 95 % bootstrap band."""
    from fls.report.figures import plt, save_figure  # deferred: matplotlib loads only when a plot is drawn

    games = list(dict.fromkeys(data["game"])) or ["(no runs)"]
    fig, axes = plt.subplots(1, len(games), figsize=(4.2 * len(games), 3.2), squeeze=False)
    for ax, game in zip(axes.flat, games):
        sub = data[data["game"] == game]
        for arch in dict.fromkeys(sub["arch"]):
            c = sub[sub["arch"] == arch]
            (line,) = ax.plot(c["tau"], c["fraction"], label=arch, linewidth=1.3)
            ax.fill_between(c["tau"], c["low"], c["high"], color=line.get_color(), alpha=0.2, linewidth=0)
        unit = sub["level"].iloc[0] if len(sub) else ""
        ax.set_title(f"{game} (unit: {unit})")
        ax.set_xlabel("score tau")
        ax.set_ylabel("fraction of units with score > tau")
        ax.set_ylim(-0.02, 1.02)
        if len(sub):
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
