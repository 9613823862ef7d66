"""Several models evaluated in one process give each the eval.json body it gets alone (bit for bit on CPU)."""

from __future__ import annotations

import pytest
import torch

from fls.evaluation.config import EvalConfig, EvaluationError
from fls.evaluation.evaluate import evaluate
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


# --------------------------------------------------------------------------------------------------
# `fls evaluate --runs ... --out-root ...` against the single-run command


def _train_tiny(runner, root, seed):
    from pipeline.app import app

    run = root / "runs" / "nature_cnn" / "Breakout" / str(seed)
    res = runner.invoke(
        app,
        ["train", "--out", str(run), "--arch", "nature_cnn", "--game", "Breakout", "--seed", str(seed), "--total-steps",
         "32", "--num-envs", "2", "--num-steps", "16", "--device", "cpu", "--no-progress"],
    )
    assert res.exit_code == 0, res.output
    return run


def _without(data, *keys):
    return {k: v for k, v in data.items() if k not in keys}


def test_cli_runs_write_exactly_what_single_run_commands_write(tmp_path):
    import json

    from typer.testing import CliRunner

    from pipeline.app import app

    runner = CliRunner()
    runs = [_train_tiny(runner, tmp_path, s) for s in (1, 5)]
    params = tmp_path / "params.yaml"
    params.write_text("evaluate:\n  episodes: 4\n  num_envs: 2\n  max_episode_steps: 60\n  device: cpu\n")
    common = ["evaluate", "--params", str(params), "--game", "Breakout", "--quiet"]
    for run in runs:
        res = runner.invoke(app, [*common, "--run", str(run), "--out", str(tmp_path / "single" / run.name)])
        assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*common, "--runs", ",".join(map(str, runs)), "--out-root", str(tmp_path / "evals")])
    assert res.exit_code == 0, res.output
    assert len(res.output.strip().splitlines()) == 2
    for run in runs:
        single, multi = tmp_path / "single" / run.name, tmp_path / "evals" / "Breakout" / "nature_cnn" / run.name
        assert sorted(p.name for p in multi.iterdir()) == sorted(p.name for p in single.iterdir())
        for name in ("episodes.csv", "metrics.json"):
            assert (multi / name).read_bytes() == (single / name).read_bytes(), name
        one, many = (json.loads((d / "eval.json").read_text()) for d in (single, multi))
        assert _without(many, "timing", "run_info") == _without(one, "timing", "run_info")
        assert many["timing"].keys() == one["timing"].keys()
        assert _without(many["run_info"], "command") == _without(one["run_info"], "command")
        info_one, info_many = (json.loads((d / "run_info.json").read_text()) for d in (single, multi))
        assert _without(info_many, "command") == _without(info_one, "command")
    # the two models really differ (a mapping mix-up would not go unnoticed)
    a, b = ((tmp_path / "evals" / "Breakout" / "nature_cnn" / r.name / "eval.json").read_text() for r in runs)
    assert json.loads(a)["checkpoint"]["sha256"] != json.loads(b)["checkpoint"]["sha256"]


def test_cli_runs_a_failing_member_fails_alone_and_bad_combinations_are_refused(tmp_path):
    from typer.testing import CliRunner

    from pipeline.app import app

    runner = CliRunner()
    good = _train_tiny(runner, tmp_path, 1)
    missing = tmp_path / "runs" / "nature_cnn" / "Breakout" / "7"
    base = ["evaluate", "--episodes", "2", "--num-envs", "2", "--max-episode-steps", "30", "--device", "cpu", "--quiet"]
    res = runner.invoke(app, [*base, "--runs", f"{missing},{good}", "--out-root", str(tmp_path / "evals")])
    assert res.exit_code == 1, res.output
    assert f"{missing}: error:" in res.output
    assert (tmp_path / "evals" / "Breakout" / "nature_cnn" / "1" / "eval.json").exists()
    assert not (tmp_path / "evals" / "Breakout" / "nature_cnn" / "7").exists()

    res = runner.invoke(app, [*base, "--runs", str(good)])
    assert res.exit_code == 2 and "--runs and --out-root" in res.output
    res = runner.invoke(app, [*base, "--runs", str(good), "--out-root", str(tmp_path / "e"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "cannot be combined with --out" in res.output
    res = runner.invoke(app, [*base, "--runs", f"{good},{good}", "--out-root", str(tmp_path / "e")])
    assert res.exit_code == 2 and "given twice" in res.output
    res = runner.invoke(app, base)
    assert res.exit_code == 2 and "--out: give --out" in res.output
