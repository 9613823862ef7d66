"""One Atari game with the exact preprocessing of ale-py's C++ vector env, in Python.

Three users: videos and perception frames (a gymnasium env that can also hand out the raw RGB screen),
BreakoutInfinite (a patched ROM that the C++ vector env cannot play; see ``fls.envs.breakout_infinite``)
and the tests that check the two paths agree byte for byte. ``AtariCore`` mirrors the C++
``PreprocessedEnv`` step for step (FIRE then no-ops at reset, zero-filled frame stack, frame skip with a
max over the last two grayscale frames, the frame cap counted in emulator frames over the whole game);
only the no-op count comes from a different random generator, so with ``noop_max=0`` the observations
are identical to the vector env's.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from fls.envs.vector import FIRE, BackendStep, EnvConfigError, _check_common
from fls.games import Game, base_game
from fls.preprocessing import FRAME_SKIP, OBS_SIZE, resize84, to_gray


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
            max_num_frames_per_episode=None,  # the cap is counted here, over agent-step frames
        )
    except gym.error.Error as e:
        raise EnvConfigError(f"env_id: cannot make '{env_id}': {e}") from None
    return env.unwrapped


class AtariCore:
    """One game stepped in agent steps, with the C++ vector env's reset and frame-skip rules.

    ``step`` returns ``(obs, raw_reward, game_over, lost_life, capped)``; it does not reset by itself.
    """

    def __init__(self, env_id: str, *, noop_max: int = 30, max_episode_frames: int = 108_000, frame_stack: int = 4):
        self.raw = _raw_env(env_id)
        self.ale = self.raw.ale
        self.action_meanings: list[str] = list(self.raw.get_action_meanings())
        self.noop_max = noop_max
        self.max_episode_frames = max_episode_frames
        self.frame_stack = frame_stack
        self.has_fire = "FIRE" in self.action_meanings
        self._fire_index = self.action_meanings.index("FIRE") if self.has_fire else 0
        self._rng = np.random.default_rng()
        self._gray = [np.zeros((210, 160), np.uint8), np.zeros((210, 160), np.uint8)]
        self._stack = np.zeros((frame_stack, OBS_SIZE, OBS_SIZE), np.uint8)
        self._elapsed = 0
        self._lives = 0

    def _frame(self, action: int) -> tuple[float, bool]:
        _, reward, terminated, _, _ = self.raw.step(action)
        return float(reward), bool(terminated)

    def _push(self) -> None:
        np.maximum(self._gray[0], self._gray[1], out=self._gray[0])  # in place, as the C++ env does
        self._stack[:-1] = self._stack[1:]
        self._stack[-1] = resize84(self._gray[0])

    def screen_rgb(self) -> np.ndarray:
        """The current raw (210, 160, 3) RGB screen."""
        return self.ale.getScreenRGB()

    def reset(self, seed: int | None = None) -> np.ndarray:
        if seed is not None:
            self.raw.reset(seed=int(seed))
            self._rng = np.random.default_rng(int(seed))
        else:
            self.raw.reset()
        noops = int(self._rng.integers(0, self.noop_max)) if self.noop_max > 0 else 0
        if self.has_fire:
            self._frame(self._fire_index)
            noops -= 1
        for _ in range(max(noops, 0)):
            _, over = self._frame(0)
            if over:
                self.raw.reset()
        self._stack[:] = 0
        self._gray[0] = to_gray(self.screen_rgb())
        self._gray[1][:] = 0
        self._push()
        self._elapsed = 0
        self._lives = self.ale.lives()
        return self._stack.copy()

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, bool]:
        reward = 0.0
        over = lost = False
        for skip_id in range(FRAME_SKIP, 0, -1):
            r, over = self._frame(action)
            reward += r
            self._elapsed += 1
            lives = self.ale.lives()
            lost = lives < self._lives and lives > 0
            if over or self._elapsed >= self.max_episode_frames:
                break
            if skip_id <= 2:
                self._gray[skip_id - 1] = to_gray(self.screen_rgb())
        self._push()
        self._lives = self.ale.lives()
        return self._stack.copy(), reward, over, lost, self._elapsed >= self.max_episode_frames

    def close(self) -> None:
        self.raw.close()


class _CoreGroup:
    """Some ``AtariCore``s stepped in turn, with SameStep autoreset (runs in-process or in a worker)."""

    def __init__(self, env_id: str, count: int, noop_max: int, max_episode_frames: int):
        self.cores = [AtariCore(env_id, noop_max=noop_max, max_episode_frames=max_episode_frames) for _ in range(count)]

    def reset(self, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
        obs = np.stack([c.reset(int(s)) for c, s in zip(self.cores, seeds)])
        return obs, np.array([c.ale.lives() for c in self.cores], dtype=np.int64)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        n = len(self.cores)
        obs = np.empty((n, *self.cores[0]._stack.shape), np.uint8)
        reward = np.zeros(n, np.float32)
        term, trunc, reset = (np.zeros(n, bool) for _ in range(3))
        for i, (core, a) in enumerate(zip(self.cores, actions)):
            o, r, over, lost, capped = core.step(int(a))
            reward[i], term[i] = r, over or lost
            trunc[i] = capped and not over
            if over or capped:
                reset[i] = True
                o = core.reset()
            obs[i] = o
        lives = np.array([c.ale.lives() for c in self.cores], dtype=np.int64)
        return obs, reward, term | trunc, trunc, reset, lives

    def close(self) -> None:
        for c in self.cores:
            c.close()


def _worker(conn: Any, env_id: str, count: int, noop_max: int, max_episode_frames: int) -> None:
    group = _CoreGroup(env_id, count, noop_max, max_episode_frames)
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

    def __init__(
        self, env_id: str, num_envs: int, game: Game, *, noop_max: int, max_episode_frames: int, num_workers: int = 0
    ):
        if not isinstance(num_workers, int) or num_workers < 0:
            raise EnvConfigError(f"num_workers: expected an integer >= 0, got {num_workers!r}")
        self.num_envs = num_envs
        self._local: _CoreGroup | None = None
        self._conns: list[Any] = []
        self._procs: list[Any] = []
        if num_workers == 0:
            self._local = _CoreGroup(env_id, num_envs, noop_max, max_episode_frames)
            self.action_meanings = self._local.cores[0].action_meanings
        else:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")
            counts = [len(c) for c in np.array_split(np.arange(num_envs), min(num_workers, num_envs))]
            self._bounds = np.cumsum([0, *counts])
            for count in counts:
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(child, env_id, count, noop_max, max_episode_frames), daemon=True)
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
            self.action_meanings = [c.recv() for c in self._conns][0]
        if len(self.action_meanings) != game.num_actions:
            self.close()
            raise EnvConfigError(f"env_id: '{env_id}' has {len(self.action_meanings)} actions, {game.name} has {game.num_actions}")

    def _call(self, cmd: str, per_env: np.ndarray) -> list[tuple[np.ndarray, ...]]:
        for k, conn in enumerate(self._conns):
            conn.send((cmd, per_env[self._bounds[k] : self._bounds[k + 1]]))
        return [conn.recv() for conn in self._conns]

    def reset(self, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._local is not None:
            return self._local.reset([int(s) for s in seeds])
        parts = self._call("reset", np.asarray(seeds))
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def step(self, actions: np.ndarray) -> BackendStep:
        if self._local is not None:
            return BackendStep(*self._local.step(actions))
        parts = self._call("step", np.asarray(actions))
        return BackendStep(*(np.concatenate([p[j] for p in parts]) for j in range(6)))

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
    """A gymnasium env with (frame_stack, 84, 84) uint8 observations and Baselines' Atari wrappers.

    ``fire_reset``: FIRE at the start of every game and, in games whose action 1 is FIRE, one FIRE agent
    step after every lost life (hidden inside ``step``, or inside ``reset`` with ``episodic_life``,
    like Baselines' FireResetEnv). ``info`` carries ``lives``, ``raw_reward`` and, when a whole game ends,
    ``episode = {"r": raw score, "l": agent steps, "frames": emulator frames}`` like Baselines' Monitor.
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        env_id: str,
        *,
        seed: int | None = None,
        noop_max: int = 30,
        fire_reset: bool = True,
        episodic_life: bool = False,
        clip_rewards: bool = False,
        max_episode_frames: int = 108_000,
        frame_stack: int = 4,
    ):
        self.core = AtariCore(env_id, noop_max=noop_max, max_episode_frames=max_episode_frames, frame_stack=frame_stack)
        if not fire_reset:
            self.core.has_fire = False
        meanings = self.core.action_meanings
        self.fire_after_life_loss = fire_reset and len(meanings) >= 3 and meanings[FIRE] == "FIRE"
        self.episodic_life = episodic_life
        self.clip_rewards = clip_rewards
        self.render_mode = "rgb_array"
        self.observation_space = gym.spaces.Box(0, 255, (frame_stack, OBS_SIZE, OBS_SIZE), np.uint8)
        self.action_space = gym.spaces.Discrete(len(meanings))
        self._seed = seed
        self._game_live = False  # a game is in progress (after an episodic-life "reset" it continues)
        self._ret = 0.0
        self._len = 0

    def get_action_meanings(self) -> list[str]:
        return list(self.core.action_meanings)

    def render(self) -> np.ndarray:
        """The current raw (210, 160, 3) RGB screen (for videos)."""
        return self.core.screen_rgb()

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if self._game_live and self.episodic_life:
            # Baselines' EpisodicLifeEnv: a lost life ended the learning episode, the game goes on;
            # one hidden step (FIRE where action 1 is FIRE, else NOOP) starts the next life.
            return self._hidden_step(FIRE if self.fire_after_life_loss else 0)
        if seed is None and self._seed is not None:
            seed, self._seed = self._seed, None
        obs = self.core.reset(seed)
        self._game_live, self._ret, self._len = True, 0.0, 0
        return obs, {"lives": self.core.ale.lives()}

    def _hidden_step(self, action: int) -> tuple[np.ndarray, dict]:
        obs, r, over, _lost, capped = self.core.step(action)
        info = self._account(r, over, capped)
        return obs, info

    def _account(self, r: float, over: bool, capped: bool) -> dict:
        self._ret += r
        self._len += 1
        info: dict[str, Any] = {"lives": self.core.ale.lives(), "raw_reward": r}
        if over or capped:
            info["episode"] = {"r": self._ret, "l": self._len, "frames": self._len * FRAME_SKIP, "truncated": not over}
            self._game_live = False
        return info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        if not self._game_live:
            raise RuntimeError("step() called after the game ended; call reset()")
        obs, r, over, lost, capped = self.core.step(int(action))
        info = self._account(r, over, capped)
        reward = r
        if lost and not (over or capped):
            if self.episodic_life:
                return obs, float(np.sign(r)) if self.clip_rewards else r, True, False, info
            if self.fire_after_life_loss:
                obs, fire_info = self._hidden_step(FIRE)
                reward += fire_info["raw_reward"]
                fire_info["raw_reward"] = reward
                info = fire_info
                over = "episode" in info and not info["episode"]["truncated"]
                capped = "episode" in info and info["episode"]["truncated"]
        out_r = float(np.sign(reward)) if self.clip_rewards else reward
        return obs, out_r, bool(over), bool(capped and not over), info

    def close(self) -> None:
        self.core.close()


def make_single_env(
    game: str,
    *,
    seed: int | None = None,
    noop_max: int = 30,
    fire_reset: bool = True,
    episodic_life: bool = False,
    clip_rewards: bool = False,
    max_episode_frames: int = 108_000,
    frame_stack: int = 4,
    env_id: str | None = None,
) -> AtariSingleEnv:
    """One game as a gymnasium env; ``env_id`` overrides the gym id (e.g. BreakoutInfinite's)."""
    _check_common(1, noop_max, max_episode_frames)
    if not isinstance(frame_stack, int) or frame_stack < 1:
        raise EnvConfigError(f"frame_stack: expected a positive integer, got {frame_stack!r}")
    if env_id is None:
        from fls.envs.registration import variant_env_id

        g = base_game(game)
        env_id = variant_env_id(game) or g.gym_id
    return AtariSingleEnv(
        env_id,
        seed=seed,
        noop_max=noop_max,
        fire_reset=fire_reset,
        episodic_life=episodic_life,
        clip_rewards=clip_rewards,
        max_episode_frames=max_episode_frames,
        frame_stack=frame_stack,
    )
