"""Figure 4 of the paper: what a trained attention model looks at while it plays.

Each panel is one frame of the evaluation's perception video (``fls.evaluation.video``: raw screen with
the saliency in white over the 84x84 input with the saliency in green), so the report and ``fls evaluate
--video`` always draw the same thing. The rollout is short and seeded: the first game from env seed
``seed`` (by default the evaluation's unseen seed 1000), actions sampled from the policy with a generator
seeded alike, on the CPU, so a rerun gives the same picture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fls.report.figures import save_figure  # first: it selects matplotlib's headless backend
import matplotlib.pyplot as plt  # noqa: E402  isort: skip
from fls.checkpoint import load_policy
from fls.evaluation.video import perception_rollout
from fls.layout import GridConfig, Layout
from fls.stage_files import MODEL

ROLLOUT_MAX_STEPS = 100_000  # whole-game cap (agent steps) of the rollout env; the step budget ends it much sooner


def pick_steps(n_recorded: int, count: int) -> list[int]:
    """``count`` step indices spread evenly over a rollout of ``n_recorded`` frames, first and last included."""
    if n_recorded <= 0 or count <= 0:
        return []
    return sorted({int(round(i)) for i in np.linspace(0, n_recorded - 1, num=min(count, n_recorded))})


def rollout_frames(run_dir: Path, game: str, *, steps: int, seed: int) -> tuple[list[np.ndarray], str]:
    """Composed video frames (each (370, 160, 3) RGB) of the model in ``run_dir`` playing ``game``, and its arch."""
    policy = load_policy(run_dir, device="cpu")
    roll = perception_rollout(policy.model, game, seed=seed, max_steps=steps, max_episode_steps=ROLLOUT_MAX_STEPS, device="cpu")
    return roll.frames, str(policy.arch)


def plot_perception(rows: dict[str, list[np.ndarray]], steps: dict[str, list[int]], path: Path, title: str) -> Path:
    """Rows = models, columns = the chosen steps of each model's rollout."""
    ncols = max((len(v) for v in rows.values()), default=1)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(max(1.9 * ncols, 4.6), 4.6 * len(rows) + 0.4), squeeze=False)
    for i, (label, frames) in enumerate(rows.items()):
        for j in range(ncols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(frames):
                ax.axis("off")
                continue
            ax.imshow(frames[j], interpolation="nearest")
            ax.set_title(f"{label}\nstep {steps[label][j]}" if j == 0 else f"step {steps[label][j]}", fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def write_perception_panels(
    grid: GridConfig, layout: Layout, out_dir: Path, *, steps: int, frames: int, model_seed: int | None,
    env_seed: int, title: str,
) -> dict[str, Path]:
    """``fig4_perception_<game>.png`` per scored game: every ``score_archs`` model of ``model_seed`` playing it."""
    model_seed = grid.seeds[0] if model_seed is None else model_seed
    written: dict[str, Path] = {}
    if steps <= 0 or frames <= 0:
        return written
    for game in grid.score_games:
        rows: dict[str, list[np.ndarray]] = {}
        picked: dict[str, list[int]] = {}
        for arch in grid.score_archs:
            run = layout.run_dir(arch, game, model_seed)
            if not (run / MODEL).exists():
                continue
            recorded, _ = rollout_frames(run, game, steps=steps, seed=env_seed)
            label = f"{arch} (seed {model_seed})"
            picked[label] = pick_steps(len(recorded), frames)
            rows[label] = [recorded[k] for k in picked[label]]
        if not rows:
            continue
        written[game] = plot_perception(
            rows, picked, Path(out_dir) / f"fig4_perception_{game}.png",
            f"{title}\n{game}, env seed {env_seed}, first {steps} agent steps\n"
            "top: screen + saliency (white); bottom: input (blue) + saliency (green)",
        )
    return written
