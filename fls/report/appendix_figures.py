"""The paper's appendix figures: reward curves of the models Figure 3 leaves out (Figs. 6-7) and the
per-model scatter of evaluation episodes, reward against length, coloured by point density (Figs. 8-14).

Figure 3 shows the Table 2 models; Figure 6 the other modifications of Sparse FLS (with Sparse FLS itself
as the reference line), Figure 7 the remaining ones (RS-PPO without padding, Dense FLS without its final
ReLU, with their unmodified counterparts). Only archs the grid trained are drawn. Scatter plots read
``evals/<game>/<arch>/<seed>/episodes.csv`` (every seed of a model pooled, as Table 3 pools them); the
length is in agent steps (``length_steps``), the density a Gaussian KDE of the standardised points.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from fls.report.figures import curve_table, plot_curves, plt, save_figure
from fls.layout import GridConfig, Layout
from fls.stage_files import EVAL_EPISODES

FIG6_ARCHS = ("sparse_fls", "sparse_fls_norm", "sparse_fls_1x1", "sparse_fls_sp2", "sparse_fls_norelu",
              "sparse_fls_norelu_pool")
FIG7_ARCHS = ("rsppo", "rsppo_nopad", "dense_fls_pool", "dense_fls_norelu_pool")
SCATTER_FIGURES = {"Breakout": 8, "BreakoutInfinite": 9, "BeamRider": 10, "MsPacman": 11, "SpaceInvaders": 12,
                   "Enduro": 13, "Seaquest": 14}


def write_extra_curves(grid: GridConfig, layout: Layout, out_dir: Path, title: str) -> dict[str, Path]:
    """``fig6_sparse_fls_variants.png`` and ``fig7_other_models.png`` for the archs the grid trained."""
    written: dict[str, Path] = {}
    for name, archs, caption in (
        ("fig6_sparse_fls_variants", FIG6_ARCHS, "Figure 6: modifications of Sparse FLS"),
        ("fig7_other_models", FIG7_ARCHS, "Figure 7: remaining models"),
    ):
        present = [a for a in archs if a in grid.archs]
        if not present:
            continue
        sub = GridConfig(archs=present, games=list(grid.games), seeds=list(grid.seeds))
        curves = curve_table(sub, layout)
        if curves.empty:
            continue
        written[name] = plot_curves(curves, Path(out_dir) / f"{name}.png", f"{caption} (mean ± std over seeds) — {title}")
    return written


def read_episodes(layout: Layout, game: str, arch: str, seeds: list[int]) -> pd.DataFrame:
    """Episodes of every seed found: columns reward, length (agent steps), seed."""
    frames = []
    for s in seeds:
        p = layout.eval_dir(game, arch, s) / EVAL_EPISODES
        if not p.exists():
            continue
        df = pd.read_csv(p)
        if "length_steps" in df.columns:
            length = df["length_steps"]
        elif "length_frames" in df.columns:
            length = df["length_frames"] / 4
        else:
            raise ValueError(f"{p}: no length_steps (or length_frames) column")
        if "reward" not in df.columns:
            raise ValueError(f"{p}: no reward column")
        frames.append(pd.DataFrame({"reward": df["reward"].astype(float), "length": length.astype(float), "seed": s}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["reward", "length", "seed"])


def point_density(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Gaussian KDE of each point among all (Scott's bandwidth on standardised axes); constant if degenerate."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = x.size
    if n < 3:
        return np.ones(n)
    pts = []
    for v in (x, y):
        sd = v.std()
        pts.append((v - v.mean()) / sd if sd > 0 else np.zeros_like(v))
    z = np.stack(pts, axis=1)
    h = n ** (-1.0 / 6.0)  # Scott's rule in 2-D
    out = np.empty(n)
    for b0 in range(0, n, 2048):  # chunks keep the pairwise block small for 8192 episodes
        d2 = ((z[b0 : b0 + 2048, None, :] - z[None, :, :]) ** 2).sum(-1)
        out[b0 : b0 + 2048] = np.exp(-0.5 * d2 / (h * h)).sum(1)
    return out / (n * 2 * math.pi * h * h)


def write_scatter_plots(grid: GridConfig, layout: Layout, out_dir: Path, title: str) -> dict[str, Path]:
    """``fig<N>_scatter_<game>.png`` (Figs. 8-14): one panel per model, episodes as dots coloured by density."""
    written: dict[str, Path] = {}
    games = list(grid.games) + (["BreakoutInfinite"] if grid.infinite_archs else [])
    for game in games:
        archs = list(grid.infinite_archs) if game == "BreakoutInfinite" else list(grid.archs)
        panels = [(a, read_episodes(layout, game, a, list(grid.seeds))) for a in archs]
        panels = [(a, e) for a, e in panels if len(e)]
        if not panels:
            continue
        ncols = min(4, len(panels))
        nrows = math.ceil(len(panels) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.8 * nrows), squeeze=False)
        for ax, (arch, ep) in zip(axes.flat, panels):
            dens = point_density(ep["length"].to_numpy(), ep["reward"].to_numpy())
            order = np.argsort(dens, kind="stable")  # densest on top
            ax.scatter(ep["length"].to_numpy()[order], ep["reward"].to_numpy()[order], c=dens[order], s=6,
                       cmap="viridis", linewidths=0)
            ax.set_title(f"{arch} ({len(ep)} episodes, {ep['seed'].nunique()} seeds)", fontsize=7)
            ax.set_xlabel("episode length (agent steps)", fontsize=7)
            ax.set_ylabel("reward", fontsize=7)
            ax.tick_params(labelsize=6)
        for ax in list(axes.flat)[len(panels):]:
            ax.axis("off")
        num = SCATTER_FIGURES.get(game)
        name = f"fig{num}_scatter_{game}" if num else f"scatter_{game}"
        fig.suptitle(f"Figure {num or '-'}: {game} scatterplot, colour = point density — {title}", fontsize=9)
        fig.tight_layout()
        written[name] = save_figure(fig, Path(out_dir) / f"{name}.png")
    return written
