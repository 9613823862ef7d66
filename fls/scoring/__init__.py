"""Saliency scored against human gaze (Atari-HEAD): the model's attention, reference maps, post-hoc methods.

``score`` runs a method over every input of every trial of a game and writes the per-input table and
summaries; ``reference_maps`` holds the model-free baselines; ``posthoc`` the perturbation and gradient
saliency of any network. The metrics themselves live in ``fls.metrics``.
"""

from fls.scoring.score import (
    METHODS,
    METRICS,
    PER_INPUT_COLUMNS,
    ScoreConfig,
    ScoringError,
    score_model,
    score_to_dir,
    score_trial,
)

__all__ = [
    "METHODS",
    "METRICS",
    "PER_INPUT_COLUMNS",
    "ScoreConfig",
    "ScoringError",
    "score_model",
    "score_to_dir",
    "score_trial",
]
