"""Evaluation protocol: episode accounting, cap handling, seeds, action sets, outputs and the CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fls.config import load_config
from fls.evaluation.config import EvalConfig
from fls.evaluation.evaluate import evaluate
from fls.evaluation.result import EvalFileError, EvalRecord
from fls.evaluation.protocol import (
    ActionSampler,
    Episode,
    EpisodeLedger,
    EvaluationError,
    check_action_set,
    check_seeds,
    summarize,
    train_env_seeds,
)
from helpers import fresh_model, save_fresh_checkpoint
from pipeline.app import app

runner = CliRunner()


def episode_length(env: int, k: int) -> int:
    """Deterministic, env-dependent lengths so that envs finish their episodes at different times."""
    return 2 + (env * 7 + k * 5) % 11


class FakeVecEnv:
    """Env i plays episodes of ``episode_length(i, k)`` steps worth ``100 * i + k`` points."""

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self.k = np.zeros(num_envs, dtype=int)
        self.t = np.zeros(num_envs, dtype=int)
        self.steps = 0
        self.actions: list[np.ndarray] = []
        self.closed = False

    def reset(self) -> np.ndarray:
        return np.zeros((self.num_envs, 4, 84, 84), dtype=np.uint8)

    def step(self, actions: np.ndarray):
        self.actions.append(np.array(actions))
        self.steps += 1
        self.t += 1
        finished = []
        for i in range(self.num_envs):
            n = episode_length(i, int(self.k[i]))
            if self.t[i] == n:
                finished.append(Episode(env=i, reward=100.0 * i + self.k[i], length_frames=4 * n, length_steps=n, truncated=False))
                self.k[i] += 1
                self.t[i] = 0
        obs = np.full((self.num_envs, 4, 84, 84), self.steps % 256, dtype=np.uint8)
        return obs, finished

    def close(self) -> None:
        self.closed = True


def test_ledger_keeps_first_episodes_of_each_env_only():
    ledger = EpisodeLedger(num_envs=2, per_env=2)
    assert ledger.add(Episode(1, 5.0, 40, 10, False))
    assert ledger.add(Episode(1, 6.0, 40, 10, False))
    assert not ledger.add(Episode(1, 7.0, 40, 10, False))  # env 1 is full: ignored, not counted
    assert not ledger.complete and ledger.count == 2 and ledger.ignored == 1
    ledger.add(Episode(0, 1.0, 8, 2, True))
    ledger.add(Episode(0, 2.0, 8, 2, False))
    assert ledger.complete
    rows = ledger.rows()
    assert [(r["env"], r["index_in_env"], r["reward"]) for r in rows] == [(0, 0, 1.0), (0, 1, 2.0), (1, 0, 5.0), (1, 1, 6.0)]
    with pytest.raises(ValueError, match="env 3"):
        ledger.add(Episode(3, 0.0, 4, 1, False))


def test_every_env_contributes_exactly_its_first_episodes():
    cfg = EvalConfig(episodes=24, num_envs=4, seed=1000, device="cpu")
    env = FakeVecEnv(4)
    result = evaluate(fresh_model(), "Breakout", cfg, env=env, progress=False)
    rows = result.episodes
    assert len(rows) == 24 and result.summary.n == 24
    for i in range(4):
        mine = [r for r in rows if r["env"] == i]
        assert [r["index_in_env"] for r in mine] == list(range(6))
        # The reward encodes (env, k): the kept episodes are exactly k = 0..5, in order.
        assert [r["reward"] for r in mine] == [100.0 * i + k for k in range(6)]
        assert [r["length_steps"] for r in mine] == [episode_length(i, k) for k in range(6)]
    # The run lasts until the slowest env has its 6 episodes, and fast envs' extra episodes are dropped.
    slowest = max(sum(episode_length(i, k) for k in range(6)) for i in range(4))
    assert env.steps == slowest == result.timing.vector_steps
    assert result.timing.ignored_episodes > 0
    s = result.summary
    rewards = np.array([r["reward"] for r in rows])
    assert s.mean == pytest.approx(rewards.mean()) and s.std == pytest.approx(rewards.std())
    assert (s.min, s.max, s.n_truncated) == (0.0, 305.0, 0)


def test_pipelined_env_groups_keep_the_same_accounting():
    cfg = EvalConfig(episodes=24, num_envs=4, seed=1000, device="cpu", env_groups=2)
    groups = [FakeVecEnv(2), FakeVecEnv(2)]
    result = evaluate(fresh_model(), "Breakout", cfg, env=groups, progress=False)
    rows = result.episodes
    assert len(rows) == 24
    for i in range(4):
        local = i % 2  # group g's env j is ledger env 2 * g + j, and plays like fake env j
        mine = [r for r in rows if r["env"] == i]
        assert [r["index_in_env"] for r in mine] == list(range(6))
        assert [r["reward"] for r in mine] == [100.0 * local + k for k in range(6)]
    # Groups are stepped once per round until the slowest env is done; a group may have one step in flight
    # (issued before the last group finished) whose result is discarded.
    slowest = max(sum(episode_length(j, k) for k in range(6)) for j in range(2))
    assert groups[1].steps == slowest and groups[0].steps in (slowest, slowest + 1)
    assert result.timing.agent_steps == 4 * slowest
    with pytest.raises(EvaluationError, match=r"num_envs \(4\) must be divisible by env_groups \(3\)"):
        EvalConfig(episodes=4, num_envs=4, env_groups=3).validate()


def test_actions_are_sampled_reproducibly_and_argmax_when_deterministic():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0]] * 64)
    a = ActionSampler(7)(logits)
    b = ActionSampler(7)(logits)
    assert np.array_equal(a, b) and len(set(a.tolist())) > 1  # seeded, and really sampling
    peaked = torch.tensor([[0.0, 5.0, 0.0, 0.0], [9.0, 0.0, 0.0, 0.0]])
    assert ActionSampler(0, deterministic=True)(peaked).tolist() == [1, 0]


def test_config_rejects_episodes_not_divisible_by_envs():
    with pytest.raises(EvaluationError, match=r"episodes \(10\) must be divisible by num_envs \(4\)"):
        EvalConfig(episodes=10, num_envs=4).validate()


def test_seed_overlap_and_action_set_are_checked():
    check_seeds([1000, 1001], [1, 2, 3])
    with pytest.raises(EvaluationError, match=r"overlap the training run's env seeds \[1001\]"):
        check_seeds([1000, 1001], [1001, 1002])
    assert train_env_seeds({"seed": 9, "num_envs": 8}) == list(range(9, 17))
    with pytest.raises(EvaluationError, match="run/model.pt: cannot tell the training env seeds"):
        train_env_seeds({"seed": 9}, where="run/model.pt")
    check_action_set(4, "BreakoutInfinite")
    with pytest.raises(EvaluationError, match="has 18 actions but Breakout has 4"):
        check_action_set(18, "Breakout")
    cfg = EvalConfig(episodes=2, num_envs=2, seed=5, device="cpu")
    with pytest.raises(EvaluationError, match="overlap"):
        evaluate(fresh_model(), "Breakout", cfg, train_env_seeds=range(0, 8), env=FakeVecEnv(2), progress=False)


def test_summary_of_rows():
    rows = [{"reward": r, "length_steps": 10, "truncated": t} for r, t in ((1.0, False), (3.0, True))]
    s = summarize(rows)
    assert (s["n"], s["mean"], s["std"], s["min"], s["max"], s["n_truncated"]) == (2, 2.0, 1.0, 1.0, 3.0, 1)


def test_real_env_run_is_reproducible_and_flags_the_cap():
    # 100 agent steps per game at most: a random Breakout agent with 5 lives does not finish that fast.
    cfg = EvalConfig(episodes=4, num_envs=2, seed=1000, max_episode_steps=100, device="cpu")
    a = evaluate(fresh_model(), "Breakout", cfg, progress=False)
    b = evaluate(fresh_model(), "Breakout", cfg, progress=False)
    assert a.episodes == b.episodes
    assert a.eval_env_seeds == [1000, 1001]
    assert len(a.episodes) == 4
    assert a.summary.n_truncated == sum(r["truncated"] for r in a.episodes) > 0
    for r in a.episodes:
        assert r["length_steps"] <= 100 and r["length_steps"] * 4 == r["length_frames"]
        if r["truncated"]:
            assert r["length_steps"] == 100


def test_real_env_groups_are_reproducible_and_seeded_as_recorded():
    cfg = EvalConfig(episodes=4, num_envs=4, seed=1000, max_episode_steps=50, device="cpu", env_groups=2)
    a = evaluate(fresh_model(), "Breakout", cfg, progress=False)
    b = evaluate(fresh_model(), "Breakout", cfg, progress=False)
    assert a.episodes == b.episodes and a.eval_env_seeds == [1000, 1001, 1002, 1003]
    assert [r["env"] for r in a.episodes] == [0, 1, 2, 3]


def test_per_game_cap_overrides_max_episode_steps_and_is_validated():
    cfg = load_config(EvalConfig, None, None, {"max_episode_steps": 108000,
                                               "max_episode_steps_by_game": {"Breakout": 3e4, "BreakoutInfinite": 20000}})
    assert cfg.max_episode_steps_by_game == {"Breakout": 30000, "BreakoutInfinite": 20000}
    assert cfg.max_episode_steps_for("Breakout") == cfg.max_episode_steps_for("breakout") == 30000
    assert cfg.max_episode_steps_for("BreakoutInfinite") == 20000  # a variant has its own entry
    assert cfg.max_episode_steps_for("Seaquest") == 108000
    for caps, message in (
        ({"Pong": 100}, r"max_episode_steps_by_game': unknown game 'Pong' \(valid: BeamRider, .*BreakoutInfinite\)"),
        ({"Breakout": 0}, "Breakout must be a positive integer number of agent steps, got 0"),
        ({"Breakout": True}, "Breakout must be a positive integer"),
        ({"Breakout": 2.5}, "Breakout must be a positive integer"),
        (["Breakout=30000"], "must be a mapping of game name to agent steps"),
    ):
        with pytest.raises(EvaluationError, match=message):
            EvalConfig(max_episode_steps_by_game=caps).validate()


def test_real_env_uses_the_game_cap_and_reports_it():
    # Breakout's own cap (25 steps) applies, not max_episode_steps; a random agent never loses 5 lives in 25 steps.
    cfg = EvalConfig(episodes=2, num_envs=2, seed=1000, max_episode_steps=100, max_episode_steps_by_game={"Breakout": 25},
                     device="cpu", env_groups=1)
    result = evaluate(fresh_model(), "Breakout", cfg, progress=False)
    assert result.summary.max_episode_steps == 25 and result.config["max_episode_steps_by_game"] == {"Breakout": 25}
    assert [r["length_steps"] for r in result.episodes] == [25, 25]  # hidden start skips included
    assert result.summary.n_truncated == 2
    other = evaluate(fresh_model(), "BreakoutInfinite", cfg, progress=False)
    assert other.summary.max_episode_steps == 100  # no entry for the variant: the general cap


def test_breakout_infinite_worker_processes_give_the_same_games():
    """evaluate.env_workers moves BreakoutInfinite's emulators into worker processes; the games do not change."""
    base = dict(episodes=4, num_envs=4, seed=1000, max_episode_steps=40, device="cpu", env_groups=2)
    here = evaluate(fresh_model(), "BreakoutInfinite", EvalConfig(**base), progress=False)
    cfg = EvalConfig(**base, env_workers=3)
    assert cfg.workers_per_group == 1  # 3 workers over 2 groups: one each
    apart = evaluate(fresh_model(), "BreakoutInfinite", cfg, progress=False)
    assert apart.episodes == here.episodes and apart.summary == here.summary
    assert EvalConfig(**base, env_workers=4).workers_per_group == 2
    with pytest.raises(EvaluationError, match="env_workers' must be >= 0"):
        EvalConfig(env_workers=-1).validate()


def test_breakout_infinite_runs_with_a_breakout_model():
    cfg = EvalConfig(episodes=2, num_envs=2, seed=1000, max_episode_steps=50, device="cpu")
    result = evaluate(fresh_model(), "BreakoutInfinite", cfg, progress=False)
    assert result.game == "BreakoutInfinite" and result.base_game == "Breakout"
    assert result.summary.n == 2 and all(r["length_steps"] <= 50 for r in result.episodes)
    with pytest.raises(EvaluationError, match="BreakoutInfinite has 4"):
        evaluate(fresh_model(num_actions=18), "BreakoutInfinite", cfg, progress=False)


def test_cli_fresh_model_writes_documented_outputs(tmp_path):
    out = tmp_path / "eval"
    res = runner.invoke(
        app,
        ["evaluate", "--arch", "sparse_fls", "--game", "Breakout", "--episodes", "2", "--num-envs", "2",
         "--max-episode-steps", "50", "--device", "cpu", "--quiet", "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    data = json.loads((out / "eval.json").read_text())
    assert data["arch"] == "sparse_fls" and data["game"] == "Breakout"
    assert data["checkpoint"]["init_seed"] == 0 and data["checkpoint"]["sha256"] is None
    assert data["config"]["episodes"] == 2 and data["eval_env_seeds"] == [1000, 1001]
    assert set(data["summary"]) >= {"n", "mean", "std", "min", "max", "n_truncated"}
    assert set(data["episodes"][0]) == {"env", "index_in_env", "reward", "length_frames", "length_steps", "truncated"}
    assert data["run_info"]["stage"] == "evaluate"
    with open(out / "episodes.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 2
    assert json.loads((out / "run_info.json").read_text())["config"]["num_envs"] == 2
    # the dvc `metrics:` file: the result numbers of the episodes, none of the config/provenance/timing
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == summarize(data["episodes"])
    assert metrics["n"] == 2 and not {"config", "run_info", "timing", "max_frames"} & set(metrics)
    # eval.json read back through its typed view writes the same bytes; a missing field is named
    record = EvalRecord.from_json(data, str(out / "eval.json"))
    assert json.dumps(record.to_json(), indent=2, sort_keys=True) + "\n" == (out / "eval.json").read_text()
    assert record.result.summary.n == 2 and record.checkpoint.init_seed == 0 and record.trained_on is None
    with pytest.raises(EvalFileError, match=r"eval\.json: missing field 'timing'"):
        EvalRecord.from_json({k: v for k, v in data.items() if k != "timing"}, str(out / "eval.json"))
    with pytest.raises(EvalFileError, match=r"eval\.json: summary: missing field 'median'"):
        EvalRecord.from_json({**data, "summary": {k: v for k, v in data["summary"].items() if k != "median"}},
                             str(out / "eval.json"))


def test_cli_checkpoint_records_hash_and_training_seeds(tmp_path):
    ckpt = save_fresh_checkpoint(tmp_path / "model.pt", global_step=123)
    out = tmp_path / "eval"
    res = runner.invoke(
        app,
        ["evaluate", "--checkpoint", str(ckpt), "--episodes", "2", "--num-envs", "2", "--max-episode-steps", "25",
         "--device", "cpu", "--quiet", "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    data = json.loads((out / "eval.json").read_text())
    import hashlib

    assert data["checkpoint"]["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert data["checkpoint"]["global_step"] == 123
    assert data["train_env_seeds"] == list(range(1, 9)) and data["game"] == "Breakout"


@pytest.mark.parametrize(
    "setup, extra, message",
    [
        ("missing", [], "no such checkpoint"),
        ("truncated", [], "not a readable checkpoint"),
        ("garbage", [], "not a readable checkpoint"),
        ("enduro", ["--game", "MsPacman"], "trained on Enduro"),
        ("seaquest", ["--game", "Breakout"], "has 18 actions but Breakout has 4"),
        ("overlap", ["--seed", "1004"], "overlap the training run's env seeds"),
        ("good", ["--episodes", "3", "--num-envs", "2"], "must be divisible by num_envs"),
    ],
)
def test_cli_bad_input_gives_one_line_error(tmp_path, setup, extra, message):
    path = tmp_path / "model.pt"
    if setup == "truncated":  # a copy cut short, as after a full disk
        save_fresh_checkpoint(path)
        path.write_bytes(path.read_bytes()[:5000])
    elif setup == "garbage":
        path.write_bytes(b"this is not a torch file")
    elif setup == "enduro":  # same action count (9) as MsPacman, but another game
        save_fresh_checkpoint(path, game="Enduro", num_actions=9)
    elif setup == "seaquest":
        save_fresh_checkpoint(path, game="Seaquest", num_actions=18)
    elif setup in ("overlap", "good"):
        save_fresh_checkpoint(path, train_seed=1000, num_envs=8)
    res = runner.invoke(
        app, ["evaluate", "--checkpoint", str(path), "--max-episode-steps", "25", "--device", "cpu", "--quiet",
              "--out", str(tmp_path / "o"), *extra]
    )
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], res.output
    assert not (tmp_path / "o" / "eval.json").exists()


def test_cli_evaluates_a_tiny_trained_run(tmp_path):
    run = tmp_path / "run"
    res = runner.invoke(
        app,
        ["train", "--out", str(run), "--arch", "nature_cnn", "--game", "Breakout", "--seed", "1", "--total-steps", "32",
         "--num-envs", "2", "--num-steps", "16", "--device", "cpu", "--no-progress"],
    )
    assert res.exit_code == 0, res.output
    out = tmp_path / "eval"
    res = runner.invoke(
        app,
        ["evaluate", "--run", str(run), "--episodes", "2", "--num-envs", "2", "--max-episode-steps", "50", "--quiet",
         "--device", "cpu", "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    data = json.loads((out / "eval.json").read_text())
    assert data["checkpoint"]["path"] == str(run / "model.pt") and data["checkpoint"]["global_step"] == 32
    assert data["trained_on"] == "Breakout" and data["train_env_seeds"] == [1, 2]
    assert data["summary"]["n"] == 2
    # The run's own env seeds are refused.
    res = runner.invoke(app, ["evaluate", "--run", str(run), "--seed", "2", "--episodes", "2", "--num-envs", "2",
                              "--quiet", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "overlap" in res.output


def test_cli_reads_params_section_and_flags_override(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("evaluate:\n  episodes: 4\n  num_envs: 2\n  max_episode_steps: 25\n  seed: 2000\n")
    out = tmp_path / "e"
    res = runner.invoke(app, ["evaluate", "--params", str(params), "--arch", "nature_cnn", "--game", "Enduro",
                              "--episodes", "2", "--device", "cpu", "--quiet", "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "eval.json").read_text())
    assert (data["config"]["episodes"], data["config"]["num_envs"], data["config"]["seed"]) == (2, 2, 2000)
    assert data["num_actions"] == 9 and data["summary"]["n_truncated"] == 2  # Enduro cannot end in 25 steps
    # a per-game cap from the params file applies; an explicit --max-episode-steps replaces every cap
    params.write_text("evaluate:\n  episodes: 2\n  num_envs: 2\n  max_episode_steps: 100\n  seed: 2000\n"
                      "  max_episode_steps_by_game: {Enduro: 15}\n")
    res = runner.invoke(app, ["evaluate", "--params", str(params), "--arch", "nature_cnn", "--game", "Enduro",
                              "--device", "cpu", "--quiet", "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "eval.json").read_text())
    assert data["summary"]["max_episode_steps"] == 15 and {r["length_steps"] for r in data["episodes"]} == {15}
    assert "2 cut at 15 steps" in res.output
    res = runner.invoke(app, ["evaluate", "--params", str(params), "--arch", "nature_cnn", "--game", "Enduro",
                              "--max-episode-steps", "20", "--device", "cpu", "--quiet", "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "eval.json").read_text())
    assert data["config"]["max_episode_steps_by_game"] == {} and data["summary"]["max_episode_steps"] == 20
    assert {r["length_steps"] for r in data["episodes"]} == {20}
    params.write_text("evaluate:\n  max_episode_steps_by_game: {Pong: 30000}\n")
    res = runner.invoke(app, ["evaluate", "--params", str(params), "--arch", "nature_cnn", "--game", "Enduro",
                              "--out", str(out)])
    assert res.exit_code == 2 and "unknown game 'Pong'" in res.output
    params.write_text("evaluate:\n  episode: 4\n")
    res = runner.invoke(app, ["evaluate", "--params", str(params), "--arch", "nature_cnn", "--game", "Enduro",
                              "--out", str(out)])
    assert res.exit_code == 2 and "unknown field 'episode'" in res.output
