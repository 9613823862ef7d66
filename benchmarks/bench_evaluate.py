"""Evaluation throughput: agent steps/s of the evaluation loop beside env-only steps/s at the same env count.

The evaluation loop cannot beat the env alone; the target is >= 80 % of it, i.e. inference (batched across
envs, uint8 to the device, inference_mode) must cost little next to emulation. Run on the machine whose
figures you want (the GPU machine for the real 8192-episode runs):

    python benchmarks/bench_evaluate.py            # 16 envs, nature_cnn + sparse_fls + dense_fls_pool
    python benchmarks/bench_evaluate.py --quick    # a few seconds, to check it runs
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch

from fls.device import resolve_device
from fls.evaluation.evaluate import EvalConfig, open_eval_envs, run_episodes
from fls.evaluation.protocol import ActionSampler, EpisodeLedger
from fls.games import base_game
from fls.models import build_model


def env_only(game: str, cfg: EvalConfig, steps: int) -> float:
    """Vector steps with uniformly random actions (no model): the ceiling for the evaluation loop."""
    (env,) = open_eval_envs(game, dataclasses.replace(cfg, env_groups=1))
    rng = np.random.default_rng(0)
    n = base_game(game).num_actions
    try:
        env.reset()
        for _ in range(min(20, steps)):  # warm-up
            env.step(rng.integers(0, n, cfg.num_envs))
        t0 = time.perf_counter()
        for _ in range(steps):
            env.step(rng.integers(0, n, cfg.num_envs))
        return steps * cfg.num_envs / (time.perf_counter() - t0)
    finally:
        env.close()


def with_policy(game: str, arch: str, cfg: EvalConfig, steps: int, device: torch.device) -> float:
    """The real evaluation loop (``run_episodes``) for a fixed number of vector steps."""
    torch.manual_seed(0)
    model = build_model(arch, base_game(game).num_actions).to(device).eval()
    envs = open_eval_envs(game, cfg)
    try:
        sampler = ActionSampler(cfg.seed)
        # Warm-up (cuDNN autotuning, allocator), then a ledger that cannot fill so the step budget decides.
        run_episodes(model, envs, EpisodeLedger(cfg.num_envs, 10**9), sampler, device, max_steps=min(20, steps))
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        agent_steps = run_episodes(model, envs, EpisodeLedger(cfg.num_envs, 10**9), sampler, device, max_steps=steps)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return agent_steps / (time.perf_counter() - t0)
    finally:
        for env in envs:
            env.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--game", default="Breakout")
    ap.add_argument("--num-envs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=1000, help="vector steps per measurement")
    ap.add_argument("--archs", default="nature_cnn,sparse_fls", help="comma list; dense_fls_pool is ~100x slower on CPU")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    ap.add_argument("--env-groups", default="1,2", help="env_groups settings to compare (1 = synchronous)")
    ap.add_argument("--quick", action="store_true", help="100 steps, nature_cnn and sparse_fls only")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.steps = 100
        args.archs = "nature_cnn,sparse_fls"
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cfg = EvalConfig(episodes=args.num_envs, num_envs=args.num_envs, seed=1000, device=str(device))
    base = env_only(args.game, cfg, args.steps)
    rows = [{"what": "env only", "steps_per_s": base, "fraction_of_env_only": 1.0}]
    for arch in [a for a in args.archs.split(",") if a]:
        for groups in [int(g) for g in args.env_groups.split(",") if g]:
            gcfg = dataclasses.replace(cfg, env_groups=groups)
            sps = with_policy(args.game, arch, gcfg, args.steps, device)
            rows.append({"what": f"eval {arch} groups={groups}", "steps_per_s": sps, "fraction_of_env_only": sps / base})
    meta = {"game": args.game, "num_envs": args.num_envs, "steps": args.steps, "device": str(device),
            "torch_threads": torch.get_num_threads()}
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return
    print(" ".join(f"{k}={v}" for k, v in meta.items()))
    for r in rows:
        print(f"{r['what']:<24} {r['steps_per_s']:>10.0f} agent steps/s  {100 * r['fraction_of_env_only']:5.1f} % of env-only")


if __name__ == "__main__":
    main()
