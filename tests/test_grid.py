"""`fls grid`: planning from DVC, parallel execution on a real local Ray, retries, DVC commits.

The project under test is a tiny DVC repository built in tmp_path whose stage commands record when
they ran, so parallelism and dependency order are checked from the commands' own clocks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fls.grid import PlanError, build_plan, run_grid
from fls.grid.executor import BLOCKED, DONE, FAILED, UP_TO_DATE
from fls.grid.plan import DOWNSTREAM, STALE, matches, parse_selectors
from fls.grid.executor import RUNNING, StageRecord, execute_stage
from fls.grid.progress import GridProgress, estimate_eta, summary_table
from pipeline.app import app

TOOLS = r'''
"""Stage commands for the grid tests: each records its own start/end time in its output."""
import json, os, signal, sys, time

def write(out, **extra):
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out + ".tmp", "w") as fh:
        json.dump(extra, fh)
    os.replace(out + ".tmp", out)

def ray_worker_pid():
    pid = os.getppid()
    while pid > 1:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            if fh.read().startswith(b"ray::"):
                return pid
        with open(f"/proc/{pid}/stat") as fh:
            pid = int(fh.read().rsplit(")", 1)[1].split()[1])
    return None

kind, out = sys.argv[1], sys.argv[2]
start = time.time()
os.makedirs("state", exist_ok=True)
if kind == "work":
    time.sleep(float(sys.argv[3]))
    write(out, start=start, end=time.time())
elif kind == "meet":  # wait (at most 30 s) until all N cells of the matrix are running at the same time
    n = int(sys.argv[3])
    open(f"state/meet-{os.path.basename(out)}", "w").close()
    while len([f for f in os.listdir("state") if f.startswith("meet-")]) < n and time.time() - start < 30:
        time.sleep(0.05)
    met = len([f for f in os.listdir("state") if f.startswith("meet-")]) >= n
    time.sleep(0.5)
    write(out, start=start, end=time.time(), met=met)
elif kind == "const":
    write(out, value=42)
elif kind == "flaky":  # first run: leave progress behind and have the Ray worker killed (a lost worker)
    marker = "state/flaky.progress"
    if not os.path.exists(marker):
        write(marker, step=1, killed_at=time.time())
        pid = ray_worker_pid()
        if pid is None:
            sys.exit(5)
        os.kill(pid, signal.SIGKILL)
        time.sleep(3)  # this process must die with its worker; if it survives, it leaves a trace
        write("state/flaky.orphan", alive=True)
        sys.exit(0)
    with open(marker) as fh:
        write(out, resumed_from=json.load(fh)["step"], start=start, end=time.time())
elif kind == "selfkill":  # first run: leave progress behind, then SIGKILL itself (like the OOM killer)
    marker = "state/selfkill.progress"
    if not os.path.exists(marker):
        write(marker, step=1)
        os.kill(os.getpid(), signal.SIGKILL)
    with open(marker) as fh:
        write(out, resumed_from=json.load(fh)["step"], start=start, end=time.time())
elif kind == "broken":
    if not os.path.exists("allow_broken"):
        print("boom: deliberate failure", flush=True)
        sys.exit(3)
    write(out, start=start, end=time.time())
'''


def _dvc_yaml(python: str) -> str:
    py = f"{python} tools.py"
    return textwrap.dedent(
        f"""\
        stages:
          prep:
            cmd: {py} work prep.json 0
            outs: [prep.json]
          train:
            matrix:
              name: ${{names}}
            cmd: {py} meet runs/${{item.name}}.json 3
            deps: [prep.json]
            outs:
              - runs/${{item.name}}.json
          flaky:
            cmd: {py} flaky flaky.json
            deps: [prep.json]
            outs: [flaky.json]
          selfkill:
            cmd: {py} selfkill selfkill.json
            outs: [selfkill.json]
          broken:
            cmd: {py} broken broken.json
            outs: [broken.json]
          after_broken:
            cmd: {py} work after_broken.json 0
            deps: [broken.json]
            outs: [after_broken.json]
          const:
            cmd: {py} const const.json
            deps: [trigger.txt]
            outs: [const.json]
          after_const:
            cmd: {py} work after_const.json 0
            deps: [const.json]
            outs: [after_const.json]
          agg:
            cmd: {py} work agg.json 0
            deps: [runs, flaky.json, selfkill.json]
            outs: [agg.json]
        """
    )


def _make_project(root: Path) -> Path:
    from dvc.repo import Repo

    subprocess.run(["git", "init", "-q", str(root)], check=True)
    Repo.init(str(root)).close()
    (root / ".dvc" / "config").write_text("[core]\n    analytics = false\n")
    (root / "tools.py").write_text(TOOLS)
    (root / "params.yaml").write_text("names: [a, b, c]\n")
    (root / "trigger.txt").write_text("one\n")
    (root / "dvc.yaml").write_text(_dvc_yaml(sys.executable))
    return root


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    return _make_project(tmp_path / "proj")


@pytest.fixture(scope="module")
def fresh_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project nothing has run in, shared by the tests that only read it."""
    return _make_project(tmp_path_factory.mktemp("grid") / "proj")


def _window(root: Path, rel: str) -> tuple[float, float]:
    data = json.loads((root / rel).read_text())
    return data["start"], data["end"]


def _dvc_status(root: Path) -> str:
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "status"], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    return proc.stdout


# --------------------------------------------------------------------------------------------------
# Planning (no Ray)


def test_plan_orders_matrix_stages_after_their_upstream(fresh_project: Path) -> None:
    plan = build_plan(fresh_project)
    names = [s.name for s in plan.stages]
    assert set(names) == {
        "prep", "train@a", "train@b", "train@c", "flaky", "selfkill", "broken", "after_broken",
        "const", "after_const", "agg",
    }
    pos = {n: i for i, n in enumerate(names)}
    for stage in plan.stages:
        for up in stage.upstream:
            assert pos[up] < pos[stage.name], (up, stage.name)
    by = plan.by_name()
    assert set(by["agg"].upstream) == {"prep", "train@a", "train@b", "train@c", "flaky", "selfkill"}
    assert by["train@b"].group == "train" and by["train@b"].wdir == str(fresh_project)
    assert by["train@b"].commands[0].endswith("tools.py meet runs/b.json 3")
    assert all(s.kind == STALE for s in plan.stages)  # nothing ran yet: every stage's outputs are missing


def test_plan_selectors_pull_in_or_refuse_stale_upstream(fresh_project: Path) -> None:
    plan = build_plan(fresh_project, parse_selectors("train"))
    assert [s.name for s in plan.stages] == ["prep", "train@a", "train@b", "train@c"]
    assert plan.by_name()["prep"].pulled_in and not plan.by_name()["train@a"].pulled_in
    with pytest.raises(PlanError, match=r"stale upstream stage\(s\) must run first \(prep\)"):
        build_plan(fresh_project, ["train"], with_upstream=False)
    with pytest.raises(PlanError, match="no stage matches 'evaluate'"):
        build_plan(fresh_project, ["evaluate"])
    exact = build_plan(fresh_project, ["train@b", "prep"], with_upstream=False)
    assert [s.name for s in exact.stages] == ["prep", "train@b"]


def test_selector_matching_rules() -> None:
    assert matches("train@nature_cnn-Breakout-1", "train")
    assert matches("train@nature_cnn-Breakout-1", "train@nature_cnn")
    assert matches("train@nature_cnn-Breakout-1", "train@*-Breakout-*")
    assert not matches("train_summary", "train")
    assert not matches("train@dense_fls_pool-Breakout-1", "train@nature_cnn")
    assert matches("sub/dvc.yaml:score@x", "score")
    assert parse_selectors(" train, evaluate ,,") == ("train", "evaluate")


def test_plan_rejects_a_directory_without_dvc(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="not a DVC repository"):
        build_plan(tmp_path)
    with pytest.raises(PlanError, match="no such directory"):
        build_plan(tmp_path / "missing")


def test_eta_uses_per_group_mean_durations() -> None:
    durations = {"train": [100.0, 300.0], "evaluate": [10.0]}
    # two pending trains (200 each), one train running for 50 s (150 left), one pending score (overall mean 136.67)
    remaining = [("train", None), ("train", None), ("train", 50.0), ("score", None)]
    assert estimate_eta(remaining, durations, slots=2) == pytest.approx((200 + 200 + 150 + 410 / 3) / 2)
    assert estimate_eta(remaining, {}, slots=2) is None
    assert estimate_eta([], durations, slots=2) == 0.0
    assert estimate_eta([("train", 500.0)], durations, slots=1) == 0.0


def test_execute_stage_stops_at_first_failing_command_and_reports_a_missing_wdir(tmp_path: Path) -> None:
    spec = {"name": "s", "commands": ["echo one", "exit 4", "echo never"], "wdir": str(tmp_path),
            "log": str(tmp_path / "logs" / "s.log"), "shell": "/bin/sh", "env": {"FLS_X": "v"}}
    result = execute_stage(spec)
    assert result["returncode"] == 4 and result["end"] >= result["start"]
    log = (tmp_path / "logs" / "s.log").read_text()
    assert "one\n" in log and "never" not in log and log.count("### fls-grid: start") == 1

    result = execute_stage(dict(spec, commands=["echo $FLS_X > out.txt"], log=str(tmp_path / "t.log")))
    assert result["returncode"] == 0 and (tmp_path / "out.txt").read_text() == "v\n"

    result = execute_stage(dict(spec, wdir=str(tmp_path / "absent"), log=str(tmp_path / "m.log")))
    assert result["returncode"] == 127
    assert "same path on every node" in (tmp_path / "m.log").read_text()


def test_progress_line_counts_states_and_charges_running_time() -> None:
    records = {
        "train@a": StageRecord("train@a", "train", state=DONE, start=0.0, end=100.0),
        "train@b": StageRecord("train@b", "train", state=RUNNING, start=70.0),
        "train@c": StageRecord("train@c", "train", state=FAILED),
        "agg": StageRecord("agg", "agg", state=BLOCKED),
    }
    progress = GridProgress(len(records), slots=1, disable=True)
    # train@b has run 30 s of train's 100 s mean: 70 s left.
    assert progress.status_line(records, now=100.0) == (
        "done=1 up-to-date=0 running=1 pending=0 failed=1 blocked=1 eta=1:10"
    )
    progress.update(records, now=100.0)
    assert progress.finished == 3
    progress.close()


def test_cli_grid_status_and_dry_run(fresh_project: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["grid", "status", "--repo", str(fresh_project), "--stages", "agg"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].split() == ["#", "stage", "state", "waits", "for", "why"]
    assert "7 stage(s) planned" in res.output and "6 pulled in" in res.output
    assert [ln.split()[1] for ln in lines[2:9]] == ["prep", "flaky", "selfkill", "train@a", "train@b", "train@c", "agg"]

    res = runner.invoke(app, ["grid", "status", "--repo", str(fresh_project), "--json", "--stages", "train@c"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert [s["name"] for s in data["stages"]] == ["prep", "train@c"]

    res = runner.invoke(app, ["grid", "status", "--repo", str(fresh_project), "--stages", "agg", "--no-upstream"])
    assert res.exit_code == 2 and res.output.startswith("error: stages agg: 6 stale upstream")

    res = runner.invoke(app, ["grid", "run", "--repo", str(fresh_project), "--dry-run", "--stages", "const"])
    assert res.exit_code == 0, res.output
    assert "const" in res.output and not (fresh_project / ".fls_grid").exists()


# --------------------------------------------------------------------------------------------------
# Execution on a real local Ray cluster


@pytest.fixture(scope="module")
def local_ray():
    os.environ["RAY_DISABLE_USAGE_STATS"] = "1"
    import ray

    ray.init(
        address="local",
        num_cpus=4,
        num_gpus=0,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=80 * 1024 * 1024,
        log_to_driver=False,
        logging_level="WARNING",
    )
    yield ray
    ray.shutdown()


def test_grid_runs_in_parallel_retries_and_leaves_dvc_clean(project: Path, local_ray) -> None:
    outcome = run_grid(project, max_retries=1, cpus_per_run=1, show_progress=False)
    result = outcome.result
    assert result is not None
    rec = {r.name: r for r in result.records}

    # Everything except the broken stage and its dependant finished and was committed.
    assert {n for n, r in rec.items() if r.state == DONE} == set(rec) - {"broken", "after_broken"}
    assert rec["broken"].state == FAILED and rec["broken"].executions == 2  # 1 run + max_retries=1
    assert "exit code 3" in rec["broken"].error and "boom: deliberate failure" in rec["broken"].log_tail
    assert rec["after_broken"].state == BLOCKED and rec["after_broken"].blocked_by == "broken"

    # The worker killed under `flaky` was resubmitted by Ray; the rerun resumed from the marker.
    assert rec["flaky"].executions == 2 and rec["flaky"].submissions == 1
    assert json.loads((project / "flaky.json").read_text())["resumed_from"] == 1
    # The command that SIGKILLed itself was resubmitted by the driver and resumed too.
    assert rec["selfkill"].executions == 2 and rec["selfkill"].submissions == 2
    assert json.loads((project / "selfkill.json").read_text())["resumed_from"] == 1

    # Parallel: each train cell waited until all three were running at once, so they overlapped in time.
    assert all(json.loads((project / f"runs/{c}.json").read_text())["met"] for c in "abc")
    windows = sorted(_window(project, f"runs/{c}.json") for c in "abc")
    assert max(s for s, _ in windows) < min(e for _, e in windows), windows
    # Dependencies: train after prep; agg after every upstream ended.
    prep_end = _window(project, "prep.json")[1]
    assert all(s >= prep_end for s, _ in windows)
    agg_start = _window(project, "agg.json")[0]
    upstream_ends = [e for _, e in windows] + [_window(project, f)[1] for f in ("flaky.json", "selfkill.json")]
    assert agg_start >= max(upstream_ends)

    table = summary_table(result)
    assert "| boom: deliberate failure" in table and "blocked by broken" in table

    summary = json.loads((project / ".fls_grid" / "summary.json").read_text())
    assert summary["schema"] == "fls.grid.summary/1"
    assert summary["counts"]["done"] == 9 and summary["counts"]["failed"] == 1 and summary["counts"]["blocked"] == 1
    assert (project / ".fls_grid" / "logs" / "train@a.log").exists()
    run_info = json.loads((project / ".fls_grid" / "run_info.json").read_text())
    assert run_info["config"]["max_retries"] == 1

    # DVC agrees: only the failed stage and its dependant are stale.
    assert {s.name: s.kind for s in build_plan(project).stages} == {"broken": STALE, "after_broken": STALE}

    # The worker's command died with its worker (no orphan finished its sleep).
    killed_at = json.loads((project / "state" / "flaky.progress").read_text())["killed_at"]
    time.sleep(max(0.0, killed_at + 4.0 - time.time()))
    assert not (project / "state" / "flaky.orphan").exists()

    # Rerun after fixing the failure and touching const's input: exactly the stale stages run; after_const
    # stays up to date because const rewrote identical output (as `dvc repro` would skip it).
    (project / "allow_broken").write_text("")
    (project / "trigger.txt").write_text("two\n")
    plan = build_plan(project)
    assert {s.name: s.kind for s in plan.stages} == {
        "broken": STALE, "after_broken": STALE, "const": STALE, "after_const": DOWNSTREAM,
    }
    again = run_grid(project, max_retries=1, show_progress=False).result
    assert again is not None
    assert {r.name: r.state for r in again.records} == {
        "broken": DONE, "after_broken": DONE, "const": DONE, "after_const": UP_TO_DATE,
    }
    assert "Data and pipelines are up to date." in _dvc_status(project)
    assert run_grid(project, show_progress=False).plan.stages == []
