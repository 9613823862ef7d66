"""Registers fls's gymnasium ids on import (``import fls`` imports this module).

Only BreakoutInfinite so far: ``fls/BreakoutInfiniteNoFrameskip-v4``, one emulator frame per step like
the NoFrameskip-v4 games (the Python backend, ``fls.envs.python_backend``, does the frame skip).
"""

from __future__ import annotations

import gymnasium as gym

BREAKOUT_INFINITE_ID = "fls/BreakoutInfiniteNoFrameskip-v4"
_VARIANT_IDS = {"breakoutinfinite": BREAKOUT_INFINITE_ID}


def variant_env_id(game: str) -> str | None:
    """The gym id of a patched game ("BreakoutInfinite"), None for anything else."""
    return _VARIANT_IDS.get(game.strip().lower())


def register() -> None:
    if BREAKOUT_INFINITE_ID in gym.registry:
        return
    gym.register(
        id=BREAKOUT_INFINITE_ID,
        entry_point="fls.envs.breakout_infinite:BreakoutInfiniteEnv",
        kwargs={"frameskip": 1, "repeat_action_probability": 0.0, "full_action_space": False, "obs_type": "rgb"},
    )


register()
