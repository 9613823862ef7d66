"""Evaluation protocol (scores over whole-game episodes), the `fls evaluate` stage and perception videos."""

from fls.evaluation.config import EvalConfig, EvaluationError
from fls.evaluation.evaluate import evaluate
from fls.evaluation.protocol import (
    ActionSampler,
    Episode,
    EpisodeLedger,
    check_action_set,
    check_same_game,
    check_seeds,
    summarize,
    train_env_seeds,
)
from fls.evaluation.stage import evaluate_to_dir, write_outputs

__all__ = [
    "ActionSampler",
    "Episode",
    "EpisodeLedger",
    "EvalConfig",
    "EvaluationError",
    "check_action_set",
    "check_same_game",
    "check_seeds",
    "evaluate",
    "evaluate_to_dir",
    "summarize",
    "train_env_seeds",
    "write_outputs",
]
