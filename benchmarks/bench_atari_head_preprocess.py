"""Atari-HEAD preprocessing throughput (raw frames/s) on the synthetic sample dataset.

The real dataset has ~3.4M raw frames for the five games, so this figure says how long
`fls atari-head preprocess` takes on it (the work is per frame: PNG decode of the pooled frames,
gray/max/resize, fixation unions, NPZ compression).

    python benchmarks/bench_atari_head_preprocess.py [--quick] [--frames N] [--repeats R]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fls.atari_head.preprocess import preprocess
from fls.atari_head.sample import make_sample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sample, one repeat (a few seconds)")
    ap.add_argument("--frames", type=int, default=None, help="raw frames per trial (default 400, quick 100)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats (default 3, quick 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1, help="preprocessing processes")
    args = ap.parse_args()
    frames = args.frames or (100 if args.quick else 400)
    repeats = args.repeats or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        make_sample(root / "raw", seed=args.seed, frames_per_trial=frames)
        gen = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in (root / "raw").glob("*.zip"))
        print(f"sample: 5 games x 3 trials x {frames} frames, {size / 2**20:.2f} MiB of zips, generated in {gen:.2f} s")
        best = float("inf")
        for r in range(repeats):
            summary = preprocess(root / "raw", root / f"pre{r}", None, workers=args.workers, progress=False)
            best = min(best, summary.seconds)
            print(f"repeat {r}: {summary.n_raw_frames} raw frames -> {summary.n_inputs} inputs in {summary.seconds:.3f} s "
                  f"({summary.n_raw_frames / summary.seconds:,.0f} raw frames/s)")
        print(f"workers={args.workers} best: {summary.n_raw_frames / best:,.0f} raw frames/s ({summary.n_inputs / best:,.0f} inputs/s)")


if __name__ == "__main__":
    main()
