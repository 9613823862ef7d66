"""A plain re-statement of Baselines' Atari wrapper stack (their fork at 0b217d2, gym 0.10.11 semantics).

Written for the reference test of ``fls env trace``: gymnasium's ``AtariEnv`` at one frame per step,
then NoopReset -> MaxAndSkip (max over the RGB frames, then grayscale) -> Monitor -> EpisodicLife ->
FireReset -> WarpFrame (cv2 RGB2GRAY, INTER_AREA to 84x84), driven like a one-env DummyVecEnv
(reset on ``done``) under a VecFrameStack that zeroes the stack of a done env. Old gym step API
throughout: ``obs, reward, done, info``. Only the facts of the wrappers are kept, no logging.
"""

from __future__ import annotations

import cv2
import numpy as np
from ale_py.env import AtariEnv


class RawAtari:
    """The NoFrameskip game (one emulator frame per step, no sticky actions), RGB observations."""

    def __init__(self, rom: str, seed: int):
        self.env = AtariEnv(game=rom, frameskip=1, repeat_action_probability=0.0, obs_type="rgb",
                            full_action_space=False)
        self.ale = self.env.ale
        self._seed: int | None = seed
        self.meanings = self.env.get_action_meanings()

    def reset(self) -> np.ndarray:
        obs, _ = self.env.reset(seed=self._seed)
        self._seed = None
        return obs

    def step(self, a: int):
        obs, r, term, trunc, info = self.env.step(a)
        return obs, float(r), bool(term or trunc), info


class NoopReset:
    def __init__(self, env, noop_max: int, rng: np.random.Generator):
        self.env, self.noop_max, self.rng = env, noop_max, rng

    def reset(self):
        obs = self.env.reset()
        noops = int(self.rng.integers(1, self.noop_max + 1)) if self.noop_max > 0 else 0
        for _ in range(noops):
            obs, _, done, _ = self.env.step(0)
            if done:
                obs = self.env.reset()
        return obs

    def step(self, a):
        return self.env.step(a)


class MaxAndSkip:
    def __init__(self, env, skip: int = 4):
        self.env, self.skip = env, skip
        self.buf = np.zeros((2, 210, 160, 3), np.uint8)  # kept across steps and resets, as in Baselines

    def reset(self):
        return self.env.reset()

    def step(self, a):
        total, done, info = 0.0, False, {}
        for i in range(self.skip):
            obs, r, done, info = self.env.step(a)
            if i == self.skip - 2:
                self.buf[0] = obs
            if i == self.skip - 1:
                self.buf[1] = obs
            total += r
            if done:
                break
        return self.buf.max(axis=0), total, done, info


class Monitor:
    """Whole-game return and length (every skip that passes through, hidden ones too)."""

    def __init__(self, env):
        self.env, self.ret, self.len, self.episodes = env, 0.0, 0, []

    def reset(self):
        self.ret, self.len = 0.0, 0
        return self.env.reset()

    def step(self, a):
        obs, r, done, info = self.env.step(a)
        self.ret += r
        self.len += 1
        if done:
            self.episodes.append((self.ret, self.len))
        return obs, r, done, info


class EpisodicLife:
    def __init__(self, env, ale):
        self.env, self.ale, self.lives, self.was_real_done = env, ale, 0, True

    def step(self, a):
        obs, r, done, info = self.env.step(a)
        self.was_real_done = done
        lives = self.ale.lives()
        if 0 < lives < self.lives:
            done = True
        self.lives = lives
        return obs, r, done, info

    def reset(self):
        if self.was_real_done:
            obs = self.env.reset()
        else:
            obs, _, _, _ = self.env.step(0)
        self.lives = self.ale.lives()
        return obs


class FireReset:
    def __init__(self, env):
        self.env = env

    def reset(self):
        self.env.reset()
        obs, _, done, _ = self.env.step(1)
        if done:
            self.env.reset()
        obs, _, done, _ = self.env.step(2)
        if done:
            self.env.reset()
        return obs

    def step(self, a):
        return self.env.step(a)


class WarpFrame:
    def __init__(self, env):
        self.env = env

    @staticmethod
    def warp(rgb: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        return cv2.resize(gray, (84, 84), interpolation=cv2.INTER_AREA)

    def reset(self):
        return self.warp(self.env.reset())

    def step(self, a):
        obs, r, done, info = self.env.step(a)
        return self.warp(obs), r, done, info


class ReferenceEnv:
    """One env of ``VecFrameStack(DummyVecEnv([wrap_deepmind(make_atari(game))]), 4)``, clip_rewards off.

    ``reset()`` and ``step(a)`` return the (4, 84, 84) stack; ``step`` also returns the raw reward of the
    agent's step, ``done``, whether the whole game ended (``game_over``) and the lives after the step.
    """

    def __init__(self, rom: str, seed: int, *, noop_max: int = 30, episodic_life: bool = True,
                 noop_rng: np.random.Generator | None = None):
        self.raw = RawAtari(rom, seed)
        env = NoopReset(self.raw, noop_max, noop_rng or np.random.default_rng(seed))
        env = self.monitor = Monitor(MaxAndSkip(env))
        self.episodic = EpisodicLife(env, self.raw.ale) if episodic_life else None
        env = self.episodic or env
        if "FIRE" in self.raw.meanings:
            assert self.raw.meanings[1] == "FIRE" and len(self.raw.meanings) >= 3
            env = FireReset(env)
        self.env = WarpFrame(env)
        self.stack = np.zeros((4, 84, 84), np.uint8)

    @property
    def num_actions(self) -> int:
        return len(self.raw.meanings)

    def reset(self) -> np.ndarray:
        self.stack[:] = 0
        self.stack[-1] = self.env.reset()
        return self.stack.copy()

    def step(self, a: int):
        n_games = len(self.monitor.episodes)
        obs, r, done, _ = self.env.step(a)
        if done:
            obs = self.env.reset()
        self.stack = np.roll(self.stack, -1, axis=0)
        if done:
            self.stack[:] = 0
        self.stack[-1] = obs
        game_over = len(self.monitor.episodes) > n_games
        return self.stack.copy(), r, done, game_over, self.raw.ale.lives()
