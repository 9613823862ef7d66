"""BreakoutInfinite: Breakout whose wall keeps coming back (paper Table 5).

Breakout's ROM respawns the wall once (after 432 points) and never again: when the second wall is
cleared it checks the score, and from 864 on it leaves the screen empty. The score lives as BCD in RAM
byte 76 (hundreds) and byte 77 (tens, ones) — verified on ALE 0.12.1, where ALE's own Breakout reward
is read from those bytes. After every emulator frame whose RAM score is 864 or more, this env writes
``score - 432`` back, so the ROM treats the next cleared wall as the first and respawns it.

ALE computes each frame's reward as the change of that RAM score, so the rewrite alone would show up as a
reward of -432 on the next frame. This env ignores ALE's reward and reports the change of the true
running score instead (RAM score + 432 per rewrite): rewards never go negative and sum to the real score
(``info["true_score"]``). The score drawn on screen is the RAM one (true score minus 432 per rewrite).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ale_py.env import AtariEnv

from fls.envs.registration import BREAKOUT_INFINITE_ID
from fls.envs.single import make_single_env
from fls.envs.types import EnvConfigError

SCORE_HUNDREDS = 76
SCORE_TENS_ONES = 77
WALL_POINTS = 432  # 6 rows x 18 bricks, worth 1, 1, 4, 4, 7, 7 points from the bottom
REWRITE_AT = 2 * WALL_POINTS  # from this RAM score on the ROM stops respawning the wall
BRICK_BYTES = slice(0, 36)  # the wall's playfield bits


def _from_bcd(byte: int) -> int:
    return (byte >> 4) * 10 + (byte & 0x0F)


def _to_bcd(value: int) -> int:
    return ((value // 10) << 4) | (value % 10)


def ram_score(ram: np.ndarray) -> int:
    """Breakout's score as the ROM keeps it (0..999)."""
    return 100 * _from_bcd(int(ram[SCORE_HUNDREDS])) + _from_bcd(int(ram[SCORE_TENS_ONES]))


def write_ram_score(ale: Any, score: int) -> None:
    if not 0 <= score <= 999:
        raise ValueError(f"score: expected 0..999 for Breakout's 3 BCD digits, got {score}")
    ale.setRAM(SCORE_HUNDREDS, _to_bcd(score // 100))
    ale.setRAM(SCORE_TENS_ONES, _to_bcd(score % 100))


class BreakoutInfiniteEnv(AtariEnv):
    """``AtariEnv`` on the Breakout ROM with the score rewrite after every frame (frameskip must be 1)."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("frameskip", 1)
        if kwargs.get("game", "breakout") != "breakout":
            raise EnvConfigError(f"game: BreakoutInfinite plays the breakout ROM, got {kwargs['game']!r}")
        if kwargs["frameskip"] != 1:
            # With several frames per step the ROM could see 864 and give up on the wall before we rewrite.
            raise EnvConfigError(f"frameskip: BreakoutInfinite needs frameskip=1, got {kwargs['frameskip']!r}")
        kwargs["game"] = "breakout"
        super().__init__(**kwargs)
        self.rewrites = 0
        self._true_score = 0

    @property
    def true_score(self) -> int:
        return self._true_score

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = super().reset(seed=seed, options=options)
        self.rewrites = 0
        self._true_score = ram_score(self.ale.getRAM())
        info["true_score"] = self._true_score
        return obs, info

    def step(self, action):
        obs, _ale_reward, terminated, truncated, info = super().step(action)
        score = ram_score(self.ale.getRAM())
        true_score = score + WALL_POINTS * self.rewrites
        if score >= REWRITE_AT:
            write_ram_score(self.ale, score - WALL_POINTS)
            self.rewrites += 1
        reward = float(true_score - self._true_score)
        self._true_score = true_score
        info["true_score"] = true_score
        return obs, reward, terminated, truncated, info


def make_breakout_infinite(**kwargs: Any):
    """The single-env form (``fls.envs.single.make_single_env`` options apply)."""
    return make_single_env("BreakoutInfinite", env_id=BREAKOUT_INFINITE_ID, **kwargs)
