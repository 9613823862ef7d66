"""Throughput of fls.metrics beside a literal re-implementation of the authors' per-map recipe.

The literal version follows the authors' published procedure step by step: NSS with ``np.std`` and
``np.average``; KL with ``cv2.GaussianBlur`` and ``scipy.stats.entropy``; shuffled AUC building the positive
list pixel by pixel in Python, drawing negatives with ``rng.choice(p=...)`` and calling sklearn's
``roc_auc_score`` once per draw. Both sides get the same maps and the same per-input random streams, so
their results must agree to rounding (the script prints the largest difference and fails if it is not tiny).

Usage: ``python benchmarks/bench_metrics.py [--quick] [--maps N] [--fixations P]``
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import cv2
import numpy as np
import scipy.stats
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from fls import metrics as M
from fls.frames import FRAME_SHAPE

H, W = FRAME_SHAPE


def make_data(n_maps: int, n_fix: int, n_other: int, seed: int):
    """Smooth saliency (a 7x7 grid upscaled, like attention maps) and clustered gaze, as in one trial."""
    rng = np.random.default_rng(seed)
    grid = torch.from_numpy(rng.gamma(0.7, size=(n_maps, 1, 7, 7)))
    sal = F.interpolate(grid, size=(H, W), mode="bilinear", align_corners=False)[:, 0].numpy()
    fix = np.zeros((n_maps, H, W), dtype=np.int64)
    for i in range(n_maps):
        centre = rng.uniform((20, 20), (H - 20, W - 20), size=(3, 2))
        pts = centre[rng.integers(0, 3, n_fix)] + rng.normal(0, 6, size=(n_fix, 2))
        r = np.clip(np.rint(pts[:, 0]), 0, H - 1).astype(int)
        c = np.clip(np.rint(pts[:, 1]), 0, W - 1).astype(int)
        np.add.at(fix[i], (r, c), 1)
    has = fix.reshape(n_maps, -1).sum(axis=1) > 0
    rngs = [M.input_rng(seed, "bench", k) for k in range(n_maps)]
    neg = np.zeros_like(fix)
    for k in range(n_maps):
        neg[k] = fix[M.choose_other_inputs(rngs[k], k, has, n_other)].sum(axis=0)
    # the AUC draws continue each input's stream; snapshot it so both implementations consume the same one
    states = [g.bit_generator.state for g in rngs]
    return sal, fix, neg, states


def _rngs_from(states):
    out = []
    for st in states:
        g = np.random.default_rng()
        g.bit_generator.state = st
        out.append(g)
    return out


# ------------------------------------------------------------------------------------------ literal recipe


def literal_nss(s, f):
    std = np.std(s)
    if np.isclose(std, 0):
        return math.nan
    return float(np.average((s - np.mean(s)) / std, weights=f))


def literal_kl(s, f, sigma=5.0):
    fb = cv2.GaussianBlur(f.astype(np.float64), (0, 0), sigmaX=sigma, sigmaY=sigma)
    if np.isclose(s[fb > 0], 0).any():
        return math.nan
    return float(scipy.stats.entropy(fb.ravel(), s.ravel()))


def literal_sauc(s, f, neg, rng, n_draws=100):
    smap, fmap, omap = s.ravel(), f.ravel(), neg.ravel()
    lo, hi = smap.min(), smap.max()
    if np.isclose(lo, hi):
        return math.nan
    smap = (smap - lo) / (hi - lo)
    positives = []
    for value, count in zip(smap, fmap):  # one Python step per pixel, as in the authors' code
        positives.extend([value] * count)
    positives = np.array(positives)
    n = len(positives)
    drawn = rng.choice(np.arange(smap.size), size=(n_draws, n), p=omap / omap.sum())
    labels = np.r_[np.zeros(n, np.uint8), np.ones(n, np.uint8)]
    return float(np.mean([roc_auc_score(labels, np.r_[smap[drawn[d]], positives]) for d in range(n_draws)]))


# ------------------------------------------------------------------------------------------ timing


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few maps (a smoke run)")
    ap.add_argument("--maps", type=int, default=None, help="maps scored by the literal recipe (default 200, quick 16)")
    ap.add_argument("--fast-maps", type=int, default=None, help="maps scored by fls.metrics (default 4x --maps)")
    ap.add_argument("--fixations", type=int, default=300, help="gaze samples per input (Atari-HEAD: ~8 frames x tens)")
    ap.add_argument("--draws", type=int, default=100)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n_lit = args.maps or (16 if args.quick else 200)
    n_fast = max(args.fast_maps or 4 * n_lit, n_lit)

    sal, fix, neg, states = make_data(n_fast, args.fixations, 10, args.seed)
    print(f"maps {H}x{W}; {args.fixations} gaze samples/input; {args.draws} draws; literal on {n_lit}, fls.metrics on {n_fast}")

    def fast_all():
        res = {"nss": [], "kl": [], "sauc": []}
        times = {"nss": 0.0, "kl": 0.0, "sauc": 0.0}
        rngs = _rngs_from(states)
        for b0 in range(0, n_fast, args.batch):
            sl = slice(b0, b0 + args.batch)
            v, t = timed(lambda: M.nss(sal[sl], fix[sl]))
            res["nss"].append(v)
            times["nss"] += t
            v, t = timed(lambda: M.kl_divergence(sal[sl], fix[sl], sigma=5.0))
            res["kl"].append(v)
            times["kl"] += t
            v, t = timed(lambda: M.shuffled_auc(sal[sl], fix[sl], neg[sl], n_draws=args.draws, rng=rngs[sl]))
            res["sauc"].append(v)
            times["sauc"] += t
        return {k: np.concatenate(v) for k, v in res.items()}, times

    fast, fast_t = fast_all()

    lit = {"nss": [], "kl": [], "sauc": []}
    lit_t = {"nss": 0.0, "kl": 0.0, "sauc": 0.0}
    rngs = _rngs_from(states[:n_lit])
    for k in range(n_lit):
        for name, fn in (
            ("nss", lambda: literal_nss(sal[k], fix[k])),
            ("kl", lambda: literal_kl(sal[k], fix[k])),
            ("sauc", lambda: literal_sauc(sal[k], fix[k], neg[k], rngs[k], args.draws)),
        ):
            v, t = timed(fn)
            lit[name].append(v)
            lit_t[name] += t

    ok = True
    print(f"{'metric':<6} {'fls maps/s':>12} {'literal maps/s':>15} {'speed-up':>9} {'max |diff|':>11}")
    tot_fast = tot_lit = 0.0
    for name in ("nss", "kl", "sauc"):
        f_rate = n_fast / fast_t[name]
        l_rate = n_lit / lit_t[name]
        tot_fast += fast_t[name] / n_fast
        tot_lit += lit_t[name] / n_lit
        a = fast[name][:n_lit]
        b = np.array(lit[name])
        same_nan = np.array_equal(np.isnan(a), np.isnan(b))
        diff = float(np.nanmax(np.abs(a - b))) if np.isfinite(a).any() else 0.0
        ok &= same_nan and diff < 1e-9
        flag = "" if same_nan else "  NaN MISMATCH"
        print(f"{name:<6} {f_rate:>12.1f} {l_rate:>15.1f} {f_rate / l_rate:>8.1f}x {diff:>11.2e}{flag}")
    print(f"{'all 3':<6} {1 / tot_fast:>12.1f} {1 / tot_lit:>15.1f} {tot_lit / tot_fast:>8.1f}x")

    # Exact shuffled AUC (closed-form expectation over the negatives) against the 100-draw estimate.
    t_exact = 0.0
    exact = []
    for b0 in range(0, n_fast, args.batch):
        sl = slice(b0, b0 + args.batch)
        v, t = timed(lambda: M.shuffled_auc_exact(sal[sl], fix[sl], neg[sl]))
        exact.append(v)
        t_exact += t
    exact = np.concatenate(exact)
    _, draws = M.shuffled_auc(sal, fix, neg, n_draws=args.draws, rng=_rngs_from(states), return_draws=True)
    z = np.abs(fast["sauc"] - exact) / (draws.std(axis=1, ddof=1) / math.sqrt(args.draws))
    print(
        f"sauc_exact {n_fast / t_exact:>8.1f} maps/s vs {args.draws}-draw sauc {n_fast / fast_t['sauc']:.1f} maps/s "
        f"({fast_t['sauc'] / t_exact:.1f}x); |estimate - exact|: max {np.nanmax(np.abs(fast['sauc'] - exact)):.2e}, "
        f"within 1 SE for {np.nanmean(z <= 1):.0%} of maps, max {np.nanmax(z):.2f} SE"
    )
    if not ok:
        print("RESULTS DIFFER", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
