"""`fls grid cost`: node-hours from a bench JSON, arithmetic checked by hand; bad input is one line."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from fls.grid.cost import CostError, arch_class, grid_cost, load_bench
from pipeline.app import app

BENCH = {
    "schema": "fls-gpu-check/1", "device": "cuda:0", "cpus": 16, "quick": False,
    "train": {"single": {"nature_cnn": 2000.0, "sparse_fls": 1800.0, "dense_fls_pool": 600.0},
              "multi": {"5": {"nature_cnn": 1000.0, "sparse_fls": 300.0}}},
    "evaluate": {"models": 5, "agent_steps_per_s": 30000.0},
    "score": {"inputs_per_s": 1000.0},
}
PARAMS = {
    "grid": {"archs": ["nature_cnn", "sparse_fls", "dense_fls_pool"], "games": ["Breakout", "Seaquest"],
             "seeds": [1, 9], "infinite_archs": ["nature_cnn"], "score_archs": ["sparse_fls"],
             "score_games": ["Breakout"]},
    "train": {"total_steps": 1024 * 1000, "num_envs": 8, "num_steps": 128},
    "evaluate": {"episodes": 100},
}


def write(tmp_path, data):
    p = tmp_path / "bench.json"
    p.write_text(json.dumps(data))
    return p


def test_node_hours_by_hand(tmp_path):
    rep = grid_cost(PARAMS, load_bench(write(tmp_path, BENCH)), mean_episode_steps=1000, score_inputs_per_game=36000)
    lines = {ln.what.split("-like")[0] if ln.group == "train" else ln.group: ln for ln in rep.lines}
    steps = 1024 * 1000
    # nature_cnn: 5 runs/process x 1000 = 5000 steps/s beats the single run's 2000
    assert lines["nature_cnn"].rate == 5000 and lines["nature_cnn"].count == 4
    assert lines["nature_cnn"].node_hours == pytest.approx(4 * steps / 5000 / 3600)
    assert lines["sparse_fls"].rate == 1800  # 5 x 300 = 1500 < 1800: the single run wins
    assert lines["dense_fls_pool"].node_hours == pytest.approx(4 * steps / 600 / 3600)
    assert lines["evaluate"].count == 3 * 2 * 2 + 1 * 2
    assert lines["evaluate"].node_hours == pytest.approx(14 * 100 * 1000 / 30000 / 3600)
    assert lines["score"].node_hours == pytest.approx(2 * 36000 / 1000 / 3600)
    assert rep.total == pytest.approx(sum(ln.node_hours for ln in rep.lines))
    text = rep.table()
    assert "assumptions:" in text and "ASSUMED" in text and "node-hour target" in text


def test_arch_classes():
    assert arch_class("nature_cnn") == "nature_cnn"
    assert arch_class("sparse_fls_pool") == "sparse_fls"
    assert arch_class("dense_fls_norelu_pool") == "dense_fls_pool"


def test_bad_bench_is_one_line(tmp_path):
    with pytest.raises(CostError, match="schema"):
        load_bench(write(tmp_path, {"schema": "x"}))
    bad = {**BENCH, "train": {"single": {"nature_cnn": 1.0}}}
    with pytest.raises(CostError, match="no throughput for sparse_fls"):
        grid_cost(PARAMS, load_bench(write(tmp_path, bad)))


def test_cli(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS))
    res = CliRunner().invoke(app, ["grid", "cost", "--params", str(params), "--bench", str(write(tmp_path, BENCH))])
    assert res.exit_code == 0, res.output
    assert "total" in res.output and "node-hours" in res.output
    res = CliRunner().invoke(app, ["grid", "cost", "--params", str(params), "--bench", str(write(tmp_path, BENCH)), "--json"])
    assert json.loads(res.output)["total_node_hours"] > 0
    res = CliRunner().invoke(app, ["grid", "cost", "--params", str(params), "--bench", str(tmp_path / "missing.json")])
    assert res.exit_code == 2 and res.output.startswith("error:")


def test_imported_seeds_cost_evaluation_only(tmp_path):
    bench = load_bench(write(tmp_path, BENCH))
    half = grid_cost({**PARAMS, "grid": {**PARAMS["grid"], "train_seeds": [1], "import_seeds": [9]}}, bench)
    full = grid_cost(PARAMS, bench)
    count = lambda rep, group: sum(ln.count for ln in rep.lines if ln.group == group)  # noqa: E731
    assert count(half, "train") == count(full, "train") / 2 == 3 * 2
    assert count(half, "evaluate") == count(full, "evaluate") and count(half, "score") == count(full, "score")
    none = grid_cost({**PARAMS, "grid": {**PARAMS["grid"], "train_seeds": [], "import_seeds": [1, 9]},
                      "train": {}}, load_bench(write(tmp_path, {**BENCH, "train": {"single": {}}})))
    assert count(none, "train") == 0 and none.total > 0  # no train rate needed when nothing is trained


def test_bf16_profile_prices_dense_runs_at_the_bf16_figure(tmp_path):
    bench = json.loads(json.dumps(BENCH))
    bench["train"]["single"]["dense_fls_pool+bf16"] = 900.0
    params = {**PARAMS, "grid": {**PARAMS["grid"], "archs": ["dense_fls_pool", "nature_cnn"]}}
    p = write(tmp_path, bench)
    fp32 = {ln.what.split("-like")[0]: ln for ln in grid_cost(params, load_bench(p)).lines if ln.group == "train"}
    assert fp32["dense_fls_pool"].rate == 600.0  # the default precision is fp32: the bf16 figure is not used
    params["train"] = {**PARAMS["train"], "precision": "bf16"}
    bf16 = {ln.what.split("-like")[0]: ln for ln in grid_cost(params, load_bench(p)).lines if ln.group == "train"}
    assert bf16["dense_fls_pool"].rate == 900.0 and "bf16" in bf16["dense_fls_pool"].rate_source
    assert bf16["nature_cnn"].rate == 5000.0  # no nature_cnn+bf16 figure: the fp32 one stands


def test_skipped_evaluation_is_named(tmp_path):
    bench = json.loads(json.dumps(BENCH))
    bench["evaluate"] = {"models": 5, "num_envs_per_model": 16}
    bench["skipped"] = ["evaluate"]
    with pytest.raises(CostError, match=r"evaluate.agent_steps_per_s' must be > 0 \(gpu_check skipped evaluate figures"):
        grid_cost(PARAMS, load_bench(write(tmp_path, bench)))
