"""A training run's directory: its files, what they say about the run, and whether it can be resumed.

``train`` and ``fls.ppo.multirun`` both open a run here before training: a finished run is recognised
(and checked to be this run) without touching a file, a resumable one yields its checkpoint, and a run
made with other learning settings is refused (``RunMismatchError``) before anything is written. The CSV
helpers keep metrics.csv / episodes.csv consistent with the checkpoint across kills and resumes.
File names: ``fls.stage_files``; schemas: docs/training.md.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fls.atomic import atomic_path
from fls.checkpoint import Checkpoint, load_checkpoint
from fls.config import ConfigError
from fls.ppo.config import TrainConfig
from fls.stage_files import CHECKPOINT, MODEL, RUN_INFO, TRAIN_EPISODES, TRAIN_METRICS, TRAIN_SUMMARY

METRIC_COLUMNS = (
    "global_step",
    "update",
    "eprewmean",
    "episodes",
    "charts/eplenmean",
    "charts/learning_rate",
    "charts/SPS",
    "time/rollout_s",
    "time/update_s",
    "losses/policy_loss",
    "losses/value_loss",
    "losses/entropy",
    "losses/approx_kl",
    "losses/clipfrac",
    "losses/explained_variance",
)
EPISODE_COLUMNS = ("global_step", "update", "env", "return", "length", "frames", "truncated")


class RunMismatchError(ConfigError):
    """``out_dir`` holds a run made with different learning settings (``differences`` says which)."""

    def __init__(self, message: str, differences: str = ""):
        super().__init__(message)
        self.differences = differences or message


@dataclass
class TrainResult:
    """What one ``train`` call did; here, not in the loop, because opening a finished run already yields one."""

    status: str  # "finished", "already_finished" or "stopped" (interrupted on purpose, resumable)
    out_dir: Path
    global_step: int
    updates: int
    eprewmean: float
    episodes: int
    wall_time_s: float
    sps: float


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return str(v)


def read_recorded_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not readable JSON ({exc})") from None


def check_same_run(cfg: TrainConfig, recorded: dict[str, Any], where: str) -> None:
    want = cfg.learning_fields()
    defaults = TrainConfig.field_defaults()  # a key added after the run was made had its default value then
    diffs = [f"{k}: {recorded.get(k, defaults.get(k))!r} there, {v!r} now" for k, v in want.items()
             if recorded.get(k, defaults.get(k)) != v]
    if diffs:
        raise RunMismatchError(
            f"{where} was made with other settings ({'; '.join(diffs)}); use a new output directory "
            f"or rerun with the same settings to resume",
            "; ".join(diffs),
        )


def truncate_csv(path: Path, columns: tuple[str, ...], keep: Callable[[dict[str, str]], bool]) -> None:
    """Rewrite ``path`` keeping the complete rows that ``keep`` accepts (drops a torn last line too)."""
    rows: list[dict[str, str]] = []
    if path.exists():
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) == columns:
                for row in reader:
                    if None in row or any(row.get(c) is None for c in columns):
                        continue  # torn row from a kill mid-write
                    try:
                        if keep(row):
                            rows.append(row)
                    except ValueError:
                        continue
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=columns)
            w.writeheader()
            w.writerows(rows)


class CsvAppender:
    def __init__(self, path: Path, columns: tuple[str, ...]):
        self._fh = open(path, "a", newline="")
        self._w = csv.writer(self._fh)
        self._columns = columns

    def write(self, row: dict[str, Any]) -> None:
        self._w.writerow([_fmt(row[c]) for c in self._columns])

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def run_status(out_dir: Path) -> str:
    """"empty", "finished" (summary.json present), "resumable" (checkpoint.pt present) or "started"."""
    if (out_dir / TRAIN_SUMMARY).exists():
        return "finished"
    if (out_dir / CHECKPOINT).exists():
        return "resumable"
    if out_dir.exists() and any(out_dir.iterdir()):
        return "started"
    return "empty"


@dataclass
class OpenedRun:
    """A run that has work left: where it lives and the checkpoint to resume from (None: fresh start)."""

    out: Path
    checkpoint: Checkpoint | None


def open_run(cfg: TrainConfig, out_dir: str | os.PathLike[str], *, restart_on_change: bool = False) -> TrainResult | OpenedRun:
    """The checks ``train`` makes before training: an ``already_finished`` result, or the run to train.

    Raises ``RunMismatchError`` / ``CheckpointError`` (nothing written) as ``train`` does.
    """
    cfg.validate()
    out = Path(out_dir)
    try:
        return _open_checked(cfg, out)
    except RunMismatchError as exc:
        if not restart_on_change:
            raise
        print(f"{out}: settings changed ({exc.differences}); restart_on_change: starting afresh", file=sys.stderr)
        for name in (TRAIN_SUMMARY, MODEL, CHECKPOINT, TRAIN_METRICS, TRAIN_EPISODES, RUN_INFO):
            (out / name).unlink(missing_ok=True)
        return _open_checked(cfg, out)


def _open_checked(cfg: TrainConfig, out: Path) -> TrainResult | OpenedRun:
    """``open_run`` on a validated config, without the restart: finished, resumable or fresh, checked."""
    state = run_status(out)

    # A finished run: check it is this run, then leave every file as it is.
    if state == "finished":
        summary = read_recorded_json(out / TRAIN_SUMMARY)
        if (out / RUN_INFO).exists():
            check_same_run(cfg, read_recorded_json(out / RUN_INFO).get("config", {}), str(out / RUN_INFO))
        if summary.get("global_step") == cfg.planned_steps:
            return TrainResult(
                "already_finished", out, summary["global_step"], summary.get("updates", cfg.num_updates),
                float(summary.get("eprewmean") if summary.get("eprewmean") is not None else float("nan")),
                int(summary.get("episodes", 0)), 0.0, 0.0,
            )
        raise RunMismatchError(f"{out / TRAIN_SUMMARY}: run finished at {summary.get('global_step')} steps, not {cfg.planned_steps}")

    checkpoint: Checkpoint | None = None
    if state == "resumable":
        if (out / RUN_INFO).exists():
            check_same_run(cfg, read_recorded_json(out / RUN_INFO).get("config", {}), str(out / RUN_INFO))
        checkpoint = load_checkpoint(out / CHECKPOINT)  # CheckpointError names the file; nothing written yet
        check_same_run(cfg, checkpoint.config, str(out / CHECKPOINT))
    return OpenedRun(out, checkpoint)
