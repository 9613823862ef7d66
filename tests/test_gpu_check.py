"""benchmarks/gpu_check.py --quick runs on CPU, prints its table and writes JSON that `fls grid cost` reads;
its time budget leaves sections out and says so; steady-state rates leave the start-up out."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from fls.grid.cost import grid_cost, load_bench

ROOT = Path(__file__).resolve().parents[1]


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_check_quick_on_cpu(tmp_path, capsys):
    mod = load_gpu_check()
    out = tmp_path / "gc.json"
    mod.main(["--quick", "--device", "cpu", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "train single nature_cnn" in printed and "evaluate 2 models" in printed
    res = json.loads(out.read_text())
    assert res["schema"] == "fls-gpu-check/1" and res["quick"] is True
    assert set(res["env"]) == {"8", "16"} and all(v > 0 for v in res["env"].values())
    assert set(res["train"]["single"]) == {"nature_cnn", "sparse_fls"}
    assert res["train"]["multi"]["2"]["nature_cnn"] > 0
    assert res["evaluate"]["agent_steps_per_s"] > 0 and res["score"]["inputs_per_s"] > 0
    assert res["gpu_memory_mib_per_run"]["nature_cnn"] is None  # CPU
    assert res["skipped"] == [] and res["budget_s"] is None
    assert all(res["train"]["startup_s"][a] > 0 for a in ("nature_cnn", "sparse_fls"))
    assert res["train"]["whole_run"]["single"]["nature_cnn"] > 0
    ks = res["kernels"]["nature_cnn"]
    assert {f"{k}_{v}_ms" for k in ("forward_b8", "forward_b40", "update_mb256")
            for v in ("fp32", "channels_last", "bf16")} == set(ks)  # no CUDA graph entry on CPU
    assert all(v > 0 for v in ks.values())
    assert "kernel nature_cnn update_mb256_bf16 (ms)" in printed
    from fls.profiles import load_profile

    params = load_profile(ROOT / "profiles" / "paper.yaml")
    params["grid"]["archs"] = [a for a in params["grid"]["archs"] if not a.startswith("dense")]  # not measured by --quick
    report = grid_cost(params, load_bench(out))
    assert report.total > 0


def test_steady_rate_leaves_out_the_first_update():
    mod = load_gpu_check()
    # updates end at 10 s (a slow start), 11 s, 12 s: 2 steady updates of 1024 steps in 2 s
    assert mod._steady([10.0, 11.0, 12.0], 1024) == 1024.0
    assert mod._steady([10.0], 1024) is None and mod._steady([], 1024) is None


def test_spent_budget_skips_sections_and_cost_names_the_gap(tmp_path, capsys):
    from fls.grid.cost import CostError

    mod = load_gpu_check()
    out = tmp_path / "gc.json"
    # a zero budget: env 8 is already past it, so every section is left out and listed, none measured as 0
    mod.main(["--quick", "--device", "cpu", "--budget-s", "0", "--out", str(out)])
    res = json.loads(out.read_text())
    assert res["env"] == {} and res["train"]["single"] == {} and res["kernels"] == {}
    assert "agent_steps_per_s" not in res["evaluate"] and "inputs_per_s" not in res["score"]
    assert res["skipped"][:3] == ["env 8", "env 16", "train single nature_cnn"]
    assert "evaluate" in res["skipped"] and "train multi R=2 nature_cnn" in res["skipped"]
    assert "skipped (budget 0 s spent)" in capsys.readouterr().out
    params = {"grid": {"archs": ["nature_cnn"], "games": ["Breakout"], "seeds": [1]}}
    with pytest.raises(CostError, match="has no throughput for nature_cnn.*budget-s was spent"):
        grid_cost(params, load_bench(out))


@pytest.mark.slow
def test_device_check_script_quick_mode(tmp_path):
    """benchmarks/device_check.sh (the one command for a lent GPU machine) runs end to end in its CPU mode."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OUT": str(tmp_path), "DEVICE_CHECK_QUICK": "1", "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "device_check (quick): rc 0" in proc.stdout
    assert json.loads((tmp_path / "gpu_check.json").read_text())["schema"] == "fls-gpu-check/1"
    assert (tmp_path / "gpu_check.log").read_text().startswith("gpu_check on cpu")
