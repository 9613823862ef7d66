"""Several models evaluated in one process give each the eval.json body it gets alone (bit for bit on CPU)."""

from __future__ import annotations

import pytest
import torch

from fls.evaluation.evaluate import EvalConfig, evaluate
from fls.evaluation.protocol import EvaluationError
from fls.evaluation.multi import evaluate_many
from fls.models import build_model


def _models(n):
    out = []
    for i in range(n):
        torch.manual_seed(100 + i)
        out.append(build_model("nature_cnn", 4).eval())
    return out


def test_two_models_at_once_equal_two_evaluations_alone():
    cfg = EvalConfig(episodes=4, num_envs=2, seed=1000, max_episode_steps=50, device="cpu", env_groups=2)
    models = _models(2)
    together = evaluate_many(models, "Breakout", cfg, train_env_seeds=[[1, 2], [9, 10]])
    assert len(together) == 2
    for m, res in zip(models, together):
        alone = evaluate(m, "Breakout", cfg, device="cpu", progress=False)
        assert res.episodes == alone.episodes
        assert res.summary == alone.summary
        assert len(res.episodes) == 4 and {r["env"] for r in res.episodes} == {0, 1}


def test_errors_surface():
    cfg = EvalConfig(episodes=2, num_envs=2, seed=1000, max_episode_steps=50, device="cpu")
    with pytest.raises(EvaluationError, match="overlap"):
        evaluate_many(_models(2), "Breakout", cfg, train_env_seeds=[[5], [1000]])
    with pytest.raises(EvaluationError, match="2 models but 1"):
        evaluate_many(_models(2), "Breakout", cfg, train_env_seeds=[[5]])
