"""One Atari game with the exact emulation of ale-py's C++ vector env, in Python.

Three users: videos and perception frames (a gymnasium env that can also hand out the raw RGB screen),
BreakoutInfinite (a patched ROM that the C++ vector env cannot play; see ``fls.envs.breakout_infinite``)
and the tests that check the two paths agree byte for byte. ``AtariCore`` mirrors the C++
``PreprocessedEnv`` skip for skip (start no-ops, frame skip with a max over the last two grayscale
frames kept in place as ALE keeps it) and ``PythonBackend`` gives ``fls.envs.vector.AtariVecEnv`` the
same backend contract as the C++ one, so Baselines' life-loss and start logic is shared code. Only the
no-op count comes from a different random generator (numpy's, drawn directly in 1..noop_max), so with
``noop_max=0`` the observations are identical to the C++ path's.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from fls.envs.vector import (
    DEFAULT_MAX_EPISODE_STEPS,
    AtariVecEnv,
    EnvConfigError,
    RawStep,
    _check_common,
)
from fls.games import Game, base_game
from fls.preprocessing import FRAME_SKIP, OBS_SIZE, STACK, resize84, to_gray


def _raw_env(env_id: str) -> Any:
    """The bare ``AtariEnv`` (one emulator frame per step, no sticky actions, no time limit wrapper)."""
    import ale_py

    import fls.envs.registration  # noqa: F401  (registers the fls/ ids)

    gym.register_envs(ale_py)
    try:
        env = gym.make(
            env_id,
            frameskip=1,
            repeat_action_probability=0.0,
            full_action_space=False,
            obs_type="ram",  # cheap per-frame observation; the screen is read only when it is needed
            max_num_frames_per_episode=None,  # the cap is counted by AtariVecEnv, in steps
        )
    except gym.error.Error as e:
        raise EnvConfigError(f"env_id: cannot make '{env_id}': {e}") from None
    return env.unwrapped


class AtariCore:
    """One game stepped in 4-frame skips, with the C++ env's skip and max rules; no reset of its own.

    ``reset`` returns ``(frame, lives, noops)``; ``step`` returns ``(frame, raw_reward, game_over, lives)``.
    """

    def __init__(self, env_id: str, *, noop_max: int = 30):
        self.raw = _raw_env(env_id)
        self.ale = self.raw.ale
        self.action_meanings: list[str] = list(self.raw.get_action_meanings())
        self.noop_max = noop_max
        self._rng = np.random.default_rng()
        self._gray = [np.zeros((210, 160), np.uint8), np.zeros((210, 160), np.uint8)]

    def _frame(self, action: int) -> tuple[float, bool]:
        _, reward, terminated, _, _ = self.raw.step(action)
        return float(reward), bool(terminated)

    def _processed(self) -> np.ndarray:
        np.maximum(self._gray[0], self._gray[1], out=self._gray[0])  # in place, as the C++ env does
        return resize84(self._gray[0])

    def screen_rgb(self) -> np.ndarray:
        """The current raw (210, 160, 3) RGB screen."""
        return self.ale.getScreenRGB()

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, int, int]:
        if seed is not None and seed >= 0:
            self.raw.reset(seed=int(seed))
            self._rng = np.random.default_rng(int(seed))
        else:
            self.raw.reset()
        noops = int(self._rng.integers(1, self.noop_max + 1)) if self.noop_max > 0 else 0
        for _ in range(noops):
            _, over = self._frame(0)
            if over:
                self.raw.reset()
        self._gray[0] = to_gray(self.screen_rgb())
        self._gray[1][:] = 0
        return self._processed(), self.ale.lives(), noops

    def step(self, action: int) -> tuple[np.ndarray, float, bool, int]:
        reward = 0.0
        over = False
        for skip_id in range(FRAME_SKIP, 0, -1):
            r, over = self._frame(action)
            reward += r
            if over:
                break
            if skip_id <= 2:
                self._gray[skip_id - 1] = to_gray(self.screen_rgb())
        return self._processed(), reward, over, self.ale.lives()

    def close(self) -> None:
        self.raw.close()


class _CoreGroup:
    """Some ``AtariCore``s stepped in turn, with SameStep autoreset (runs in-process or in a worker)."""

    def __init__(self, env_id: str, count: int, noop_max: int):
        self.cores = [AtariCore(env_id, noop_max=noop_max) for _ in range(count)]

    def reset(self, arg: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ids, seeds = arg
        out = [self.cores[i].reset(int(s)) for i, s in zip(ids, seeds)]
        frame = np.stack([o[0] for o in out]) if out else np.zeros((0, OBS_SIZE, OBS_SIZE), np.uint8)
        return frame, np.array([o[1] for o in out], np.int64), np.array([o[2] for o in out], np.int64)

    def step(self, arg: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, ...]:
        ids, actions = arg
        k = len(ids)
        frame = np.empty((k, OBS_SIZE, OBS_SIZE), np.uint8)
        reward = np.zeros(k, np.float32)
        over = np.zeros(k, bool)
        lives, noops = np.zeros(k, np.int64), np.zeros(k, np.int64)
        for j, (i, a) in enumerate(zip(ids, actions)):
            core = self.cores[i]
            frame[j], reward[j], over[j], lives[j] = core.step(int(a))
            if over[j]:
                frame[j], lives[j], noops[j] = core.reset()
        return frame, reward, over, lives, noops

    def close(self) -> None:
        for c in self.cores:
            c.close()


def _worker(conn: Any, env_id: str, count: int, noop_max: int) -> None:
    group = _CoreGroup(env_id, count, noop_max)
    conn.send(group.cores[0].action_meanings)
    while True:
        cmd, arg = conn.recv()
        if cmd == "close":
            group.close()
            conn.close()
            return
        conn.send(getattr(group, cmd)(arg))


class PythonBackend:
    """N ``AtariCore``s behind the ``fls.envs.vector.Backend`` contract (SameStep autoreset).

    ``num_workers=0`` steps them in this process; otherwise they are split over that many worker
    processes (spawned, so that no emulator or torch thread is forked), which scales with cores.
    """

    def __init__(self, env_id: str, num_envs: int, game: Game, *, noop_max: int, num_workers: int = 0):
        if not isinstance(num_workers, int) or num_workers < 0:
            raise EnvConfigError(f"num_workers: expected an integer >= 0, got {num_workers!r}")
        self.num_envs = num_envs
        self._local: _CoreGroup | None = None
        self._conns: list[Any] = []
        self._procs: list[Any] = []
        if num_workers == 0:
            self._local = _CoreGroup(env_id, num_envs, noop_max)
            self.action_meanings = self._local.cores[0].action_meanings
        else:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")
            counts = [len(c) for c in np.array_split(np.arange(num_envs), min(num_workers, num_envs))]
            self._bounds = np.cumsum([0, *counts])
            for count in counts:
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(child, env_id, count, noop_max), daemon=True)
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
            self.action_meanings = [c.recv() for c in self._conns][0]
        if len(self.action_meanings) != game.num_actions:
            self.close()
            raise EnvConfigError(f"env_id: '{env_id}' has {len(self.action_meanings)} actions, {game.name} has {game.num_actions}")

    @property
    def cores(self) -> list[AtariCore]:
        """The in-process cores (``num_workers=0`` only)."""
        if self._local is None:
            raise RuntimeError("PythonBackend.cores: the cores live in worker processes")
        return self._local.cores

    def _call(self, cmd: str, ids: np.ndarray, per_env: np.ndarray) -> tuple[np.ndarray, ...]:
        if self._local is not None:
            return getattr(self._local, cmd)((ids, per_env))
        owner = np.searchsorted(self._bounds, ids, side="right") - 1
        asked = []
        for k, conn in enumerate(self._conns):
            sel = np.flatnonzero(owner == k)
            if len(sel):
                conn.send((cmd, (ids[sel] - self._bounds[k], per_env[sel])))
                asked.append((k, sel))
        parts = [(sel, self._conns[k].recv()) for k, sel in asked]
        n_fields = len(parts[0][1])
        out = []
        for f in range(n_fields):
            ref = parts[0][1][f]
            arr = np.empty((len(ids), *ref.shape[1:]), ref.dtype)
            for sel, res in parts:
                arr[sel] = res[f]
            out.append(arr)
        return tuple(out)

    def reset(self, ids: np.ndarray, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._call("reset", np.asarray(ids), np.asarray(seeds))

    def step(self, ids: np.ndarray, actions: np.ndarray) -> RawStep:
        return RawStep(*self._call("step", np.asarray(ids), np.asarray(actions)))

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
        for conn in self._conns:
            try:
                conn.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
        self._conns, self._procs = [], []


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
        self._backend = PythonBackend(env_id, 1, game, noop_max=noop_max)
        self.core = self._backend.cores[0]
        self._vec = AtariVecEnv(self._backend, game.name, 0, episodic_life=episodic_life,
                                max_episode_steps=max_episode_steps, noop_max=noop_max, fire_reset=fire_reset)
        self.fire_reset = self._vec.fire_reset
        self.episodic_life = episodic_life
        self.clip_rewards = clip_rewards
        self.render_mode = "rgb_array"
        self.observation_space = gym.spaces.Box(0, 255, (STACK, OBS_SIZE, OBS_SIZE), np.uint8)
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


def make_single_env(
    game: str,
    *,
    seed: int | None = None,
    noop_max: int = 30,
    fire_reset: bool = True,
    episodic_life: bool = False,
    clip_rewards: bool = False,
    max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS,
    env_id: str | None = None,
) -> AtariSingleEnv:
    """One game as a gymnasium env; ``env_id`` overrides the gym id (e.g. BreakoutInfinite's)."""
    _check_common(1, noop_max, max_episode_steps)
    from fls.envs.registration import variant_env_id

    g = base_game(game)
    if env_id is None:
        env_id = variant_env_id(game) or g.gym_id
    return AtariSingleEnv(
        env_id,
        g,
        seed=seed,
        noop_max=noop_max,
        fire_reset=fire_reset,
        episodic_life=episodic_life,
        clip_rewards=clip_rewards,
        max_episode_steps=max_episode_steps,
    )
