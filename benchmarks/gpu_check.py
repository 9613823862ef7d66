"""One-shot throughput check of a (GPU) node for pricing the paper grid; prints a table and writes JSON.

Figures (agent steps/s unless said otherwise):
  env only            AtariVecEnv with random actions at 8 / 64 / 256 envs (--quick: 8 / 16)
  train single        fls.ppo.trainer.train, 8 envs, for nature_cnn, sparse_fls, dense_fls_pool
                      (--quick: nature_cnn and sparse_fls only, with 16-step rollouts)
  train multi         fls.ppo.multirun.train_many with R = 5 and R = 10, nature_cnn and sparse_fls, per run
                      (--quick: R = 2, nature_cnn; one 8-step rollout per run: figures are only a smoke test)
  evaluate            fls.evaluation.multi.evaluate_many, 16 envs per model, several models at once
  score               attention saliency maps (inputs/s, batches of 64)
  GPU memory          peak CUDA memory of one single run (MiB; null on CPU)

The JSON (schema "fls-gpu-check/1", fls/grid/cost.py) is what `fls grid cost --bench` reads:

    python benchmarks/gpu_check.py --out gpu_check.json            # a CUDA node: about 8 minutes
    python benchmarks/gpu_check.py --quick --out gpu_check.json    # any CPU: reduced sizes, < 1 minute
    fls grid cost --params profiles/paper.yaml --bench gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

SCHEMA = "fls-gpu-check/1"


def _cfg(arch: str, seed: int, updates: int, num_steps: int, device: str) -> Any:
    from fls.config import build_config
    from fls.ppo.config import TrainConfig

    return build_config(TrainConfig, {"arch": arch, "game": "Breakout", "seed": seed, "num_envs": 8,
                                      "num_steps": num_steps, "total_steps": 8 * num_steps * updates,
                                      "progress": False, "checkpoint_every": 10_000, "device": device})


def env_only(num_envs: int, vector_steps: int) -> float:
    from fls.envs.vector import make_vector_env

    env = make_vector_env("Breakout", num_envs, 1)
    env.reset()
    acts = np.random.default_rng(0).integers(0, env.num_actions, size=(vector_steps, num_envs))
    t0 = time.perf_counter()
    for a in acts:
        env.step(a)
    dt = time.perf_counter() - t0
    env.close()
    return num_envs * vector_steps / dt


def train_single(arch: str, updates: int, num_steps: int, device: str) -> tuple[float, float | None]:
    from fls.ppo.trainer import train

    cuda = torch.device(device).type == "cuda" if device != "auto" else torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    cfg = _cfg(arch, 1, updates, num_steps, device)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        train(cfg, Path(tmp))
        sps = cfg.planned_steps / (time.perf_counter() - t0)
    mem = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    return sps, mem


def train_multi(arch: str, runs: int, updates: int, num_steps: int, device: str) -> float:
    from fls.ppo.multirun import train_many

    cfgs = [_cfg(arch, 1 + 8 * i, updates, num_steps, device) for i in range(runs)]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        outcomes = train_many(cfgs, [Path(tmp) / str(c.seed) for c in cfgs])
        wall = time.perf_counter() - t0
    failed = [str(o.error) for o in outcomes if not o.ok]
    if failed:
        raise RuntimeError(f"multi-run failed: {failed[0]}")
    return cfgs[0].planned_steps / wall


def evaluation(models: int, episodes: int, max_episode_steps: int, device: str) -> float:
    from fls.evaluation.config import EvalConfig
    from fls.evaluation.multi import evaluate_many
    from fls.models import build_model

    cfg = EvalConfig(episodes=episodes, num_envs=16, seed=1000, max_episode_steps=max_episode_steps, device=device)
    nets = []
    for i in range(models):
        torch.manual_seed(i)
        nets.append(build_model("sparse_fls", 4).eval())
    t0 = time.perf_counter()
    results = evaluate_many(nets, "Breakout", cfg)
    wall = time.perf_counter() - t0
    return sum(r.timing.agent_steps for r in results) / wall


def score_inputs(batches: int, device: str) -> float:
    from fls.device import resolve_device
    from fls.models import build_model
    from fls.scoring.score import SaliencySource, ScoreConfig

    dev = resolve_device(device)
    torch.manual_seed(0)
    src = SaliencySource("attention", build_model("sparse_fls", 4).to(dev), ScoreConfig(), dev)
    obs = np.random.default_rng(0).integers(0, 256, size=(64, 4, 84, 84), dtype=np.uint8)
    src(obs)  # warm-up
    t0 = time.perf_counter()
    for _ in range(batches):
        src(obs)
    return batches * 64 / (time.perf_counter() - t0)


def run(quick: bool, device: str, train_archs: tuple[str, ...] | None = None) -> dict[str, Any]:
    from fls.device import resolve_device

    dev = resolve_device(device)
    t_start = time.perf_counter()
    sizes = (8, 16) if quick else (8, 64, 256)
    archs = train_archs or (("nature_cnn", "sparse_fls") if quick else ("nature_cnn", "sparse_fls", "dense_fls_pool"))
    runs_list = (2,) if quick else (5, 10)
    updates, num_steps = (1, 8) if quick else (4, 128)
    res: dict[str, Any] = {
        "schema": SCHEMA, "quick": quick, "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__,
        "settings": {"train_updates": updates, "train_num_steps": num_steps, "train_num_envs": 8},
        "env": {str(n): env_only(n, 16 if quick else 500) for n in sizes},
        "train": {"single": {}, "multi": {}},
        "gpu_memory_mib_per_run": {},
    }
    for arch in archs:
        sps, mem = train_single(arch, updates, num_steps, str(dev))
        res["train"]["single"][arch] = sps
        res["gpu_memory_mib_per_run"][arch] = mem
    for r in runs_list:
        res["train"]["multi"][str(r)] = {a: train_multi(a, r, updates, num_steps, str(dev)) for a in archs[:1 if quick else 2]}
    n_models = 2 if quick else 5
    res["evaluate"] = {"models": n_models, "num_envs_per_model": 16,
                       "agent_steps_per_s": evaluation(n_models, 16, 15 if quick else 1000, str(dev))}
    res["score"] = {"inputs_per_s": score_inputs(1 if quick else 20, str(dev)), "method": "attention", "arch": "sparse_fls"}
    res["wall_s"] = time.perf_counter() - t_start
    return res


def table(res: dict[str, Any]) -> str:
    rows = [("figure", "value")]
    rows += [(f"env only, {n} envs (steps/s)", f"{v:,.0f}") for n, v in res["env"].items()]
    rows += [(f"train single {a} (steps/s)", f"{v:,.0f}") for a, v in res["train"]["single"].items()]
    for r, per in res["train"]["multi"].items():
        rows += [(f"train multi R={r} {a} (steps/s per run; total)", f"{v:,.0f}; {int(r) * v:,.0f}") for a, v in per.items()]
    ev = res["evaluate"]
    rows.append((f"evaluate {ev['models']} models x {ev['num_envs_per_model']} envs (steps/s, all)", f"{ev['agent_steps_per_s']:,.0f}"))
    rows.append(("score, attention maps (inputs/s)", f"{res['score']['inputs_per_s']:,.0f}"))
    rows += [(f"GPU memory, one {a} run (MiB)", "n/a (CPU)" if m is None else f"{m:,.0f}")
             for a, m in res["gpu_memory_mib_per_run"].items()]
    w = max(len(r[0]) for r in rows)
    head = f"gpu_check on {res['device_name']} ({res['cpus']} CPUs, torch {res['torch']}{', --quick' if res['quick'] else ''})"
    return "\n".join([head] + [f"{a.ljust(w)}  {b}" for a, b in rows] + [f"wall {res['wall_s']:.1f} s"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="reduced sizes (CI, CPU)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--train-archs", default=None,
                    help="comma-separated archs for the single-run figures (default: all three; --quick: no dense one)")
    ap.add_argument("--out", type=Path, default=None, help="write the JSON here (default: stdout only)")
    a = ap.parse_args(argv)
    res = run(a.quick, a.device, tuple(a.train_archs.split(",")) if a.train_archs else None)
    print(table(res))
    text = json.dumps(res, indent=2)
    if a.out is not None:
        from fls.atomic import atomic_write_text

        atomic_write_text(a.out, text + "\n")
    else:
        print(text)
    sys.stdout.flush()
    return res


if __name__ == "__main__":
    main()
