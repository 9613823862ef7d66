"""The paper's evaluation protocol: N whole-game episodes, E envs, N/E first episodes each.

The protocol and the reasons for each choice: docs/evaluation.md, "Protocol and the choices behind it".

Why the accounting is careful: with E envs running in parallel, "stop after the first N episodes to finish"
over-samples short episodes (they finish first), which biases the mean score down for good agents. Instead
every env contributes exactly its first N/E episodes. An env that has met its quota keeps stepping with the
others (a vector env steps as a whole) but its later episodes are ignored; the run ends when every env has
met its quota.

Actions are sampled from the policy (stochastic evaluation, as the authors did) with a ``torch.Generator``
seeded from the config, on the CPU, so that a rerun with the same params gives the same numbers. Episodes
that hit the episode cap (agent steps) are kept with their partial score and flagged ``truncated`` (dropping them would
again bias the sample toward short episodes); the summary counts them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from fls.config import resolved
from fls.device import resolve_device
from fls.envs.vector import make_eval_env
from fls.evaluation.config import EvalConfig, EvaluationError  # noqa: F401 (EvalConfig re-exported)
from fls.games import base_game

SCHEMA_VERSION = 1
EPISODE_FIELDS = ("env", "index_in_env", "reward", "length_frames", "length_steps", "truncated")


@dataclass(frozen=True)
class Episode:
    """One finished whole-game episode as reported by an env (before the ledger assigns its index)."""

    env: int
    reward: float  # unclipped game score
    length_frames: int  # raw emulator frames
    length_steps: int  # agent steps (frames / 4 up to no-op and fire-reset frames)
    truncated: bool  # hit the frame cap; reward is the partial score


class EvalEnv(Protocol):
    """What the loop needs from a vector env; ``fls.envs`` provides the real one, tests a fake."""

    num_envs: int

    def reset(self) -> np.ndarray:  # (E, 4, 84, 84) uint8
        ...

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, list[Episode]]:
        ...

    def close(self) -> None:
        ...


class EpisodeLedger:
    """Keeps each env's first ``per_env`` episodes and ignores the rest."""

    def __init__(self, num_envs: int, per_env: int) -> None:
        self.num_envs = num_envs
        self.per_env = per_env
        self._kept: list[list[Episode]] = [[] for _ in range(num_envs)]
        self.ignored = 0

    def add(self, ep: Episode) -> bool:
        """Record ``ep``; return whether it counts (False once its env has met its quota)."""
        if not 0 <= ep.env < self.num_envs:
            raise ValueError(f"episode from env {ep.env}, but there are {self.num_envs} envs")
        slot = self._kept[ep.env]
        if len(slot) >= self.per_env:
            self.ignored += 1
            return False
        slot.append(ep)
        return True

    @property
    def count(self) -> int:
        return sum(len(s) for s in self._kept)

    @property
    def complete(self) -> bool:
        return all(len(s) >= self.per_env for s in self._kept)

    def env_done(self) -> np.ndarray:
        return np.array([len(s) >= self.per_env for s in self._kept], dtype=bool)

    def rows(self) -> list[dict[str, Any]]:
        """Episodes ordered by (env, index_in_env), as plain dicts (the eval.json ``episodes`` rows)."""
        out = []
        for env, eps in enumerate(self._kept):
            for i, ep in enumerate(eps):
                out.append(
                    {
                        "env": env,
                        "index_in_env": i,
                        "reward": float(ep.reward),
                        "length_frames": int(ep.length_frames),
                        "length_steps": int(ep.length_steps),
                        "truncated": bool(ep.truncated),
                    }
                )
        return out


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean, population std (ddof 0), min, max of the scores, and how many episodes hit the cap."""
    r = np.array([row["reward"] for row in rows], dtype=np.float64)
    steps = np.array([row["length_steps"] for row in rows], dtype=np.float64)
    if r.size == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None, "median": None,
                "n_truncated": 0, "mean_length_steps": None}
    return {
        "n": int(r.size),
        "mean": float(r.mean()),
        "std": float(r.std()),
        "min": float(r.min()),
        "max": float(r.max()),
        "median": float(np.median(r)),
        "n_truncated": int(sum(bool(row["truncated"]) for row in rows)),
        "mean_length_steps": float(steps.mean()),
    }


def check_seeds(eval_seeds: Iterable[int], train_seeds: Iterable[int]) -> None:
    """The protocol evaluates on env seeds never used in training; overlap is an error, not a warning."""
    overlap = sorted(set(eval_seeds) & set(train_seeds))
    if overlap:
        raise EvaluationError(
            f"evaluation env seeds overlap the training run's env seeds {overlap[:8]}"
            f"{'...' if len(overlap) > 8 else ''}: choose another --seed (env i uses seed + i)"
        )


def train_env_seeds(meta: dict[str, Any]) -> list[int]:
    """Env seeds a training run used (seed + i for i < num_envs), from a checkpoint's meta."""
    config = meta.get("config") or {}
    seed = meta.get("seed", config.get("seed"))
    num_envs = config.get("num_envs")
    if seed is None or num_envs is None:
        raise EvaluationError(
            f"{meta.get('path', 'checkpoint')}: cannot tell the training env seeds (config lacks 'seed' or 'num_envs')"
        )
    return [int(seed) + i for i in range(int(num_envs))]


def check_action_set(num_actions: int, game: str, *, where: str = "model") -> None:
    """A policy must have exactly the game's minimal action set (e.g. no Seaquest model on Breakout)."""
    expected = base_game(game).num_actions
    if int(num_actions) != expected:
        raise EvaluationError(
            f"{where} has {num_actions} actions but {game} has {expected}: it was trained on another game"
        )


def check_same_game(trained_on: str | None, game: str, *, where: str = "model") -> None:
    """Play the training game or a patched variant of it (BreakoutInfinite for Breakout), nothing else."""
    if trained_on is None:
        return
    if base_game(game).name != base_game(trained_on).name:
        raise EvaluationError(
            f"{where} was trained on {trained_on}; --game {game} is another game "
            f"(only the training game or its patched variant may be evaluated)"
        )


class ActionSampler:
    """Policy logits -> actions, sampled with a generator seeded once per run (CPU, so CUDA runs sample alike)."""

    def __init__(self, seed: int, deterministic: bool = False) -> None:
        self.deterministic = deterministic
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(int(seed))

    def __call__(self, logits: torch.Tensor) -> np.ndarray:
        logits = logits.detach().float().cpu()
        if self.deterministic:
            return logits.argmax(dim=1).numpy().astype(np.int64)
        probs = torch.softmax(logits, dim=1)
        return torch.multinomial(probs, 1, generator=self.generator).squeeze(1).numpy().astype(np.int64)


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
) -> dict[str, Any]:
    """Play ``cfg.episodes`` episodes of ``game`` and return the eval.json body (without provenance).

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
    return {
        "schema_version": SCHEMA_VERSION,
        "game": game,
        "base_game": base_game(game).name,
        "arch": spec.id if spec is not None else None,
        "num_actions": int(num_actions) if num_actions is not None else None,
        "config": resolved(cfg),
        "device": str(dev),
        "eval_env_seeds": seeds,
        "train_env_seeds": sorted(int(s) for s in train_env_seeds),
        "summary": {**summarize(rows), "max_episode_steps": cfg.max_episode_steps_for(game)},
        "episodes": rows,
        "timing": {
            "wall_s": wall,
            "vector_steps": agent_steps // cfg.num_envs,
            "agent_steps": agent_steps,
            "agent_steps_per_s": agent_steps / wall if wall > 0 else None,
            "ignored_episodes": ledger.ignored,
        },
    }


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
    With ``env_groups`` > 1 the envs are split into that many vector envs of consecutive seeds.
    """
    size = cfg.num_envs // cfg.groups
    envs: list[VecEnvAdapter] = []
    try:
        for g in range(cfg.groups):
            envs.append(VecEnvAdapter(make_eval_env(game, size, cfg.seed + g * size, cfg.max_episode_steps_for(game),
                                                    episodic_life=cfg.episodic_life)))
    except BaseException:
        for e in envs:
            e.close()
        raise
    return envs
