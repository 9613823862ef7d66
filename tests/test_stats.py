"""fls.report.stats against slow literal references, scipy, and the coverage a 95 % interval must have."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.stats

from fls.report import stats


@pytest.mark.parametrize("n", list(range(1, 21)))
def test_iqm_is_scipys_trim_mean(n):
    x = np.random.default_rng(n).normal(size=n) * 10
    assert stats.iqm(x) == pytest.approx(scipy.stats.trim_mean(x, 0.25))


def test_iqm_golden_values():
    assert stats.iqm(np.array([1.0, 2.0, 3.0, 100.0])) == pytest.approx(2.5)  # cuts one at each end
    assert stats.iqm(np.array([5.0, 1.0, 3.0])) == pytest.approx(3.0)  # n < 4: the plain mean
    assert stats.iqm(np.arange(8.0)) == pytest.approx(3.5)  # keeps 2..5


def _slow_stratified_iqm(strata, reps, seed):
    """Literal: per replicate, resample each game's runs (same draws as the library), pool, trim_mean."""
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, s.size, size=(reps, s.size)) for s in strata]
    out = []
    for r in range(reps):
        pooled = []
        for s, d in zip(strata, draws):
            pooled += [s[i] for i in d[r]]
        out.append(scipy.stats.trim_mean(pooled, 0.25))
    return np.quantile(out, [0.025, 0.975])


def test_stratified_iqm_interval_matches_a_literal_loop():
    rng = np.random.default_rng(0)
    strata = [rng.normal(3, 1, size=5), rng.normal(0.5, 0.2, size=3), rng.normal(10, 4, size=7)]
    got = stats.iqm_interval(strata, reps=300, seed=7)
    lo, hi = _slow_stratified_iqm(strata, 300, 7)
    assert (got.low, got.high) == pytest.approx((lo, hi))
    assert got.point == pytest.approx(scipy.stats.trim_mean(np.concatenate(strata), 0.25))
    assert got.low <= got.point <= got.high and got.n == 15


def test_strata_are_never_mixed():
    # Two games on very different scales, two runs each: any replicate keeps two runs of each game, so the
    # pooled IQM (mean of the 2 middle values of 4) stays between the games' values; mixing would not.
    strata = [np.array([0.0, 1.0]), np.array([100.0, 101.0])]
    ci = stats.iqm_interval(strata, reps=500, seed=1)
    assert 0.0 <= ci.low and ci.high <= 101.0
    assert ci.low >= 0.5 and ci.high <= 100.5  # middle two values are one of each game


def test_mean_interval_has_nominal_coverage():
    rng = np.random.default_rng(3)
    hits = 0
    trials = 300
    for _ in range(trials):
        x = rng.normal(2.0, 1.0, size=40)
        ci = stats.mean_interval(x, reps=400, seed=int(rng.integers(1 << 30)))
        hits += ci.low <= 2.0 <= ci.high
    assert 0.88 <= hits / trials <= 0.99  # percentile bootstrap, n=40: close to 95 %


def test_one_run_has_a_point_but_no_interval():
    ci = stats.iqm_interval([np.array([4.0])])
    assert ci.point == 4.0 and np.isnan(ci.low) and np.isnan(ci.high)
    assert ci.fmt() == "4.00"
    assert np.isnan(stats.iqm_interval([]).point) and stats.iqm_interval([]).fmt() == "—"
    assert stats.mean_interval(np.array([np.nan, 2.0])).n == 1  # NaNs (undefined inputs) are dropped


def _slow_poi(x, y):
    return np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(x, y)])


def test_probability_of_improvement_is_the_normalised_mann_whitney_u():
    rng = np.random.default_rng(5)
    x, y = rng.integers(0, 6, size=9).astype(float), rng.integers(0, 6, size=7).astype(float)  # ties included
    p = stats.probability_of_improvement([x], [y], reps=200)
    assert p.point == pytest.approx(_slow_poi(x, y))
    u = scipy.stats.mannwhitneyu(x, y, alternative="two-sided").statistic
    assert p.point == pytest.approx(u / (x.size * y.size))
    assert p.low <= p.point <= p.high


def test_probability_of_improvement_averages_games_and_bootstraps_each_side():
    x = [np.array([1.0, 2.0, 3.0]), np.array([10.0, 11.0])]
    y = [np.array([0.0, 0.5, 5.0]), np.array([20.0, 30.0, 40.0])]
    p = stats.probability_of_improvement(x, y, reps=400, seed=2)
    assert p.point == pytest.approx((_slow_poi(x[0], y[0]) + 0.0) / 2)
    # literal reference of the interval with the same draws (x then y of each game, in game order)
    rng = np.random.default_rng(2)
    per_game = []
    for a, b in zip(x, y):
        da, db = rng.integers(0, a.size, (400, a.size)), rng.integers(0, b.size, (400, b.size))
        per_game.append([_slow_poi(a[da[r]], b[db[r]]) for r in range(400)])
    lo, hi = np.quantile(np.mean(per_game, axis=0), [0.025, 0.975])
    assert (p.low, p.high) == pytest.approx((lo, hi))


def test_large_samples_use_the_binary_search_path_with_the_same_result():
    rng = np.random.default_rng(9)
    x, y = rng.integers(0, 50, size=(3, 1500)).astype(float), rng.integers(0, 50, size=(3, 1400)).astype(float)
    fast = stats._pairwise_win(x, y)  # 3 * 1500 * 1400 > 4e6 -> searchsorted path
    slow = [(np.sum(a[:, None] > b[None]) + 0.5 * np.sum(a[:, None] == b[None])) / (a.size * b.size) for a, b in zip(x, y)]
    assert fast == pytest.approx(slow)


def test_verdict_reads_the_interval():
    assert stats.verdict(stats.Interval(0.48, 0.31, 0.66, 10)).startswith("indistinguishable")
    assert stats.verdict(stats.Interval(0.8, 0.6, 0.95, 10)) == "better"
    assert stats.verdict(stats.Interval(0.2, 0.05, 0.45, 10)) == "worse"
    assert stats.verdict(stats.Interval(1.0, np.nan, np.nan, 2)).startswith("no interval")


def test_identical_samples_are_indistinguishable():
    x = np.arange(10.0)
    p = stats.probability_of_improvement([x], [x.copy()], reps=500)
    assert p.point == pytest.approx(0.5) and p.low < 0.5 < p.high


def test_performance_profile_against_a_literal_count():
    strata = [np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 10.0])]
    taus = np.array([-1.0, 0.0, 1.5, 3.5, 20.0])
    point, lo, hi = stats.performance_profile(strata, taus, reps=100)
    want = [np.mean([np.mean(s > t) for s in strata]) for t in taus]
    assert point == pytest.approx(want)
    assert np.all(lo <= point + 1e-12) and np.all(point <= hi + 1e-12)


def test_human_normalisation():
    assert stats.human_normalised("Breakout", np.array([1.7, 30.5])) == pytest.approx([0.0, 1.0])
    with pytest.raises(ValueError, match="BreakoutInfinite"):
        stats.human_normalised("BreakoutInfinite", np.array([1.0]))


def test_same_seed_same_interval():
    x = [np.random.default_rng(1).normal(size=6)]
    assert stats.iqm_interval(x, seed=4) == stats.iqm_interval(x, seed=4)
