"""Multi-run training throughput against single runs, measured interleaved in one invocation.

Prints agent steps/s per run for (a) one run alone (``fls.ppo.trainer.train``) and (b) R runs in one
process (``fls.ppo.multirun.train_many``, seeds 1, 9, 17, ...), alternating a, b, a, b, ... so that load
from other processes on a shared machine hits both alike. Per-run figure = steps of one run / wall time
of the whole call (setup included, for both). Also checks that every multi-run member's weights equal the
single run's of the same seed (the bit-identity the module promises on CPU), as a by-product.

    python benchmarks/bench_multirun.py                   # R = 3, 4 updates per run, 2 rounds
    python benchmarks/bench_multirun.py --runs 2 --updates 2 --rounds 1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch


def _cfg(arch: str, seed: int, updates: int, threads: int):
    from fls.config import build_config
    from fls.ppo.config import TrainConfig

    return build_config(TrainConfig, {"arch": arch, "game": "Breakout", "seed": seed, "total_steps": 1024 * updates,
                                      "progress": False, "torch_threads": threads, "checkpoint_every": 10_000})


def single(arch: str, seeds: list[int], updates: int, threads: int, root: Path) -> float:
    """Agent steps/s of one run alone (the first seed; the others' single runs are only for the identity check)."""
    from fls.ppo.trainer import train

    cfg = _cfg(arch, seeds[0], updates, threads)
    t0 = time.perf_counter()
    train(cfg, root / f"single-{seeds[0]}")
    return cfg.planned_steps / (time.perf_counter() - t0)


def multi(arch: str, seeds: list[int], updates: int, threads: int, root: Path) -> float:
    from fls.ppo.multirun import train_many

    cfgs = [_cfg(arch, s, updates, threads) for s in seeds]
    t0 = time.perf_counter()
    outcomes = train_many(cfgs, [root / f"multi-{s}" for s in seeds])
    wall = time.perf_counter() - t0
    bad = [str(o.error) for o in outcomes if not o.ok]
    if bad:
        raise SystemExit(f"multi-run failed: {bad}")
    return cfgs[0].planned_steps / wall


def identical(root: Path, seeds: list[int], arch: str, updates: int, threads: int) -> bool:
    from fls.checkpoint import load_checkpoint
    from fls.ppo.trainer import train

    same = True
    for s in seeds:
        alone = root / f"single-{s}"
        if not (alone / "model.pt").exists():
            train(_cfg(arch, s, updates, threads), alone)
        a = load_checkpoint(alone / "model.pt").model
        b = load_checkpoint(root / f"multi-{s}" / "model.pt").model
        same &= all(torch.equal(a[k], b[k]) for k in a)
    return same


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="nature_cnn")
    ap.add_argument("--runs", type=int, default=3, help="R, runs in the multi-run process")
    ap.add_argument("--updates", type=int, default=4, help="updates (x 1024 agent steps) per run")
    ap.add_argument("--rounds", type=int, default=2, help="single/multi pairs, interleaved")
    ap.add_argument("--torch-threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    a = ap.parse_args()
    seeds = [1 + 8 * i for i in range(a.runs)]
    s_sps, m_sps = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            root = Path(tmp) / f"round{r}"
            s_sps.append(single(a.arch, seeds, a.updates, a.torch_threads, root))
            m_sps.append(multi(a.arch, seeds, a.updates, a.torch_threads, root))
            print(f"round {r + 1}: single {s_sps[-1]:7.1f} steps/s | multi R={a.runs}: {m_sps[-1]:7.1f} steps/s per run "
                  f"({a.runs * m_sps[-1]:7.1f} in total)", flush=True)
        same = identical(Path(tmp) / "round0", seeds, a.arch, a.updates, a.torch_threads)
    res = {
        "arch": a.arch, "runs": a.runs, "updates_per_run": a.updates, "torch_threads": a.torch_threads,
        "single_sps": s_sps, "multi_sps_per_run": m_sps,
        "single_sps_median": statistics.median(s_sps), "multi_sps_per_run_median": statistics.median(m_sps),
        "ratio_per_run": statistics.median(m_sps) / statistics.median(s_sps),
        "bit_identical": same,
    }
    print(f"{a.arch}, Breakout, 8 envs x 128 steps, torch_threads {a.torch_threads}, {a.updates} updates per run")
    print(f"  single run:        {res['single_sps_median']:7.1f} agent steps/s (median of {a.rounds})")
    print(f"  multi-run R={a.runs}:    {res['multi_sps_per_run_median']:7.1f} agent steps/s per run "
          f"-> x{res['ratio_per_run']:.2f} per run, x{a.runs * res['ratio_per_run']:.2f} per process")
    print(f"  multi-run members bit-identical to single runs: {same}")
    if a.json is not None:
        a.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
