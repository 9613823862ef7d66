"""`fls grid run --group`: batched multi-run tasks derived from the stages' own commands.

Planning-level tests read the real dvc.yaml's train/evaluate command templates; the equivalence tests
run the real `fls train` / `fls evaluate` CLIs (with the training and evaluation themselves replaced by
recorders) on each single command and on the batched one; the Ray tests run a tiny DVC project whose
`./fls` is a fake that writes deterministic outputs and logs every invocation.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from typer.testing import CliRunner

from fls.grid import build_plan, run_grid
from fls.grid.executor import BLOCKED, DONE, FAILED, GridError, RunOptions
from fls.grid.group import Group, evaluate_member, form_groups, train_member
from fls.grid.plan import STALE, PlannedStage
from pipeline.app import app
from test_grid import _dvc_status, local_ray  # noqa: F401 - the module's Ray fixture

REPO = Path(__file__).resolve().parents[1]


def _cmd(template: str, **item: str) -> str:
    for key, value in item.items():
        template = template.replace("${item.%s}" % key, value)
    return " ".join(template.split())  # DVC folds `>-` blocks into one line


def _stage(name: str, command: str, wdir: str = "/repo") -> PlannedStage:
    return PlannedStage(name=name, group=name.split("@")[0], commands=(command,), wdir=wdir, upstream=(), kind=STALE)


@pytest.fixture(scope="module")
def templates() -> dict[str, str]:
    data = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {k: data[k]["cmd"] for k in ("train", "evaluate", "evaluate_infinite")}


def _train_stages(templates, arch="nature_cnn", game="Breakout", seeds=(1, 9, 17)):
    return [
        _stage(f"train@{arch}-{game}-{s}", _cmd(templates["train"], arch=arch, game=game, seed=str(s))) for s in seeds
    ]


def _eval_stages(templates, arch="nature_cnn", game="Breakout", seeds=(1, 9, 17)):
    return [
        _stage(f"evaluate@{arch}-{game}-{s}", _cmd(templates["evaluate"], arch=arch, game=game, seed=str(s)))
        for s in seeds
    ]


def test_dvc_yaml_train_and_evaluate_cells_batch_into_multi_run_commands(templates) -> None:
    trains = _train_stages(templates)
    other = _train_stages(templates, arch="sparse_fls", seeds=(1,))
    evals = _eval_stages(templates) + _eval_stages(templates, arch="sparse_fls", seeds=(1,))
    out = form_groups([*trains, *other, *evals], ("train", "evaluate"), max_size=5)
    assert isinstance(out[0], Group) and out[1] is other[0] and isinstance(out[2], Group) and len(out) == 3
    assert out[0].members == tuple(trains) and out[0].name == "train@nature_cnn-Breakout-1+2"
    assert out[0].command == (
        "fls train --params params.yaml --arch nature_cnn --game Breakout --seeds 1,9,17 --out-root runs "
        "--restart-on-change"
    )
    # evaluation batches one game's models across archs (same flags, same params file)
    assert out[2].members == tuple(evals)
    assert out[2].command == (
        "fls evaluate --params params.yaml --runs runs/nature_cnn/Breakout/1,runs/nature_cnn/Breakout/9,"
        "runs/nature_cnn/Breakout/17,runs/sparse_fls/Breakout/1 --out-root evals --game Breakout --no-progress"
    )
    # the size cap splits a batch; stage groups not asked for stay single
    capped = form_groups(trains, ("train",), max_size=2)
    assert [len(g.members) if isinstance(g, Group) else 1 for g in capped] == [2, 1]
    assert form_groups(trains, ("evaluate",), max_size=5) == trains
    # BreakoutInfinite cells batch among themselves, never with the Breakout evaluations
    inf = [
        _stage(f"evaluate_infinite@nature_cnn-{s}", _cmd(templates["evaluate_infinite"], arch="nature_cnn", seed=str(s)))
        for s in (1, 9)
    ]
    mixed = form_groups([*evals[:2], *inf], ("evaluate", "evaluate_infinite"), max_size=5)
    assert [g.members for g in mixed] == [tuple(evals[:2]), tuple(inf)]
    assert "--runs runs/nature_cnn/Breakout/1,runs/nature_cnn/Breakout/9 --out-root evals --game BreakoutInfinite" in (
        mixed[1].command
    )


@pytest.mark.parametrize(
    "command",
    [
        "fls train --arch a --game G --seed 1 --out runs/a/G/1 && echo hi",  # shell syntax
        "fls train --arch a --game G --seed=1 --out runs/a/G/1",  # --flag=value form
        "fls train --arch a --game G --seed 1 --out runs/a/G/x1",  # out not <root>/<arch>/<game>/<seed>
        "fls train --arch a --game G --seed 01 --out runs/a/G/01",  # run_dir would write runs/a/G/1
        "fls train --game G --seed 1 --out runs/a/G/1",  # arch from params only: layout unknown here
        "fls train --arch a --game G --seed 1 --out a/G/1",  # no out root
        "python train.py --arch a --game G --seed 1 --out runs/a/G/1",  # another program
    ],
)
def test_train_commands_outside_the_pattern_are_not_batched(command: str) -> None:
    assert train_member(_stage("train@x", command)) is None


@pytest.mark.parametrize(
    "command",
    [
        "fls evaluate --run runs/a/G/1 --out evals/G/a/1",  # no --game
        "fls evaluate --run runs/a/G/1 --game G --out evals/H/a/1",  # out for another game
        "fls evaluate --run runs/a/G/1 --game G --out evals/G/a/1 --video v.mp4",  # single-policy option
        "fls evaluate --checkpoint m.pt --game G --out evals/G/a/1",  # not a run directory
        "fls evaluate --run runs/a/G/1 --game G --out evals/G/a/1 --run runs/a/G/2",  # two --run
    ],
)
def test_evaluate_commands_outside_the_pattern_are_not_batched(command: str) -> None:
    assert evaluate_member(_stage("evaluate@x", command)) is None


def test_group_options_are_checked() -> None:
    with pytest.raises(GridError, match="grid run: field 'group_size' must be >= 1, got 0"):
        RunOptions(group=("train",), group_size=0).validate()
    with pytest.raises(GridError, match="field 'cpus_per_run' must be > 0"):
        RunOptions(cpus_per_run=0).validate()
    with pytest.raises(GridError, match="field 'max_retries' must be >= 0"):
        RunOptions(max_retries=-1).validate()
    with pytest.raises(GridError, match="stage group names"):
        RunOptions(group=("train@a",)).validate()


def test_batched_train_command_configures_exactly_the_single_runs(templates, tmp_path, monkeypatch) -> None:
    """The real `fls train` CLI: each single command and the batched one hand train the same configs and dirs."""
    import fls.ppo.multirun as multirun
    import pipeline.train as train_cli

    (tmp_path / "params.yaml").write_text(
        "train:\n  total_steps: 64\n  num_envs: 2\n  num_steps: 16\n  device: cpu\n  progress: false\n  seed: 4\n"
    )
    monkeypatch.chdir(tmp_path)
    calls: list[tuple[object, str, bool]] = []

    def result(out):
        return multirun.TrainResult("finished", Path(out), 64, 2, 0.0, 0, 0.0, 0.0)

    def fake_train(cfg, out, *, restart_on_change=False):
        calls.append((cfg, str(out), restart_on_change))
        return result(out)

    def fake_many(cfgs, outs, *, restart_on_change=False):
        calls.extend((c, str(o), restart_on_change) for c, o in zip(cfgs, outs))
        return [multirun.RunOutcome(c, Path(o), result=result(o)) for c, o in zip(cfgs, outs)]

    monkeypatch.setattr(train_cli, "train", fake_train)
    monkeypatch.setattr(train_cli, "train_many", fake_many)
    runner = CliRunner()
    stages = _train_stages(templates, seeds=(1, 9, 17))
    for stage in stages:
        res = runner.invoke(app, shlex.split(stage.commands[0])[1:])
        assert res.exit_code == 0, res.output
    single, calls[:] = list(calls), []
    (group,) = form_groups(stages, ("train",), 5)
    res = runner.invoke(app, shlex.split(group.command)[1:])
    assert res.exit_code == 0, res.output
    assert calls == single and len(single) == 3
    assert [c[1] for c in single] == [f"runs/nature_cnn/Breakout/{s}" for s in (1, 9, 17)]
    assert {c[0].seed for c in single} == {1, 9, 17} and all(c[2] for c in single)


def test_batched_evaluate_command_configures_exactly_the_single_runs(templates, tmp_path, monkeypatch) -> None:
    import fls.evaluation.multi as multi
    import pipeline.evaluate as eval_cli

    (tmp_path / "params.yaml").write_text("evaluate:\n  episodes: 4\n  num_envs: 2\n  seed: 1000\n  device: cpu\n")
    monkeypatch.chdir(tmp_path)
    calls: list[tuple[object, str, str, str | None]] = []
    summary = SimpleNamespace(n=1, mean=0.0, std=0.0, min=0.0, max=0.0, n_truncated=0, max_episode_steps=1)

    def fake_single(cfg, out, *, run=None, game=None, **kw):
        assert not any(kw.get(k) for k in ("checkpoint", "arch", "video", "frames"))
        calls.append((cfg, str(run), str(out), game))
        result = SimpleNamespace(summary=summary, arch="a", game=game)  # what the CLI prints of an EvalRecord
        return SimpleNamespace(result=result, video=None, paths={"eval": str(out)})

    def fake_many(cfg, runs, out_root, *, game=None):
        members = []
        for run in runs:
            out = multi.out_dir_for(out_root, run, game)
            calls.append((cfg, str(run), str(out), game))
            members.append(multi.RunEvaluation(Path(run), out, result=fake_single(cfg, out, run=run, game=game)))
            calls.pop()
        return members

    monkeypatch.setattr(eval_cli, "evaluate_to_dir", fake_single)
    monkeypatch.setattr(eval_cli, "evaluate_runs_to_dirs", fake_many)
    runner = CliRunner()
    stages = _eval_stages(templates, seeds=(1, 9)) + _eval_stages(templates, arch="sparse_fls", seeds=(1,))
    for stage in stages:
        res = runner.invoke(app, shlex.split(stage.commands[0])[1:])
        assert res.exit_code == 0, res.output
    single, calls[:] = list(calls), []
    (group,) = form_groups(stages, ("evaluate",), 5)
    res = runner.invoke(app, shlex.split(group.command)[1:])
    assert res.exit_code == 0, res.output
    assert calls == single and len(single) == 3
    assert single[2][1:] == ("runs/sparse_fls/Breakout/1", "evals/Breakout/sparse_fls/1", "Breakout")


# --------------------------------------------------------------------------------------------------
# On a real local Ray: a DVC project whose `./fls` is a fake multi-run CLI.

FAKE_FLS = r'''#!PYTHON
"""Fake `fls train|evaluate` with the real flags' layout; logs argv; fail_<kind>_<seed> files make a member fail."""
import json, os, sys

argv = sys.argv[1:]
os.makedirs("state", exist_ok=True)
with open("state/invocations.jsonl", "a") as fh:
    fh.write(json.dumps(argv) + "\n")
kind = argv[0]
opts = {argv[i]: argv[i + 1] for i in range(1, len(argv) - 1) if argv[i].startswith("--")}

def put(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as fh:
        json.dump(data, fh, sort_keys=True)
    os.replace(path + ".tmp", path)

failed = 0
if kind == "train":
    if "--seeds" in opts:
        jobs = [(s, os.path.join(opts["--out-root"], opts["--arch"], opts["--game"], s)) for s in opts["--seeds"].split(",")]
    else:
        jobs = [(opts["--seed"], opts["--out"])]
    for seed, out in jobs:
        if os.path.exists(f"fail_train_{seed}"):
            failed += 1
            print(f"{out}: error: deliberate", flush=True)
            continue
        put(os.path.join(out, "model.json"), {"arch": opts["--arch"], "game": opts["--game"], "seed": int(seed)})
else:
    if "--runs" in opts:
        runs = opts["--runs"].split(",")
        jobs = [(r, os.path.join(opts["--out-root"], opts["--game"], r.split("/")[-3], r.split("/")[-1])) for r in runs]
    else:
        jobs = [(opts["--run"], opts["--out"])]
    for run, out in jobs:
        if os.path.exists(f"fail_evaluate_{run.split('/')[-1]}"):
            failed += 1
            print(f"{run}: error: deliberate", flush=True)
            continue
        with open(os.path.join(run, "model.json")) as fh:
            model = json.load(fh)
        put(os.path.join(out, "eval.json"), {"model": model, "game": opts["--game"]})
        put(os.path.join(out, "metrics.json"), {"score": model["seed"] * 10})
sys.exit(1 if failed else 0)
'''

DVC_YAML = """\
stages:
  train:
    matrix:
      arch: [a]
      game: [G]
      seed: ${seeds}
    cmd: >-
      ./fls train --params params.yaml --arch ${item.arch} --game ${item.game} --seed ${item.seed}
      --out runs/${item.arch}/${item.game}/${item.seed} --restart-on-change
    outs:
      - runs/${item.arch}/${item.game}/${item.seed}/model.json:
          persist: true
  evaluate:
    matrix:
      arch: [a]
      game: [G]
      seed: ${seeds}
    cmd: >-
      ./fls evaluate --params params.yaml --run runs/${item.arch}/${item.game}/${item.seed} --game ${item.game}
      --out evals/${item.game}/${item.arch}/${item.seed} --no-progress
    deps:
      - runs/${item.arch}/${item.game}/${item.seed}/model.json
    outs:
      - evals/${item.game}/${item.arch}/${item.seed}/eval.json
    metrics:
      - evals/${item.game}/${item.arch}/${item.seed}/metrics.json
"""


def _fake_project(root: Path) -> Path:
    from dvc.repo import Repo

    subprocess.run(["git", "init", "-q", str(root)], check=True)
    Repo.init(str(root)).close()
    (root / ".dvc" / "config").write_text("[core]\n    analytics = false\n")
    (root / "params.yaml").write_text("seeds: [1, 2, 3]\n")
    (root / "dvc.yaml").write_text(DVC_YAML)
    fake = root / "fls"
    fake.write_text(FAKE_FLS.replace("PYTHON", sys.executable, 1))
    fake.chmod(0o755)
    return root


def _invocations(root: Path) -> list[list[str]]:
    path = root / "state" / "invocations.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_grouped_grid_commits_each_member_exactly_as_single_stages(tmp_path: Path, local_ray) -> None:  # noqa: F811
    single = _fake_project(tmp_path / "single")
    grouped = _fake_project(tmp_path / "grouped")
    assert run_grid(single, show_progress=False).result.ok
    outcome = run_grid(grouped, group=("train", "evaluate"), show_progress=False)
    assert outcome.result is not None and outcome.result.ok
    calls = _invocations(grouped)
    assert [c[0] for c in calls] == ["train", "evaluate"]  # one task each
    assert "--seeds" in calls[0] and calls[0][calls[0].index("--seeds") + 1] == "1,2,3"
    assert calls[1][calls[1].index("--runs") + 1] == "runs/a/G/1,runs/a/G/2,runs/a/G/3"
    assert len(_invocations(single)) == 6
    rec = {r.name: r for r in outcome.result.records}
    assert rec["train@a-G-2"].task == "train@a-G-1+2" and rec["train@a-G-2"].state == DONE
    assert rec["evaluate@a-G-3"].log.endswith("evaluate@a-G-1+2.log")
    # DVC's record of the grouped grid is the single-stage one (entry order follows commit order, which
    # varies with which parallel task ends first, even between two single-stage grids).
    lock = {p: yaml.safe_load((p / "dvc.lock").read_text()) for p in (single, grouped)}
    assert lock[grouped] == lock[single] and len(lock[single]["stages"]) == 6
    for path in sorted(p.relative_to(single) for p in (single / "evals").rglob("*.json")):
        assert (grouped / path).read_bytes() == (single / path).read_bytes()
    assert "Data and pipelines are up to date." in _dvc_status(grouped)
    summary = json.loads((grouped / ".fls_grid" / "summary.json").read_text())
    assert summary["options"]["group"] == ["train", "evaluate"]


def test_a_failing_member_fails_only_its_own_stage_and_a_rerun_resumes(tmp_path: Path, local_ray) -> None:  # noqa: F811
    # A training member fails: the others rerun alone once (their persistent outputs cannot show whether
    # the batch finished them; `fls train` resumes / recognises a finished run), the failing one fails as
    # its own stage after the split run and max_retries, and only its dependant is blocked.
    root = _fake_project(tmp_path / "train_fails")
    (root / "fail_train_2").write_text("")
    result = run_grid(root, group=("train", "evaluate"), max_retries=1, show_progress=False).result
    assert result is not None and not result.ok
    rec = {r.name: r for r in result.records}
    assert {n: r.state for n, r in rec.items()} == {
        "train@a-G-1": DONE, "train@a-G-2": FAILED, "train@a-G-3": DONE,
        "evaluate@a-G-1": DONE, "evaluate@a-G-2": BLOCKED, "evaluate@a-G-3": DONE,
    }
    assert rec["evaluate@a-G-2"].blocked_by == "train@a-G-2"
    assert rec["train@a-G-2"].executions == 3 and "deliberate" in rec["train@a-G-2"].log_tail
    trains = [" ".join(c) for c in _invocations(root) if c[0] == "train"]
    assert len(trains) == 5 and "--seeds 1,2,3" in trains[0]  # batch, 3 split runs, 1 retry of seed 2
    assert {s.name for s in build_plan(root).stages} == {"train@a-G-2", "evaluate@a-G-2"}
    os.remove(root / "fail_train_2")
    again = run_grid(root, group=("train", "evaluate"), show_progress=False).result
    assert again is not None and again.ok and {r.name for r in again.records} == {"train@a-G-2", "evaluate@a-G-2"}
    assert "Data and pipelines are up to date." in _dvc_status(root)

    # An evaluation member fails: the members whose (non-persistent) outputs the batch wrote completely
    # are committed from the batch without running again; only the failing one reruns and fails.
    root = _fake_project(tmp_path / "eval_fails")
    (root / "fail_evaluate_3").write_text("")
    result = run_grid(root, group=("train", "evaluate"), max_retries=1, show_progress=False).result
    assert result is not None
    states = {r.name: r.state for r in result.records}
    assert states == {**{f"train@a-G-{s}": DONE for s in (1, 2, 3)}, "evaluate@a-G-1": DONE, "evaluate@a-G-2": DONE,
                      "evaluate@a-G-3": FAILED}
    calls = [" ".join(c) for c in _invocations(root)]
    assert [c.split()[0] for c in calls] == ["train", "evaluate", "evaluate", "evaluate"]
    assert "--runs runs/a/G/1,runs/a/G/2,runs/a/G/3" in calls[1]
    assert all("--run runs/a/G/3 " in c for c in calls[2:])
    assert {s.name for s in build_plan(root).stages} == {"evaluate@a-G-3"}


def test_cli_grid_run_group_option(tmp_path: Path) -> None:
    root = _fake_project(tmp_path / "proj")
    res = CliRunner().invoke(app, ["grid", "run", "--repo", str(root), "--group", "train@a", "--dry-run"])
    assert res.exit_code == 2 and "stage group names" in res.output
    res = CliRunner().invoke(app, ["grid", "run", "--repo", str(root), "--group", "train", "--dry-run"])
    assert res.exit_code == 0 and "train@a-G-1" in res.output
