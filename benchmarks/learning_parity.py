"""Learning parity with a trusted peer: fls ``nature_cnn`` PPO vs Stable-Baselines3 PPO on Breakout.

Both use Baselines PPO2's Atari settings (8 envs x 128 steps, 4 epochs x 4 minibatches, lr 2.5e-4
annealed linearly to 0, clip 0.1 also on the value loss, ent 0.01, vf 0.5, grad norm 0.5, gamma 0.99,
lambda 0.95) and Baselines' wrapper semantics (SB3: ``make_atari_env`` + ``VecFrameStack(4)``; fls: its
own vector env). Each run's whole-game returns (Monitor scores, all lives) are logged with the agent
step they finished at; the script prints eprewmean (mean of the last 100 games) curves as runs go,
then, on the final 100 games of every seed, the mean per implementation, a Welch t-test and a
bootstrap 95 % CI of the difference (fls - SB3).

    pip install -e '.[bench]'          # stable-baselines3 (not needed otherwise)
    python benchmarks/learning_parity.py --steps 300000 --seeds 1,2 --out /tmp/parity
    python benchmarks/learning_parity.py --steps 20000 --seeds 1   # smoke run

Runs are done one after the other, interleaved (fls s1, sb3 s1, fls s2, ...), so that a run stopped
early still leaves comparable pairs; a finished run's CSV in --out is reused on a rerun.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

WINDOW = 100
PPO2_ATARI = dict(num_envs=8, num_steps=128, update_epochs=4, num_minibatches=4, learning_rate=2.5e-4,
                  clip_coef=0.1, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5, gamma=0.99, gae_lambda=0.95)


def _curve_line(tag: str, episodes: list[tuple[int, float]]) -> str:
    last = [r for _, r in episodes[-WINDOW:]]
    step = episodes[-1][0] if episodes else 0
    mean = float(np.mean(last)) if last else float("nan")
    return f"[{time.strftime('%H:%M:%S')}] {tag}: step {step:>8d}  games {len(episodes):>5d}  eprewmean {mean:6.2f}"


def run_fls(seed: int, steps: int, out: Path, every: int) -> list[tuple[int, float]]:
    from fls.config import build_config
    from fls.ppo.config import TrainConfig
    from fls.ppo.trainer import train

    run_dir = out / f"fls_s{seed}"
    cfg = build_config(TrainConfig, {"arch": "nature_cnn", "game": "Breakout", "seed": seed, "total_steps": steps,
                                     "progress": False, "torch_threads": 1, "checkpoint_every": 20, **PPO2_ATARI})
    state = {"next": every}

    def on_update(row: dict) -> None:
        if row["global_step"] >= state["next"]:
            state["next"] += every
            print(f"[{time.strftime('%H:%M:%S')}] fls s{seed}: step {row['global_step']:>8d}  "
                  f"eprewmean {row['eprewmean']:6.2f}", flush=True)

    train(cfg, run_dir, on_update=on_update)
    with open(run_dir / "episodes.csv", newline="") as fh:
        return [(int(r["global_step"]), float(r["return"])) for r in csv.DictReader(fh)]


def run_sb3(seed: int, steps: int, every: int) -> list[tuple[int, float]]:
    import ale_py
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)  # the NoFrameskip-v4 ids
    torch.set_num_threads(1)
    env = VecFrameStack(make_atari_env("BreakoutNoFrameskip-v4", n_envs=PPO2_ATARI["num_envs"], seed=seed), n_stack=4)
    episodes: list[tuple[int, float]] = []

    class Log(BaseCallback):
        def __init__(self):
            super().__init__()
            self.next = every

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    episodes.append((self.num_timesteps, float(info["episode"]["r"])))
            if self.num_timesteps >= self.next:
                self.next += every
                print(_curve_line(f"sb3 s{seed}", episodes), flush=True)
            return True

    p = PPO2_ATARI
    model = PPO(
        "CnnPolicy", env, n_steps=p["num_steps"], batch_size=p["num_envs"] * p["num_steps"] // p["num_minibatches"],
        n_epochs=p["update_epochs"], learning_rate=lambda f: f * p["learning_rate"], clip_range=p["clip_coef"],
        clip_range_vf=p["clip_coef"], ent_coef=p["ent_coef"], vf_coef=p["vf_coef"], max_grad_norm=p["max_grad_norm"],
        gamma=p["gamma"], gae_lambda=p["gae_lambda"], seed=seed, device="cpu", verbose=0,
    )
    model.learn(total_timesteps=steps, callback=Log())
    env.close()
    return episodes


def _save(path: Path, episodes: list[tuple[int, float]]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["global_step", "return"])
        w.writerows(episodes)
    tmp.replace(path)


def _load(path: Path) -> list[tuple[int, float]]:
    with open(path, newline="") as fh:
        return [(int(r["global_step"]), float(r["return"])) for r in csv.DictReader(fh)]


def compare(results: dict[tuple[str, int], list[tuple[int, float]]], boot: int = 10_000) -> None:
    from scipy import stats

    final = {impl: [r for (i, _s), eps in results.items() if i == impl for _, r in eps[-WINDOW:]] for impl in ("fls", "sb3")}
    for (impl, seed), eps in sorted(results.items()):
        last = [r for _, r in eps[-WINDOW:]]
        print(f"  {impl} seed {seed}: {len(eps)} games, final {len(last)}-game mean {np.mean(last):.2f}")
    if not final["fls"] or not final["sb3"]:
        print("  (need finished runs of both implementations for the test)")
        return
    a, b = np.asarray(final["fls"]), np.asarray(final["sb3"])
    t = stats.ttest_ind(a, b, equal_var=False)
    rng = np.random.default_rng(0)
    diffs = np.array([rng.choice(a, a.size).mean() - rng.choice(b, b.size).mean() for _ in range(boot)])
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    print(f"  final-100-game means pooled over seeds: fls {a.mean():.2f} (n={a.size}), sb3 {b.mean():.2f} (n={b.size})")
    print(f"  Welch t = {t.statistic:.2f}, p = {t.pvalue:.3g}; bootstrap 95% CI of fls - sb3: [{lo:.2f}, {hi:.2f}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300_000, help="agent steps per run")
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--impls", default="fls,sb3")
    ap.add_argument("--every", type=int, default=20_480, help="print a curve point every this many steps")
    ap.add_argument("--out", type=Path, default=Path("/tmp/fls_learning_parity"))
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in a.seeds.split(",") if s]
    impls = [s for s in a.impls.split(",") if s]
    results: dict[tuple[str, int], list[tuple[int, float]]] = {}
    for seed in seeds:
        for impl in impls:
            path = a.out / f"{impl}_s{seed}_{a.steps}.csv"
            if path.exists():
                results[(impl, seed)] = _load(path)
                print(f"{impl} s{seed}: reusing {path}", flush=True)
                continue
            t0 = time.perf_counter()
            eps = run_fls(seed, a.steps, a.out, a.every) if impl == "fls" else run_sb3(seed, a.steps, a.every)
            _save(path, eps)
            results[(impl, seed)] = eps
            print(f"{impl} s{seed}: done in {time.perf_counter() - t0:.0f} s; " + _curve_line(f"{impl} s{seed}", eps), flush=True)
            compare(results)
    print("final comparison:")
    compare(results)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
