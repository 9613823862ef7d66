"""What ``fls score`` records, typed: the scored model and the stage's summary.json.

``to_json`` gives the same keys and values the dicts of earlier versions had, so summary.json's bytes do
not change; ``from_json`` reads a summary back and names the file and field it cannot read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fls.checkpoint import WeightsRef
from fls.json_fields import FlatRecord, field_of

SCHEMA_VERSION = 2


class ScoreFileError(ValueError):
    """A score summary.json that does not have the documented schema (message names the file and field)."""


def _field(data: Any, key: str, where: str) -> Any:
    return field_of(data, key, where, ScoreFileError)


@dataclass(frozen=True)
class MetricStats(FlatRecord):
    """One metric over the scored inputs (``fls.metrics.summarise``): undefined values are counted, not averaged."""

    mean: float | None  # None when no input had a defined value
    std: float | None
    n_defined: int
    n_undefined: int

    file_error = ScoreFileError


@dataclass(frozen=True)
class ScoredModel:
    """The policy whose saliency was scored (summary.json ``model``); ``arch`` None: a model-free reference map."""

    arch: str | None
    weights: WeightsRef | None = None  # where the weights came from (recorded as ``checkpoint``)
    trained_game: str | None = None
    train_seed: int | None = None

    @property
    def model_free(self) -> bool:
        return self.arch is None

    def to_json(self) -> dict[str, Any]:
        if self.model_free:  # a reference map records only that there was no model
            return {"arch": None, "checkpoint": None}
        return {
            "arch": self.arch,
            "checkpoint": self.weights.to_json() if self.weights is not None else None,
            "trained_game": self.trained_game,
            "train_seed": self.train_seed,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> ScoredModel:
        arch = _field(data, "arch", where)
        ref = _field(data, "checkpoint", where)
        try:
            weights = None if ref is None else WeightsRef.from_json(ref, f"{where}.checkpoint")
        except ValueError as exc:
            raise ScoreFileError(str(exc)) from None
        if arch is None:
            return cls(None)
        return cls(arch, weights, _field(data, "trained_game", where), _field(data, "train_seed", where))


@dataclass
class ScoreSummary:
    """summary.json of one ``fls score`` run: what was scored, against which gaze, and the metric statistics."""

    game: str
    method: str
    model: ScoredModel
    atari_head: str  # the preprocessed Atari-HEAD folder scored against
    release: str  # the Atari-HEAD release(s) of the trials, comma-separated
    alignment: str
    protocol: str
    synthetic_gaze: bool  # the gaze came from `fls atari-head sample`: a test of the code, not a result
    n_trials: int
    n_inputs: int
    n_inputs_with_fixations: int
    metrics: dict[str, MetricStats]
    config: dict[str, Any]  # the resolved ScoreConfig
    device: str
    seconds: float
    schema_version: int = SCHEMA_VERSION

    @property
    def arch(self) -> str | None:
        return self.model.arch

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "game": self.game,
            "method": self.method,
            "arch": self.model.arch,
            "model": self.model.to_json(),
            "atari_head": self.atari_head,
            "release": self.release,
            "alignment": self.alignment,
            "protocol": self.protocol,
            "synthetic_gaze": self.synthetic_gaze,
            "n_trials": self.n_trials,
            "n_inputs": self.n_inputs,
            "n_inputs_with_fixations": self.n_inputs_with_fixations,
            "metrics": {m: s.to_json() for m, s in self.metrics.items()},
            "config": self.config,
            "device": self.device,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> ScoreSummary:
        block = _field(data, "metrics", where)
        if not isinstance(block, dict):
            raise ScoreFileError(f"{where}: field 'metrics' must be an object, got {type(block).__name__}")
        return cls(
            schema_version=_field(data, "schema_version", where),
            game=_field(data, "game", where),
            method=_field(data, "method", where),
            model=ScoredModel.from_json(_field(data, "model", where), f"{where}: model"),
            atari_head=_field(data, "atari_head", where),
            release=_field(data, "release", where),
            alignment=_field(data, "alignment", where),
            protocol=_field(data, "protocol", where),
            synthetic_gaze=_field(data, "synthetic_gaze", where),
            n_trials=_field(data, "n_trials", where),
            n_inputs=_field(data, "n_inputs", where),
            n_inputs_with_fixations=_field(data, "n_inputs_with_fixations", where),
            metrics={m: MetricStats.from_json(v, f"{where}: metrics.{m}") for m, v in block.items()},
            config=_field(data, "config", where),
            device=_field(data, "device", where),
            seconds=_field(data, "seconds", where),
        )
