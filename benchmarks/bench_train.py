"""Training throughput on this machine, in one run (agent steps per second).

(a) the full `fls train` loop (fls.ppo.trainer.train) for nature_cnn and sparse_fls on Breakout, 8 envs;
(b) the vector env alone with random actions (the ceiling set by emulation + preprocessing);
(c) the network alone: one PPO update (4 epochs x 4 minibatches of 256) per arch, and the rollout
    inference (1024 single steps of 8 observations), so (a) can be compared with env + net.

    python benchmarks/bench_train.py            # about 3 minutes on 2 CPU cores
    python benchmarks/bench_train.py --quick    # about 1 minute
    python benchmarks/bench_train.py --compare 6abdcc2 --rounds 2   # (a) and (b), old tree vs this one
    python benchmarks/bench_train.py --compile  # (d) torch.compile on CPU vs eager, per network op

``--compare REF`` extracts commit REF of this repository (``git archive``) into a temporary folder and
runs (a) and (b) alternately with that tree and with this one on the import path, in subprocesses, so
one invocation prints the figure before a change next to the figure after it (issue 11: the
Baselines-exact env must stay within 10 % of the lock-step env it replaced).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def bench_loop(arch: str, updates: int, threads: int, env_threads: int) -> float:
    from fls.config import build_config
    from fls.ppo.config import TrainConfig
    from fls.ppo.trainer import train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = build_config(TrainConfig, {"arch": arch, "game": "Breakout", "seed": 1, "total_steps": 1024 * updates,
                                         "progress": False, "torch_threads": threads, "env_threads": env_threads,
                                         "checkpoint_every": 10_000})
        train(cfg, Path(tmp))
        with open(Path(tmp) / "metrics.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
    # SPS of the updates after the first (the first pays one-off allocation and warm-up costs)
    t = sum(float(r["time/rollout_s"]) + float(r["time/update_s"]) for r in rows[1:])
    roll = np.mean([float(r["time/rollout_s"]) for r in rows[1:]])
    upd = np.mean([float(r["time/update_s"]) for r in rows[1:]])
    print(f"  (a) train loop {arch:11s}: {1024 * (len(rows) - 1) / t:7.1f} steps/s  "
          f"(rollout {roll:.2f} s + update {upd:.2f} s per 1024 steps)")
    return 1024 * (len(rows) - 1) / t


def bench_env(steps: int, env_threads: int) -> float:
    from fls.envs.vector import make_vector_env

    env = make_vector_env("Breakout", 8, 1, num_threads=env_threads)
    env.reset()
    rng = np.random.default_rng(0)
    actions = rng.integers(0, env.num_actions, size=(steps // 8 + 1, 8))
    t0 = time.perf_counter()
    for i in range(steps // 8):
        env.step(actions[i])
    dt = time.perf_counter() - t0
    env.close()
    sps = 8 * (steps // 8) / dt
    print(f"  (b) env only (8 envs, random actions): {sps:7.1f} steps/s")
    return sps


def bench_net(arch: str, repeats: int, threads: int) -> None:
    from torch.distributions import Categorical

    from fls.models import build_model
    from fls.ppo.config import PPOConfig
    from fls.ppo.update import ppo_update

    torch.manual_seed(0)
    ppo = PPOConfig()
    model = build_model(arch, 4).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=ppo.learning_rate, eps=ppo.adam_eps)
    T, N = ppo.num_steps, ppo.num_envs
    obs = torch.randint(0, 256, (T, N, 4, 84, 84), dtype=torch.uint8)
    z = torch.zeros(T, N)
    args = (obs, torch.randint(0, 4, (T, N)), z - 1.386, torch.randn(T, N), torch.randn(T, N), z, torch.ones(T, N, dtype=torch.bool))
    from concurrent.futures import ThreadPoolExecutor

    from fls.ppo.trainer import _available_cpus

    shards = threads if threads > 0 else _available_cpus()  # as the trainer on CPU: shards of 1 thread each
    torch.set_num_threads(1)
    pool = ThreadPoolExecutor(shards)
    ppo_update(model, opt, ppo, *args, channels_last=True, pool=pool, shards=shards)  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        ppo_update(model, opt, ppo, *args, channels_last=True, pool=pool, shards=shards)
    upd = (time.perf_counter() - t0) / repeats

    def forward(x):
        with torch.inference_mode():
            return model(x.contiguous(memory_format=torch.channels_last)).logits

    step_obs = obs[0]
    for _ in range(5):
        forward(step_obs)
    t0 = time.perf_counter()
    for _ in range(T):
        logits = torch.cat([f.result() for f in [pool.submit(forward, p) for p in torch.tensor_split(step_obs, shards)]])
        Categorical(logits=logits, validate_args=False).sample()
    inf = time.perf_counter() - t0
    pool.shutdown()
    print(f"  (c) net only {arch:11s}: one PPO update {upd:.2f} s, rollout inference {inf:.2f} s "
          f"-> {T * N / (upd + inf):7.1f} steps/s without the env")


def compare(ref: str, rounds: int, quick: bool, torch_threads: int, archs: list[str]) -> None:
    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(repo), "archive", ref], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        trees = {f"old ({ref})": tmp, "new (this tree)": str(repo)}
        figures: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
        for r in range(rounds):
            for name, root in trees.items():
                env = {**os.environ, "PYTHONPATH": root}
                cmd = [sys.executable, __file__, "--_figures", "--torch-threads", str(torch_threads), "--archs", ",".join(archs)]
                out = subprocess.run(cmd + (["--quick"] if quick else []), env=env, check=True, capture_output=True,
                                     text=True, cwd=root).stdout
                fig = json.loads(out.strip().splitlines()[-1])
                figures[name].append(fig)
                print(f"  round {r + 1} {name:20s} " + "  ".join(f"{k} {v:7.1f}" for k, v in fig.items()), flush=True)
    print("median steps/s over rounds:")
    keys = list(next(iter(figures.values()))[0])
    med = {name: {k: float(np.median([f[k] for f in figs])) for k in keys} for name, figs in figures.items()}
    old, new = med.values()
    for k in keys:
        print(f"  {k:22s} old {old[k]:7.1f}  new {new[k]:7.1f}  new/old {new[k] / old[k]:6.1%}")


def bench_compile(arch: str, repeats: int) -> dict[str, float]:
    """(d) Does torch.compile (inductor, CPU) beat eager for the two hot ops of training, one torch thread?

    The ops the trainer runs per shard: forward+backward of a 128-observation half-minibatch (the update,
    2 shards of 256) and the forward of a 4-observation half of the rollout batch. Compile time is reported
    apart: it is paid once per process (per run), about what a short demo run's update costs.
    """
    from fls.models import build_model

    torch.manual_seed(0)
    torch.set_num_threads(1)
    res: dict[str, float] = {}
    for mode in ("eager", "compiled"):
        model = build_model(arch, 4).to(memory_format=torch.channels_last)
        fn = torch.compile(model) if mode == "compiled" else model
        big = torch.rand(128, 4, 84, 84).contiguous(memory_format=torch.channels_last)
        small = torch.rand(4, 4, 84, 84).contiguous(memory_format=torch.channels_last)

        def fwd_bwd():
            out = fn(big)
            (out.logits.logsumexp(-1).mean() + out.value.mean()).backward()

        def infer():
            with torch.no_grad():
                fn(small)

        t0 = time.perf_counter()
        fwd_bwd(), infer()  # compiles both graphs (and warms eager up)
        res[f"{mode} first call s"] = time.perf_counter() - t0
        for name, op, n in (("fwd+bwd 128 ms", fwd_bwd, repeats), ("infer 4 ms", infer, 20 * repeats)):
            op()
            t0 = time.perf_counter()
            for _ in range(n):
                op()
            res[f"{mode} {name}"] = 1000 * (time.perf_counter() - t0) / n
    print(f"  (d) torch.compile {arch:11s}: " + ", ".join(f"{k} {v:.1f}" for k, v in res.items()))
    for name in ("fwd+bwd 128 ms", "infer 4 ms"):
        print(f"      {name[:-3]:12s} compiled/eager time {res['compiled ' + name] / res['eager ' + name]:6.1%}")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", metavar="REF", help="also measure git commit REF of this repo, alternately")
    ap.add_argument("--rounds", type=int, default=2, help="with --compare: alternations old/new")
    ap.add_argument("--_figures", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="fewer updates / steps (noisier)")
    ap.add_argument("--torch-threads", type=int, default=2, help="TrainConfig.torch_threads (0 = one per CPU)")
    ap.add_argument("--env-threads", type=int, default=0, help="vector-env native threads (0 = default)")
    ap.add_argument("--archs", default="nature_cnn,sparse_fls")
    ap.add_argument("--compile", action="store_true", help="only (d): torch.compile vs eager on CPU")
    a = ap.parse_args()
    archs = [x for x in a.archs.split(",") if x]
    updates = 3 if a.quick else 8
    if a._figures:  # one side of --compare: (a) and (b) as one JSON line
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            fig = {f"train {arch}": bench_loop(arch, updates, a.torch_threads, a.env_threads) for arch in archs}
            fig["env only"] = bench_env(4096 if a.quick else 16384, a.env_threads)
        print(json.dumps(fig))
        return
    print(f"torch {torch.__version__}, torch_threads {a.torch_threads} (0 = one per CPU), Breakout, 8 envs x 128 steps")
    if a.compile:
        for arch in archs:
            bench_compile(arch, 3 if a.quick else 10)
        return
    if a.compare:
        compare(a.compare, a.rounds, a.quick, a.torch_threads, archs)
        return
    for arch in archs:
        bench_loop(arch, updates, a.torch_threads, a.env_threads)
    bench_env(4096 if a.quick else 16384, a.env_threads)
    for arch in archs:
        bench_net(arch, 1 if a.quick else 3, a.torch_threads)


if __name__ == "__main__":
    main()
