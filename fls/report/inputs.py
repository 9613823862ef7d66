"""Read what the train, evaluate and score stages wrote, strictly enough to catch a schema drift.

Every reader takes one output directory and returns plain numbers; a directory that does not exist is
"not run" (``None``), while a directory that exists with a broken file is an error naming the file, so
a half-written or foreign result never slips into a table as if it were a measurement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fls.json_fields import read_object
from fls.stage_files import EVAL, SCORE_SUMMARY, TRAIN_METRICS, TRAIN_SUMMARY

METRICS = ("nss", "kl", "sauc", "sauc_exact")
OPTIONAL_METRICS = ("sauc_exact",)  # absent from summaries written before fls scored it: read as NaN


class ReportInputError(ValueError):
    """A stage output that exists but does not have the documented schema (message names the file)."""


def _read_json(path: Path) -> dict[str, Any]:
    return read_object(path, ReportInputError)


def _number(value: Any, where: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ReportInputError(f"{where}: expected a number, got {value!r}")
    return float(value)


def read_curve(run_dir: Path) -> pd.DataFrame | None:
    """``metrics.csv`` of a training run as (global_step, eprewmean); None when the run has no metrics yet.

    ``eprewmean`` is empty (NaN) for the updates before the first finished episode.
    """
    path = run_dir / TRAIN_METRICS
    if not path.exists():
        return None
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ReportInputError(f"{path}: not a readable CSV ({exc})") from None
    missing = [c for c in ("global_step", "eprewmean") if c not in df.columns]
    if missing:
        raise ReportInputError(f"{path}: missing column(s) {missing} (expected the `fls train` metrics.csv schema)")
    out = df[["global_step", "eprewmean"]].copy()
    out["global_step"] = pd.to_numeric(out["global_step"], errors="raise").astype(np.int64)
    out["eprewmean"] = pd.to_numeric(out["eprewmean"], errors="coerce")
    return out


def run_complete(run_dir: Path) -> bool:
    """``summary.json`` is written last by ``fls train``; its presence means the run finished."""
    return (run_dir / TRAIN_SUMMARY).exists()


@dataclass(frozen=True)
class EvalResult:
    rewards: np.ndarray  # whole-game unclipped score of every counted episode
    mean: float
    std: float


def read_eval(eval_dir: Path) -> EvalResult | None:
    """Episode rewards of one evaluation (``eval.json``: ``episodes[*].reward``, ``summary``).

    Tables 3, 3b and 5 and the profiles all read the same files: each is parsed once per (path, mtime, size).
    """
    path = Path(eval_dir) / EVAL
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return _read_eval_cached(path, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=4096)
def _read_eval_cached(path: Path, mtime_ns: int, size: int) -> EvalResult:
    data = _read_json(path)
    episodes = data.get("episodes")
    if not isinstance(episodes, list):
        raise ReportInputError(f"{path}: missing list 'episodes' (expected the `fls evaluate` eval.json schema)")
    rewards = []
    for i, row in enumerate(episodes):
        if not isinstance(row, dict) or "reward" not in row:
            raise ReportInputError(f"{path}: episodes[{i}] has no 'reward'")
        rewards.append(_number(row["reward"], f"{path}: episodes[{i}].reward"))
    arr = np.asarray(rewards, dtype=np.float64)
    if arr.size == 0:
        raise ReportInputError(f"{path}: no episodes")
    return EvalResult(rewards=arr, mean=float(arr.mean()), std=float(arr.std()))


def read_score(score_dir: Path) -> dict[str, float] | None:
    """Per-metric mean over defined inputs from a scoring ``summary.json``; NaN where nothing was defined.

    Accepts the metrics at top level or under ``metrics`` (``{"nss": {"mean": ..., "n_defined": ...}}``).
    """
    path = score_dir / SCORE_SUMMARY
    if not path.exists():
        return None
    data = _read_json(path)
    block = data.get("metrics", data)
    if not isinstance(block, dict):
        raise ReportInputError(f"{path}: 'metrics' must be an object")
    out: dict[str, float] = {}
    for metric in METRICS:
        entry = block.get(metric)
        if entry is None and metric in OPTIONAL_METRICS:
            out[metric] = math.nan
            continue
        if not isinstance(entry, dict) or "mean" not in entry:
            raise ReportInputError(f"{path}: missing '{metric}.mean' (expected the `fls score` summary.json schema)")
        out[metric] = _number(entry["mean"], f"{path}: {metric}.mean")
    return out


def score_uses_synthetic_gaze(score_dir: Path) -> bool:
    """True when the scoring summary says its gaze came from the synthetic sample (``synthetic_gaze``)."""
    path = score_dir / SCORE_SUMMARY
    return path.exists() and bool(_read_json(path).get("synthetic_gaze", False))


def run_source(run_dir: Path) -> str:
    """``"authors"`` for a run directory ``fls import-authors`` wrote (its summary.json says so), else ``"fls"``.

    Tables pool a cell's seeds whatever made them; Figure 3 and the comparison table keep the authors'
    released weights apart from fls's own training, so the label on every curve and row stays true.
    """
    return run_provenance(run_dir)[0]


def run_provenance(run_dir: Path) -> tuple[str, str | None]:
    """(``run_source``, the model.pt sha256 ``fls import-authors`` recorded or None), from one read of summary.json."""
    path = Path(run_dir) / TRAIN_SUMMARY
    if not path.exists():
        return "fls", None
    summary = _read_json(path)
    source = summary.get("source", "fls")
    if source not in ("fls", "authors"):
        raise ReportInputError(f"{path}: field 'source' must be 'fls' or 'authors', got {source!r}")
    sha = summary.get("model_sha256")
    return source, sha if isinstance(sha, str) else None


def recorded_checkpoint_sha(path: Path, *keys: str) -> str | None:
    """The model sha256 a stage recorded (``eval.json: checkpoint.sha256``, score ``summary.json:
    model.checkpoint.sha256``); None when the file or the field is absent."""
    if not Path(path).exists():
        return None
    node: Any = _read_json(Path(path))
    for k in (*keys, "sha256"):
        node = node.get(k) if isinstance(node, dict) else None
    return node if isinstance(node, str) else None
