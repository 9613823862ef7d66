"""Env-only throughput of the training vector env (random actions), and what its Python layer costs.

For 8 and 16 envs it prints agent steps/s and emulator frames/s of:
  raw   - the C++ backend alone (one single-env AtariVectorEnv per env, stepped together);
  fls   - fls.envs.AtariVecEnv on top of it (Baselines' episodic life, hidden skips, zeroed stacks, stats);
and the hidden skips per agent step (emulation the agent never sees, not counted in the steps/s).
With ``--python-workers W`` it also times BreakoutInfinite's Python evaluation backend (8 envs, in
process and over W worker processes).

    python benchmarks/bench_env.py [--quick] [--game Breakout] [--seconds 5] [--python-workers 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fls.envs import make_eval_env, make_vector_env
from fls.frames import FRAME_SKIP


def _measure(step, num_envs: int, num_actions: int, seconds: float, rng: np.random.Generator) -> tuple[int, float]:
    actions = rng.integers(0, num_actions, (1024, num_envs))
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        step(actions[steps % 1024])
        steps += 1
    return steps, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", default="Breakout")
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time per configuration")
    parser.add_argument("--quick", action="store_true", help="1 s per configuration")
    parser.add_argument("--num-threads", type=int, default=0, help="C++ worker threads (0: one per env, capped at cores)")
    parser.add_argument("--python-workers", type=int, default=0, help="also time BreakoutInfinite's Python backend")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else args.seconds
    rng = np.random.default_rng(0)
    print(f"game={args.game} seconds/config={seconds}")
    print(f"{'envs':>4} {'layer':>5} {'agent steps/s':>14} {'frames/s':>10} {'hidden per step':>18}")
    for n in (8, 16):
        env = make_vector_env(args.game, n, 1, num_threads=args.num_threads)
        env.reset()
        ids = np.arange(n)
        steps, dt = _measure(lambda a, b=env._backend: b.step(ids, a), n, env.num_actions, seconds, rng)
        rate = steps * n / dt
        print(f"{n:>4} {'raw':>5} {rate:>14.0f} {rate * FRAME_SKIP:>10.0f} {'-':>18}")
        env.reset()
        hidden0 = env.hidden_steps
        steps, dt = _measure(env.step, n, env.num_actions, seconds, rng)
        rate = steps * n / dt
        share = (env.hidden_steps - hidden0) / (steps * n)
        print(f"{n:>4} {'fls':>5} {rate:>14.0f} {rate * FRAME_SKIP:>10.0f} {share:>18.4f}")
        env.close()
    if args.python_workers > 0:
        for workers in (0, args.python_workers):
            env = make_eval_env("BreakoutInfinite", 8, 1000, 30_000, num_workers=workers)
            env.reset()
            steps, dt = _measure(env.step, 8, env.num_actions, seconds, rng)
            rate = steps * 8 / dt
            print(f"BreakoutInfinite python backend, 8 envs, {workers} workers: {rate:.0f} agent steps/s, {rate * FRAME_SKIP:.0f} frames/s")
            env.close()


if __name__ == "__main__":
    main()
