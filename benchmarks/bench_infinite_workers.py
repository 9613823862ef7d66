"""BreakoutInfinite (Python backend) evaluation env: agent steps/s with 1, 2, ... worker processes.

Random actions, 16 envs (the protocol's), interleaved rounds so machine load hits every setting alike.

    python benchmarks/bench_infinite_workers.py --workers 1,2 --steps 100 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np


def measure(workers: int, vector_steps: int, num_envs: int) -> float:
    from fls.envs import make_eval_env

    env = make_eval_env("BreakoutInfinite", num_envs, 1000, num_workers=workers)
    try:
        env.reset()
        acts = np.random.default_rng(0).integers(0, env.num_actions, size=(vector_steps, num_envs))
        env.step(acts[0])  # warm-up
        t0 = time.perf_counter()
        for a in acts[1:]:
            env.step(a)
        return num_envs * (vector_steps - 1) / (time.perf_counter() - t0)
    finally:
        env.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--steps", type=int, default=100, help="vector steps per measurement")
    ap.add_argument("--num-envs", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    workers = [int(w) for w in a.workers.split(",")]
    got: dict[int, list[float]] = {w: [] for w in workers}
    for r in range(a.rounds):
        for w in workers:
            got[w].append(measure(w, a.steps, a.num_envs))
            print(f"round {r + 1}: {w} worker(s): {got[w][-1]:7.1f} agent steps/s", flush=True)
    med = {w: statistics.median(v) for w, v in got.items()}
    base = med[workers[0]]
    for w in workers:
        print(f"BreakoutInfinite, {a.num_envs} envs, {w} worker(s): {med[w]:7.1f} agent steps/s (x{med[w] / base:.2f})")
    print(json.dumps({"num_envs": a.num_envs, "agent_steps_per_s": {str(w): v for w, v in got.items()}}))


if __name__ == "__main__":
    main()
