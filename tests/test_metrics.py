"""Golden values and undefined cases of fls.metrics on small hand-made maps."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from fls import metrics as M
from helpers import fixation_map


# ------------------------------------------------------------------------------------------------ NSS


def test_nss_hand_computed_value():
    # 2x2 map [0, 0; 0, 4]: mean 1, population std sqrt(3); fixation counts: 2 on the peak, 1 on a zero pixel.
    s = np.array([[0.0, 0.0], [0.0, 4.0]])
    f = np.array([[1, 0], [0, 2]])
    z_peak, z_zero = 3 / math.sqrt(3), -1 / math.sqrt(3)
    assert M.nss(s, f) == pytest.approx((2 * z_peak + 1 * z_zero) / 3, abs=1e-12)


def test_nss_map_peaked_exactly_at_single_fixation():
    # one hot pixel of N: standardised value (N-1)/sqrt(N-1) = sqrt(N-1).
    s = np.zeros((210, 160))
    s[100, 80] = 1.0
    f = fixation_map((210, 160), {(100, 80): 3})
    assert M.nss(s, f) == pytest.approx(math.sqrt(210 * 160 - 1), rel=1e-12)


def test_nss_undefined_cases_are_nan_not_zero():
    f = fixation_map((8, 8), {(1, 1): 1})
    assert math.isnan(M.nss(np.full((8, 8), 3.0), f))  # constant map
    assert math.isnan(M.nss(np.random.default_rng(0).random((8, 8)), np.zeros((8, 8), int)))  # no fixation
    s = np.random.default_rng(0).random((8, 8))
    s[0, 0] = np.inf
    assert math.isnan(M.nss(s, f))  # non-finite map
    s[0, 0] = np.nan
    assert math.isnan(M.nss(s, f))


def test_nss_batch_matches_single_and_keeps_nan_positions():
    rng = np.random.default_rng(1)
    s = rng.random((5, 12, 10))
    s[2] = 7.0
    f = rng.integers(0, 3, size=(5, 12, 10))
    f[4] = 0
    batch = M.nss(s, f)
    assert batch.shape == (5,)
    for i in range(5):
        single = M.nss(s[i], f[i])
        assert (math.isnan(single) and math.isnan(batch[i])) or single == pytest.approx(batch[i], abs=1e-12)
    assert np.isnan(batch[[2, 4]]).all() and np.isfinite(batch[[0, 1, 3]]).all()


# ------------------------------------------------------------------------------------------------- KL


def test_kl_is_zero_for_the_blurred_fixation_map_itself():
    f = fixation_map((210, 160), {(50, 40): 2, (51, 40): 1, (150, 120): 4, (0, 0): 1})
    s = M.blur_fixations(f, 5.0)
    assert M.kl_divergence(s, f, sigma=5.0) == pytest.approx(0.0, abs=1e-12)
    assert M.kl_divergence(3.5 * s, f, sigma=5.0) == pytest.approx(0.0, abs=1e-12)


def test_kl_of_uniform_map_is_log_n_minus_entropy():
    f = fixation_map((210, 160), {(100, 80): 1})
    fb = M.blur_fixations(f, 5.0)
    p = fb[fb > 0] / fb.sum()
    expected = math.log(210 * 160) + float((p * np.log(p)).sum())
    assert M.kl_divergence(np.ones((210, 160)), f) == pytest.approx(expected, rel=1e-12)


def test_blur_matches_opencv_gaussian_blur_exactly():
    # the authors blurred with cv2.GaussianBlur(ksize=(0, 0), sigma): 41 taps, reflect-101 boundary
    rng = np.random.default_rng(2)
    f = np.zeros((210, 160))
    f[rng.integers(0, 210, 200), rng.integers(0, 160, 200)] = rng.integers(1, 5, 200)
    f[0, :3] = 2  # corners and edges exercise the boundary mode
    f[209, 159] = 1
    ours = M.blur_fixations(f, 5.0)
    ref = cv2.GaussianBlur(f, (0, 0), sigmaX=5, sigmaY=5)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-15)
    assert ((ours > 0) == (ref > 0)).all()
    small = np.zeros((84, 84))
    small[3, 80] = 1
    np.testing.assert_allclose(M.blur_fixations(small, 2.0), cv2.GaussianBlur(small, (0, 0), 2), atol=1e-15)


def test_kl_undefined_where_saliency_is_zero_under_blurred_fixations():
    f = fixation_map((60, 60), {(30, 30): 1})
    s = np.ones((60, 60))
    s[30, 45] = 0.0  # 15 px from the fixation: inside the 20 px blur support
    assert math.isnan(M.kl_divergence(s, f, sigma=5.0))
    s = np.ones((60, 60))
    s[30, 55] = 0.0  # 25 px away: outside the support, so defined
    assert math.isfinite(M.kl_divergence(s, f, sigma=5.0))
    assert math.isnan(M.kl_divergence(np.zeros((60, 60)), f))  # all-zero map
    s = np.ones((60, 60))
    s[0, 0] = -1.0
    assert math.isnan(M.kl_divergence(s, f))  # negative saliency is not a distribution
    assert math.isnan(M.kl_divergence(np.ones((60, 60)), np.zeros((60, 60), int)))  # no fixation


# ------------------------------------------------------------------------------------------ shuffled AUC


def test_sauc_is_one_when_fixations_hold_the_top_values():
    s = np.zeros((20, 20))
    s[5, 5], s[6, 6] = 1.0, 0.9
    f = fixation_map((20, 20), {(5, 5): 3, (6, 6): 1})
    neg = np.zeros((20, 20), int)
    neg[10:15, 10:15] = 2  # fixations of other inputs elsewhere, where the map is 0
    assert M.shuffled_auc(s, f, neg, n_draws=10, rng=0) == pytest.approx(1.0)
    assert M.shuffled_auc(-s, f, neg, n_draws=10, rng=0) == pytest.approx(0.0)  # reversed map


def test_sauc_is_one_half_when_negatives_are_the_fixated_pixels():
    # all positives share one value and the negatives are drawn from the same pixels: every pair ties,
    # and ties count 1/2.
    s = np.zeros((10, 10))
    s[2, 2] = s[3, 3] = 5.0
    f = fixation_map((10, 10), {(2, 2): 2, (3, 3): 2})
    assert M.shuffled_auc(s, f, f, n_draws=7, rng=3) == pytest.approx(0.5)


def test_sauc_hand_computed_with_a_single_negative_pixel():
    # negatives all land on pixel (0, 0) of normalised value 0.5; positives 1.0 (x1), 0.5 (x2), 0.0 (x1):
    # U = 1 + 0.5 * 2 + 0 = 2 of 4 pairs per negative -> AUC 0.5; move the tie away -> 0.75.
    s = np.array([[0.5, 1.0], [0.5, 0.0]])
    f = np.array([[0, 1], [2, 1]])
    neg = np.array([[4, 0], [0, 0]])
    assert M.shuffled_auc(s, f, neg, n_draws=3, rng=0) == pytest.approx(0.5)
    s2 = np.array([[0.4, 1.0], [0.5, 0.0]])
    assert M.shuffled_auc(s2, f, neg, n_draws=3, rng=0) == pytest.approx((1 + 2 + 0) / 4)


def test_sauc_undefined_cases():
    f = fixation_map((8, 8), {(1, 1): 1})
    neg = fixation_map((8, 8), {(4, 4): 1})
    assert math.isnan(M.shuffled_auc(np.full((8, 8), 2.0), f, neg, rng=0))  # constant map
    s = np.random.default_rng(0).random((8, 8))
    assert math.isnan(M.shuffled_auc(s, np.zeros((8, 8), int), neg, rng=0))  # no fixation
    assert math.isnan(M.shuffled_auc(s, f, np.zeros((8, 8), int), rng=0))  # no negatives
    s[3, 3] = np.nan
    assert math.isnan(M.shuffled_auc(s, f, neg, rng=0))


def test_sauc_draws_match_numpy_choice_and_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(4)
    s = rng.random((30, 20))
    f = np.zeros((30, 20), int)
    np.add.at(f, (rng.integers(0, 30, 40), rng.integers(0, 20, 40)), 1)
    neg = np.zeros((30, 20), int)
    np.add.at(neg, (rng.integers(0, 30, 300), rng.integers(0, 20, 300)), 1)
    mean, draws = M.shuffled_auc(s, f, neg, n_draws=5, rng=np.random.default_rng(9), return_draws=True)
    g = np.random.default_rng(9)
    picked = g.choice(600, size=(5, 40), p=neg.ravel() / neg.sum())
    norm = (s.ravel() - s.min()) / (s.max() - s.min())
    pos = np.repeat(norm, f.ravel())
    expected = [roc_auc_score(np.r_[np.zeros(40), np.ones(40)], np.r_[norm[picked[d]], pos]) for d in range(5)]
    np.testing.assert_allclose(draws, expected, atol=1e-12)
    assert mean == pytest.approx(np.mean(expected), abs=1e-12)


def test_choose_other_inputs_excludes_self_and_inputs_without_fixations():
    has = np.array([True, False, True, True, False])
    others = M.choose_other_inputs(np.random.default_rng(0), 2, has, n_other=50)
    assert len(others) == 50 and set(others.tolist()) == {0, 3}
    assert len(M.choose_other_inputs(np.random.default_rng(0), 0, np.array([True, False]), 10)) == 0
    a = M.choose_other_inputs(M.input_rng(7, "trial_a", 3), 3, np.ones(100, bool))
    b = M.choose_other_inputs(M.input_rng(7, "trial_a", 3), 3, np.ones(100, bool))
    c = M.choose_other_inputs(M.input_rng(7, "trial_b", 3), 3, np.ones(100, bool))
    assert (a == b).all() and not (a == c).all()


# ------------------------------------------------------------------------------------------------- input errors


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(M.MetricInputError, match="does not match"):
        M.nss(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(M.MetricInputError, match="non-negative"):
        M.kl_divergence(np.ones((4, 4)), -np.ones((4, 4)))
    with pytest.raises(M.MetricInputError, match=r"\(H, W\) or \(B, H, W\)"):
        M.nss(np.zeros(4), np.zeros(4))
    with pytest.raises(M.MetricInputError, match="n_draws"):
        M.shuffled_auc(np.ones((4, 4)), np.ones((4, 4)), np.ones((4, 4)), n_draws=0)


def test_summarise_counts_undefined_and_ignores_them():
    out = M.summarise(np.array([1.0, np.nan, 3.0, np.nan]))
    assert out == {"mean": 2.0, "std": 1.0, "n_defined": 2, "n_undefined": 2}
    assert M.summarise(np.array([np.nan]))["mean"] is None
