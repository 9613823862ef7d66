"""The authors' metric edge cases beside fls's (KL's "0", the sAUC other-input pool) and the exact sAUC."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fls import metrics as M
from helpers import fixation_map


# --------------------------------------------------------------------------------------------- KL zero test


def test_kl_absolute_zero_test_depends_on_scale_relative_does_not():
    f = fixation_map((60, 60), {(30, 30): 1})
    s = np.full((60, 60), 1e-3)
    s[30, 40] = 5e-9  # inside the blur support: "0" in absolute terms, 5e-6 of the max in relative terms
    assert math.isfinite(M.kl_divergence(s, f, zero_test="relative"))
    assert math.isnan(M.kl_divergence(s, f, zero_test="absolute"))
    # scale the map by 1000: the authors' test no longer sees a zero, fls's answer does not move
    assert math.isfinite(M.kl_divergence(1000 * s, f, zero_test="absolute"))
    assert M.kl_divergence(1000 * s, f) == pytest.approx(M.kl_divergence(s, f))
    # a value 1e-9 of a huge max counts as zero for fls, not for the authors
    s2 = np.full((60, 60), 1e4)
    s2[30, 40] = 1e-6
    assert math.isnan(M.kl_divergence(s2, f, zero_test="relative"))
    assert math.isfinite(M.kl_divergence(s2, f, zero_test="absolute"))
    with pytest.raises(M.MetricInputError, match="zero_test"):
        M.kl_divergence(s, f, zero_test="loose")


def test_choose_other_inputs_among_all_includes_inputs_without_fixations():
    has = np.array([True, False, True, True, False])
    others = M.choose_other_inputs(np.random.default_rng(0), 2, has, n_other=200, among="all")
    assert set(others.tolist()) == {0, 1, 3, 4}
    assert len(M.choose_other_inputs(np.random.default_rng(0), 0, np.array([True]), 10, among="all")) == 0
    with pytest.raises(M.MetricInputError, match="pool"):
        M.choose_other_inputs(np.random.default_rng(0), 0, has, among="some")


# ----------------------------------------------------------------------------------------------- exact sAUC


def test_exact_sauc_hand_computed():
    # negatives: pixel (0,0) value 0.5 with mass 3/4, pixel (1,1) value 0.0 with mass 1/4.
    # positives: 1.0 (x1): P(neg<) = 1; 0.5 (x2): 1/4 + 3/8 = 5/8 each; 0.0 (x1): 0 + 1/8.
    s = np.array([[0.5, 1.0], [0.5, 0.0]])
    f = np.array([[0, 1], [2, 1]])
    neg = np.array([[3, 0], [0, 1]])
    assert M.shuffled_auc_exact(s, f, neg) == pytest.approx((1 + 2 * 5 / 8 + 1 / 8) / 4)
    # a single negative pixel: every draw is identical, so the estimate equals the expectation exactly
    neg1 = np.array([[4, 0], [0, 0]])
    assert M.shuffled_auc_exact(s, f, neg1) == pytest.approx(M.shuffled_auc(s, f, neg1, n_draws=3, rng=0))


def test_exact_sauc_undefined_cases_match_the_estimate():
    f = fixation_map((8, 8), {(1, 1): 1})
    neg = fixation_map((8, 8), {(4, 4): 1})
    assert math.isnan(M.shuffled_auc_exact(np.full((8, 8), 2.0), f, neg))
    s = np.random.default_rng(0).random((8, 8))
    assert math.isnan(M.shuffled_auc_exact(s, np.zeros((8, 8), int), neg))
    assert math.isnan(M.shuffled_auc_exact(s, f, np.zeros((8, 8), int)))
    batch = M.shuffled_auc_exact(np.stack([s, s]), np.stack([f, np.zeros_like(f)]), np.stack([neg, neg]))
    assert math.isfinite(batch[0]) and math.isnan(batch[1])


def test_exact_sauc_is_the_mean_over_every_possible_single_negative():
    rng = np.random.default_rng(1)
    s = rng.integers(0, 4, size=(6, 5)).astype(float)  # many ties
    f = rng.integers(0, 3, size=(6, 5))
    neg = rng.integers(0, 3, size=(6, 5))
    norm = (s - s.min()) / (s.max() - s.min())
    pos = np.repeat(norm.ravel(), f.ravel())
    total = 0.0
    for j in np.flatnonzero(neg):  # brute force over the negative's pixel
        v = norm.ravel()[j]
        total += neg.ravel()[j] * (np.mean(pos > v) + 0.5 * np.mean(pos == v))
    assert M.shuffled_auc_exact(s, f, neg) == pytest.approx(total / neg.sum(), abs=1e-12)


def test_100_draw_estimate_lies_within_its_standard_error_of_the_exact_value():
    """Property: over many random inputs the 100-draw estimate scatters around the exact value with the
    spread its own standard error predicts (within 1 SE about 68% of the time, never beyond 4 SE)."""
    rng = np.random.default_rng(2024)
    z = []
    for case in range(150):
        n_fix = int(rng.integers(5, 60))
        s = rng.gamma(0.7, size=(30, 24))
        f = np.zeros((30, 24), int)
        np.add.at(f, (rng.integers(0, 30, n_fix), rng.integers(0, 24, n_fix)), 1)
        neg = np.zeros((30, 24), int)
        np.add.at(neg, (rng.integers(0, 30, 10 * n_fix), rng.integers(0, 24, 10 * n_fix)), 1)
        est, draws = M.shuffled_auc(s, f, neg, n_draws=100, rng=M.input_rng(42, "prop", case), return_draws=True)
        exact = M.shuffled_auc_exact(s, f, neg)
        se = draws.std(ddof=1) / math.sqrt(100)
        z.append(abs(est - exact) / se)
    z = np.asarray(z)
    assert (z < 4).all()
    assert 0.55 <= np.mean(z <= 1) <= 0.82
