"""The training and evaluation vector env: Baselines' Atari semantics on top of ale-py's C++ vector env.

``ale_py.vector_env.AtariVectorEnv`` does the whole SPEC preprocessing in native threads, but its own
``episodic_life`` restarts the whole game on a life loss, it never presses FIRE after a lost life, it
clips rewards, and its default autoreset turns the step after a game over into a fake transition. This
module runs it with ``episodic_life=False, life_loss_info=True, reward_clipping=False`` and
``autoreset_mode=SameStep`` (the step that ends a game already returns the first frame of the next one,
so no reset step ever reaches the learner) and adds, in Python:

* learning episodes that end on every lost life while the game goes on (Baselines' EpisodicLifeEnv);
* FIRE on the step after each lost life, in games whose action 1 is FIRE (Baselines' FireResetEnv).
  In a lock-step vector env one env cannot take a hidden step alone, so that step replaces the agent's
  action and is reported with ``valid=False``: the learner must leave it out of the policy loss;
* whole-game statistics with the raw score, like a Baselines ``Monitor`` under the episodic-life wrapper.

The same class, with ``episodic_life=False``, plays whole games for evaluation; ``make_eval_env`` also
serves BreakoutInfinite through a Python backend (``fls.envs.single``) that has the same contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from fls.games import VARIANTS, Game, base_game, get_game
from fls.preprocessing import FRAME_SKIP, OBS_SIZE, STACK

FIRE = 1  # index of FIRE in the minimal action set of every game that has it (MsPacman has none)
MAX_SEED = 2**31 - 1


class EnvConfigError(ValueError):
    pass


@dataclass(frozen=True)
class EpisodeStats:
    """One finished whole game (all lives): raw score and length, as Baselines' Monitor logs them.

    ``length`` counts every agent-step-sized step the game took, forced FIRE steps included;
    ``frames`` is ``length * 4`` (emulator frames spent in those steps; reset no-ops not included).
    """

    env: int
    ret: float
    length: int
    frames: int
    truncated: bool


class VecStep(NamedTuple):
    """What one ``AtariVecEnv.step`` returns, every field of shape (N,).

    obs: uint8 (N, 4, 84, 84), the observation to act on next (the first frame of a new game where a game
        ended on this step).
    reward: float32, raw (unclipped) game score of the step; the learner clips it with ``np.sign``.
    done: the learning episode ended on this step (lost life when ``episodic_life``, game over, or the
        frame cap): do not bootstrap through it.
    game_over: the whole game ended by losing (the env has been reset).
    truncated: the whole game hit the episode frame cap (the env has been reset).
    valid: the step executed the agent's action. False for the FIRE step forced after a lost life: the
        action the agent sent was ignored, so that transition must not enter the policy loss.
    lives: lives left after the step (for a reset env: the new game's lives).
    """

    obs: np.ndarray
    reward: np.ndarray
    done: np.ndarray
    game_over: np.ndarray
    truncated: np.ndarray
    valid: np.ndarray
    lives: np.ndarray


class BackendStep(NamedTuple):
    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray  # game over or lost life
    truncated: np.ndarray  # frame cap
    reset: np.ndarray  # the env ended its game on this step and obs is the new game's first frame
    lives: np.ndarray


class Backend(Protocol):
    """N Atari games with the C++ vector env's preprocessing, SameStep autoreset and life-loss flags."""

    num_envs: int
    action_meanings: list[str]

    def reset(self, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...  # obs, lives

    def step(self, actions: np.ndarray) -> BackendStep: ...

    def close(self) -> None: ...


class CppBackend:
    """``AtariVectorEnv`` in the configuration this module relies on."""

    def __init__(self, game: Game, num_envs: int, *, noop_max: int, max_episode_frames: int, num_threads: int):
        from ale_py.vector_env import AtariVectorEnv

        self.num_envs = num_envs
        self.max_episode_frames = max_episode_frames
        self._env = AtariVectorEnv(
            game.rom,
            num_envs,
            num_threads=num_threads,
            max_num_frames_per_episode=max_episode_frames,
            repeat_action_probability=0.0,
            full_action_space=False,
            autoreset_mode="SameStep",
            img_height=OBS_SIZE,
            img_width=OBS_SIZE,
            grayscale=True,
            stack_num=STACK,
            frameskip=FRAME_SKIP,
            maxpool=True,
            noop_max=noop_max,
            episodic_life=False,
            life_loss_info=True,
            reward_clipping=False,
            use_fire_reset=True,
        )
        self.action_meanings = [a.name for a in self._env.ale.get_action_set()]
        self._lives = np.zeros(num_envs, dtype=np.int64)
        self._steps = np.zeros(num_envs, dtype=np.int64)  # steps in the current game
        self._frame = np.zeros(num_envs, dtype=np.int64)  # ALE's episode frame number

    def reset(self, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        obs, info = self._env.reset(seed=np.asarray(seeds, dtype=np.int64))
        self._lives = info["lives"].astype(np.int64)
        self._frame = info["episode_frame_number"].astype(np.int64)
        self._steps[:] = 0
        return obs, self._lives.copy()

    def step(self, actions: np.ndarray) -> BackendStep:
        obs, reward, term, trunc, info = self._env.step(actions)
        lives = info["lives"].astype(np.int64)
        frame = info["episode_frame_number"].astype(np.int64)
        self._steps += 1
        # With SameStep autoreset a game over (or the cap) comes back already reset, so `info` describes
        # the new game: its frame counter starts again, and its lives are not below the old game's last
        # count, whereas a lost life is a termination that leaves lives below the previous value.
        # (Enduro has no lives counter: every termination there is a game over.)
        reset = trunc | (term & ~(lives < self._lives)) | (frame < self._frame)
        # ALE flags the cap as truncation only when no life was lost on that step; count it ourselves.
        capped = reset & (trunc | (self._steps * FRAME_SKIP >= self.max_episode_frames))
        self._steps[reset] = 0
        self._lives, self._frame = lives, frame
        return BackendStep(obs, reward.astype(np.float32), term | trunc | reset, capped, reset, lives.copy())

    def close(self) -> None:
        self._env.close()


class AtariVecEnv:
    """N Atari games with Baselines' training semantics (see the module docstring and ``VecStep``).

    Use: ``obs = env.reset()``; then ``step = env.step(actions)`` per agent step; ``env.pop_episodes()``
    returns the whole games finished since the last call.
    """

    def __init__(self, backend: Backend, game: str, seed: int, *, episodic_life: bool, fire_on_life_loss: bool = True):
        _check_seed(seed, backend.num_envs)
        self.game = game
        self.episodic_life = episodic_life
        self._backend = backend
        self._seed = seed
        self._env_seeds: list[int] = []
        n = backend.num_envs
        meanings = backend.action_meanings
        # Baselines' FireResetEnv applied only where action 1 is FIRE; in MsPacman action 1 is UP.
        self.fire_after_life_loss = fire_on_life_loss and len(meanings) >= 3 and meanings[FIRE] == "FIRE"
        self._pending_fire = np.zeros(n, dtype=bool)
        self._ret = np.zeros(n, dtype=np.float64)
        self._len = np.zeros(n, dtype=np.int64)
        self._finished: list[EpisodeStats] = []
        self._started = False

    @property
    def num_envs(self) -> int:
        return self._backend.num_envs

    @property
    def num_actions(self) -> int:
        return len(self._backend.action_meanings)

    @property
    def action_meanings(self) -> list[str]:
        return list(self._backend.action_meanings)

    @property
    def env_seeds(self) -> list[int]:
        """Seeds given to the envs at the last ``reset`` (env i gets seed + i)."""
        return list(self._env_seeds)

    @property
    def pending_fire(self) -> np.ndarray:
        """Envs whose next step will be a forced FIRE (their next action is ignored, ``valid`` False)."""
        return self._pending_fire.copy()

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start every env on a new game; env i is seeded ``seed + i`` (default: the constructor's seed).

        Games in progress are dropped without being reported.
        """
        seed = self._seed if seed is None else seed
        _check_seed(seed, self.num_envs)
        seeds = np.arange(seed, seed + self.num_envs, dtype=np.int64)
        obs, _lives = self._backend.reset(seeds)
        self._env_seeds = [int(s) for s in seeds]
        self._pending_fire[:] = False
        self._ret[:] = 0.0
        self._len[:] = 0
        self._finished = []
        self._started = True
        return obs

    def step(self, actions: np.ndarray) -> VecStep:
        if not self._started:
            raise RuntimeError("AtariVecEnv.step called before reset()")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or not np.issubdtype(actions.dtype, np.integer):
            raise EnvConfigError(
                f"actions: expected an integer array of shape ({self.num_envs},), got {actions.dtype} {actions.shape}"
            )
        if actions.min() < 0 or actions.max() >= self.num_actions:
            raise EnvConfigError(f"actions: expected values in [0, {self.num_actions}), got {actions.tolist()}")
        valid = ~self._pending_fire
        executed = np.where(valid, actions, FIRE).astype(np.int64)
        b = self._backend.step(executed)

        self._ret += b.reward
        self._len += 1
        for i in np.flatnonzero(b.reset):
            self._finished.append(
                EpisodeStats(
                    env=int(i),
                    ret=float(self._ret[i]),
                    length=int(self._len[i]),
                    frames=int(self._len[i]) * FRAME_SKIP,
                    truncated=bool(b.truncated[i]),
                )
            )
        self._ret[b.reset] = 0.0
        self._len[b.reset] = 0

        lost_life = b.terminated & ~b.reset
        self._pending_fire = lost_life & self.fire_after_life_loss
        done = b.reset | (lost_life & self.episodic_life)
        return VecStep(
            obs=b.obs,
            reward=b.reward,
            done=done,
            game_over=b.reset & ~b.truncated,
            truncated=b.truncated.copy(),
            valid=valid,
            lives=b.lives,
        )

    def pop_episodes(self) -> list[EpisodeStats]:
        """Whole games finished since the previous call, in the order they ended."""
        out, self._finished = self._finished, []
        return out

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> AtariVecEnv:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_seed(seed: int, num_envs: int) -> None:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0 or seed + num_envs - 1 > MAX_SEED:
        raise EnvConfigError(f"seed: expected an integer in [0, {MAX_SEED - num_envs + 1}], got {seed!r}")


def _check_common(num_envs: int, noop_max: int, max_episode_frames: int) -> None:
    if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
        raise EnvConfigError(f"num_envs: expected a positive integer, got {num_envs!r}")
    if not isinstance(noop_max, (int, np.integer)) or noop_max < 0:
        raise EnvConfigError(f"noop_max: expected an integer >= 0, got {noop_max!r}")
    if not isinstance(max_episode_frames, (int, np.integer)) or max_episode_frames < FRAME_SKIP:
        raise EnvConfigError(f"max_episode_frames: expected an integer >= {FRAME_SKIP}, got {max_episode_frames!r}")


def make_vector_env(
    game: str,
    num_envs: int,
    seed: int,
    *,
    episodic_life: bool = True,
    noop_max: int = 30,
    max_episode_frames: int = 108_000,
    num_threads: int = 0,
    fire_on_life_loss: bool = True,
) -> AtariVecEnv:
    """The C++-backed vector env for one of the six games (call ``reset()`` before stepping)."""
    if game.strip().lower() in (v.lower() for v in VARIANTS):
        raise EnvConfigError(f"game: '{game}' is a patched ROM with no C++ vector env; use make_eval_env")
    g = get_game(game)
    _check_common(num_envs, noop_max, max_episode_frames)
    _check_seed(seed, num_envs)
    backend = CppBackend(g, num_envs, noop_max=noop_max, max_episode_frames=max_episode_frames, num_threads=num_threads)
    return AtariVecEnv(backend, g.name, seed, episodic_life=episodic_life, fire_on_life_loss=fire_on_life_loss)


def make_eval_env(
    game: str,
    num_envs: int,
    seed: int,
    max_episode_frames: int = 108_000,
    *,
    noop_max: int = 30,
    num_threads: int = 0,
    num_workers: int = 0,
) -> AtariVecEnv:
    """Whole-game evaluation env: the C++ backend for the six games, a Python one for BreakoutInfinite.

    Both give an ``AtariVecEnv`` with ``episodic_life=False`` (``done`` only at game end) and FIRE forced
    after each lost life, as the agent saw in training. ``num_threads`` is for the C++ backend,
    ``num_workers`` (processes; 0 = in this process) for the Python one.
    """
    _check_common(num_envs, noop_max, max_episode_frames)
    _check_seed(seed, num_envs)
    variant = next((v for v in VARIANTS if v.lower() == game.strip().lower()), None)
    if variant is None:
        return make_vector_env(
            game, num_envs, seed, episodic_life=False, noop_max=noop_max,
            max_episode_frames=max_episode_frames, num_threads=num_threads,
        )
    from fls.envs.single import PythonBackend
    from fls.envs.registration import variant_env_id

    backend = PythonBackend(
        variant_env_id(variant),
        num_envs,
        base_game(variant),
        noop_max=noop_max,
        max_episode_frames=max_episode_frames,
        num_workers=num_workers,
    )
    return AtariVecEnv(backend, variant, seed, episodic_life=False)
