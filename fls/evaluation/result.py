"""What an evaluation produces, typed: the protocol's result and the eval.json record around it.

``evaluate`` returns an ``EvaluationResult`` (numbers only); ``fls evaluate`` wraps it in an ``EvalRecord``
with the provenance (weights, training game, video, run info) and writes ``EvalRecord.to_json()`` as
eval.json. ``to_json`` gives the same keys and values the dicts of earlier versions had, so eval.json's
bytes do not change; ``from_json`` reads a file back and names the file and field it cannot read.
Schema: docs/evaluation.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fls.checkpoint import WeightsRef
from fls.json_fields import FlatRecord, field_of

SCHEMA_VERSION = 1


class EvalFileError(ValueError):
    """An eval.json that does not have the documented schema (message names the file and field)."""


def _field(data: Any, key: str, where: str) -> Any:
    return field_of(data, key, where, EvalFileError)


@dataclass(frozen=True)
class EvalSummary(FlatRecord):
    """``summarize`` of the episode rows plus the episode cap that applied (eval.json ``summary``)."""

    n: int
    mean: float | None  # None when there are no episodes (likewise std .. median, mean_length_steps)
    std: float | None
    min: float | None
    max: float | None
    median: float | None
    n_truncated: int
    mean_length_steps: float | None
    max_episode_steps: int

    file_error = EvalFileError


@dataclass(frozen=True)
class EvalTiming(FlatRecord):
    """How long the run took (eval.json ``timing``); never part of a comparison between runs."""

    wall_s: float
    vector_steps: int
    agent_steps: int
    agent_steps_per_s: float | None
    ignored_episodes: int  # episodes finished after their env had met its quota

    file_error = EvalFileError


@dataclass
class EvaluationResult:
    """The protocol's outcome for one policy on one game (what ``evaluate`` returns)."""

    game: str
    base_game: str
    arch: str | None
    num_actions: int | None
    config: dict[str, Any]  # the resolved EvalConfig
    device: str
    eval_env_seeds: list[int]
    train_env_seeds: list[int]
    summary: EvalSummary
    episodes: list[dict[str, Any]]  # rows with EPISODE_FIELDS, ordered by (env, index_in_env)
    timing: EvalTiming
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "game": self.game,
            "base_game": self.base_game,
            "arch": self.arch,
            "num_actions": self.num_actions,
            "config": self.config,
            "device": self.device,
            "eval_env_seeds": self.eval_env_seeds,
            "train_env_seeds": self.train_env_seeds,
            "summary": self.summary.to_json(),
            "episodes": self.episodes,
            "timing": self.timing.to_json(),
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> EvaluationResult:
        episodes = _field(data, "episodes", where)
        if not isinstance(episodes, list):
            raise EvalFileError(f"{where}: field 'episodes' must be a list, got {type(episodes).__name__}")
        return cls(
            schema_version=_field(data, "schema_version", where),
            game=_field(data, "game", where),
            base_game=_field(data, "base_game", where),
            arch=_field(data, "arch", where),
            num_actions=_field(data, "num_actions", where),
            config=_field(data, "config", where),
            device=_field(data, "device", where),
            eval_env_seeds=_field(data, "eval_env_seeds", where),
            train_env_seeds=_field(data, "train_env_seeds", where),
            summary=EvalSummary.from_json(_field(data, "summary", where), f"{where}: summary"),
            episodes=episodes,
            timing=EvalTiming.from_json(_field(data, "timing", where), f"{where}: timing"),
        )


@dataclass
class EvalRecord:
    """eval.json: the result plus where the weights came from, what they were trained on, video, run info."""

    result: EvaluationResult
    checkpoint: WeightsRef
    trained_on: str | None  # the checkpoint's training game; None for a fresh model
    video: dict[str, Any] | None  # ``make_perception_video``'s summary when filmed
    run_info: dict[str, Any]
    paths: dict[str, str] = field(default_factory=dict)  # files written (not part of eval.json)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.result.to_json(),
            "checkpoint": self.checkpoint.to_json(),
            "trained_on": self.trained_on,
            "video": self.video,
            "run_info": self.run_info,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> EvalRecord:
        try:
            checkpoint = WeightsRef.from_json(_field(data, "checkpoint", where), f"{where}: checkpoint")
        except ValueError as exc:
            raise EvalFileError(str(exc)) from None
        return cls(
            result=EvaluationResult.from_json(data, where),
            checkpoint=checkpoint,
            trained_on=_field(data, "trained_on", where),
            video=_field(data, "video", where),
            run_info=_field(data, "run_info", where),
        )
