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

The runner that plays the episodes is ``fls.evaluation.evaluate``; this module holds no env and no model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fls.evaluation.config import EvaluationError
from fls.games import base_game

EPISODE_FIELDS = ("env", "index_in_env", "reward", "length_frames", "length_steps", "truncated")


@dataclass(frozen=True)
class Episode:
    """One finished whole-game episode as reported by an env (before the ledger assigns its index)."""

    env: int
    reward: float  # unclipped game score
    length_frames: int  # raw emulator frames
    length_steps: int  # agent steps (frames / 4 up to no-op and fire-reset frames)
    truncated: bool  # hit the frame cap; reward is the partial score


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
            f"{'...' if len(overlap) > 8 else ''}: choose another seed (env i uses seed + i)"
        )


def train_env_seeds(config: dict[str, Any], *, where: str = "checkpoint") -> list[int]:
    """Env seeds a training run used (seed + i for i < num_envs), from its recorded config (a checkpoint's)."""
    seed = config.get("seed")
    num_envs = config.get("num_envs")
    if seed is None or num_envs is None:
        raise EvaluationError(
            f"{where}: cannot tell the training env seeds (config lacks 'seed' or 'num_envs')"
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
            f"{where} was trained on {trained_on}; game {game} is another one "
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

