"""`fls train` end to end on tiny budgets: outputs and schemas, resume, determinism, bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from fls.checkpoint import CheckpointError, load_checkpoint, load_policy
from fls.config import ConfigError, build_config, load_config
from fls.ppo.config import TrainConfig
from fls.ppo.run_dir import EPISODE_COLUMNS, METRIC_COLUMNS, RunMismatchError
from fls.ppo.trainer import train
from helpers import read_csv, tiny_train_config
from pipeline.app import app

runner = CliRunner()
TINY = ["--num-envs", "2", "--num-steps", "16", "--no-progress", "--torch-threads", "1"]


def test_cli_tiny_run_writes_every_output(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["train", "--out", str(out), "--total-steps", "64", "--seed", "2", *TINY])
    assert res.exit_code == 0, res.output
    assert "finished at 64 steps (2 updates)" in res.output
    for name in ("run_info.json", "checkpoint.pt", "model.pt", "metrics.csv", "episodes.csv", "summary.json"):
        assert (out / name).is_file(), name
    info = json.loads((out / "run_info.json").read_text())
    assert info["stage"] == "train" and info["config"]["seed"] == 2 and info["config"]["num_envs"] == 2
    cols, rows = read_csv(out / "metrics.csv")
    assert tuple(cols) == METRIC_COLUMNS
    assert [int(r["update"]) for r in rows] == [1, 2]
    assert [int(r["global_step"]) for r in rows] == [32, 64]
    # lr annealed linearly: lr * (1 - (update - 1) / num_updates)
    assert [float(r["charts/learning_rate"]) for r in rows] == pytest.approx([2.5e-4, 1.25e-4])
    for r in rows:
        for c in ("losses/policy_loss", "losses/value_loss", "losses/entropy", "losses/approx_kl", "losses/clipfrac"):
            assert math.isfinite(float(r[c]))
        assert 0 < float(r["losses/entropy"]) <= math.log(4) + 1e-6
    cols, _ = read_csv(out / "episodes.csv")
    assert tuple(cols) == EPISODE_COLUMNS
    summary = json.loads((out / "summary.json").read_text())
    assert summary["global_step"] == 64 and summary["updates"] == 2 and summary["arch"] == "nature_cnn"
    ck = load_checkpoint(out / "checkpoint.pt")
    assert ck.update == 2 and ck.global_step == 64 and ck.optimizer is not None
    assert list(torch.load(out / "checkpoint.pt", weights_only=True)) == [
        "format", "version", "arch", "game", "num_actions", "model", "optimizer", "update", "global_step",
        "num_updates", "learning_rate", "config", "rng", "stats"]  # the documented order (docs/training.md)
    policy = load_policy(out)
    assert policy.weights.path.endswith("model.pt") and policy.game == "Breakout" and policy.num_actions == 4


def test_same_seed_same_weights_and_episodes(tmp_path):
    # 2 envs x 128 steps x 2 updates: long enough for random Breakout games to end (episodes.csv rows).
    cfg = dict(total_steps=512, num_steps=128, checkpoint_every=10, torch_threads=2)  # 2 shard threads
    a = train(tiny_train_config(**cfg), tmp_path / "a")
    b = train(tiny_train_config(**cfg), tmp_path / "b")
    assert a.status == b.status == "finished" and a.global_step == 512
    wa = load_checkpoint(tmp_path / "a" / "model.pt").model
    wb = load_checkpoint(tmp_path / "b" / "model.pt").model
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    _, ea = read_csv(tmp_path / "a" / "episodes.csv")
    _, eb = read_csv(tmp_path / "b" / "episodes.csv")
    assert len(ea) >= 1 and ea == eb
    for row in ea:
        assert float(row["return"]) >= 0 and int(row["frames"]) == 4 * int(row["length"])
        assert int(row["env"]) in (0, 1)
    c = train(tiny_train_config(seed=4, total_steps=64), tmp_path / "c")  # another seed: other weights
    wc = load_checkpoint(tmp_path / "c" / "model.pt").model
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_interrupted_run_resumes_without_duplicate_rows(tmp_path):
    out = tmp_path / "run"
    cfg = tiny_train_config(total_steps=4 * 32, checkpoint_every=2)

    def crash_at_3(row):
        if row["update"] == 3:
            raise KeyboardInterrupt  # dies after update 3 was logged but before its checkpoint

    with pytest.raises(KeyboardInterrupt):
        train(cfg, out, on_update=crash_at_3)
    _, rows = read_csv(out / "metrics.csv")
    assert [r["update"] for r in rows] == ["1", "2", "3"]
    assert load_checkpoint(out / "checkpoint.pt").update == 2
    assert not (out / "summary.json").exists() and not (out / "model.pt").exists()

    result = train(cfg, out)
    assert result.status == "finished" and result.global_step == 128 and result.updates == 4
    _, rows = read_csv(out / "metrics.csv")
    assert [int(r["update"]) for r in rows] == [1, 2, 3, 4]
    assert [int(r["global_step"]) for r in rows] == [32, 64, 96, 128]
    assert json.loads((out / "summary.json").read_text())["resumed_from_update"] == 2
    assert json.loads((out / "run_info.json").read_text())["resumed_from_update"] == 2
    policy = load_policy(out)
    assert policy.global_step == 128
    assert all(torch.isfinite(p).all() for p in policy.model.parameters())


def test_stop_hook_then_cli_resume_and_already_finished(tmp_path):
    out = tmp_path / "run"
    first = train(tiny_train_config(total_steps=96, checkpoint_every=5), out, stop_after_updates=1)
    assert first.status == "stopped" and first.updates == 1
    assert load_checkpoint(out / "checkpoint.pt").update == 1  # a deliberate stop checkpoints first
    args = ["train", "--out", str(out), "--total-steps", "96", "--seed", "3", "--checkpoint-every", "5", *TINY]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "finished at 96 steps (3 updates)" in res.output
    before = {p.relative_to(out).as_posix(): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(out.rglob("*")) if p.is_file()}
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "already finished" in res.output
    assert {p.relative_to(out).as_posix(): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(out.rglob("*")) if p.is_file()} == before


def test_corrupt_checkpoint_is_an_error_and_nothing_is_overwritten(tmp_path):
    out = tmp_path / "run"
    train(tiny_train_config(total_steps=96), out, stop_after_updates=1)
    (out / "checkpoint.pt").write_bytes(b"\x00garbage")
    before = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    with pytest.raises(CheckpointError, match="checkpoint.pt"):
        train(tiny_train_config(total_steps=96), out)
    res = runner.invoke(app, ["train", "--out", str(out), "--total-steps", "96", "--seed", "3", *TINY])
    assert res.exit_code == 2
    assert "checkpoint.pt" in res.output and len(res.output.strip().splitlines()) == 1
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == before


def test_changed_settings_on_existing_run_are_rejected(tmp_path):
    out = tmp_path / "run"
    train(tiny_train_config(total_steps=96), out, stop_after_updates=1)
    with pytest.raises(RunMismatchError, match="arch: 'nature_cnn' there, 'sparse_fls' now"):
        train(tiny_train_config(total_steps=96, arch="sparse_fls"), out)
    with pytest.raises(RunMismatchError, match="total_steps"):
        train(tiny_train_config(total_steps=192), out)
    # run mechanics may change on resume
    assert train(tiny_train_config(total_steps=96, checkpoint_every=3), out).status == "finished"


def test_restart_on_change_replaces_a_run_made_with_other_settings(tmp_path):
    out = tmp_path / "run"
    train(tiny_train_config(total_steps=64), out)  # finished run with the old budget
    old_rows = read_csv(out / "metrics.csv")[1]
    assert len(old_rows) == 2
    result = runner.invoke(
        app, ["train", "--out", str(out), "--arch", "nature_cnn", "--game", "Breakout", "--seed", "3",
              "--total-steps", "96", "--checkpoint-every", "1", "--restart-on-change", *TINY],
    )
    assert result.exit_code == 0, result.output
    assert "starting afresh" in result.output
    rows = read_csv(out / "metrics.csv")[1]
    assert [int(r["update"]) for r in rows] == [1, 2, 3]  # a fresh run, not the old rows plus new ones
    assert json.loads((out / "summary.json").read_text())["global_step"] == 96
    assert json.loads((out / "run_info.json").read_text())["config"]["total_steps"] == 96
    # without the flag the same change is refused
    refused = runner.invoke(app, ["train", "--out", str(out), "--seed", "3", "--total-steps", "64", *TINY])
    assert refused.exit_code == 2 and "other settings" in refused.output


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--arch", "resnet"], "unknown architecture 'resnet' (valid: nature_cnn"),
        (["--game", "Pong"], "unknown game 'Pong' (valid: BeamRider"),
        (["--total-steps", "10"], "less than one rollout"),
        (["--num-envs", "3", "--num-steps", "5", "--total-steps", "100"], "not divisible by num_minibatches"),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path, flags, needle):
    res = runner.invoke(app, ["train", "--out", str(tmp_path / "x"), "--no-progress", *flags])
    assert res.exit_code == 2
    assert needle in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_params_file_section_and_flag_override(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  arch: sparse_fls\n  seed: 9\n  total_steps: 5.0e7\n")
    cfg = load_config(TrainConfig, params, "train", {"seed": 17, "arch": None})
    assert (cfg.arch, cfg.seed) == ("sparse_fls", 17)  # file value kept, flag overrides, unset flag ignored
    assert cfg.total_steps == 50_000_000 and cfg.num_updates == 48828 and cfg.ppo.minibatch_size == 256
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  learning_rat: 0.1\n")
    res = runner.invoke(app, ["train", "--out", str(tmp_path / "y"), "--params", str(bad)])
    assert res.exit_code == 2 and "unknown field 'learning_rat'" in res.output
    with pytest.raises(ConfigError, match="clip_coef"):
        build_config(TrainConfig, {"clip_coef": 0})


def test_total_steps_flag_accepts_scientific_notation(tmp_path):
    res = runner.invoke(app, ["train", "--out", str(tmp_path / "z"), "--total-steps", "1e1", "--no-progress"])
    assert res.exit_code == 2 and "total_steps' = 10 is less than one rollout" in res.output


def test_sigkilled_process_resumes_to_the_same_step_count(tmp_path):
    """A real kill -9 of `fls train` after its first checkpoint, then the same command again."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--total-steps", str(6 * 32), "--seed", "5", "--checkpoint-every", "1", *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", "from pipeline.app import main; main()", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (out / "checkpoint.pt").exists():
            assert proc.poll() is None, "fls train ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 60 s"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (out / "summary.json").exists()
    killed_at = load_checkpoint(out / "checkpoint.pt").update
    assert 1 <= killed_at < 6
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    _, rows = read_csv(out / "metrics.csv")
    assert [int(r["update"]) for r in rows] == list(range(1, 7))
    assert int(rows[-1]["global_step"]) == 6 * 32
    assert json.loads((out / "summary.json").read_text())["global_step"] == 6 * 32
    model = load_policy(out).model
    assert all(torch.isfinite(p).all() for p in model.parameters())
