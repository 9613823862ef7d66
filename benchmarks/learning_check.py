"""Does PPO learn? Train nature_cnn and sparse_fls on Breakout for a short budget and compare the
eprewmean curve with the mean whole-game return of a uniformly random policy measured here too.

A random Breakout policy scores about 1 per whole game; a working PPO must rise clearly above it within
a few hundred thousand agent steps (note that the lr is annealed to 0 over --steps, so a short budget
learns more slowly than the same steps of a long run). Runs go to --out (default: a temporary folder).

    python benchmarks/learning_check.py                    # 300k agent steps per arch (hours on 2 CPU cores)
    python benchmarks/learning_check.py --steps 20000      # a short smoke run
    python benchmarks/learning_check.py --quick            # same as --steps 8192 --random-games 8
"""

from __future__ import annotations

import argparse
import csv
import math
import tempfile
from pathlib import Path

import numpy as np


def random_policy_return(game: str, games: int, seed: int) -> tuple[float, float]:
    """Mean and std of whole-game (all lives) raw returns of uniform random actions, 8 envs."""
    from fls.envs.vector import make_vector_env

    env = make_vector_env(game, 8, seed)
    env.reset()
    rng = np.random.default_rng(seed)
    returns: list[float] = []
    while len(returns) < games:
        env.step(rng.integers(0, env.num_actions, size=8))
        returns.extend(ep.ret for ep in env.pop_episodes())
    env.close()
    r = np.asarray(returns[:games])
    return float(r.mean()), float(r.std())


def curve_summary(metrics_csv: Path, points: int = 8) -> list[tuple[int, float]]:
    with open(metrics_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    picks = sorted({round(i * (len(rows) - 1) / max(points - 1, 1)) for i in range(points)})
    out = []
    for i in picks:
        v = rows[i]["eprewmean"]
        out.append((int(rows[i]["global_step"]), float(v) if v else math.nan))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300_000, help="agent steps per architecture")
    ap.add_argument("--archs", default="nature_cnn,sparse_fls")
    ap.add_argument("--game", default="Breakout")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--random-games", type=int, default=32, help="games played by the random policy")
    ap.add_argument("--torch-threads", type=int, default=2, help="TrainConfig.torch_threads")
    ap.add_argument("--out", type=Path, default=None, help="keep the runs here (resumable)")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.steps, a.random_games = 8192, 8

    from fls.config import build_config
    from fls.ppo.config import TrainConfig
    from fls.ppo.trainer import train

    rand_mean, rand_std = random_policy_return(a.game, a.random_games, 10_000 + a.seed)
    print(f"random policy on {a.game}: {rand_mean:.2f} +- {rand_std:.2f} over {a.random_games} games")
    with tempfile.TemporaryDirectory() as tmp:
        root = a.out or Path(tmp)
        for arch in [x for x in a.archs.split(",") if x]:
            cfg = build_config(TrainConfig, {"arch": arch, "game": a.game, "seed": a.seed, "total_steps": a.steps,
                                             "torch_threads": a.torch_threads, "checkpoint_every": 50})
            res = train(cfg, root / f"{arch}-{a.game}-{a.seed}")
            curve = curve_summary(root / f"{arch}-{a.game}-{a.seed}" / "metrics.csv")
            print(f"{arch}: {res.global_step} steps, {res.episodes} games, {res.sps:.0f} steps/s")
            print("  eprewmean curve: " + ", ".join(f"{s}: {v:.2f}" for s, v in curve))
            final = res.eprewmean
            verdict = "above" if final > rand_mean else "NOT above"
            print(f"  final eprewmean {final:.2f} is {verdict} the random policy's {rand_mean:.2f}")


if __name__ == "__main__":
    main()
