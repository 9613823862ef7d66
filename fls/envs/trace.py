"""``fls env trace``: what the training env shows an agent that plays fixed random actions.

It lets a researcher look at exactly the (4, 84, 84) inputs the network gets (zeroed stacks after lost
lives, the start no-ops and hidden skips already applied), and it is how the protocol is checked against
a plain re-statement of Baselines' wrappers (tests/baselines_reference.py).

Schema of the NPZ file (N = steps):
    obs       uint8 (N+1, 4, 84, 84)  observation before each action, then the last one
    actions   int64 (N,)               numpy.random.default_rng(actions_seed).integers(0, n_actions, N)
    reward    float32 (N,)             raw (unclipped) score of each agent step (hidden skips excluded)
    done      bool (N,)                learning-episode end (lost life with episodic life, game end)
    game_over bool (N,)                the whole game ended on the step (lost its last life or hit the cap)
    lives     int64 (N+1,)             lives before each action, then after the last
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fls.atomic import atomic_path
from fls.envs.types import DEFAULT_MAX_EPISODE_STEPS, EnvConfigError
from fls.envs.vector import make_eval_env
from fls.frames import OBS_SHAPE
from fls.settings import check_fields, setting

TRACE_FIELDS = ("obs", "actions", "reward", "done", "game_over", "lives")


@dataclass(frozen=True)
class TraceConfig:
    """What ``fls env trace`` plays: game, length and action seed (required), and the env's settings."""

    game: str
    steps: int
    actions_seed: int
    seed: int = setting(0, ge=0, help="Env seed (ALE's and the no-op draw's).")
    noop_max: int = setting(30, ge=0, help="Raw no-op frames at game start: 1..K (0: none).")
    episodic_life: bool = setting(True, help="A lost life ends the learning episode (Baselines' default).")
    max_episode_steps: int = setting(DEFAULT_MAX_EPISODE_STEPS, ge=1, help="Whole-game cap in agent steps.")

    def validate(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise EnvConfigError(f"steps: expected a positive integer, got {self.steps!r}")
        if not isinstance(self.actions_seed, int) or self.actions_seed < 0:
            raise EnvConfigError(f"actions_seed: expected an integer >= 0, got {self.actions_seed!r}")
        check_fields(self, "env trace", EnvConfigError)


def trace_env(cfg: TraceConfig, progress: bool = False) -> dict[str, np.ndarray]:
    """Play ``cfg.steps`` random actions in one training env (BreakoutInfinite: its Python backend)."""
    cfg.validate()
    env = make_eval_env(cfg.game, 1, cfg.seed, cfg.max_episode_steps, noop_max=cfg.noop_max,
                        episodic_life=cfg.episodic_life)
    n = cfg.steps
    try:
        actions = np.random.default_rng(cfg.actions_seed).integers(0, env.num_actions, n).astype(np.int64)
        obs = np.empty((n + 1, *OBS_SHAPE), np.uint8)
        lives = np.empty(n + 1, np.int64)
        reward = np.empty(n, np.float32)
        done, game_over = np.zeros(n, bool), np.zeros(n, bool)
        obs[0] = env.reset()[0]
        lives[0] = env.lives[0]
        from tqdm.auto import tqdm

        for t in tqdm(range(n), disable=not progress, desc=f"trace {cfg.game}", unit="step"):
            st = env.step(actions[t : t + 1])
            obs[t + 1], lives[t + 1], reward[t] = st.obs[0], st.lives[0], st.reward[0]
            done[t], game_over[t] = st.done[0], st.game_over[0] or st.truncated[0]
    finally:
        env.close()
    return {"obs": obs, "actions": actions, "reward": reward, "done": done, "game_over": game_over, "lives": lives}


def write_trace(trace: dict[str, np.ndarray], path: str | Path) -> Path:
    """Write the trace as an NPZ (atomically; plain arrays, loadable with ``allow_pickle=False``)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **{k: trace[k] for k in TRACE_FIELDS})
    return Path(path)
