"""The evaluation runner: step vector envs with a policy until the protocol's ledger is full.

The protocol it follows (episode accounting, seeds, action sampling, the checks a policy must pass) is
``fls.evaluation.protocol``; what ``fls evaluate`` does around it (loading, filming, files) is
``fls.evaluation.stage``. ``evaluate`` returns the eval.json body.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from fls.config import resolved
from fls.device import resolve_device
from fls.envs.vector import make_eval_env
from fls.evaluation.config import EvalConfig
from fls.evaluation.protocol import (
    ActionSampler,
    Episode,
    EpisodeLedger,
    EvaluationError,
    check_action_set,
    check_seeds,
    summarize,
)
from fls.evaluation.result import EvalSummary, EvalTiming, EvaluationResult
from fls.games import base_game


class EvalEnv(Protocol):
    """What the loop needs from a vector env; ``fls.envs`` provides the real one, tests a fake."""

    num_envs: int

    def reset(self) -> np.ndarray:  # (E, 4, 84, 84) uint8
        ...

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, list[Episode]]:
        ...

    def close(self) -> None:
        ...


def run_episodes(
    model: torch.nn.Module,
    envs: EvalEnv | Sequence[EvalEnv],
    ledger: EpisodeLedger,
    sampler: ActionSampler,
    device: torch.device,
    *,
    progress: Callable[[int], None] | None = None,
    max_steps: int | None = None,
) -> int:
    """Step the env(s) with ``model`` until ``ledger`` is complete (or ``max_steps`` vector steps).

    Returns the agent steps taken (over all envs). Inference is batched across the envs of a group in
    ``torch.inference_mode``; observations go to the device as uint8 (the model scales them).

    With several env groups (``EvalConfig.env_groups``), group g's envs are ledger envs
    ``offset_g .. offset_g + n_g - 1`` and the groups are pipelined: while one group's emulators run (in a
    worker thread; ale-py releases the GIL), the network acts for the next group. Sampling order is fixed
    (group 0, 1, ..., 0, 1, ...), so results stay deterministic.
    """
    groups = [envs] if not isinstance(envs, Sequence) else list(envs)
    total = sum(e.num_envs for e in groups)
    if total != ledger.num_envs:
        raise EvaluationError(f"the env groups hold {total} envs but the ledger expects {ledger.num_envs}")
    offsets = np.cumsum([0] + [e.num_envs for e in groups])[:-1].tolist()
    budget = None if max_steps is None else max_steps * total

    def act(obs: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(obs)).to(device, non_blocking=True)
        return sampler(model(x).logits)

    def record(finished: list[Episode], offset: int) -> None:
        for ep in finished:
            if offset:
                ep = dataclasses.replace(ep, env=ep.env + offset)
            if ledger.add(ep) and progress is not None:
                progress(1)

    def more(agent_steps: int) -> bool:
        return not ledger.complete and (budget is None or agent_steps < budget)

    agent_steps = 0
    with torch.inference_mode():
        if len(groups) == 1:
            env = groups[0]
            obs = env.reset()
            while more(agent_steps):
                obs, finished = env.step(act(obs))
                agent_steps += total
                record(finished, 0)
            return agent_steps

        with ThreadPoolExecutor(max_workers=len(groups), thread_name_prefix="eval-env") as pool:
            pending = []
            for env in groups:
                obs = env.reset()
                pending.append(pool.submit(env.step, act(obs)))
            try:
                while more(agent_steps):
                    for g, env in enumerate(groups):
                        obs, finished = pending[g].result()
                        agent_steps += env.num_envs
                        record(finished, offsets[g])
                        if not more(agent_steps):
                            break
                        pending[g] = pool.submit(env.step, act(obs))
            finally:
                for fut in pending:  # never leave an emulator stepping while the caller closes it
                    fut.result()
    return agent_steps


def evaluate(
    model: torch.nn.Module,
    game: str,
    cfg: EvalConfig,
    *,
    train_env_seeds: Sequence[int] = (),
    env: EvalEnv | Sequence[EvalEnv] | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> EvaluationResult:
    """Play ``cfg.episodes`` episodes of ``game``: the eval.json body without provenance.

    ``env`` defaults to ``fls.envs`` evaluation env for ``game`` seeded ``cfg.seed + i``; tests pass a fake.
    """
    cfg.validate()
    num_actions = getattr(model, "num_actions", None)
    spec = getattr(model, "spec", None)
    if num_actions is not None:
        check_action_set(num_actions, game)
    seeds = cfg.env_seeds()
    check_seeds(seeds, train_env_seeds)
    dev = torch.device(device) if device is not None else resolve_device(cfg.device)
    model = model.to(dev).eval()

    own_env = env is None
    envs = open_eval_envs(game, cfg) if env is None else ([env] if not isinstance(env, Sequence) else list(env))
    try:
        n = sum(e.num_envs for e in envs)
        if n != cfg.num_envs:
            raise EvaluationError(f"env has {n} envs but num_envs is {cfg.num_envs}")
        ledger = EpisodeLedger(cfg.num_envs, cfg.per_env)
        sampler = ActionSampler(cfg.seed, cfg.deterministic)
        bar = tqdm(total=cfg.episodes, desc=f"evaluate {game}", unit="ep", disable=not progress, leave=False)
        t0 = time.perf_counter()
        try:
            agent_steps = run_episodes(model, envs, ledger, sampler, dev, progress=bar.update)
        finally:
            bar.close()
    finally:
        if own_env:
            for e in envs:
                e.close()
    wall = time.perf_counter() - t0
    actual = [s for e in envs for s in getattr(e, "env_seeds", [])]
    if actual and actual != seeds:  # the envs must have been seeded as recorded (and checked against training)
        raise EvaluationError(f"eval envs were seeded {actual}, expected {seeds}")
    rows = ledger.rows()
    return EvaluationResult(
        game=game,
        base_game=base_game(game).name,
        arch=spec.id if spec is not None else None,
        num_actions=int(num_actions) if num_actions is not None else None,
        config=resolved(cfg),
        device=str(dev),
        eval_env_seeds=seeds,
        train_env_seeds=sorted(int(s) for s in train_env_seeds),
        summary=EvalSummary(**summarize(rows), max_episode_steps=cfg.max_episode_steps_for(game)),
        episodes=rows,
        timing=EvalTiming(
            wall_s=wall,
            vector_steps=agent_steps // cfg.num_envs,
            agent_steps=agent_steps,
            agent_steps_per_s=agent_steps / wall if wall > 0 else None,
            ignored_episodes=ledger.ignored,
        ),
    )


class VecEnvAdapter:
    """``fls.envs.AtariVecEnv`` seen through ``EvalEnv``: observations plus the whole games just finished."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.num_envs = env.num_envs

    @property
    def env_seeds(self) -> list[int]:
        return self.env.env_seeds

    def reset(self) -> np.ndarray:
        return self.env.reset()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, list[Episode]]:
        out = self.env.step(actions)
        finished = [
            Episode(env=e.env, reward=e.ret, length_frames=e.frames, length_steps=e.length, truncated=e.truncated)
            for e in self.env.pop_episodes()
        ]
        return out.obs, finished

    def close(self) -> None:
        self.env.close()


def open_eval_envs(game: str, cfg: EvalConfig) -> list[VecEnvAdapter]:
    """Whole-game envs for ``game`` (BreakoutInfinite included), env i seeded ``cfg.seed + i``.

    No-op reset (1..30) and FIRE after reset and after each lost life, as in training; unclipped scores.
    With ``env_groups`` > 1 the envs are split into that many vector envs of consecutive seeds; BreakoutInfinite's
    Python envs are stepped by ``cfg.workers_per_group`` worker processes per group (0: in this process).
    """
    size = cfg.num_envs // cfg.groups
    envs: list[VecEnvAdapter] = []
    try:
        for g in range(cfg.groups):
            envs.append(VecEnvAdapter(make_eval_env(game, size, cfg.seed + g * size, cfg.max_episode_steps_for(game),
                                                    episodic_life=cfg.episodic_life,
                                                    num_workers=cfg.workers_per_group)))
    except BaseException:
        for e in envs:
            e.close()
        raise
    return envs
