"""End to end: `dvc repro` of the tiny profile in a copy of the repo, then DVC's bookkeeping.

Checks that every declared output exists and every table parses, that a second `dvc repro` reruns
nothing, and that changing one param (evaluate.episodes; then, by `dvc status` only, score and atari_head
keys) makes exactly the stages that read it stale.
Slow (a few minutes on a 2-core CPU): run with `pytest -m slow tests/test_pipeline_e2e.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fls.profiles import render
from helpers import BIN, REPO, commit_project, copy_repo, run_checked as _run

pytestmark = pytest.mark.slow


def _stale(cwd: Path, env: dict[str, str]) -> set[str]:
    out = _run([str(BIN / "dvc"), "status", "--json"], cwd, env).stdout
    return set(json.loads(out or "{}"))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    copy_repo(root)
    (root / "params.yaml").write_text(render(root / "profiles" / "tiny.yaml", root))  # fls params render
    env = commit_project(root, "tiny profile")
    res = _run([str(BIN / "dvc"), "repro"], root, env)
    return root, env, res.stdout


def _declared_outputs(root: Path) -> list[Path]:
    """Every out/metric/plot path of every stage, as `dvc stage list` resolves the matrices (via dvc.lock)."""
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    paths = []
    for st in lock.values():
        paths += [root / o["path"] for o in st.get("outs", [])]
    return paths


def test_repro_writes_every_declared_output_and_tables_parse(project):
    root, env, _ = project
    stages = _run([str(BIN / "dvc"), "stage", "list", "--name-only"], root, env).stdout.split()
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    assert set(stages) == set(lock), "every stage ran and is recorded in dvc.lock"
    assert len(stages) == 14  # acquire, preprocess, 2 train, 2 evaluate, 1 infinite, 1 score, 1 score_corrected, 2 reference, 2 posthoc, report
    outs = _declared_outputs(root)
    missing = [str(p.relative_to(root)) for p in outs if not p.exists()]
    assert not missing
    tables = sorted((root / "reports" / "tables").glob("*.csv"))
    assert [t.stem for t in tables] == ["table2_params", "table3_scores", "table3b_iqm", "table4_corrections",
                                        "table4_saliency", "table4b_saliency_ci", "table5_breakout_infinite"]
    t3 = pd.read_csv(root / "reports" / "tables" / "table3_scores.csv").set_index(["arch", "game"])
    assert t3.loc[("sparse_fls", "Breakout"), "seeds"] == 1 and t3.loc[("sparse_fls", "Breakout"), "episodes"] == 2
    assert pd.isna(t3.loc[("daqn", "Breakout"), "mean"])  # not run: empty, never filled
    t4 = pd.read_csv(root / "reports" / "tables" / "table4_saliency.csv")
    ours = t4[(t4["model"] == "sparse_fls") & (t4["game"] == "Breakout")]
    assert ours["seeds"].tolist() == [1, 1, 1, 1]  # nss, kl, sauc, sauc_exact
    for model in ("uniform", "center_bias", "perturbation (nature_cnn)", "gradient (nature_cnn)"):
        assert (t4[(t4["model"] == model) & (t4["game"] == "Breakout")]["seeds"] == 1).all(), model
    t5 = pd.read_csv(root / "reports" / "tables" / "table5_breakout_infinite.csv").set_index("arch")
    assert t5.loc["sparse_fls", "infinite_episodes"] == 2
    curves = pd.read_csv(root / "reports" / "fig3_curves.csv")
    assert set(curves["arch"]) <= {"nature_cnn", "sparse_fls"}
    assert (root / "reports" / "figures" / "fig3_reward_curves.png").exists()
    assert (root / "reports" / "figures" / "fig5_gaze_Breakout.png").exists()
    assert (root / "reports" / "figures" / "fig4_perception_Breakout.png").exists()
    index = (root / "reports" / "index.md").read_text()
    assert "profile `tiny`" in index and "(figures/fig4_perception_Breakout.png)" in index
    # the per-game episode cap of the tiny profile (BreakoutInfinite: 40) applies; Breakout keeps max_episode_steps
    caps = {g: json.loads((root / "evals" / g / "sparse_fls" / "1" / "eval.json").read_text())["summary"]["max_episode_steps"]
            for g in ("Breakout", "BreakoutInfinite")}
    assert caps == {"Breakout": 50, "BreakoutInfinite": 40}
    # DVC can read what the stages declared as metrics and plots
    shown = json.loads(_run([str(BIN / "dvc"), "metrics", "show", "--json"], root, env).stdout)
    assert shown, "dvc metrics show returned nothing"
    plots = json.loads(_run([str(BIN / "dvc"), "plots", "show", "--json"], root, env).stdout)
    assert not plots.get("errors"), plots.get("errors")
    (fig3,) = plots["data"]["reports/fig3_curves.csv"]
    spec = fig3["content"]  # the Vega-Lite spec DVC renders: a panel per game, a line per arch
    assert spec["facet"]["field"] == "game" and spec["spec"]["encoding"]["color"]["field"] == "series"
    drawn = {(v["game"], v["arch"]) for v in spec["data"]["values"]}
    assert drawn == set(zip(curves["game"], curves["arch"])) and len(drawn) == 2
    # the dvclive training logs: one TSV per quantity, x = agent steps, every update of the run
    live = "runs/sparse_fls/Breakout/1/dvclive/plots/metrics/charts/episodic_return.tsv"
    (drawn_live,) = plots["data"][live]
    steps = [v["step"] for v in drawn_live["content"]["data"]["values"]]
    assert [int(x) for x in steps] == [64, 128]
    assert "runs/nature_cnn/Breakout/1/dvclive/plots/metrics/losses/value_loss.tsv" in plots["data"]
    assert shown  # and `dvc metrics` sees the dvclive summaries next to the eval/score results
    files = {f for rev in shown.values() for f in rev.get("data", {})}
    assert "runs/sparse_fls/Breakout/1/dvclive/metrics.json" in files and "reports/metrics.json" in files


def test_second_repro_reruns_nothing(project):
    root, env, _ = project
    assert _stale(root, env) == set()
    res = _run([str(BIN / "dvc"), "repro"], root, env)
    assert "Running stage" not in res.stdout, res.stdout


def test_changing_one_param_reruns_only_its_dependants(project):
    root, env, _ = project
    git = ["git", "-c", "user.email=e2e@example.invalid", "-c", "user.name=e2e"]
    _run(git + ["add", "dvc.lock"], root, env)
    _run(git + ["commit", "-qm", "baseline results"], root, env)  # experiments need a committed baseline
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["evaluate"]["episodes"] = 4
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stale = _stale(root, env)
    # the report reads `grid`/`report`, not `evaluate`: it is stale only later, through its evals dep
    assert stale == {"evaluate@nature_cnn-Breakout-1", "evaluate@sparse_fls-Breakout-1", "evaluate_infinite@sparse_fls-1"}
    res = _run([str(BIN / "dvc"), "exp", "run"], root, env)  # the one-param experiment
    ran = {line.split("'")[1] for line in res.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == stale | {"report"}
    t3 = pd.read_csv(root / "reports" / "tables" / "table3_scores.csv").set_index(["arch", "game"])
    assert t3.loc[("sparse_fls", "Breakout"), "episodes"] == 4
    assert _stale(root, env) == set()
    # `dvc metrics diff` lists results only: the changed evaluations and report cells, no config/provenance
    diff = json.loads(_run([str(BIN / "dvc"), "metrics", "diff", "--json"], root, env).stdout or "{}")
    keys = [(path, key) for path, changed in diff.items() for key in changed]
    assert keys, "the experiment changed no metric"
    banned = ("config", "run_info", "timing", "git", "seconds", "wall", "sps", "device", "profile")
    assert not [k for k in keys if any(b in k[1].lower() for b in banned)], keys
    assert {p for p, _ in keys} <= {"reports/metrics.json"} | {
        f"evals/{g}/{a}/1/metrics.json" for g, a in (("Breakout", "nature_cnn"), ("Breakout", "sparse_fls"),
                                                     ("BreakoutInfinite", "sparse_fls"))}
    assert diff["evals/Breakout/sparse_fls/1/metrics.json"]["n"]["new"] == 4
    assert diff["reports/metrics.json"]["table3/sparse_fls/Breakout/episodes"]["new"] == 4
    # `dvc exp show` lists the dvclive training metrics as columns
    exp = _run([str(BIN / "dvc"), "exp", "show", "--csv"], root, env).stdout
    assert "charts.episodic_return" in exp.splitlines()[0] or "charts/episodic_return" in exp.splitlines()[0], exp[:500]
    # exact params keys (dvc.yaml): a score setting makes stale only the stages whose method reads it
    main, corrected = {"score@sparse_fls-Breakout-1"}, {"score_corrected@aligned-fls-sparse_fls-Breakout-1"}
    reference = {"score_reference@uniform-Breakout", "score_reference@center_bias-Breakout"}
    posthoc = {"score_posthoc@perturbation-nature_cnn-Breakout-1", "score_posthoc@gradient-nature_cnn-Breakout-1"}
    text = (root / "params.yaml").read_text()
    for section, key, value, expect in (
        ("score", "perturb_sigma", 4.0, posthoc),  # one list per stage: the gradient cell too, but no reference
        ("score", "center_sigma", 0.3, reference),
        ("score", "protocol", "fls", main | reference | posthoc),  # score_corrected takes it from --variant
        ("score", "n_draws", 11, main | corrected | reference | posthoc),
        ("atari_head", "alignment", "aligned", main | reference | posthoc),
        ("atari_head", "workers", 2, set()),  # untracked: cannot change a preprocessed file
    ):
        changed = yaml.safe_load(text)
        assert changed[section][key] != value
        changed[section][key] = value
        (root / "params.yaml").write_text(yaml.safe_dump(changed, sort_keys=False))
        assert _stale(root, env) == expect, f"{section}.{key}"
    (root / "params.yaml").write_text(text)
    assert _stale(root, env) == set()
