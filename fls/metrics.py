"""NSS, KL divergence and shuffled AUC of saliency maps against human fixation counts (docs/saliency_metrics.md, "Definitions").

One module so that every caller (scoring, reports, benchmarks, tests) uses the same definitions. Every
metric takes a single map ``(H, W)`` or a batch ``(B, H, W)`` of saliency maps and integer fixation-count
maps of the same shape, and returns a float (or a ``(B,)`` float64 array). A metric that is undefined for an
input returns NaN: callers drop NaN and count it, they never treat it as zero.

Undefined for every metric: an input without any fixation (all counts 0), or a saliency map with a
non-finite value. Besides:

- NSS is undefined for a flat (constant) map, whose standard deviation is 0.
- KL is undefined for a map with a negative value or with no positive value, and wherever the blurred
  fixation map is positive but the saliency is 0 (relative to the map's maximum, see ``KL_ZERO_RTOL``):
  the divergence is infinite there, so no epsilon is added to paper over it.
- Shuffled AUC (and its closed-form expectation ``shuffled_auc_exact``) is undefined for a flat map (min-max normalisation divides by 0) and when the negative map
  (the summed fixations of the other inputs) is empty.

"Flat" means ``max - min <= FLAT_ATOL + FLAT_RTOL * max(|min|, |max|)``, which is ``np.isclose(min, max)``
made symmetric: the authors' test for shuffled AUC, applied to NSS too so that both are defined on the same
maps (the authors tested ``np.isclose(std, 0)`` for NSS, which differs only for maps whose whole range is
below 1e-5 of their magnitude). All arithmetic is float64. See docs/saliency_metrics.md for the protocol.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Sequence

import numpy as np

FLAT_ATOL = 1e-8
FLAT_RTOL = 1e-5
KL_ZERO_RTOL = 1e-8  # fls protocol: saliency <= KL_ZERO_RTOL * max(saliency) counts as 0
KL_ZERO_ATOL = 1e-8  # authors' protocol: np.isclose(s, 0), i.e. |s| <= 1e-8 on maps divided by the trial max
KL_ZERO_TESTS = ("relative", "absolute")
KL_TRUNCATE = 4.0  # Gaussian kernel radius in sigmas: OpenCV's automatic size for float images (41 taps at sigma 5)


class MetricInputError(ValueError):
    """Saliency/fixation arrays that cannot be scored (wrong shapes, negative counts)."""


# ----------------------------------------------------------------------------------------------- inputs


def _as_batch(saliency: np.ndarray, fixations: np.ndarray, what: str = "fixations") -> tuple[np.ndarray, np.ndarray, bool]:
    s = np.asarray(saliency, dtype=np.float64)
    f = np.asarray(fixations)
    single = s.ndim == 2
    if single:
        s = s[None]
        f = f[None] if f.ndim == 2 else f
    if s.ndim != 3:
        raise MetricInputError(f"saliency must have shape (H, W) or (B, H, W), got {np.shape(saliency)}")
    if f.shape != s.shape:
        raise MetricInputError(f"{what} shape {np.shape(fixations)} does not match saliency shape {np.shape(saliency)}")
    if f.size and not np.issubdtype(f.dtype, np.number):
        raise MetricInputError(f"{what} must be numeric counts, got dtype {f.dtype}")
    if f.size and f.min() < 0:
        raise MetricInputError(f"{what} must be non-negative counts, got a minimum of {f.min()}")
    return s, f, single


def _result(values: np.ndarray, single: bool) -> float | np.ndarray:
    return float(values[0]) if single else values


def _common_undefined(s: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """((B,) True where no metric is defined: no fixation or a non-finite value; per-map min; per-map max).

    ``min``/``max`` propagate NaN and reach +-inf, so they double as the finiteness test.
    """
    flat_s = s.reshape(len(s), -1)
    smin = flat_s.min(axis=1)
    smax = flat_s.max(axis=1)
    bad = (f.reshape(len(f), -1).sum(axis=1) <= 0) | ~(np.isfinite(smin) & np.isfinite(smax))
    return bad, smin, smax


def _flat(smin: np.ndarray, smax: np.ndarray) -> np.ndarray:
    scale = np.maximum(np.abs(smin), np.abs(smax))
    return (smax - smin) <= FLAT_ATOL + FLAT_RTOL * scale


# ---------------------------------------------------------------------------------------------------- NSS


def nss(saliency: np.ndarray, fixations: np.ndarray) -> float | np.ndarray:
    """Normalized scanpath saliency: the fixation-count-weighted mean of the standardised map.

    The map is standardised with its population std (ddof 0, like ``np.std``). Undefined (NaN) for a flat
    map, no fixation, or a non-finite map. Unchanged by ``a * s + b`` with ``a > 0``. Computed as
    ``(sum(f * s) / sum(f) - mean(s)) / std(s)``, which is the same number without a standardised copy.
    """
    s, f, single = _as_batch(saliency, fixations)
    b = len(s)
    s2 = s.reshape(b, -1)
    undefined, smin, smax = _common_undefined(s, f)
    idx = np.flatnonzero(f)  # fixated pixels of the whole batch (sparse), row-major: grouped by map
    rows = idx // s2.shape[1]
    w = f.reshape(-1)[idx].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        n_fix = np.bincount(rows, weights=w, minlength=b)
        weighted = np.bincount(rows, weights=w * s2.reshape(-1)[idx], minlength=b) / n_fix
        mean = s2.mean(axis=1)
        dev = s2 - mean[:, None]
        std = np.sqrt(np.einsum("ij,ij->i", dev, dev) / s2.shape[1])
        out = (weighted - mean) / std
    undefined |= _flat(smin, smax)
    out[undefined] = np.nan
    return _result(out, single)


# ----------------------------------------------------------------------------------------------------- KL


@functools.lru_cache(maxsize=16)
def gaussian_blur_matrix(n: int, sigma: float, truncate: float = KL_TRUNCATE) -> np.ndarray:
    """(n, n) matrix M with ``M @ x`` = 1-D Gaussian blur of x, exactly as OpenCV's ``GaussianBlur`` does it.

    Kernel: ``exp(-d^2 / (2 sigma^2))`` for ``|d| <= round(truncate * sigma)``, normalised to sum 1 (OpenCV picks
    ``ksize = round(8 sigma + 1) | 1`` for float images, i.e. radius 4 sigma: 41 taps at sigma 5). Boundary:
    reflect-101 (``dcb|abcd|cba``; OpenCV's default, scipy's ``mode='mirror'``), folded into the matrix. A 2-D
    blur is then ``My @ F @ Mx.T``, one batched matrix product for many maps. Read-only (cached).
    """
    if n < 2:
        raise MetricInputError(f"blur needs at least 2 pixels per axis, got {n}")
    radius = int(np.floor(truncate * sigma + 0.5))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-(offsets.astype(np.float64) ** 2) / (2.0 * sigma * sigma))
    kernel /= kernel.sum()
    m = np.zeros((n, n))
    rows = np.arange(n)
    period = 2 * (n - 1)
    for off, w in zip(offsets, kernel):
        j = np.mod(rows + off, period)
        j = np.where(j >= n, period - j, j)  # reflect-101 (valid for any offset, by periodicity)
        np.add.at(m, (rows, j), w)
    m.setflags(write=False)
    return m


def blur_fixations(fixations: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-blurred fixation counts, ``(H, W)`` or ``(B, H, W)`` float64 (see ``gaussian_blur_matrix``)."""
    f = np.asarray(fixations, dtype=np.float64)
    h, w = f.shape[-2:]
    my = gaussian_blur_matrix(h, float(sigma))
    mx = gaussian_blur_matrix(w, float(sigma))
    return np.matmul(np.matmul(my, f), mx.T)


def kl_divergence(
    saliency: np.ndarray, fixations: np.ndarray, sigma: float = 5.0, *, zero_test: str = "relative"
) -> float | np.ndarray:
    """KL(blurred fixations || saliency), both normalised to sum 1, natural log (nats).

    ``sigma`` is the blur in pixels of the maps given (5 at 210x160, 2 at 84x84). Terms with zero blurred
    fixation contribute 0. No epsilon: undefined (NaN) where the blurred fixations are positive but the
    saliency is 0, for a map with a negative value or none positive, for no fixation or a non-finite map.
    "0" is ``zero_test``: "relative" (fls: ``<= KL_ZERO_RTOL * max`` of the map, so the value is unchanged by
    ``a * s`` with ``a > 0``) or "absolute" (the authors: ``<= KL_ZERO_ATOL``, which depends on the scale of
    the map, hence their division by the trial maximum before scoring).

    The blur is exact but visits only what it must: the rows and columns holding fixations go through the
    separable blur matrices, and the sum runs over the block of pixels the kernel can reach.
    """
    if zero_test not in KL_ZERO_TESTS:
        raise MetricInputError(f"kl zero_test must be one of {list(KL_ZERO_TESTS)}, got {zero_test!r}")
    s, f, single = _as_batch(saliency, fixations)
    b = len(s)
    s2 = s.reshape(b, -1)
    undefined, smin, smax = _common_undefined(s, f)
    with np.errstate(invalid="ignore", over="ignore"):
        ssum = s2.sum(axis=1)
        undefined |= ~(smin >= 0) | ~(smax > 0)
    out = np.full(b, np.nan)
    h, w = s.shape[1:]
    my = gaussian_blur_matrix(h, float(sigma))
    mx = gaussian_blur_matrix(w, float(sigma))
    for i in np.flatnonzero(~undefined):
        fi = f[i]
        r_in = np.flatnonzero(fi.any(axis=1))
        c_in = np.flatnonzero(fi.any(axis=0))
        my_r = my[:, r_in]
        mx_c = mx[:, c_in]
        r_out = np.flatnonzero(my_r.any(axis=1))  # rows within the kernel radius of a fixation
        c_out = np.flatnonzero(mx_c.any(axis=1))
        fb = my_r[r_out] @ fi[np.ix_(r_in, c_in)].astype(np.float64) @ mx_c[c_out].T
        support = fb > 0
        fv = fb[support]
        sv = s[i][np.ix_(r_out, c_out)][support]
        zero = KL_ZERO_RTOL * smax[i] if zero_test == "relative" else KL_ZERO_ATOL
        if (sv <= zero).any():
            continue  # infinite divergence: undefined
        fsum = fv.sum()
        p = fv / fsum
        out[i] = float(np.dot(p, np.log(p) - np.log(sv / ssum[i])))
    return _result(out, single)


# ------------------------------------------------------------------------------------------- shuffled AUC


def trial_key(trial_id: object) -> int:
    """Stable 32-bit key of a trial id for seeding (``hash()`` is salted per process, CRC32 is not)."""
    return zlib.crc32(str(trial_id).encode("utf-8"))


def input_rng(seed: int, trial: object, k: int) -> np.random.Generator:
    """The random stream of input ``k`` of a trial: independent of batching, trial order and subsetting."""
    return np.random.default_rng([int(seed), trial_key(trial), int(k)])


OTHER_POOLS = ("fixated", "all")


def choose_other_inputs(
    rng: np.random.Generator, k: int, has_fixation: np.ndarray, n_other: int = 10, *, among: str = "fixated"
) -> np.ndarray:
    """Indices of ``n_other`` other inputs of the trial, drawn uniformly with replacement, once per input.

    As the authors' code does it (once per input, uniform, with replacement, never ``k`` itself), among
    ``among``: "all" other inputs (the authors: with or without fixations, so the negative map can come out
    empty, which their code would fail an assertion on and fls scores as undefined) or only the "fixated"
    ones (fls), so it is never empty by bad luck. Returns an empty array if there is no candidate.
    """
    if among not in OTHER_POOLS:
        raise MetricInputError(f"other-input pool must be one of {list(OTHER_POOLS)}, got {among!r}")
    has = np.asarray(has_fixation, dtype=bool)
    candidates = np.flatnonzero(has) if among == "fixated" else np.arange(len(has))
    candidates = candidates[candidates != k]
    if len(candidates) == 0 or n_other <= 0:
        return np.zeros(0, dtype=np.int64)
    return candidates[rng.integers(0, len(candidates), size=n_other)]


def _rngs(rng: np.random.Generator | Sequence[np.random.Generator] | int | None, b: int) -> list[np.random.Generator]:
    if isinstance(rng, np.random.Generator):
        return [rng] * b  # consumed map after map
    if rng is None or isinstance(rng, (int, np.integer)):
        return [np.random.default_rng(rng)] * b
    rngs = list(rng)
    if len(rngs) != b:
        raise MetricInputError(f"need one random generator per map: got {len(rngs)} for {b} maps")
    return rngs


def auc_per_draw(values: np.ndarray, pos_idx: np.ndarray, pos_counts: np.ndarray, neg_idx: np.ndarray) -> np.ndarray:
    """AUC of positives vs negatives for every row of ``neg_idx`` at once (Mann-Whitney U, ties count 1/2).

    ``values``: flat saliency; positives are ``values[pos_idx]`` each counted ``pos_counts`` times; ``neg_idx``
    ``(D, N)`` holds the pixels of D draws of N negatives. Each distinct negative pixel is ranked once among
    the sorted positives (its U contribution = positives above it + half the tied ones, i.e. midranks), then
    every draw sums its negatives' contributions: O((P + N D) log P), no pairwise comparisons.
    """
    support, inverse = np.unique(neg_idx, return_inverse=True)
    return _auc_from_support(values, pos_idx, pos_counts, support, inverse.reshape(neg_idx.shape))


def _auc_from_support(
    values: np.ndarray, pos_idx: np.ndarray, pos_counts: np.ndarray, support: np.ndarray, drawn: np.ndarray
) -> np.ndarray:
    """Per-draw AUCs when draw d picked the pixels ``support[drawn[d]]``."""
    pos_vals = values[pos_idx]
    order = np.argsort(pos_vals, kind="stable")
    sorted_vals = pos_vals[order]
    cum = np.concatenate([[0.0], np.cumsum(pos_counts[order], dtype=np.float64)])
    n_pos = cum[-1]
    nv = values[support]
    below = cum[np.searchsorted(sorted_vals, nv, side="left")]
    at_or_below = cum[np.searchsorted(sorted_vals, nv, side="right")]
    u_contrib = (n_pos - at_or_below) + 0.5 * (at_or_below - below)
    return u_contrib[drawn].mean(axis=1) / n_pos


def _draw_support(
    rng: np.random.Generator, negative_map_flat: np.ndarray, shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(negative_map_flat)
    nz = np.flatnonzero(m)
    p = m[nz] / m.sum()
    cdf = np.cumsum(p)
    cdf /= cdf[-1]
    return nz, _inverse_cdf(cdf, rng.random(shape))


def _inverse_cdf(cdf: np.ndarray, u: np.ndarray, max_steps: int = 8) -> np.ndarray:
    """``np.searchsorted(cdf, u, side="right")``, exactly, but ~4x faster for many unsorted ``u``.

    A guide table (Chen & Asau) gives, for the bucket ``floor(u * G)`` of each ``u``, the first index whose cdf
    exceeds the bucket's lower edge, a lower bound of the answer; a few vectorised steps walk up to the
    answer, and the rare ``u`` still unresolved after ``max_steps`` fall back to binary search.
    """
    g = 2 * len(cdf)
    guide = np.searchsorted(cdf, np.arange(g) / g, side="right")
    idx = guide[np.minimum((u * g).astype(np.int64), g - 1)]
    for _ in range(max_steps):
        step = cdf[idx] <= u
        if not step.any():
            return idx
        idx += step
    rest = cdf[idx] <= u
    if rest.any():
        idx[rest] = np.searchsorted(cdf, u[rest], side="right")
    return idx


def draw_negatives(rng: np.random.Generator, negative_map_flat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Pixels drawn with replacement, proportional to the counts of ``negative_map_flat``.

    Inverse-CDF sampling over the non-zero pixels only; draws the same pixels as
    ``rng.choice(len(m), size=shape, p=m / m.sum())`` (same uniforms, same cumulative sums: zero-probability
    pixels add exact zeros), without building a full-size CDF.
    """
    nz, drawn = _draw_support(rng, negative_map_flat, shape)
    return nz[drawn]


def shuffled_auc(
    saliency: np.ndarray,
    fixations: np.ndarray,
    negative_maps: np.ndarray,
    *,
    n_draws: int = 100,
    rng: np.random.Generator | Sequence[np.random.Generator] | int | None = 0,
    return_draws: bool = False,
) -> float | np.ndarray | tuple[float | np.ndarray, np.ndarray]:
    """Shuffled AUC (Borji et al.): fixated pixels vs pixels fixated on other inputs of the same trial.

    The map is min-max normalised. Positives: the normalised saliency at every fixation, a pixel counted as
    often as it was fixated (``P = fixations.sum()`` values). Negatives: ``P`` pixels drawn with replacement
    in proportion to ``negative_maps`` (the summed fixation counts of the other inputs, see
    ``choose_other_inputs``). The AUC (ties count 1/2) is averaged over ``n_draws`` such draws.

    ``rng``: one generator per map (scoring passes ``input_rng``), or one generator / int seed consumed map
    after map. Undefined (NaN, no random numbers consumed) for a flat map, an empty negative map, no
    fixation, or a non-finite map. ``return_draws`` also returns the ``(B, n_draws)`` per-draw AUCs.
    """
    s, f, neg, single = _sauc_inputs(saliency, fixations, negative_maps)
    if n_draws < 1:
        raise MetricInputError(f"n_draws must be >= 1, got {n_draws}")
    b = len(s)
    rngs = _rngs(rng, b)
    out = np.full(b, np.nan)
    draws = np.full((b, n_draws), np.nan)
    f2 = f.reshape(b, -1)
    n2 = neg.reshape(b, -1)
    for i, values in _sauc_defined(s, f, n2):
        pos_idx = np.flatnonzero(f2[i])
        pos_counts = f2[i][pos_idx]
        n_pos = int(round(pos_counts.sum()))
        support, drawn = _draw_support(rngs[i], n2[i], (n_draws, n_pos))
        d = _auc_from_support(values, pos_idx, pos_counts, support, drawn)
        draws[i] = d
        out[i] = d.mean()
    res = _result(out, single)
    if return_draws:
        return res, (draws[0] if single else draws)
    return res


def shuffled_auc_exact(saliency: np.ndarray, fixations: np.ndarray, negative_maps: np.ndarray) -> float | np.ndarray:
    """The expectation of ``shuffled_auc`` over its random negatives, in closed form (no Monte Carlo noise).

    Each draw's AUC is the mean, over its negatives, of (positives above + half the tied positives) / P; a
    negative is pixel j with probability ``q_j = neg_j / sum(neg)``. So the expected AUC is
    ``sum_i f_i (Q(< v_i) + Q(= v_i) / 2) / P`` over the positives i, with ``Q`` the negative mass below / at a
    value: sort the negatives' values once and read ``Q`` off a cumulative sum. The same ``negative_maps`` (the
    other inputs chosen for each input) and the same undefined cases as ``shuffled_auc``; it consumes no random
    numbers, and ``shuffled_auc`` with ``n_draws`` draws scatters around it with standard deviation
    ``O(1 / sqrt(n_draws * P))``.
    """
    s, f, neg, single = _sauc_inputs(saliency, fixations, negative_maps)
    b = len(s)
    out = np.full(b, np.nan)
    f2 = f.reshape(b, -1)
    n2 = neg.reshape(b, -1)
    for i, values in _sauc_defined(s, f, n2):
        nz = np.flatnonzero(n2[i])
        order = np.argsort(values[nz], kind="stable")
        neg_vals = values[nz][order]
        cum = np.concatenate([[0.0], np.cumsum(n2[i][nz][order], dtype=np.float64)])
        cum /= cum[-1]
        pos_idx = np.flatnonzero(f2[i])
        pos_counts = f2[i][pos_idx].astype(np.float64)
        pv = values[pos_idx]
        below = cum[np.searchsorted(neg_vals, pv, side="left")]
        at_or_below = cum[np.searchsorted(neg_vals, pv, side="right")]
        out[i] = float(np.dot(pos_counts, below + 0.5 * (at_or_below - below)) / pos_counts.sum())
    return _result(out, single)


def summarise(values: np.ndarray) -> dict[str, float | int | None]:
    """Mean/std over the defined (finite) values, and how many were defined or undefined (NaN)."""
    v = np.asarray(values, dtype=np.float64)
    defined = v[np.isfinite(v)]
    n = int(defined.size)
    return {
        "mean": float(defined.mean()) if n else None,
        "std": float(defined.std()) if n else None,
        "n_defined": n,
        "n_undefined": int(v.size - n),
    }


def _sauc_inputs(saliency, fixations, negative_maps) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Batched saliency, fixations and negative maps of the two shuffled-AUC functions, checked alike."""
    s, f, single = _as_batch(saliency, fixations)
    neg = np.asarray(negative_maps)
    if neg.ndim == 2 and single:
        neg = neg[None]
    if neg.shape != s.shape:
        raise MetricInputError(
            f"negative_maps shape {np.shape(negative_maps)} does not match saliency shape {np.shape(saliency)}"
        )
    if neg.size and neg.min() < 0:
        raise MetricInputError(f"negative_maps must be non-negative counts, got a minimum of {neg.min()}")
    return s, f, neg, single


def _sauc_defined(s: np.ndarray, f: np.ndarray, n2: np.ndarray):
    """(index, min-max normalised flat map) of every input on which shuffled AUC is defined, in order."""
    bad, smins, smaxs = _common_undefined(s, f)
    s2 = s.reshape(len(s), -1)
    for i in range(len(s)):
        if bad[i] or n2[i].sum() <= 0:
            continue
        smin, smax = smins[i], smaxs[i]
        if _flat(np.asarray(smin), np.asarray(smax)):
            continue
        yield i, (s2[i] - smin) / (smax - smin)
