"""Several runs in one process (fls.ppo.multirun): each bit-identical to the same run alone, resumable per run."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from fls.checkpoint import load_checkpoint
from fls.ppo.config import TrainConfig
from fls.ppo.multirun import MultiRunError, parse_seeds, run_dir, seed_configs, train_many
from fls.ppo.trainer import train
from helpers import read_csv, tiny_train_config
from pipeline.app import app

TIMING = {"charts/SPS", "time/rollout_s", "time/update_s"}


def tiny_cfg(**kw) -> TrainConfig:
    """The shared tiny run with a checkpoint every 2 updates and 2 torch threads, unless ``kw`` says otherwise."""
    return tiny_train_config(**{"checkpoint_every": 2, "torch_threads": 2, **kw})


def csv_without_timing(path):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_csv(path)[1]]


def assert_same_run(a, b):
    ma, mb = load_checkpoint(a / "model.pt").model, load_checkpoint(b / "model.pt").model
    assert ma.keys() == mb.keys()
    for k in ma:
        assert torch.equal(ma[k], mb[k]), k
    assert (a / "episodes.csv").read_bytes() == (b / "episodes.csv").read_bytes()
    ra, rb = csv_without_timing(a / "metrics.csv"), csv_without_timing(b / "metrics.csv")
    assert ra == rb and len(ra) > 0
    ca, cb = load_checkpoint(a / "checkpoint.pt"), load_checkpoint(b / "checkpoint.pt")
    assert torch.equal(ca.rng["torch"], cb.rng["torch"])  # the run's stream continues alike on resume
    sa, sb = json.loads((a / "summary.json").read_text()), json.loads((b / "summary.json").read_text())
    for key in ("global_step", "updates", "eprewmean", "episodes", "seed"):
        assert sa[key] == sb[key], key


def test_three_runs_in_one_process_are_bit_identical_to_single_runs(tmp_path):
    cfgs = seed_configs(tiny_cfg(), [1, 9, 17])
    outcomes = train_many(cfgs, [run_dir(tmp_path / "multi", c) for c in cfgs])
    assert all(o.ok and o.result.status == "finished" for o in outcomes), [repr(o.error) for o in outcomes]
    for cfg in cfgs:
        alone = tmp_path / "single" / str(cfg.seed)
        train(cfg, alone)
        assert_same_run(run_dir(tmp_path / "multi", cfg), alone)
    # different seeds really are different runs
    m1 = load_checkpoint(run_dir(tmp_path / "multi", cfgs[0]) / "model.pt").model
    m9 = load_checkpoint(run_dir(tmp_path / "multi", cfgs[1]) / "model.pt").model
    assert not all(torch.equal(m1[k], m9[k]) for k in m1)


def test_mixed_archs_and_per_run_resume(tmp_path):
    """Stop all runs after 1 update, finish one alone, then resume the group: each run ends as if alone."""
    cfgs = [tiny_cfg(seed=1, checkpoint_every=1), tiny_cfg(arch="sparse_fls", seed=9, checkpoint_every=1)]
    outs = [tmp_path / "m" / "a", tmp_path / "m" / "b"]
    first = train_many(cfgs, outs, stop_after_updates=1)
    assert [o.result.status for o in first] == ["stopped", "stopped"]
    assert [load_checkpoint(o / "checkpoint.pt").update for o in outs] == [1, 1]
    train(cfgs[0], outs[0])  # one member finished by a single-run process
    second = train_many(cfgs, outs)
    assert [o.result.status for o in second] == ["already_finished", "finished"]
    for cfg, out in zip(cfgs, outs):
        alone = tmp_path / "single" / cfg.arch
        train(cfg, alone, stop_after_updates=1)
        train(cfg, alone)
        assert_same_run(out, alone)


def test_a_failing_run_does_not_stop_the_others(tmp_path):
    cfgs = [tiny_cfg(seed=1, total_steps=64), tiny_cfg(seed=9, total_steps=64)]
    outs = [tmp_path / "a", tmp_path / "b"]
    outs[1].mkdir()
    (outs[1] / "checkpoint.pt").write_bytes(b"not a checkpoint")
    outcomes = train_many(cfgs, outs)
    assert outcomes[0].ok and outcomes[0].result.status == "finished"
    assert not outcomes[1].ok and "checkpoint" in str(outcomes[1].error)


def test_bad_requests_are_one_line_errors(tmp_path):
    with pytest.raises(MultiRunError, match="more than one run"):
        train_many([tiny_cfg(seed=1), tiny_cfg(seed=2)], [tmp_path / "x", tmp_path / "x"])
    with pytest.raises(MultiRunError, match="duplicate"):
        parse_seeds("1,1")
    with pytest.raises(MultiRunError, match="integers"):
        parse_seeds("1,a")


def test_cli_seeds_out_root(tmp_path):
    runner = CliRunner()
    args = ["train", "--seeds", "1,9", "--out-root", str(tmp_path / "runs"), "--game", "Breakout", "--total-steps", "64",
            "--num-envs", "2", "--num-steps", "16", "--no-progress", "--torch-threads", "1"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    for seed in (1, 9):
        d = tmp_path / "runs" / "nature_cnn" / "Breakout" / str(seed)
        for name in ("run_info.json", "checkpoint.pt", "model.pt", "metrics.csv", "episodes.csv", "summary.json"):
            assert (d / name).is_file(), (seed, name)
        assert json.loads((d / "summary.json").read_text())["seed"] == seed
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and res.output.count("already finished") == 2, res.output
    res = runner.invoke(app, ["train", "--seeds", "1,9", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--seeds: needs --out-root" in res.output
