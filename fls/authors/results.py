"""The authors' own results (``eval.pkl``, ``saliency.pkl``) as reference rows beside fls's numbers.

Neither pickle is written by code in their repository, so the structure is inferred from the code that
produces the data:

* ``eval.pkl``: the ``eval_results`` dict of ``run_baselines.evaluate_model`` (also saved as results.json):
  ``{"rewards": [...], "lengths": [...], "elapsed_time": [...], "done_per_env": [...]}``, one entry per
  counted episode (the first ``evals_per_env`` of each env). A bare list/array of rewards is accepted too.
* ``saliency.pkl``: ``benchmark_atari_head.model_metrics``'s records, a list of
  ``{"trial_number": int, "metrics": {"nss": array, "kldiv": array, "sauc": array}}`` with one float per
  network input of the trial (NaN where the metric is undefined: no fixations, a zero map).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fls.authors.safe_pickle import safe_load

# the authors' metric keys -> fls's metric names (fls.metrics / scoring summaries)
SALIENCY_KEYS = {"nss": "nss", "kldiv": "kl", "sauc": "sauc"}
SALIENCY_COLUMNS = ("trial_id", "input", "nss", "kl", "sauc")


class AuthorsResultError(ValueError):
    """An authors' result file whose structure is not the documented one (message names file and field)."""


@dataclass(frozen=True)
class EvalReference:
    rewards: np.ndarray
    lengths: np.ndarray | None

    def summary(self) -> dict[str, Any]:
        r = self.rewards
        return {"n": int(r.size), "mean": float(r.mean()), "std": float(r.std())}


def _float_array(value: Any, where: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise AuthorsResultError(f"{where}: expected a list of numbers") from None
    if arr.ndim != 1:
        raise AuthorsResultError(f"{where}: expected a 1-d list of numbers, got shape {arr.shape}")
    return arr


def parse_eval(obj: Any, where: str) -> EvalReference:
    if isinstance(obj, Mapping):
        if "rewards" not in obj:
            raise AuthorsResultError(f"{where}: missing key 'rewards' (expected run_baselines' eval_results dict)")
        rewards = _float_array(obj["rewards"], f"{where}: rewards")
        lengths = _float_array(obj["lengths"], f"{where}: lengths") if "lengths" in obj else None
        if lengths is not None and lengths.size != rewards.size:
            raise AuthorsResultError(f"{where}: 'lengths' has {lengths.size} entries, 'rewards' {rewards.size}")
    elif isinstance(obj, (Sequence, np.ndarray)) and not isinstance(obj, (str, bytes)):
        rewards, lengths = _float_array(obj, f"{where}: rewards"), None
    else:
        raise AuthorsResultError(f"{where}: expected a dict with 'rewards' or a list of rewards, got {type(obj).__name__}")
    if rewards.size == 0:
        raise AuthorsResultError(f"{where}: no episodes")
    if not np.isfinite(rewards).all():
        raise AuthorsResultError(f"{where}: rewards contain non-finite values")
    return EvalReference(rewards, lengths)


def read_eval_pkl(path: str | Path) -> EvalReference:
    return parse_eval(safe_load(path), str(path))


def parse_saliency(obj: Any, where: str) -> pd.DataFrame:
    """Long table, one row per (trial, input): ``SALIENCY_COLUMNS`` with fls's metric names."""
    if not isinstance(obj, (list, tuple)):
        raise AuthorsResultError(f"{where}: expected a list of per-trial records, got {type(obj).__name__}")
    frames = []
    for i, rec in enumerate(obj):
        if not isinstance(rec, Mapping) or "trial_number" not in rec or "metrics" not in rec:
            raise AuthorsResultError(f"{where}: record {i} lacks 'trial_number'/'metrics'")
        try:
            tid = int(rec["trial_number"])
        except (TypeError, ValueError):
            raise AuthorsResultError(f"{where}: record {i}: 'trial_number' is not an integer") from None
        metrics = rec["metrics"]
        if not isinstance(metrics, Mapping):
            raise AuthorsResultError(f"{where}: record {i}: 'metrics' is not a dict")
        cols = {}
        for key, name in SALIENCY_KEYS.items():
            if key not in metrics:
                raise AuthorsResultError(f"{where}: record {i} (trial {tid}): missing metric '{key}'")
            cols[name] = _float_array(metrics[key], f"{where}: record {i} (trial {tid}): {key}")
        n = {v.size for v in cols.values()}
        if len(n) != 1:
            raise AuthorsResultError(f"{where}: record {i} (trial {tid}): metrics have different lengths {sorted(n)}")
        k = n.pop()
        frames.append(pd.DataFrame({"trial_id": np.full(k, tid, dtype=np.int64), "input": np.arange(k, dtype=np.int64), **cols}))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c in ("trial_id", "input") else "float64") for c in SALIENCY_COLUMNS})
    return pd.concat(frames, ignore_index=True)[list(SALIENCY_COLUMNS)]


def read_saliency_pkl(path: str | Path) -> pd.DataFrame:
    return parse_saliency(safe_load(path), str(path))


def saliency_means(df: pd.DataFrame, trials: Sequence[int] | None = None) -> dict[str, dict[str, Any]]:
    """Per metric: mean over the defined inputs (of ``trials`` only, when given) and how many were defined."""
    if trials is not None:
        df = df[df["trial_id"].isin(list(trials))]
    out = {}
    for m in ("nss", "kl", "sauc"):
        v = df[m].to_numpy(dtype=np.float64)
        d = v[np.isfinite(v)]
        out[m] = {"mean": float(d.mean()) if d.size else None, "n_defined": int(d.size), "n_undefined": int(v.size - d.size)}
    return out


def welch_test(a: np.ndarray, b: np.ndarray) -> dict[str, float | None]:
    """Welch's two-sample t-test (unequal variances): t, its degrees of freedom and the two-sided p-value.

    Undefined (None) when either side has fewer than two values; two constant samples with the same mean
    give p = 1, with different means p = 0.
    """
    from scipy import stats  # deferred: ~1 s to import, only this function uses it, and every `fls` start loads this module

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2 or b.size < 2:
        return {"t": None, "df": None, "p": None}
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    if va + vb == 0:
        same = bool(a.mean() == b.mean())
        return {"t": 0.0 if same else math.copysign(math.inf, a.mean() - b.mean()), "df": None, "p": 1.0 if same else 0.0}
    res = stats.ttest_ind(a, b, equal_var=False)
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return {"t": float(res.statistic), "df": float(dof), "p": float(res.pvalue)}
