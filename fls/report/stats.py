"""Across-seed statistics the way Agarwal et al. (2021, "Deep RL at the edge of the statistical precipice",
the ``rliable`` package) recommend: interquartile mean (IQM), stratified-bootstrap percentile intervals,
probability of improvement, performance profiles.

Own numpy code rather than ``rliable``: rliable 1.2 would add nine packages (arch, statsmodels, seaborn,
absl-py, ...) for about a hundred lines; tests/test_stats.py pins these functions against slow, literal
reference implementations and scipy.

Definitions (``strata`` = one array of scores per game, its entries one per run, i.e. per seed):
- IQM: mean of the middle 50 % of all scores pooled over strata (``scipy.stats.trim_mean(., 0.25)``:
  ``floor(n/4)`` values cut at each end; fewer than 4 values: the plain mean).
- Stratified bootstrap: each replicate resamples the runs of each stratum with replacement, separately
  (games never mix); the interval is the 2.5 / 97.5 percentiles of the statistic over replicates.
- Probability of improvement of X over Y: per stratum P(x > y) + 0.5 P(x = y) over all pairs of an X run
  and a Y run (the Mann-Whitney U statistic / (n m)), averaged over strata; its interval resamples the X
  and the Y runs of each stratum independently.
- Scores over all games are human-normalised, (score - random) / (human - random), with the random and
  human reference scores of Mnih et al. (2015), as rliable does for Atari.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
REPS = 2000  # bootstrap replicates (rliable's default is 50,000; 2,000 keeps the 95 % ends stable to ~0.01)

# (random, human) whole-game scores, Mnih et al. 2015 (Extended Data Table 2), as in rliable's atari data.
HUMAN_RANDOM = {
    "BeamRider": (363.9, 16926.5),
    "Breakout": (1.7, 30.5),
    "Enduro": (0.0, 860.5),
    "MsPacman": (307.3, 6951.6),
    "Seaquest": (68.4, 42054.7),
    "SpaceInvaders": (148.0, 1668.7),
}


@dataclass(frozen=True)
class Interval:
    point: float
    low: float
    high: float
    n: int  # runs (or episodes) the point estimate used, over all strata

    def fmt(self, decimals: int = 2) -> str:
        if not np.isfinite(self.point):
            return "—"
        if not (np.isfinite(self.low) and np.isfinite(self.high)):
            return f"{self.point:.{decimals}f}"
        return f"{self.point:.{decimals}f} [{self.low:.{decimals}f}, {self.high:.{decimals}f}]"


def human_normalised(game: str, scores: np.ndarray) -> np.ndarray:
    if game not in HUMAN_RANDOM:
        raise ValueError(f"no human/random reference score for game {game!r} (known: {', '.join(HUMAN_RANDOM)})")
    rnd, hum = HUMAN_RANDOM[game]
    return (np.asarray(scores, dtype=np.float64) - rnd) / (hum - rnd)


def iqm(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean along ``axis`` (scipy's trim_mean with 25 % cut at each end, vectorised)."""
    v = np.sort(np.asarray(values, dtype=np.float64), axis=axis)
    n = v.shape[axis]
    cut = int(0.25 * n)
    return np.take(v, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def _resample(strata: Sequence[np.ndarray], reps: int, rng: np.random.Generator) -> list[np.ndarray]:
    """(reps, n_s) bootstrap draws of each stratum, strata never mixed."""
    return [x[rng.integers(0, x.size, size=(reps, x.size))] for x in strata]


def _percentiles(stats: np.ndarray) -> tuple[float, float]:
    a = (1.0 - CONFIDENCE) / 2.0
    lo, hi = np.quantile(stats, [a, 1.0 - a])
    return float(lo), float(hi)


def _clean(strata: Sequence[np.ndarray]) -> list[np.ndarray]:
    out = [np.asarray(s, dtype=np.float64).ravel() for s in strata]
    return [s[np.isfinite(s)] for s in out if np.isfinite(s).any()]


def iqm_interval(strata: Sequence[np.ndarray], *, reps: int = REPS, seed: int = 0) -> Interval:
    """IQM of all scores with its stratified-bootstrap interval; the interval is NaN when no stratum has 2 runs."""
    strata = _clean(strata)
    if not strata:
        return Interval(math.nan, math.nan, math.nan, 0)
    n = sum(s.size for s in strata)
    point = float(iqm(np.concatenate(strata)))
    if max(s.size for s in strata) < 2:
        return Interval(point, math.nan, math.nan, n)
    draws = np.concatenate(_resample(strata, reps, np.random.default_rng(seed)), axis=1)
    return Interval(point, *_percentiles(iqm(draws, axis=1)), n)


def mean_interval(values: np.ndarray, *, reps: int = REPS, seed: int = 0) -> Interval:
    """Mean with a percentile-bootstrap interval (one stratum); NaN interval below 2 values."""
    v = _clean([values])
    if not v:
        return Interval(math.nan, math.nan, math.nan, 0)
    x = v[0]
    if x.size < 2:
        return Interval(float(x.mean()), math.nan, math.nan, int(x.size))
    draws = _resample([x], reps, np.random.default_rng(seed))[0]
    return Interval(float(x.mean()), *_percentiles(draws.mean(axis=1)), int(x.size))


def _pairwise_win(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(x > y) + 0.5 P(x = y) over all pairs, for batches x (B, n) and y (B, m) -> (B,)."""
    b, n = x.shape
    m = y.shape[1]
    if b * n * m <= 4_000_000:
        gt = (x[:, :, None] > y[:, None, :]).sum(axis=(1, 2))
        eq = (x[:, :, None] == y[:, None, :]).sum(axis=(1, 2))
        return (gt + 0.5 * eq) / (n * m)
    ys = np.sort(y, axis=1)
    out = np.empty(b)
    for i in range(b):  # large samples: count by binary search instead of all pairs
        lt = np.searchsorted(ys[i], x[i], side="left")
        le = np.searchsorted(ys[i], x[i], side="right")
        out[i] = (lt.sum() + 0.5 * (le - lt).sum()) / (n * m)
    return out


def probability_of_improvement(
    x_strata: Sequence[np.ndarray], y_strata: Sequence[np.ndarray], *, reps: int = REPS, seed: int = 0
) -> Interval:
    """P(X > Y) averaged over strata (paired by position), with its stratified-bootstrap interval."""
    pairs = [(np.asarray(a, float).ravel(), np.asarray(b, float).ravel()) for a, b in zip(x_strata, y_strata, strict=True)]
    pairs = [(a[np.isfinite(a)], b[np.isfinite(b)]) for a, b in pairs]
    pairs = [(a, b) for a, b in pairs if a.size and b.size]
    if not pairs:
        return Interval(math.nan, math.nan, math.nan, 0)
    n = sum(a.size + b.size for a, b in pairs)
    point = float(np.mean([_pairwise_win(a[None], b[None])[0] for a, b in pairs]))
    if all(a.size < 2 and b.size < 2 for a, b in pairs):
        return Interval(point, math.nan, math.nan, n)
    rng = np.random.default_rng(seed)
    per = [_pairwise_win(*_resample([a, b], reps, rng)) for a, b in pairs]
    return Interval(point, *_percentiles(np.mean(per, axis=0)), n)


def verdict(p: Interval) -> str:
    """Words for a probability of improvement: the interval decides, not the point."""
    if not np.isfinite(p.point):
        return "not run"
    if not (np.isfinite(p.low) and np.isfinite(p.high)):
        return "no interval (one run per side)"
    if p.low > 0.5:
        return "better"
    if p.high < 0.5:
        return "worse"
    return "indistinguishable (the interval contains 0.5)"


def performance_profile(
    strata: Sequence[np.ndarray], taus: np.ndarray, *, reps: int = REPS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fraction of scores > tau for each tau (each stratum weighted equally), with a bootstrap band."""
    strata = _clean(strata)
    taus = np.asarray(taus, dtype=np.float64)

    def frac(samples: list[np.ndarray]) -> np.ndarray:  # each (B, n_s) -> (B, len(taus))
        return np.mean([(s[:, :, None] > taus).mean(axis=1) for s in samples], axis=0)

    point = frac([s[None] for s in strata])[0]
    if max(s.size for s in strata) < 2:
        nan = np.full_like(point, np.nan)
        return point, nan, nan
    draws = frac(_resample(strata, min(reps, 500), np.random.default_rng(seed)))
    a = (1.0 - CONFIDENCE) / 2.0
    return point, np.quantile(draws, a, axis=0), np.quantile(draws, 1.0 - a, axis=0)


