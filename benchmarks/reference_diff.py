"""Per-observation pixel difference between ``fls env trace`` and the Baselines wrapper re-statement.

ALE's C++ env converts every raw frame to gray and then takes the max of the last two; Baselines' took
the max over RGB and then converted. Where a pixel changes colour between the two frames (flicker) the
two orders give different gray values. This script plays the same random actions in both stacks
(``--noop-max 0``, env seed 5) and reports, per game, over the newest frame (slot 3) of each observation:
the share of observations with any difference, the mean share of differing pixels, and the mean and
max absolute gray difference over the differing pixels. Rewards, ``done``, game ends and lives are
compared too (they must agree exactly).

    python benchmarks/reference_diff.py                 # 2000 steps per game
    python benchmarks/reference_diff.py --steps 500 --games MsPacman
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def measure(game: str, steps: int) -> dict[str, float]:
    from baselines_reference import ReferenceEnv

    from fls.envs.trace import TraceConfig, trace_env
    from fls.games import get_game

    tr = trace_env(TraceConfig(game=game, steps=steps, actions_seed=3, seed=5, noop_max=0))
    ref = ReferenceEnv(get_game(game).rom, 5, noop_max=0)
    frames = [ref.reset()[3]]
    other_mismatch = 0
    for t in range(steps):
        obs, r, done, over, lives = ref.step(int(tr["actions"][t]))
        frames.append(obs[3])
        other_mismatch += (r, done, over, lives) != (tr["reward"][t], tr["done"][t], tr["game_over"][t], tr["lives"][t + 1])
    a = np.stack(frames).astype(np.int16)
    b = tr["obs"][:, 3].astype(np.int16)
    d = np.abs(a - b)
    differ = d > 0
    return {
        "obs_with_diff": float(differ.any(axis=(1, 2)).mean()),
        "pixels_diff": float(differ.mean()),
        "mean_abs_diff": float(d[differ].mean()) if differ.any() else 0.0,
        "max_abs_diff": int(d.max()),
        "other_mismatches": int(other_mismatch),
        "learning_episodes": int(tr["done"].sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--games", default="BeamRider,Breakout,Enduro,MsPacman,Seaquest,SpaceInvaders")
    a = ap.parse_args()
    print(f"{a.steps} random agent steps per game, --noop-max 0, newest frame of each observation")
    print("game           obs with diff  pixels differing  mean |diff|  max |diff|  reward/done/lives mismatches  episodes")
    for game in [g for g in a.games.split(",") if g]:
        m = measure(game, a.steps)
        print(f"{game:14s} {m['obs_with_diff']:12.1%}  {m['pixels_diff']:15.3%}  {m['mean_abs_diff']:11.1f}  "
              f"{m['max_abs_diff']:10d}  {m['other_mismatches']:28d}  {m['learning_episodes']:8d}", flush=True)


if __name__ == "__main__":
    main()
