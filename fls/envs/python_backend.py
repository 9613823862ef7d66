"""N Atari games emulated in Python with the exact skip rules of ale-py's C++ vector env.

``AtariCore`` mirrors the C++ ``PreprocessedEnv`` skip for skip (start no-ops, frame skip with a max over
the last two grayscale frames kept in place as ALE keeps it); ``PythonBackend`` puts N of them behind the
``fls.envs.types.Backend`` contract, in this process or in worker processes. Its users: BreakoutInfinite
in ``fls.envs.vector.make_eval_env`` (a patched ROM that the C++ env cannot play), the single gymnasium
env of ``fls.envs.single`` (videos need the raw RGB screen) and the tests that check both paths agree byte
for byte. Only the no-op count comes from a different random generator (numpy's, drawn directly in
1..noop_max), so with ``noop_max=0`` the observations are identical to the C++ path's.
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

import gymnasium as gym
import numpy as np

import fls.envs.registration  # noqa: F401  (registers the fls/ ids that gym.make is asked for)
from fls.envs.types import EnvConfigError, RawStep
from fls.games import Game
from fls.frames import FRAME_SHAPE, FRAME_SKIP, OBS_SIZE
from fls.preprocessing import resize84, to_gray


def _raw_env(env_id: str) -> Any:
    """The bare ``AtariEnv`` (one emulator frame per step, no sticky actions, no time limit wrapper)."""
    import ale_py  # deferred: loading the emulator takes ~0.25 s, which importing this module should not cost

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
        self._gray = [np.zeros(FRAME_SHAPE, np.uint8), np.zeros(FRAME_SHAPE, np.uint8)]

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
