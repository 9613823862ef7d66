"""Builders and readers that several test files share, so a tiny run or a fresh model means the same thing
in every file that uses one. Test files import them as ``from helpers import ...`` (pytest puts tests/ on
sys.path, as for ``baselines_reference``).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fls.atari_head.preprocess import preprocess
from fls.atari_head.sample import make_sample
from fls.checkpoint import Checkpoint, save_checkpoint
from fls.config import build_config
from fls.models import build_model
from fls.ppo.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's bin: fls and dvc for the slow end-to-end tests


def tiny_train_config(**overrides: Any) -> TrainConfig:
    """A run of a few seconds on a CPU: nature_cnn on Breakout, 2 envs x 16 steps, 128 agent steps (4 updates),
    a checkpoint after every update, one torch thread, no progress bar; ``overrides`` replace any field."""
    fields = dict(arch="nature_cnn", game="Breakout", seed=3, total_steps=128, num_envs=2, num_steps=16,
                  checkpoint_every=1, progress=False, torch_threads=1)
    fields.update(overrides)
    return build_config(TrainConfig, fields)


def read_csv(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows (as strings) of a CSV written by a stage."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def fresh_model(arch: str = "nature_cnn", num_actions: int = 4, seed: int = 0) -> torch.nn.Module:
    """A freshly initialised policy in eval mode, its weights drawn after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return build_model(arch, num_actions).eval()


def save_fresh_checkpoint(
    path: Path, arch: str = "nature_cnn", game: str = "Breakout", num_actions: int = 4, *, train_seed: int = 1,
    num_envs: int = 8, global_step: int = 0,
) -> Path:
    """``fresh_model(arch, num_actions)`` saved as a training run's weights-only checkpoint.

    ``train_seed`` and ``num_envs`` are the run config that evaluation reads the training env seeds from.
    """
    save_checkpoint(path, Checkpoint(
        arch=arch, game=game, num_actions=num_actions, model=fresh_model(arch, num_actions).state_dict(),
        optimizer=None, update=0, global_step=global_step,
        config={"seed": train_seed, "num_envs": num_envs, "arch": arch, "game": game},
    ))
    return path


def fixation_map(shape: tuple[int, int], points: dict[tuple[int, int], int]) -> np.ndarray:
    """int32 fixation counts of ``shape`` with ``points[(row, col)]`` fixations at each listed pixel."""
    f = np.zeros(shape, dtype=np.int32)
    for (r, c), n in points.items():
        f[r, c] = n
    return f


def preprocessed_sample(
    raw: Path, pre: Path, *, seed: int, frames: int, trials: int, highscore: int = 0, release: str = "v4"
) -> Path:
    """A tiny synthetic Atari-HEAD download of Breakout in ``raw`` (real ALE frames, fake gaze), preprocessed
    into ``pre`` as the scoring and report stages read it; returns ``pre``."""
    make_sample(raw, seed=seed, games="breakout", frames_per_trial=frames, trials_per_game=trials,
                highscore_trials=highscore, release=release)
    preprocess(raw, pre, "breakout", progress=False)
    return pre


# -- slow tier: `dvc repro` in a throw-away copy of the repository -------------------------------------------
def run_checked(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 1500) -> subprocess.CompletedProcess:
    """Run a command; on failure the assertion shows the tail of its output."""
    res = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{' '.join(args)} failed ({res.returncode}):\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    return res


def copy_repo(dst: Path) -> None:
    """The checkout's files as git sees them (tracked + untracked, not ignored): no outputs, no venv."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


def commit_project(root: Path, message: str) -> dict[str, str]:
    """Make the copy at ``root`` a git repository with one commit; returns the env its commands run with
    (this venv's fls/dvc first, the copy's code on PYTHONPATH, one OpenMP thread, no DVC analytics)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(root),
           "OMP_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1"}
    git = ["git", "-c", "user.email=e2e@example.invalid", "-c", "user.name=e2e"]
    run_checked(["git", "init", "-q"], root, env)
    run_checked(git + ["add", "-A"], root, env)
    run_checked(git + ["commit", "-qm", message], root, env)
    return env
