"""The training and evaluation vector env: Baselines' Atari wrapper stack on top of ale-py's C++ emulation.

The authors trained and evaluated through Baselines' wrappers (their fork, commit 0b217d2, gym 0.10.11):
``TimeLimit(raw frames) -> NoopResetEnv(30) -> MaxAndSkipEnv(4) -> [TimeLimit(--max-eplen), eval only]
-> Monitor -> EpisodicLifeEnv -> FireResetEnv (games with FIRE) -> WarpFrame -> ClipRewardEnv``, vectorised
by ``VecFrameStack``. This module reproduces what the agent sees and what the Monitor counts:

* a game starts with 1..noop_max raw NOOP frames (inside the frame skip), then, in games whose action 1
  is FIRE (not MsPacman), two hidden 4-frame skips, FIRE then action 2 (FireResetEnv);
* a lost life ends the learning episode (``done``); before the agent acts again the env runs hidden
  skips: NOOP (EpisodicLifeEnv's reset step), then FIRE and action 2 where the game has FIRE;
* on every ``done`` the frame stack is zeroed and the first frame after the hidden skips goes in slot 3
  (VecFrameStack), so the agent sees ``[0, 0, 0, frame]``;
* hidden skips are not agent steps (they never reach the learner, every agent step executes the agent's
  action), but their reward and length count in the whole-game statistics, as in the Monitor;
* the episode cap counts the game's 4-frame skips, hidden ones included, and restarts only with a new
  game (the eval TimeLimit sits under the Monitor and is reset only on a real reset).

Emulation: one ``ale_py.vector_env.AtariVectorEnv`` per game instance (one native thread each,
``stack_num=1``, SameStep autoreset, no fire reset), so that hidden skips step only the envs that need
them; the stack lives here in numpy. ``AtariVectorEnv``'s async mode cannot do this: it routes each
``send`` to the envs of the previous ``recv``, so a chosen subset cannot be stepped while the others
wait. ALE converts each raw frame to gray before the max over the last two frames (Baselines: max over
RGB, then gray); docs/environments.md gives the measured difference. ``make_eval_env`` also serves
BreakoutInfinite through the Python backend (``fls.envs.python_backend``) with the same contract;
the backend contract and the env's result types are in ``fls.envs.types``.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from fls.envs.python_backend import PythonBackend
from fls.envs.registration import variant_env_id
from fls.envs.types import (
    DEFAULT_MAX_EPISODE_STEPS,
    Backend,
    EnvConfigError,
    EpisodeStats,
    RawStep,
    VecStep,
    check_common,
    check_seed,
)
from fls.games import VARIANTS, Game, base_game, get_game
from fls.frames import FRAME_SKIP, OBS_SIZE, STACK

NOOP = 0
FIRE = 1  # index of FIRE in the minimal action set of every game that has it (MsPacman has none)
FIRE_SECOND = 2  # FireResetEnv's second hidden action
NO_NATIVE_CAP = 2**30  # frames: the cap is counted here, in steps, so ALE's own must never fire


class CppBackend:
    """One single-env ``AtariVectorEnv`` per game, so any subset of games can be stepped alone.

    ``send`` to every selected env returns at once and each env emulates on its own native thread, so a
    full step still runs the envs in parallel. No-ops: ALE draws ``uniform{0..k-1}`` raw no-op frames for
    ``noop_max=k``; this backend asks for ``noop_max + 1`` and ``AtariVecEnv`` restarts the rare game that
    drew 0, which leaves Baselines' ``uniform{1..noop_max}``.
    """

    def __init__(self, game: Game, num_envs: int, *, noop_max: int):
        from ale_py.vector_env import AtariVectorEnv  # deferred: loading the emulator takes ~0.25 s

        self.num_envs = num_envs
        self._envs = [
            AtariVectorEnv(
                game.rom,
                1,
                num_threads=1,
                max_num_frames_per_episode=NO_NATIVE_CAP,
                repeat_action_probability=0.0,
                full_action_space=False,
                autoreset_mode="SameStep",
                img_height=OBS_SIZE,
                img_width=OBS_SIZE,
                grayscale=True,
                stack_num=1,
                frameskip=FRAME_SKIP,
                maxpool=True,
                noop_max=noop_max + 1 if noop_max > 0 else 0,
                episodic_life=False,
                life_loss_info=True,
                reward_clipping=False,
                use_fire_reset=False,
            )
            for _ in range(num_envs)
        ]
        self.action_meanings = [a.name for a in self._envs[0].ale.get_action_set()]
        self._frame_no = np.zeros(num_envs, dtype=np.int64)  # ALE's episode frame number
        self._strength = np.ones(1, dtype=np.float32)
        self._act = [np.zeros(1, np.int64) for _ in range(num_envs)]  # reused send buffers

    def reset(self, ids: np.ndarray, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = len(ids)
        frame = np.empty((k, OBS_SIZE, OBS_SIZE), np.uint8)
        lives, noops = np.empty(k, np.int64), np.empty(k, np.int64)
        for j, (i, s) in enumerate(zip(ids, seeds)):
            obs, info = self._envs[i].ale.reset(np.zeros(1, np.int64), np.array([s], np.int64))
            frame[j] = obs[0, 0]
            lives[j] = info["lives"][0]
            noops[j] = self._frame_no[i] = info["episode_frame_number"][0]
        return frame, lives, noops

    def step(self, ids: np.ndarray, actions: np.ndarray) -> RawStep:
        k = len(ids)
        for i, a in zip(ids.tolist(), actions.tolist()):
            buf = self._act[i]
            buf[0] = a
            self._envs[i].ale.send(buf, self._strength)
        frame = np.empty((k, OBS_SIZE, OBS_SIZE), np.uint8)
        reward = np.empty(k, np.float32)
        lives, frame_no = np.empty(k, np.int64), np.empty(k, np.int64)
        for j, i in enumerate(ids.tolist()):
            obs, r, _term, _trunc, info = self._envs[i].ale.recv()
            frame[j] = obs[0, 0]
            reward[j] = r[0]
            lives[j] = info["lives"][0]
            frame_no[j] = info["episode_frame_number"][0]
        # A step that did not end the game advances the episode frame counter by exactly one skip; after
        # a game over (SameStep) the counter belongs to the new game and equals its no-op count.
        game_over = frame_no != self._frame_no[ids] + FRAME_SKIP
        self._frame_no[ids] = frame_no
        return RawStep(frame, reward, game_over, lives, frame_no)

    def close(self) -> None:
        for env in self._envs:
            env.close()


_RESET = -1  # a program's request for a new game (any other yielded value is an action)


class AtariVecEnv:
    """N Atari games with Baselines' semantics (see the module docstring and ``VecStep``).

    Use: ``obs = env.reset()``; then ``step = env.step(actions)`` per agent step; ``env.pop_episodes()``
    returns the whole games finished since the last call.
    """

    def __init__(
        self,
        backend: Backend,
        game: str,
        seed: int,
        *,
        episodic_life: bool,
        max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS,
        noop_max: int = 30,
        fire_reset: bool = True,
    ):
        check_seed(seed, backend.num_envs)
        self.game = game
        self.episodic_life = episodic_life
        self.max_episode_steps = int(max_episode_steps)
        self.noop_max = noop_max
        self._backend = backend
        self._seed = seed
        self._env_seeds: list[int] = []
        n = backend.num_envs
        meanings = backend.action_meanings
        # Baselines' FireResetEnv is applied only where action 1 is FIRE; in MsPacman action 1 is UP.
        self.fire_reset = fire_reset and len(meanings) >= 3 and meanings[FIRE] == "FIRE"
        self._stack = np.zeros((n, STACK, OBS_SIZE, OBS_SIZE), np.uint8)
        self._frame = np.zeros((n, OBS_SIZE, OBS_SIZE), np.uint8)  # latest frame of each env
        self._lives = np.zeros(n, np.int64)  # ALE's lives after the latest skip
        self._el_lives = np.zeros(n, np.int64)  # EpisodicLifeEnv.lives
        self._noops = np.zeros(n, np.int64)  # no-op frames of the current game's start
        self._real_done = np.zeros(n, bool)  # EpisodicLifeEnv.was_real_done (game over or cap)
        self._need_reset = np.zeros(n, bool)  # the cap ended the game; the backend has not restarted it
        self._ret = np.zeros(n, np.float64)
        self._len = np.zeros(n, np.int64)
        self._over = np.zeros(n, bool)  # per agent step: the game ended by losing / by the cap
        self._capped = np.zeros(n, bool)
        self._finished: list[EpisodeStats] = []
        self._started = False
        self.hidden_steps = 0  # hidden skips run so far (all envs)

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
    def lives(self) -> np.ndarray:
        return self._lives.copy()

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start every env on a new game; env i is seeded ``seed + i`` (default: the constructor's seed).

        Games in progress are dropped without being reported.
        """
        seed = self._seed if seed is None else seed
        check_seed(seed, self.num_envs)
        n = self.num_envs
        ids = np.arange(n)
        seeds = np.arange(seed, seed + n, dtype=np.int64)
        self._frame[:], self._lives[:], self._noops[:] = self._backend.reset(ids, seeds)
        self._env_seeds = [int(s) for s in seeds]
        self._ret[:] = 0.0
        self._len[:] = 0
        self._real_done[:] = True
        self._need_reset[:] = False
        self._finished = []
        self._started = True
        self._run_programs({i: self._restart(i) for i in range(n)})
        self._stack[:] = 0
        self._stack[:, -1] = self._frame
        return self._stack.copy()

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
        n = self.num_envs
        ids = np.arange(n)
        self._over[:] = False
        self._capped[:] = False
        raw = self._backend.step(ids, actions.astype(np.int64))
        self._absorb(ids, raw)
        lost = (self._lives < self._el_lives) & (self._lives > 0) & self.episodic_life
        self._el_lives[:] = self._lives
        done = self._real_done | lost
        self._stack[:, :-1] = self._stack[:, 1:]
        self._stack[:, -1] = self._frame
        if done.any():
            self._run_programs({int(i): self._restart(int(i)) for i in np.flatnonzero(done)})
            self._stack[done] = 0
            self._stack[done, -1] = self._frame[done]
        return VecStep(
            obs=self._stack.copy(),
            reward=raw.reward,
            done=done,
            game_over=self._over.copy(),
            truncated=self._capped & ~self._over,
            lives=self._lives.copy(),
        )

    # -- Baselines' reset logic, one generator per env -------------------------------------------------
    def _absorb(self, ids: np.ndarray, raw: RawStep) -> None:
        """Account one skip of envs ``ids`` like the Monitor and the TimeLimit under EpisodicLifeEnv."""
        self._frame[ids] = raw.frame
        self._lives[ids] = raw.lives
        self._ret[ids] += raw.reward
        self._len[ids] += 1
        over = raw.game_over
        capped = ~over & (self._len[ids] >= self.max_episode_steps)
        self._real_done[ids] = over | capped
        self._noops[ids] = np.where(over, raw.noops, self._noops[ids])
        self._need_reset[ids] |= capped
        for j in np.flatnonzero(over | capped):
            i = int(ids[j])
            self._over[i] |= bool(over[j])
            self._capped[i] |= bool(capped[j])
            self._finished.append(EpisodeStats(env=i, ret=float(self._ret[i]), length=int(self._len[i]),
                                               frames=int(self._len[i]) * FRAME_SKIP, truncated=bool(capped[j])))
            self._ret[i] = 0.0
            self._len[i] = 0

    def _restart(self, i: int) -> Generator[int, None, None]:
        """FireResetEnv.reset over EpisodicLifeEnv.reset, as Baselines wrote them (edge cases included)."""
        yield from self._el_reset(i)
        if self.fire_reset:
            if (yield from self._el_step(i, FIRE)):
                yield from self._el_reset(i)
            if (yield from self._el_step(i, FIRE_SECOND)):
                yield from self._el_reset(i)

    def _el_reset(self, i: int) -> Generator[int, None, None]:
        if self._real_done[i] or not self.episodic_life:
            # a new game: restart it where the cap ended it, and where ALE drew 0 no-ops (Baselines: 1..30)
            if self._need_reset[i]:
                self._need_reset[i] = False
                yield _RESET
            while self.noop_max > 0 and self._noops[i] == 0:
                yield _RESET
            self._real_done[i] = False
        else:
            yield NOOP  # EpisodicLifeEnv: a no-op skip to leave the lost-life state
        self._el_lives[i] = self._lives[i]

    def _el_step(self, i: int, action: int) -> Generator[int, None, bool]:
        """One hidden skip through EpisodicLifeEnv.step; True where FireResetEnv would see ``done``."""
        yield action
        lost = self.episodic_life and self._lives[i] < self._el_lives[i] and self._lives[i] > 0
        self._el_lives[i] = self._lives[i]
        return bool(self._real_done[i] or lost)

    def _run_programs(self, programs: dict[int, Generator[int, None, None]]) -> None:
        """Advance the envs' reset programs together: each round steps (or restarts) only the envs that ask."""
        pending = {}
        for i, prog in programs.items():
            op = next(prog, None)
            if op is not None:
                pending[i] = op
        while pending:
            resets = np.array([i for i, op in pending.items() if op == _RESET], np.int64)
            acts = [(i, op) for i, op in pending.items() if op != _RESET]
            if len(resets):
                frame, lives, noops = self._backend.reset(resets, np.full(len(resets), -1, np.int64))
                self._frame[resets], self._lives[resets], self._noops[resets] = frame, lives, noops
            if acts:
                ids = np.array([i for i, _ in acts], np.int64)
                self._absorb(ids, self._backend.step(ids, np.array([a for _, a in acts], np.int64)))
                self.hidden_steps += len(acts)
                # The cap fell on a hidden skip: Baselines' Monitor would raise here ("needs reset"). fls ends
                # the game there and starts the next one as after any game end (restart, no-ops, FIRE, 2)
                # instead of finishing the old program's skips on a game that is already over.
                for i in ids[self._need_reset[ids]].tolist():
                    programs[i] = self._restart(i)
            nxt = {}
            for i in pending:
                op = next(programs[i], None)
                if op is not None:
                    nxt[i] = op
            pending = nxt

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


def make_vector_env(
    game: str,
    num_envs: int,
    seed: int,
    *,
    episodic_life: bool = True,
    noop_max: int = 30,
    max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS,
    num_threads: int = 0,
    fire_reset: bool = True,
) -> AtariVecEnv:
    """The C++-backed vector env for one of the six games (call ``reset()`` before stepping).

    ``num_threads`` is kept for callers of the former lock-step backend and ignored: every env has its
    own native thread.
    """
    if game.strip().lower() in (v.lower() for v in VARIANTS):
        raise EnvConfigError(f"game: '{game}' is a patched ROM with no C++ vector env; use make_eval_env")
    g = get_game(game)
    check_common(num_envs, noop_max, max_episode_steps)
    check_seed(seed, num_envs)
    backend = CppBackend(g, num_envs, noop_max=noop_max)
    return AtariVecEnv(backend, g.name, seed, episodic_life=episodic_life, max_episode_steps=max_episode_steps,
                       noop_max=noop_max, fire_reset=fire_reset)


def make_eval_env(
    game: str,
    num_envs: int,
    seed: int,
    max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS,
    *,
    noop_max: int = 30,
    episodic_life: bool = True,
    num_threads: int = 0,
    num_workers: int = 0,
) -> AtariVecEnv:
    """Evaluation env: the C++ backend for the six games, a Python one for BreakoutInfinite.

    The authors evaluated with ``episode_life=True`` (their ``make_vec_env`` default), so by default a lost
    life zeroes the stack and runs the hidden skips exactly as in training; only whole games are scored
    (``pop_episodes``). ``num_workers`` (processes; 0 = in this process) is for the Python backend.
    """
    check_common(num_envs, noop_max, max_episode_steps)
    check_seed(seed, num_envs)
    variant = next((v for v in VARIANTS if v.lower() == game.strip().lower()), None)
    if variant is None:
        return make_vector_env(
            game, num_envs, seed, episodic_life=episodic_life, noop_max=noop_max,
            max_episode_steps=max_episode_steps, num_threads=num_threads,
        )
    backend = PythonBackend(variant_env_id(variant), num_envs, base_game(variant), noop_max=noop_max,
                            num_workers=num_workers)
    return AtariVecEnv(backend, variant, seed, episodic_life=episodic_life, max_episode_steps=max_episode_steps,
                       noop_max=noop_max)
