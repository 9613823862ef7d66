"""One-shot throughput check of a (GPU) node for pricing the paper grid; prints a table and writes JSON.

Figures (agent steps/s unless said otherwise):
  env only            AtariVecEnv with random actions at 8 / 64 / 256 envs (--quick: 8 / 16)
  train single        fls.ppo.trainer.train, 8 envs, for nature_cnn, sparse_fls, dense_fls_pool, plus
                      dense_fls_pool with train.precision=bf16 (key "dense_fls_pool+bf16")
                      (--quick: nature_cnn and sparse_fls only, 8-step rollouts)
  train multi         fls.ppo.multirun.train_many with R = 5 and R = 10, nature_cnn and sparse_fls, per run
                      (--quick: R = 2, nature_cnn; two 8-step rollouts per run: figures are only a smoke test)
  evaluate            fls.evaluation.multi.evaluate_many, 16 envs per model, several models at once
  score               attention saliency maps (inputs/s, batches of 64)
  kernels             ms per network call, nature_cnn and dense_fls_pool: the rollout forward (batch 8 and 40)
                      and one update minibatch (256, forward + backward) in fp32, channels_last and bf16 autocast,
                      and on CUDA the batch-8 forward replayed as a CUDA graph -- what the precision and
                      channels_last switches and a graph capture would buy, before they are trusted in training
  GPU memory          peak CUDA memory of one single run (MiB; null on CPU)

Training rates are steady-state: agent steps from the end of the first update to the end of the last, over
that time, so the start-up (env creation, first CUDA kernels, allocator warm-up) that a 5e7-step run pays
once is not priced per step; it is reported on its own ("train.startup_s"), as is each whole run's rate
("train.whole_run"). Sections run in the order of their use to the cost model (env, single, evaluate, score,
multi R=5, kernels, multi R=10); with --budget-s a section starts only while the budget is not spent, and the
ones left out are listed under "skipped" (their figures are absent, not zero).

The JSON (schema "fls-gpu-check/1", fls/grid/cost.py) is what `fls grid cost --bench` reads:

    python benchmarks/gpu_check.py --out gpu_check.json            # a CUDA node: at most ~8 minutes
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


def _cfg(arch: str, seed: int, updates: int, num_steps: int, device: str, precision: str = "fp32") -> Any:
    from fls.config import build_config
    from fls.ppo.config import TrainConfig

    return build_config(TrainConfig, {"arch": arch, "game": "Breakout", "seed": seed, "num_envs": 8,
                                      "num_steps": num_steps, "total_steps": 8 * num_steps * updates,
                                      "progress": False, "checkpoint_every": 10_000, "device": device,
                                      "precision": precision})


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


def _steady(stamps: list[float], steps_per_update: int) -> float | None:
    """Agent steps/s from the end of the first update to the end of the last (None with under 2 updates)."""
    if len(stamps) < 2 or stamps[-1] <= stamps[0]:
        return None
    return (len(stamps) - 1) * steps_per_update / (stamps[-1] - stamps[0])


def train_single(arch: str, updates: int, num_steps: int, device: str,
                 precision: str = "fp32") -> dict[str, float | None]:
    """steady (steps/s), whole (steps/s over the whole call), startup_s (to the end of update 1), mem (MiB)."""
    from fls.ppo.trainer import train

    cuda = torch.device(device).type == "cuda" if device != "auto" else torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    cfg = _cfg(arch, 1, updates, num_steps, device, precision)
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        train(cfg, Path(tmp), on_update=lambda row: stamps.append(time.perf_counter()))
        wall = time.perf_counter() - t0
    return {"steady": _steady(stamps, 8 * num_steps), "whole": cfg.planned_steps / wall,
            "startup_s": stamps[0] - t0 if stamps else None,
            "mem": torch.cuda.max_memory_allocated() / 2**20 if cuda else None}


def train_multi(arch: str, runs: int, updates: int, num_steps: int, device: str) -> dict[str, float | None]:
    """Per-run rates of one train_many process: steady (mean over runs), whole, startup_s (first run's)."""
    from fls.ppo.multirun import train_many

    cfgs = [_cfg(arch, 1 + 8 * i, updates, num_steps, device) for i in range(runs)]
    stamps: list[list[float]] = [[] for _ in cfgs]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        outcomes = train_many(cfgs, [Path(tmp) / str(c.seed) for c in cfgs],
                              on_update=lambda i, row: stamps[i].append(time.perf_counter()))
        wall = time.perf_counter() - t0
    failed = [str(o.error) for o in outcomes if not o.ok]
    if failed:
        raise RuntimeError(f"multi-run failed: {failed[0]}")
    steady = [_steady(st, 8 * num_steps) for st in stamps]
    return {"steady": None if None in steady else float(np.mean(steady)), "whole": cfgs[0].planned_steps / wall,
            "startup_s": min(st[0] for st in stamps) - t0 if all(stamps) else None}


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


def _time_ms(fn: Any, reps: int, cuda: bool) -> float:
    fn()  # warm-up (cuDNN autotune, allocator)
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps * 1e3


def kernels(arch: str, reps: int, device: str) -> dict[str, float | str]:
    """ms per call of the rollout forward and of one update minibatch's forward + backward, per variant."""
    from fls.device import resolve_device
    from fls.models import build_model
    from fls.ppo.update import autocast_for

    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    torch.manual_seed(0)
    net = build_model(arch, 4).to(dev)
    rng = np.random.default_rng(0)
    obs = {b: torch.from_numpy(rng.integers(0, 256, size=(b, 4, 84, 84), dtype=np.uint8)).to(dev) for b in (8, 40, 256)}
    out: dict[str, float | str] = {}

    def forward(b: int, cl: bool, precision: str) -> Any:
        x = obs[b].contiguous(memory_format=torch.channels_last) if cl else obs[b]
        cast = autocast_for(precision, dev)  # the trainer's own switch

        def call() -> None:
            with torch.inference_mode(), cast():
                net(x)
        return call

    def update(cl: bool, precision: str) -> Any:
        x = obs[256].contiguous(memory_format=torch.channels_last) if cl else obs[256]
        cast = autocast_for(precision, dev)

        def call() -> None:
            with cast():
                o = net(x)
                loss = o.logits.float().logsumexp(-1).mean() + o.value.float().pow(2).mean()
            net.zero_grad(set_to_none=True)
            loss.backward()
        return call

    for name, cl, precision in (("fp32", False, "fp32"), ("channels_last", True, "fp32"), ("bf16", False, "bf16")):
        net.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
        for b in (8, 40):
            out[f"forward_b{b}_{name}_ms"] = _time_ms(forward(b, cl, precision), reps, cuda)
        out[f"update_mb256_{name}_ms"] = _time_ms(update(cl, precision), max(1, reps // 4), cuda)
    net.to(memory_format=torch.contiguous_format)
    if cuda:
        try:
            static = obs[8].clone()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), torch.inference_mode():
                for _ in range(3):
                    net(static)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.inference_mode(), torch.cuda.graph(graph):
                net(static)
            out["forward_b8_cuda_graph_ms"] = _time_ms(graph.replay, reps, cuda)
        except Exception as exc:  # a capture failure is a finding, not a crash of the whole check
            out["forward_b8_cuda_graph_error"] = f"{type(exc).__name__}: {exc}"[:300]
    return out


def run(quick: bool, device: str, train_archs: tuple[str, ...] | None = None,
        budget_s: float | None = None) -> dict[str, Any]:
    from fls.device import resolve_device

    dev = resolve_device(device)
    t_start = time.perf_counter()
    sizes = (8, 16) if quick else (8, 64, 256)
    archs = train_archs or (("nature_cnn", "sparse_fls") if quick else ("nature_cnn", "sparse_fls", "dense_fls_pool"))
    multi_archs = archs[:1 if quick else 2]
    updates, num_steps = (2, 8) if quick else (8, 128)
    res: dict[str, Any] = {
        "schema": SCHEMA, "quick": quick, "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__, "budget_s": budget_s,
        "settings": {"train_updates": updates, "train_num_steps": num_steps, "train_num_envs": 8,
                     "train_rates": "steady-state (end of update 1 to end of the last)"},
        "env": {}, "train": {"single": {}, "multi": {}, "startup_s": {}, "whole_run": {"single": {}, "multi": {}}},
        "gpu_memory_mib_per_run": {}, "kernels": {}, "skipped": [],
    }

    def fits(name: str) -> bool:
        if budget_s is None or time.perf_counter() - t_start < budget_s:
            return True
        res["skipped"].append(name)
        return False

    def single(key: str, arch: str, precision: str) -> None:
        if not fits(f"train single {key}"):
            return
        r = train_single(arch, updates, num_steps, str(dev), precision)
        res["train"]["single"][key] = r["steady"]
        res["train"]["startup_s"][key] = r["startup_s"]
        res["train"]["whole_run"]["single"][key] = r["whole"]
        res["gpu_memory_mib_per_run"][key] = r["mem"]

    def multi(runs: int) -> None:
        for a in multi_archs:
            if not fits(f"train multi R={runs} {a}"):
                continue
            r = train_multi(a, runs, updates, num_steps, str(dev))
            res["train"]["multi"].setdefault(str(runs), {})[a] = r["steady"]
            res["train"]["whole_run"]["multi"].setdefault(str(runs), {})[a] = r["whole"]
            res["train"]["startup_s"][f"R={runs} {a}"] = r["startup_s"]

    for n in sizes:
        if fits(f"env {n}"):
            res["env"][str(n)] = env_only(n, 16 if quick else 500)
    for arch in archs:
        single(arch, arch, "fp32")
    if "dense_fls_pool" in archs:
        single("dense_fls_pool+bf16", "dense_fls_pool", "bf16")
    n_models = 2 if quick else 5
    res["evaluate"] = {"models": n_models, "num_envs_per_model": 16}
    if fits("evaluate"):
        res["evaluate"]["agent_steps_per_s"] = evaluation(n_models, 16, 15 if quick else 1000, str(dev))
    res["score"] = {"method": "attention", "arch": "sparse_fls"}
    if fits("score"):
        res["score"]["inputs_per_s"] = score_inputs(1 if quick else 20, str(dev))
    multi(2 if quick else 5)
    for arch in ("nature_cnn",) if quick else ("nature_cnn", "dense_fls_pool"):
        if fits(f"kernels {arch}"):
            res["kernels"][arch] = kernels(arch, 2 if quick else 50, str(dev))
    if not quick:
        multi(10)
    res["wall_s"] = time.perf_counter() - t_start
    return res


def _fmt(v: float | None, spec: str = ",.0f") -> str:
    return "n/a" if v is None else format(v, spec)


def table(res: dict[str, Any]) -> str:
    rows = [("figure", "value")]
    rows += [(f"env only, {n} envs (steps/s)", _fmt(v)) for n, v in res["env"].items()]
    tr = res["train"]
    rows += [(f"train single {a} (steps/s; start-up s)", f"{_fmt(v)}; {_fmt(tr['startup_s'].get(a), '.1f')}")
             for a, v in tr["single"].items()]
    for r, per in tr["multi"].items():
        rows += [(f"train multi R={r} {a} (steps/s per run; total)",
                  f"{_fmt(v)}; {_fmt(None if v is None else int(r) * v)}") for a, v in per.items()]
    ev = res["evaluate"]
    rows.append((f"evaluate {ev['models']} models x {ev['num_envs_per_model']} envs (steps/s, all)",
                 _fmt(ev.get("agent_steps_per_s"))))
    rows.append(("score, attention maps (inputs/s)", _fmt(res["score"].get("inputs_per_s"))))
    for arch, ks in res.get("kernels", {}).items():
        rows += [(f"kernel {arch} {k.removesuffix('_ms')} (ms)", v if isinstance(v, str) else f"{v:.3f}")
                 for k, v in ks.items()]
    rows += [(f"GPU memory, one {a} run (MiB)", "n/a (CPU)" if m is None else f"{m:,.0f}")
             for a, m in res["gpu_memory_mib_per_run"].items()]
    w = max(len(r[0]) for r in rows)
    head = f"gpu_check on {res['device_name']} ({res['cpus']} CPUs, torch {res['torch']}{', --quick' if res['quick'] else ''})"
    tail = [f"wall {res['wall_s']:.1f} s"] + ([f"skipped (budget {res['budget_s']:.0f} s spent): {', '.join(res['skipped'])}"]
                                             if res.get("skipped") else [])
    return "\n".join([head] + [f"{a.ljust(w)}  {b}" for a, b in rows] + tail)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="reduced sizes (CI, CPU)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--train-archs", default=None,
                    help="comma-separated archs for the single-run figures (default: all three; --quick: no dense one)")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="start no section after this many seconds (default: 420 on a full run, none with --quick)")
    ap.add_argument("--out", type=Path, default=None, help="write the JSON here (default: stdout only)")
    a = ap.parse_args(argv)
    budget = a.budget_s if a.budget_s is not None else (None if a.quick else 420.0)
    res = run(a.quick, a.device, tuple(a.train_archs.split(",")) if a.train_archs else None, budget)
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
