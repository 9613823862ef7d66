"""Property tests: fls.metrics against slow, obviously-correct references, invariances, pysaliency, determinism."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fls import metrics as M

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def map_and_fixations(draw, max_side=7):
    h = draw(st.integers(2, max_side))
    w = draw(st.integers(2, max_side))
    # quarter steps: plenty of ties (the AUC tie rule matters), never "almost flat"
    s = draw(hnp.arrays(np.int64, (h, w), elements=st.integers(0, 12))).astype(np.float64) / 4.0
    f = draw(hnp.arrays(np.int64, (h, w), elements=st.integers(0, 3)))
    neg = draw(hnp.arrays(np.int64, (h, w), elements=st.integers(0, 3)))
    return s, f, neg


# ------------------------------------------------------------------------------------------ references


def ref_nss(s, f):
    pixels = [(i, j) for i in range(s.shape[0]) for j in range(s.shape[1])]
    n = len(pixels)
    total_fix = sum(int(f[p]) for p in pixels)
    if total_fix == 0 or max(s[p] for p in pixels) == min(s[p] for p in pixels):
        return math.nan
    mean = sum(s[p] for p in pixels) / n
    std = math.sqrt(sum((s[p] - mean) ** 2 for p in pixels) / n)
    return sum(int(f[p]) * (s[p] - mean) / std for p in pixels) / total_fix


def _reflect101(j, n):
    while j < 0 or j >= n:
        j = -j if j < 0 else 2 * (n - 1) - j
    return j


def ref_blur(f, sigma):
    radius = int(math.floor(4 * sigma + 0.5))
    k = [math.exp(-(d * d) / (2 * sigma * sigma)) for d in range(-radius, radius + 1)]
    k = [v / sum(k) for v in k]
    h, w = f.shape
    rows = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            rows[i, j] = sum(k[d + radius] * f[i, _reflect101(j + d, w)] for d in range(-radius, radius + 1))
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            out[i, j] = sum(k[d + radius] * rows[_reflect101(i + d, h), j] for d in range(-radius, radius + 1))
    return out


def ref_kl(s, f, sigma):
    if f.sum() == 0 or s.min() < 0 or s.max() <= 0:
        return math.nan
    fb = ref_blur(f.astype(float), sigma)
    fsum, ssum = fb.sum(), s.sum()
    total = 0.0
    for i in range(s.shape[0]):
        for j in range(s.shape[1]):
            if fb[i, j] > 0:
                if s[i, j] <= M.KL_ZERO_RTOL * s.max():
                    return math.nan
                p, q = fb[i, j] / fsum, s[i, j] / ssum
                total += p * math.log(p / q)
    return total


def ref_sauc(s, f, neg, n_draws, seed):
    """The authors' recipe, pair by pair: positives with multiplicity, negatives via rng.choice."""
    if f.sum() == 0 or neg.sum() == 0 or s.max() == s.min():
        return math.nan
    norm = (s - s.min()) / (s.max() - s.min())
    positives = []
    for i in range(s.shape[0]):
        for j in range(s.shape[1]):
            positives.extend([norm[i, j]] * int(f[i, j]))
    rng = np.random.default_rng(seed)
    flat = norm.ravel()
    drawn = rng.choice(flat.size, size=(n_draws, len(positives)), p=neg.ravel() / neg.sum())
    aucs = []
    for d in range(n_draws):
        wins = 0.0
        for pv in positives:
            for nidx in drawn[d]:
                nv = flat[nidx]
                wins += 1.0 if pv > nv else (0.5 if pv == nv else 0.0)
        aucs.append(wins / (len(positives) * len(drawn[d])))
    return float(np.mean(aucs))


def _same(a, b, tol=1e-10):
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol * max(1.0, abs(b))


# ------------------------------------------------------------------------------------------ against references


@SETTINGS
@given(map_and_fixations())
def test_nss_matches_reference(data):
    s, f, _ = data
    assert _same(M.nss(s, f), ref_nss(s, f))


@SETTINGS
@given(map_and_fixations(max_side=6), st.sampled_from([0.5, 1.0, 2.0]))
def test_kl_matches_reference(data, sigma):
    s, f, _ = data
    assert _same(M.kl_divergence(s, f, sigma=sigma), ref_kl(s, f, sigma))


@SETTINGS
@given(map_and_fixations(max_side=5), st.integers(1, 4), st.integers(0, 2**31))
def test_sauc_matches_pairwise_reference(data, n_draws, seed):
    s, f, neg = data
    got = M.shuffled_auc(s, f, neg, n_draws=n_draws, rng=np.random.default_rng(seed))
    assert _same(got, ref_sauc(s, f, neg, n_draws, seed))


@SETTINGS
@given(map_and_fixations(max_side=6), st.integers(0, 2**31))
def test_batch_equals_one_by_one(data, seed):
    s, f, neg = data
    rng = np.random.default_rng(seed)
    b = 4
    S = np.stack([s, s[::-1, ::-1].copy(), np.full_like(s, 1.0), s * 2])
    F = np.stack([f, f, f, np.zeros_like(f)])
    N = np.stack([neg] * b)
    nss_b, kl_b = M.nss(S, F), M.kl_divergence(S, F)
    sauc_b = M.shuffled_auc(S, F, N, n_draws=3, rng=[np.random.default_rng(seed + i) for i in range(b)])
    for i in range(b):
        assert _same(nss_b[i], M.nss(S[i], F[i]))
        assert _same(kl_b[i], M.kl_divergence(S[i], F[i]))
        assert _same(sauc_b[i], M.shuffled_auc(S[i], F[i], N[i], n_draws=3, rng=np.random.default_rng(seed + i)))
    del rng


# ------------------------------------------------------------------------------------------ invariances


@SETTINGS
@given(
    map_and_fixations(),
    st.floats(1e-3, 1e3),
    st.floats(-100, 100),
    st.integers(0, 2**31),
)
def test_affine_and_scale_invariance(data, a, c, seed):
    s, f, neg = data
    s = s + 0.25  # strictly positive, so KL is defined where the blurred fixations reach
    # offset b = a * c: the map's range stays >= 1e-3 of its magnitude, far from the flatness tolerance
    # (1e-5 relative), which is deliberately not affine-invariant: a range of 1e-5 of the values is noise.
    b = a * c
    assert _same(M.nss(a * s + b, f), M.nss(s, f), tol=1e-8)
    assert _same(M.kl_divergence(a * s, f), M.kl_divergence(s, f), tol=1e-9)
    # AUC depends only on the order of values (ties included); the same seed draws the same negatives
    s1 = M.shuffled_auc(s, f, neg, n_draws=4, rng=np.random.default_rng(seed))
    s2 = M.shuffled_auc(a * s + b, f, neg, n_draws=4, rng=np.random.default_rng(seed))
    assert _same(s1, s2, tol=1e-9)


# ------------------------------------------------------------------------------------------ pysaliency, determinism


def test_nss_agrees_with_pysaliency_on_random_data():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pysaliency imports pkg_resources (deprecated)
        import pysaliency.metrics as psm
    rng = np.random.default_rng(11)
    for _ in range(20):
        s = rng.gamma(0.5, size=(210, 160))
        f = np.zeros((210, 160), dtype=np.int64)
        np.add.at(f, (rng.integers(0, 210, 250), rng.integers(0, 160, 250)), 1)
        ys, xs = np.nonzero(f)
        reps = f[ys, xs]
        per_fixation = psm.NSS(s, np.repeat(xs, reps), np.repeat(ys, reps))
        assert M.nss(s, f) == pytest.approx(float(np.mean(per_fixation)), rel=1e-10)


def test_sauc_deterministic_given_seed_and_varies_with_it():
    rng = np.random.default_rng(3)
    s = rng.random((6, 210, 160))
    f = np.zeros((6, 210, 160), dtype=np.int64)
    neg = np.zeros_like(f)
    for i in range(6):
        np.add.at(f[i], (rng.integers(0, 210, 60), rng.integers(0, 160, 60)), 1)
        np.add.at(neg[i], (rng.integers(0, 210, 600), rng.integers(0, 160, 600)), 1)
    a = M.shuffled_auc(s, f, neg, rng=[M.input_rng(1, "t", k) for k in range(6)])
    b = M.shuffled_auc(s, f, neg, rng=[M.input_rng(1, "t", k) for k in range(6)])
    c = M.shuffled_auc(s, f, neg, rng=[M.input_rng(2, "t", k) for k in range(6)])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # the per-input stream makes a map's score independent of which other maps share its batch
    solo = M.shuffled_auc(s[3], f[3], neg[3], rng=M.input_rng(1, "t", 3))
    assert solo == a[3]
