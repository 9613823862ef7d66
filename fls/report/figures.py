"""Figure 3 (training reward curves) and Figure 5-style gaze panels, as PNG plus plot data (Figure 4: ``perception``).

Curves are the mean ± std over seeds of ``eprewmean`` at each logged step, computed on the steps every
seed has logged (a seed that is still running does not bend the mean at the end). The long-format CSV
behind the PNG is also what ``dvc plots`` reads. A run imported from the authors' release
(``grid.import_seeds``) holds their event file's ``eprewmean`` in its metrics.csv: those seeds make a
separate band per (game, arch), ``source`` = ``authors``, drawn dashed and labelled as the authors' weights,
beside the band of the seeds fls trained (``source`` = ``fls``) when the grid has both.

Gaze panels (Figure 5) draw, for a few Atari-HEAD inputs, each model's saliency over the raw RGB frame
the newest stack slot was pooled from, the way the authors' ``visualization.py`` renders it: the map is
divided by the model's maximum over the whole trial (every input), upscaled bilinearly to 210x160, and
blended 0.5/0.5 with the frame (``0.5 * rgb + 0.5 * map`` on every channel); the red channel is raised to the
input's fixation map (divided by its max), and the fixations are also marked as red dots so they stay
visible at print size. The preprocessed NPZs keep only the 84x84 gray inputs, so the RGB comes from the
raw download (``fls.atari_head.dataset.read_raw_rgb``: one trial's PNGs per game, the cheap way); without
the raw files the background falls back to the newest gray input frame upscaled.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")  # headless: figures are files, never windows
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from fls.atari_head import AtariHeadError  # noqa: E402
from fls.atari_head.dataset import iter_trials, read_raw_rgb  # noqa: E402
from fls.atomic import atomic_path, atomic_write_text  # noqa: E402
from fls.checkpoint import load_policy  # noqa: E402
from fls.frames import FRAME_COLS, FRAME_ROWS, FRAME_SHAPE  # noqa: E402
from fls.models.saliency import render_84  # noqa: E402
from fls.report.inputs import read_curve, run_source  # noqa: E402
from fls.layout import GridConfig, Layout  # noqa: E402
from fls.stage_files import MODEL  # noqa: E402

WINDOW_LABEL = "100-game mean, 95 %"  # what the reference band of Figure 3 is (fls.report.demo_summary)
FRAMES_PER_STEP = 4  # frame skip: one agent step = 4 emulator frames (the paper's x axis is frames)
CURVE_COLUMNS = ["game", "arch", "source", "step", "frames", "eprewmean_mean", "eprewmean_std", "seeds"]
SOURCES = ("fls", "authors")  # who trained the runs of a band: fls itself, or the authors (imported weights)


def curve_table(grid: GridConfig, layout: Layout) -> pd.DataFrame:
    """Long format: one row per (game, arch, source, step) with mean/std of eprewmean over the seeds found."""
    rows = []
    for game in grid.games:
        for arch in grid.archs:
            by_source: dict[str, list[pd.DataFrame]] = {src: [] for src in SOURCES}
            for s in grid.seeds:
                run = layout.run_dir(arch, game, s)
                if (c := read_curve(run)) is not None:
                    by_source[run_source(run)].append(c)
            for source, curves in by_source.items():
                rows += _band_rows(game, arch, source, curves)
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def _band_rows(game: str, arch: str, source: str, curves: list[pd.DataFrame]) -> list[dict]:
    """The band of one (game, arch, source): mean/std over its seeds at the steps all of them logged."""
    rows: list[dict] = []
    if not curves:
        return rows
    merged = curves[0].set_index("global_step")[["eprewmean"]].rename(columns={"eprewmean": 0})
    for i, c in enumerate(curves[1:], start=1):
        merged = merged.join(c.set_index("global_step")["eprewmean"].rename(i), how="inner")
    values = merged.to_numpy(dtype=np.float64)
    for step, row in zip(merged.index, values):
        finite = row[np.isfinite(row)]
        if finite.size < len(curves):  # a seed with no finished episode yet: no honest mean here
            continue
        rows.append(dict(game=game, arch=arch, source=source, step=int(step), frames=int(step) * FRAMES_PER_STEP,
                         eprewmean_mean=float(finite.mean()), eprewmean_std=float(finite.std()),
                         seeds=len(curves)))
    return rows


def plot_curves(curves: pd.DataFrame, path: Path, title: str, reference: dict | None = None) -> Path:
    """One panel per game, one line (mean) and band (± std over seeds) per architecture and source.

    The authors' band of an arch (``source`` = authors: their released runs' own training curves) takes the
    colour of fls's band of that arch and a dashed line, so the two trainings of one model sit side by side.
    ``reference``: {game: (mean, half-width)} of a random policy, drawn as a grey band (the floor to clear).
    """
    games = list(dict.fromkeys(curves["game"])) or ["(no runs)"]
    ncols = min(3, len(games))
    nrows = math.ceil(len(games) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, game in zip(axes.flat, games):
        sub = curves[curves["game"] == game]
        source = sub["source"] if "source" in sub else pd.Series("fls", index=sub.index)
        for arch in dict.fromkeys(sub["arch"]):
            color = None
            for src in SOURCES:
                c = sub[(sub["arch"] == arch) & (source == src)]
                if c.empty:
                    continue
                x, m, s = c["frames"].to_numpy(), c["eprewmean_mean"].to_numpy(), c["eprewmean_std"].to_numpy()
                n = int(c["seeds"].iloc[0])
                seeds = f"{n} seed" + ("s" if n != 1 else "")
                label = f"{arch} ({seeds})" if src == "fls" else f"{arch}: authors' weights, their training ({seeds})"
                (line,) = ax.plot(x, m, label=label, linewidth=1.2, marker="o", markersize=3, color=color,
                                  linestyle="-" if src == "fls" else "--")
                color = line.get_color()
                ax.fill_between(x, m - s, m + s, color=color, alpha=0.2 if src == "fls" else 0.12, linewidth=0)
                if len(x) <= 3:  # a band over one or two steps is invisible: draw the std as error bars too
                    ax.errorbar(x, m, yerr=s, color=color, fmt="none", capsize=3, linewidth=1)
        if reference and game in reference:
            m, sd = reference[game]
            ax.axhspan(m - sd, m + sd, color="0.5", alpha=0.15, linewidth=0)
            ax.axhline(m, color="0.4", linewidth=0.8, linestyle=":", label=f"random policy, {WINDOW_LABEL}: {m:.2f} ± {sd:.2f}")
        ax.set_title(game)
        ax.set_xlabel("environment frames")
        ax.set_ylabel("eprewmean")
        if len(sub):
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes)
    for ax in list(axes.flat)[len(games):]:
        ax.axis("off")
    # ~11 characters per inch of figure width at this font size: wrap so one panel does not clip it
    width = max(30, int(11 * 4.2 * ncols))
    fig.suptitle("\n".join(w for line in title.splitlines() for w in textwrap.wrap(line, width)), fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig, path: Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png", metadata={"Software": None})  # no version stamp: stable bytes
    plt.close(fig)
    return path


def write_curves(grid: GridConfig, layout: Layout, png_path: Path, csv_path: Path, title: str,
                 reference: dict | None = None) -> dict[str, Path]:
    """The PNG and its long-format data (the CSV sits outside the figures folder: it is a DVC plot)."""
    curves = curve_table(grid, layout)
    atomic_write_text(csv_path, curves.to_csv(index=False, float_format="%.6g"))
    return {"csv": Path(csv_path), "png": plot_curves(curves, Path(png_path), title, reference)}


# ------------------------------------------------------------------------------------- gaze panels
def pick_inputs(n_fixations: np.ndarray, count: int) -> list[int]:
    """``count`` inputs spread evenly over the trial among those with at least one fixation."""
    candidates = np.flatnonzero(np.asarray(n_fixations) > 0)
    if candidates.size == 0 or count <= 0:
        return []
    idx = np.linspace(0, candidates.size - 1, num=min(count, candidates.size) + 2)[1:-1]
    return sorted({int(candidates[int(round(i))]) for i in idx})


def saliency_for(run_dir: Path, trial_inputs: np.ndarray, ks: Sequence[int], batch: int = 64) -> tuple[np.ndarray, str]:
    """(len(ks), 210, 160) saliency of a trained model on inputs ``ks`` of a trial, divided by the model's
    maximum 84x84 map over every input of the trial (the authors' scale), and the model's arch id."""
    policy = load_policy(run_dir, device="cpu")
    model = policy.model
    top = 0.0
    chosen: dict[int, torch.Tensor] = {}
    want = {int(k) for k in ks}
    with torch.no_grad():
        for b0 in range(0, len(trial_inputs), batch):
            m84 = render_84(model(torch.as_tensor(trial_inputs[b0 : b0 + batch])).attention, model.spec)
            top = max(top, float(m84.max()))
            for i in range(m84.shape[0]):
                if b0 + i in want:
                    chosen[b0 + i] = m84[i]
    stack = torch.stack([chosen[int(k)] for k in ks]) / (top if not np.isclose(top, 0.0) else 1.0)
    out = F.interpolate(stack[:, None], size=FRAME_SHAPE, mode="bilinear", align_corners=False)[:, 0]
    return out.numpy().astype(np.float64), str(policy.arch)


def authors_overlay(rgb: np.ndarray, saliency: np.ndarray, fixation_map: np.ndarray | None) -> np.ndarray:
    """(210, 160, 3) float in [0, 1]: ``0.5 * rgb + 0.5 * saliency`` (saliency already in [0, 1]) and the red
    channel raised to the fixation map divided by its maximum, as the authors' ``render_frame``."""
    frame = 0.5 * (np.asarray(rgb, dtype=np.float64) / 255.0) + 0.5 * np.asarray(saliency, dtype=np.float64)[..., None]
    if fixation_map is not None and fixation_map.max() > 0:
        frame[..., 0] = np.maximum(frame[..., 0], fixation_map / fixation_map.max())
    return np.clip(frame, 0.0, 1.0)


def plot_gaze_panels(
    background: np.ndarray,
    fixations: Sequence[tuple[np.ndarray, np.ndarray]],
    saliency: dict[str, np.ndarray],
    path: Path,
    title: str,
) -> Path:
    """Rows = inputs, columns = models; each panel the authors' overlay, fixations as red dots.

    ``background`` is (N, 210, 160, 3) RGB (or (N, 210, 160) gray), ``fixations[i]`` is (rows, cols) of
    input i, ``saliency`` maps a column label to (N, 210, 160) maps already divided by the trial maximum.
    """
    n = background.shape[0]
    labels = list(saliency)
    fig, axes = plt.subplots(n, len(labels), figsize=(2.0 * len(labels), 2.6 * n), squeeze=False)
    for i in range(n):
        bg = background[i] if background.ndim == 4 else np.repeat(background[i][..., None], 3, axis=-1)
        rows, cols = fixations[i]
        fmap = np.zeros(bg.shape[:2])
        np.add.at(fmap, (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)), 1.0)
        for j, label in enumerate(labels):
            ax = axes[i, j]
            ax.imshow(authors_overlay(bg, saliency[label][i], fmap))
            ax.scatter(cols, rows, s=6, c="red", marker="o", linewidths=0)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(label, fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def write_gaze_panels(
    grid: GridConfig,
    layout: Layout,
    atari_head_dir: Path,
    out_dir: Path,
    *,
    frames: int,
    seed: int | None,
    title: str,
    raw_dir: Path | None = None,
) -> dict[str, Path]:
    """``fig5_gaze_<game>.png`` per scored game: the first trial of the game, ``frames`` inputs, every score arch.

    ``raw_dir``: the raw download (v4 zips or v2 flat files) to take the RGB frames from.
    """
    seed = grid.seeds[0] if seed is None else seed
    written: dict[str, Path] = {}
    if not Path(atari_head_dir, "index.csv").exists():
        return written
    for game in grid.score_games:
        runs = {a: layout.run_dir(a, game, seed) for a in grid.score_archs}
        runs = {a: d for a, d in runs.items() if (d / MODEL).exists()}
        trial = next(iter_trials(atari_head_dir, game, "aligned"), None)
        if not runs or trial is None:
            continue
        ks = pick_inputs(np.asarray([trial.n_fixations(k) for k in range(trial.n_inputs)]), frames)
        if not ks:
            continue
        pooled = [tuple(int(f) for f in trial.frame_ids[k]) for k in ks]
        background: np.ndarray | None = None
        source = "raw RGB frame"
        if raw_dir is not None:
            try:
                rgb = read_raw_rgb(raw_dir, trial, [f for p in pooled for f in p])
                background = np.stack([np.maximum(rgb[a], rgb[b]) for a, b in pooled])  # what the env max-pooled
            except (OSError, AtariHeadError):
                background = None
        if background is None:
            source = "gray network input (raw frames not found)"
            background = np.stack([cv2.resize(trial.inputs[k, -1], (FRAME_COLS, FRAME_ROWS), interpolation=cv2.INTER_LINEAR) for k in ks])
        fixations = [trial.fixation_points(k)[:2] for k in ks]
        saliency = {f"{a} (seed {seed})": saliency_for(d, trial.inputs, ks)[0] for a, d in runs.items()}
        subject = "SYNTHETIC gaze" if trial.subject == "SYN" else f"subject {trial.subject}"
        written[game] = plot_gaze_panels(
            background, fixations, saliency, Path(out_dir) / f"fig5_gaze_{game}.png",
            f"{title}\n{game}, trial {trial.trial_id} ({subject}), inputs {ks} on the {source}; map / trial max, "
            "blended 0.5/0.5; red = fixations (aligned gaze)",
        )
    return written
