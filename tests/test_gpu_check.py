"""benchmarks/gpu_check.py --quick runs on CPU, prints its table and writes JSON that `fls grid cost` reads."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from fls.grid.cost import grid_cost, load_bench

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_quick_on_cpu(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
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
    from fls.profiles import load_profile

    params = load_profile(ROOT / "profiles" / "paper.yaml")
    params["grid"]["archs"] = [a for a in params["grid"]["archs"] if not a.startswith("dense")]  # not measured by --quick
    report = grid_cost(params, load_bench(out))
    assert report.total > 0
