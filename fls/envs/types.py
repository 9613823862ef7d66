"""The contract between the vector env and its emulator backends, and what the env hands its users.

``fls.envs.vector.AtariVecEnv`` implements Baselines' wrapper semantics over a ``Backend``: the C++ one
(``fls.envs.vector.CppBackend``) or the Python one (``fls.envs.python_backend.PythonBackend``, which
``fls.envs.single`` also uses). The types and checks they share live here, so that neither side imports
the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

MAX_SEED = 2**31 - 1
DEFAULT_MAX_EPISODE_STEPS = 100_000  # gym's NoFrameskip-v4 limit: 400,000 raw frames


class EnvConfigError(ValueError):
    pass


@dataclass(frozen=True)
class EpisodeStats:
    """One finished whole game (all lives): raw score and length, as Baselines' Monitor logs them.

    ``length`` counts every 4-frame skip the game took, hidden skips included (the Monitor's ``l``);
    ``frames`` is ``length * 4`` (the start no-op frames are not included).
    """

    env: int
    ret: float
    length: int
    frames: int
    truncated: bool


class VecStep(NamedTuple):
    """What one ``AtariVecEnv.step`` returns, every field of shape (N,).

    obs: uint8 (N, 4, 84, 84), the observation to act on next (zeroed stack with the first frame after
        the hidden skips where ``done``).
    reward: float32, raw (unclipped) game score of the agent's step (hidden skips excluded; they count
        in ``EpisodeStats.ret``); the learner clips it with ``np.sign``.
    done: the learning episode ended on this step (lost life when ``episodic_life``, game over, or the
        episode cap): do not bootstrap through it.
    game_over: the whole game ended by losing on this step (a new game has started).
    truncated: the whole game hit the episode cap on this step (a new game has started).
    lives: lives left when the agent next acts.
    """

    obs: np.ndarray
    reward: np.ndarray
    done: np.ndarray
    game_over: np.ndarray
    truncated: np.ndarray
    lives: np.ndarray


class RawStep(NamedTuple):
    """One 4-frame skip of some envs (arrays over those envs).

    frame: uint8 (k, 84, 84), max over the last two frames of the skip, or, where the game ended on this
        skip, the first frame of the new game (SameStep autoreset).
    game_over: the game ended on this skip (the env has already started a new one).
    noops: raw no-op frames the new game started with (meaningful where ``game_over``).
    """

    frame: np.ndarray
    reward: np.ndarray
    game_over: np.ndarray
    lives: np.ndarray
    noops: np.ndarray


class Backend(Protocol):
    """N Atari games stepped per env in 4-frame skips, with start no-ops and SameStep autoreset."""

    num_envs: int
    action_meanings: list[str]

    def reset(self, ids: np.ndarray, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start new games in envs ``ids`` (seed -1: keep the env's generator) -> frame, lives, noops."""
        ...

    def step(self, ids: np.ndarray, actions: np.ndarray) -> RawStep: ...

    def close(self) -> None: ...


def check_seed(seed: int, num_envs: int) -> None:
    """Env i gets ``seed + i``: every one of them must be a seed ALE accepts (0 .. 2**31 - 1)."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0 or seed + num_envs - 1 > MAX_SEED:
        raise EnvConfigError(f"seed: expected an integer in [0, {MAX_SEED - num_envs + 1}], got {seed!r}")


def check_common(num_envs: int, noop_max: int, max_episode_steps: int) -> None:
    """The settings every env constructor takes, checked before any emulator starts (one-line errors)."""
    if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
        raise EnvConfigError(f"num_envs: expected a positive integer, got {num_envs!r}")
    if not isinstance(noop_max, (int, np.integer)) or isinstance(noop_max, bool) or noop_max < 0:
        raise EnvConfigError(f"noop_max: expected an integer >= 0, got {noop_max!r}")
    if not isinstance(max_episode_steps, (int, np.integer)) or isinstance(max_episode_steps, bool) or max_episode_steps < 1:
        raise EnvConfigError(f"max_episode_steps: expected a positive integer (agent steps), got {max_episode_steps!r}")
