"""One Atari game as a gymnasium env, with the vector env's Baselines semantics and the raw RGB screen.

Users: videos and perception frames (they need the raw screen, which the C++ vector env does not hand
out) and the tests. ``AtariSingleEnv`` is ``fls.envs.vector.AtariVecEnv`` over one in-process
``fls.envs.python_backend.AtariCore``, so Baselines' life-loss and start logic is shared code.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from fls.envs.python_backend import PythonBackend
from fls.envs.registration import variant_env_id
from fls.envs.types import DEFAULT_MAX_EPISODE_STEPS, check_common
from fls.envs.vector import AtariVecEnv
from fls.games import Game, base_game
from fls.frames import OBS_SHAPE


class AtariSingleEnv(gym.Env):
    """A gymnasium env with (4, 84, 84) uint8 observations and Baselines' Atari wrapper semantics.

    It is ``AtariVecEnv`` over one in-process ``AtariCore``: start no-ops, hidden FIRE / action-2 skips,
    and with ``episodic_life`` a lost life that ends the (learning) episode, zeroes the stack and runs the
    hidden skips before the next observation. ``terminated`` marks a learning-episode end; ``reset()``
    after one that was not a game over returns the already restarted observation, as
    ``EpisodicLifeEnv`` lets the game go on. ``info`` carries ``lives``, ``raw_reward``, ``game_over`` and,
    when a whole game ends, ``episode = {"r": raw score, "l": steps incl. hidden, "frames", "truncated"}``.
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        env_id: str,
        game: Game,
        *,
        seed: int | None = None,
        noop_max: int = 30,
        fire_reset: bool = True,
        episodic_life: bool = False,
        clip_rewards: bool = False,
        max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS,
    ):
        check_common(1, noop_max, max_episode_steps)
        self._backend = PythonBackend(env_id, 1, game, noop_max=noop_max)
        self.core = self._backend.cores[0]
        self._vec = AtariVecEnv(self._backend, game.name, 0, episodic_life=episodic_life,
                                max_episode_steps=max_episode_steps, noop_max=noop_max, fire_reset=fire_reset)
        self.fire_reset = self._vec.fire_reset
        self.episodic_life = episodic_life
        self.clip_rewards = clip_rewards
        self.render_mode = "rgb_array"
        self.observation_space = gym.spaces.Box(0, 255, OBS_SHAPE, np.uint8)
        self.action_space = gym.spaces.Discrete(self._vec.num_actions)
        self._seed = seed
        self._obs: np.ndarray | None = None
        self._game_live = False  # a game is in progress (after a lost life it goes on)

    def get_action_meanings(self) -> list[str]:
        return self._vec.action_meanings

    def render(self) -> np.ndarray:
        """The current raw (210, 160, 3) RGB screen (for videos)."""
        return self.core.screen_rgb()

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if self._game_live and self._obs is not None and seed is None:
            return self._obs.copy(), {"lives": int(self._vec.lives[0])}
        if seed is None:
            seed, self._seed = (self._seed if self._seed is not None else int(np.random.SeedSequence().entropy % 2**31)), None
        self._obs = self._vec.reset(int(seed))[0]
        self._game_live = True
        return self._obs.copy(), {"lives": int(self._vec.lives[0])}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        if not self._game_live:
            raise RuntimeError("step() called after the game ended; call reset()")
        st = self._vec.step(np.array([int(action)]))
        self._obs = st.obs[0]
        r = float(st.reward[0])
        info: dict[str, Any] = {"lives": int(st.lives[0]), "raw_reward": r, "game_over": bool(st.game_over[0])}
        for e in self._vec.pop_episodes():
            info["episode"] = {"r": e.ret, "l": e.length, "frames": e.frames, "truncated": e.truncated}
            self._game_live = False
        truncated = bool(st.truncated[0])
        terminated = bool(st.done[0]) and not truncated
        return self._obs.copy(), float(np.sign(r)) if self.clip_rewards else r, terminated, truncated, info

    def close(self) -> None:
        self._vec.close()


def make_single_env(game: str, *, env_id: str | None = None, **options: Any) -> AtariSingleEnv:
    """One game as a gymnasium env; ``env_id`` overrides the gym id (e.g. BreakoutInfinite's).

    ``options`` are ``AtariSingleEnv``'s keywords (seed, noop_max, fire_reset, episodic_life, clip_rewards,
    max_episode_steps), declared once there.
    """
    g = base_game(game)
    if env_id is None:
        env_id = variant_env_id(game) or g.gym_id
    return AtariSingleEnv(env_id, g, **options)
