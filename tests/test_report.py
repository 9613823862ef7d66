"""fls.report: tables from small stage outputs written with the real schemas, plus checks that the
DVC pipeline definition (dvc.yaml, params.yaml, profiles/) is consistent with the code."""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from fls.atomic import atomic_write_json
from fls.config import ConfigError, build_config, load_config
from fls.evaluation.protocol import EPISODE_FIELDS, summarize
from fls.profiles import load_profile, render
from fls.report import GridConfig, Layout, build_report, figures, paper, perception, tables
from fls.report.build import ReportConfig
from fls.report.inputs import ReportInputError
from fls.scoring.score import metric_summary
from helpers import REPO, save_fresh_checkpoint

MISSING = tables.MISSING


# ------------------------------------------------------------------------------------------ writers
def write_eval(root: Path, game: str, arch: str, seed: int, rewards: list[float]) -> None:
    """An eval.json as `fls evaluate` writes it (episode rows with EPISODE_FIELDS, summary)."""
    rows = [dict(zip(EPISODE_FIELDS, (i % 2, i // 2, float(r), 400, 100, False))) for i, r in enumerate(rewards)]
    atomic_write_json(Layout(evals=root).eval_dir(game, arch, seed) / "eval.json",
                      {"summary": summarize(rows), "episodes": rows, "game": game})


def write_score(path: Path, nss: list[float], kl: list[float], sauc: list[float]) -> None:
    """A scoring summary.json whose metric block comes from fls.scoring's own summariser."""
    df = pd.DataFrame({"nss": nss, "kl": kl, "sauc": sauc, "sauc_exact": sauc})
    atomic_write_json(path / "summary.json", {"metrics": metric_summary(df), "synthetic_gaze": True})


def write_curve(run_dir: Path, steps: list[int], values: list[float]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame({"global_step": steps, "update": range(1, len(steps) + 1), "eprewmean": values, "episodes": 1})
    df.to_csv(run_dir / "metrics.csv", index=False)


GRID = dict(archs=["nature_cnn", "sparse_fls"], games=["Breakout", "SpaceInvaders"], seeds=[1, 9],
            infinite_archs=["sparse_fls"], score_archs=["sparse_fls"], score_games=["Breakout"])


@pytest.fixture
def grid() -> GridConfig:
    return build_config(GridConfig, GRID)


# ------------------------------------------------------------------------------------------ Table 2
def test_table2_matches_paper_counts_and_marks_unpublished():
    t = tables.table2()
    data = t.data.set_index("arch")
    published = paper.paper_params()
    assert len(published) == 8
    for arch, count in published.items():
        assert data.loc[arch, "paper_params"] == count
        assert data.loc[arch, "diff"] == data.loc[arch, "params"] - count
    assert (data.loc[list(published), "diff"] == 0).all()  # our models have the paper's sizes
    shown = t.display.set_index("arch")
    assert shown.loc["daqn", "params (paper)"] == "130,726"
    assert shown.loc["sparse_fls_norm", "params (paper)"] == MISSING
    assert shown.loc["sparse_fls_norm", "diff"] == MISSING


def test_table2_diff_is_nonzero_for_a_wrong_count():
    t = tables.table2([{"arch": "nature_cnn", "params": 1_686_700}])
    row = t.data.set_index("arch").loc["nature_cnn"]
    assert row["diff"] == 7
    assert t.display.set_index("arch").loc["nature_cnn", "diff"] == "+7"
    assert t.display.set_index("arch").loc["daqn", "params (ours)"] == MISSING  # paper-only row kept


# ------------------------------------------------------------------------------------------ Table 3
def test_table3_pools_episodes_of_all_seeds_and_shows_missing(tmp_path, grid):
    write_eval(tmp_path, "Breakout", "nature_cnn", 1, [10, 20])
    write_eval(tmp_path, "Breakout", "nature_cnn", 9, [30, 40, 50, 60])
    write_eval(tmp_path, "Breakout", "nature_cnn", 17, [1000, 1000])  # stale seed outside the grid: ignored
    write_eval(tmp_path, "SpaceInvaders", "sparse_fls", 1, [5, 7])  # seed 9 missing
    t = tables.table3(grid, Layout(evals=tmp_path))
    d = t.data.set_index(["arch", "game"])
    pooled = np.array([10, 20, 30, 40, 50, 60], dtype=float)
    row = d.loc[("nature_cnn", "Breakout")]
    assert row["mean"] == pytest.approx(pooled.mean())
    assert row["std"] == pytest.approx(pooled.std())  # population std over all episodes, not a mean of seed stds
    assert (row["episodes"], row["seeds"], row["seeds_expected"]) == (6, 2, 2)
    assert (row["paper_mean"], row["paper_std"]) == (618, 209)
    assert row["diff"] == pytest.approx(pooled.mean() - 618)
    partial = d.loc[("sparse_fls", "SpaceInvaders")]
    assert (partial["mean"], partial["seeds"]) == (6.0, 1)
    # a grid cell with no output: NaN in the CSV, "—" on display, seeds 0/2
    assert math.isnan(d.loc[("sparse_fls", "Breakout"), "mean"])
    shown = t.display.set_index(["arch", "game"])
    assert shown.loc[("sparse_fls", "Breakout"), "ours (mean ± std)"] == MISSING
    assert shown.loc[("sparse_fls", "Breakout"), "seeds"] == "0/2"
    assert shown.loc[("sparse_fls", "Breakout"), "paper (mean ± std)"] == "624 ± 211"
    assert shown.loc[("nature_cnn", "Breakout"), "ours (mean ± std)"] == f"35.0 ± {pooled.std():.1f}"  # < 100: 1 decimal
    assert shown.loc[("nature_cnn", "Breakout"), "ours − paper"] == "-583"
    # every paper cell is listed (90), ours never added for archs/games outside the grid
    assert len(t.data) == 90
    assert math.isnan(d.loc[("daqn", "Enduro"), "mean"]) and shown.loc[("daqn", "Enduro"), "seeds"] == MISSING


def test_score_format_keeps_small_scores_visible():
    assert tables.fmt_score(0.5, 0.5) == "0.5 ± 0.5"  # not "0 ± 0"
    assert tables.fmt_score(618.4, 209.2) == "618 ± 209"
    assert tables.fmt_score(-0.04) == "0.0"  # no "-0.0"
    assert tables.fmt_score_diff(-617.5) == "-618" and tables.fmt_score_diff(0.25) == "+0.2"
    assert tables.fmt_score(math.nan, 1.0) == MISSING


def test_table5_gain_ours_and_paper(tmp_path, grid):
    write_eval(tmp_path, "Breakout", "sparse_fls", 1, [100, 200])
    write_eval(tmp_path, "BreakoutInfinite", "sparse_fls", 1, [100, 400])
    write_eval(tmp_path, "Breakout", "nature_cnn", 1, [1, 1])  # not in infinite_archs: not shown as ours
    t = tables.table5(grid, Layout(evals=tmp_path))
    d = t.data.set_index("arch")
    assert d.loc["sparse_fls", "breakout_mean"] == 150 and d.loc["sparse_fls", "infinite_mean"] == 250
    assert d.loc["sparse_fls", "gain"] == 100
    assert d.loc["sparse_fls", "paper_gain"] == 663 - 624
    assert math.isnan(d.loc["nature_cnn", "breakout_mean"])
    shown = t.display.set_index("arch")
    assert shown.loc["sparse_fls", "seeds"] == "1/2"
    assert shown.loc["nature_cnn", "Breakout (ours)"] == MISSING
    assert shown.loc["nature_cnn", "BreakoutInfinite (paper)"] == "652 ± 274"


# ------------------------------------------------------------------------------------------ Table 4
def test_table4_mean_std_over_seeds_drops_undefined_and_has_reference_rows(tmp_path, grid):
    lay = Layout(scores=tmp_path)
    write_score(lay.score_dir("attention", "sparse_fls", "Breakout", 1), [1.0, 2.0], [3.0, 3.0], [0.6, 0.7])
    write_score(lay.score_dir("attention", "sparse_fls", "Breakout", 9), [3.0, np.nan], [np.nan, np.nan], [0.5, 0.5])
    write_score(lay.reference_dir("uniform", "Breakout"), [np.nan], [2.0], [np.nan])
    t = tables.table4(grid, lay)
    d = t.data.set_index(["metric", "model", "game"])
    nss = d.loc[("nss", "sparse_fls", "Breakout")]
    seed_means = np.array([1.5, 3.0])
    assert nss["mean"] == pytest.approx(seed_means.mean()) and nss["std"] == pytest.approx(seed_means.std())
    assert (nss["paper_mean"], nss["paper_std"]) == (0.510, 0.055)
    assert nss["diff"] == pytest.approx(seed_means.mean() - 0.510)
    kl = d.loc[("kl", "sparse_fls", "Breakout")]
    assert kl["mean"] == 3.0 and kl["std"] == 0.0  # seed 9 had no defined KL: dropped, not counted as 0
    uni = d.loc[("kl", "uniform", "Breakout")]
    assert uni["mean"] == 2.0 and math.isnan(uni["paper_mean"])
    assert math.isnan(d.loc[("nss", "uniform", "Breakout"), "mean"])
    # rows for paper archs we did not score; post-hoc rows expected but missing
    assert math.isnan(d.loc[("nss", "daqn", "Breakout"), "mean"])
    assert d.loc[("nss", "perturbation (nature_cnn)", "Breakout"), "seeds"] == 0
    shown = t.display.set_index(["metric", "model"])
    assert shown.loc[("nss", "sparse_fls"), "Breakout"] == "2.250 ± 0.750 (paper 0.510 ± 0.055)"
    assert shown.loc[("nss", "daqn"), "Enduro"] == f"{MISSING} (paper 0.586 ± 0.356)"
    assert shown.loc[("kl", "uniform"), "Breakout"] == "2.000"
    assert shown.loc[("sauc", "gradient (nature_cnn)"), "Seaquest"] == MISSING
    assert "3 of the scores above were computed against SYNTHETIC gaze" in t.notes[0]


def test_table4_has_no_synthetic_note_for_real_gaze(tmp_path, grid):
    lay = Layout(scores=tmp_path)
    d = lay.score_dir("attention", "sparse_fls", "Breakout", 1)
    write_score(d, [1.0], [1.0], [0.5])
    body = json.loads((d / "summary.json").read_text())
    atomic_write_json(d / "summary.json", {**body, "synthetic_gaze": False})
    assert not any("SYNTHETIC" in n for n in tables.table4(grid, lay).notes)


# ------------------------------------------------------------------------------------------ Figure 3
def test_curves_mean_std_over_common_steps(tmp_path, grid):
    lay = Layout(runs=tmp_path)
    write_curve(lay.run_dir("sparse_fls", "Breakout", 1), [128, 256, 384], [np.nan, 1.0, 2.0])
    write_curve(lay.run_dir("sparse_fls", "Breakout", 9), [128, 256], [0.5, 3.0])  # still running
    c = figures.curve_table(grid, lay)
    assert list(c.columns) == figures.CURVE_COLUMNS
    # step 128: seed 1 has no finished game yet -> no point; step 384: seed 9 has not logged it -> no point
    assert c[["game", "arch", "step", "frames", "seeds"]].values.tolist() == [["Breakout", "sparse_fls", 256, 1024, 2]]
    assert c["eprewmean_mean"].iloc[0] == 2.0 and c["eprewmean_std"].iloc[0] == 1.0
    png = figures.plot_curves(c, tmp_path / "f.png", "t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pick_inputs_only_fixated_and_spread():
    n_fix = np.array([0, 3, 0, 1, 2, 0, 5, 1])
    ks = figures.pick_inputs(n_fix, 3)
    assert len(ks) == 3 and all(n_fix[k] > 0 for k in ks) and ks == sorted(ks)
    assert figures.pick_inputs(np.zeros(5), 2) == []


# ------------------------------------------------------------------------------------------ inputs
def test_pick_steps_spreads_over_the_rollout():
    assert perception.pick_steps(10, 4) == [0, 3, 6, 9]
    assert perception.pick_steps(3, 5) == [0, 1, 2]  # a short rollout (game over) shows what there is
    assert perception.pick_steps(0, 4) == [] and perception.pick_steps(8, 0) == []


def test_perception_panels_show_the_video_frames_of_a_seeded_rollout(tmp_path, grid):
    from fls.checkpoint import load_policy
    from fls.evaluation.video import perception_rollout

    layout = Layout(runs=tmp_path / "runs")
    run = layout.run_dir("sparse_fls", "Breakout", 1)
    save_fresh_checkpoint(run / "model.pt", "sparse_fls", num_envs=2)
    a, arch = perception.rollout_frames(run, "Breakout", steps=6, seed=1000)
    b, _ = perception.rollout_frames(run, "Breakout", steps=6, seed=1000)
    model = load_policy(run).model
    video = perception_rollout(model, "Breakout", seed=1000, max_steps=6, max_episode_steps=100_000).frames
    assert arch == "sparse_fls" and len(a) == 6 and a[0].shape == (370, 160, 3)
    assert all(np.array_equal(x, y) and np.array_equal(x, v) for x, y, v in zip(a, b, video))  # same as the video
    assert a[0][210:, :, 1].any()  # the attention model's saliency is drawn (green) on the input panel
    written = perception.write_perception_panels(grid, layout, tmp_path / "fig", steps=6, frames=3, model_seed=None,
                                                 env_seed=1000, title="t")
    assert list(written) == ["Breakout"] and written["Breakout"].name == "fig4_perception_Breakout.png"
    import matplotlib.image

    assert matplotlib.image.imread(written["Breakout"]).ndim == 3
    assert perception.write_perception_panels(grid, layout, tmp_path / "none", steps=0, frames=3, model_seed=None,
                                              env_seed=1000, title="t") == {}
    with pytest.raises(ConfigError, match="report: field 'perception_steps' must be >= 0, got -1"):
        build_config(ReportConfig, {"perception_steps": -1})


def test_broken_eval_json_names_the_file(tmp_path, grid):
    p = Layout(evals=tmp_path).eval_dir("Breakout", "nature_cnn", 1)
    p.mkdir(parents=True)
    (p / "eval.json").write_text('{"summary": {}, "episodes": [{"env": 0}]}')
    with pytest.raises(ReportInputError, match=r"eval\.json: episodes\[0\] has no 'reward'"):
        tables.table3(grid, Layout(evals=tmp_path))


def test_score_summary_without_metric_is_an_error(tmp_path, grid):
    d = Layout(scores=tmp_path).score_dir("attention", "sparse_fls", "Breakout", 1)
    atomic_write_json(d / "summary.json", {"metrics": {"nss": {"mean": 1.0}}})
    with pytest.raises(ReportInputError, match="missing 'kl.mean'"):
        tables.table4(grid, Layout(scores=tmp_path))


# ------------------------------------------------------------------------------------------ CLI
def _params(tmp_path: Path, **extra) -> Path:
    p = tmp_path / "params.yaml"
    body = {"profile": "quick", "data": {"atari_head_source": "sample"}, "grid": GRID, "report": {"figures": True}}
    body.update(extra)
    p.write_text(yaml.safe_dump(body))
    return p


def test_cli_writes_every_table_index_and_metrics(tmp_path):
    from pipeline.app import app

    runs, evals, scores, out = (tmp_path / n for n in ("runs", "evals", "scores", "reports"))
    write_eval(evals, "Breakout", "nature_cnn", 1, [3, 5])
    write_curve(Layout(runs=runs).run_dir("nature_cnn", "Breakout", 1), [128, 256], [1.0, 2.0])
    save_fresh_checkpoint(Layout(runs=runs).run_dir("sparse_fls", "Breakout", 1) / "model.pt", "sparse_fls", num_envs=2)
    params = _params(tmp_path, report={"figures": True, "perception_steps": 4, "perception_frames": 2})
    res = CliRunner().invoke(app, ["report", "--params", str(params), "--runs", str(runs), "--evals", str(evals),
                                   "--scores", str(scores), "--out", str(out)])
    assert res.exit_code == 0, res.output
    for name in ("table2_params", "table3_scores", "table4_saliency", "table5_breakout_infinite"):
        assert not pd.read_csv(out / "tables" / f"{name}.csv").empty
        md = (out / "tables" / f"{name}.md").read_text()
        assert "Profile: `quick`" in md and "not comparable" in md
        assert (out / "tables" / f"{name}.tex").read_text().startswith("\\begin{table}")
    index = (out / "index.md").read_text()
    assert "profile `quick`" in index and "SYNTHETIC" in index and "tables/table3_scores.md" in index
    assert (out / "figures" / "fig3_reward_curves.png").exists()
    assert (out / "figures" / "fig4_perception_Breakout.png").exists() and "figures/fig4_perception_Breakout.png" in index
    curves = pd.read_csv(out / "fig3_curves.csv")
    assert curves["eprewmean_mean"].tolist() == [1.0, 2.0]
    metrics = json.loads((out / "metrics.json").read_text())
    # one flat level of our result numbers only: no profile/config strings, no paper columns
    assert {k: v for k, v in metrics.items() if k.startswith("table3/")} == {
        "table3/nature_cnn/Breakout/mean": 4.0, "table3/nature_cnn/Breakout/std": 1.0,
        "table3/nature_cnn/Breakout/episodes": 2, "table3/nature_cnn/Breakout/seeds": 1}
    assert all(isinstance(v, (int, float)) for v in metrics.values())
    assert not [k for k in metrics if "paper" in k or "diff" in k]
    assert metrics["table3b/nature_cnn/Breakout/iqm"] == 4.0  # IQM of 2 episodes = their mean
    assert (out / "tables" / "table3b_iqm.md").exists() and "What this run shows" in index
    assert (out / "figures" / "performance_profiles.png").exists()
    assert json.loads((out / "run_info.json").read_text())["stage"] == "report"


def test_cli_perception_steps_zero_turns_figure4_off(tmp_path):
    from pipeline.app import app

    runs = tmp_path / "runs"
    save_fresh_checkpoint(Layout(runs=runs).run_dir("sparse_fls", "Breakout", 1) / "model.pt", "sparse_fls", num_envs=2)
    out = tmp_path / "reports"
    res = CliRunner().invoke(app, ["report", "--params", str(_params(tmp_path)), "--runs", str(runs), "--evals",
                                   str(tmp_path / "e"), "--scores", str(tmp_path / "s"), "--out", str(out),
                                   "--perception-steps", "0"])
    assert res.exit_code == 0, res.output
    assert not list((out / "figures").glob("fig4_*")) and "fig4" not in (out / "index.md").read_text()
    res = CliRunner().invoke(app, ["report", "--params", str(_params(tmp_path)), "--runs", str(runs), "--out", str(out),
                                   "--perception-steps", "-2"])
    assert res.exit_code == 2 and "perception_steps' must be >= 0, got -2" in res.output


def test_cli_bad_grid_is_a_one_line_error(tmp_path):
    from pipeline.app import app

    params = _params(tmp_path, grid={**GRID, "score_games": ["BeamRider"]})
    res = CliRunner().invoke(app, ["report", "--params", str(params), "--out", str(tmp_path / "r"), "--no-figures"])
    assert res.exit_code == 2
    assert "score_games" in res.output and "in grid.games" in res.output


def test_missing_profile_is_an_error(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump({"grid": GRID}))
    with pytest.raises(ConfigError, match="profile"):
        build_report(p, tmp_path, tmp_path, tmp_path, tmp_path / "out")


# ------------------------------------------------------------------------------------------ grid rules
@pytest.mark.parametrize(
    "change, message",
    [
        ({"score_archs": ["nature_cnn"]}, "no attention"),
        ({"score_games": ["BeamRider"], "games": ["Breakout", "BeamRider"]}, "no Atari-HEAD"),
        ({"infinite_archs": ["daqn"]}, "infinite_archs"),
        ({"games": ["SpaceInvaders"], "score_games": []}, "needs Breakout"),
        ({"seeds": [1, 1]}, "twice"),
        ({"archs": ["nature_cnn", "sparse_fls", "cnn"]}, "known architectures"),
        ({"train_seeds": [1, 9], "import_seeds": [9]}, r"seeds \[9\] are in both 'train_seeds' and 'import_seeds'"),
        ({"train_seeds": [1], "import_seeds": []}, r"seeds \[9\] are in neither 'train_seeds' nor 'import_seeds'"),
        ({"train_seeds": [], "import_seeds": [1, 9, 17]}, r"field 'import_seeds': \[17\] not in grid.seeds"),
        ({"import_seeds": [9, 9]}, "twice"),
    ],
)
def test_grid_rejects_invalid_matrix_cells(change, message):
    with pytest.raises(ConfigError, match=message) as e:
        build_config(GridConfig, {**GRID, **change})
    assert "\n" not in str(e.value)


def test_grid_seed_sources():
    g = build_config(GridConfig, {**GRID, "import_seeds": [9]})  # train_seeds unset (code only): the rest
    assert g.trained_seeds == [1] and g.import_seeds == [9]
    g = build_config(GridConfig, {**GRID, "train_seeds": [], "import_seeds": [9, 1]})
    assert g.trained_seeds == [] and build_config(GridConfig, GRID).trained_seeds == [1, 9]


# ------------------------------------------------------------------------------------------ pipeline files
PROFILES = [REPO / "params.yaml", *sorted((REPO / "profiles").glob("*.yaml"))]


@pytest.mark.parametrize("src", PROFILES, ids=lambda p: p.name)
def test_every_profile_loads_into_every_stage_config(src, tmp_path):
    from fls.atari_head import AtariHeadConfig, head_game
    from fls.evaluation.config import EvalConfig
    from fls.ppo.config import TrainConfig
    from fls.scoring import ScoreConfig

    from fls.authors.importer import AuthorsConfig

    params = load_profile(src)  # the profile as rendered into params.yaml (fls params render)
    path = tmp_path / "params.yaml"
    path.write_text(render(src))
    assert isinstance(params["profile"], str) and params["data"]["atari_head_source"] in ("sample", "zenodo")
    grid = build_config(GridConfig, params["grid"])
    # dvc.yaml's train / import_authors matrices interpolate both lists: every profile spells them out
    assert isinstance(params["grid"]["train_seeds"], list) and isinstance(params["grid"]["import_seeds"], list)
    for cls, section in ((AtariHeadConfig, "atari_head"), (TrainConfig, "train"), (EvalConfig, "evaluate"),
                         (ScoreConfig, "score"), (ReportConfig, "report"), (AuthorsConfig, "authors")):
        load_config(cls, path, section)
    if params["profile"] != "authors":  # the others train every seed
        assert grid.train_seeds == grid.seeds and grid.import_seeds == []
    heads = set(load_config(AtariHeadConfig, path, "atari_head").games)
    assert {head_game(g) for g in grid.score_games} <= heads  # every scored game is acquired


def test_paper_profile_is_the_paper_protocol(tmp_path):
    params = load_profile(REPO / "profiles" / "paper.yaml")
    paper_file = tmp_path / "params.yaml"
    paper_file.write_text(render(REPO / "profiles" / "paper.yaml"))
    g = params["grid"]
    from fls.games import GAMES
    from fls.models import ARCHS

    assert params["profile"] == "paper" and params["data"]["atari_head_source"] == "zenodo"
    assert g["archs"] == list(ARCHS) and g["games"] == list(GAMES) and g["seeds"] == [1, 9, 17, 25, 33]
    assert float(params["train"]["total_steps"]) == 5e7
    assert (params["evaluate"]["episodes"], params["evaluate"]["num_envs"]) == (8192, 16)
    assert "BeamRider" not in g["score_games"] and len(g["score_games"]) == 5
    from fls.evaluation.config import EvalConfig
    from fls.ppo.config import TrainConfig

    ev = load_config(EvalConfig, paper_file, "evaluate")
    caps = [ev.max_episode_steps_for(game) for game in ("Breakout", "BreakoutInfinite", "Seaquest", "SpaceInvaders")]
    assert caps == [30000, 30000, 100000, 75000]  # agent steps (docs/evaluation.md)
    tr = load_config(TrainConfig, paper_file, "train")
    assert (tr.max_episode_steps, tr.max_episode_steps_by_game) == (100000, {"SpaceInvaders": 75000})


def test_authors_profile_is_the_paper_profile_on_the_authors_weights():
    """profiles/authors.yaml: the paper's grid, evaluation and scoring, every seed imported, none trained."""
    paper = load_profile(REPO / "profiles" / "paper.yaml")
    authors = load_profile(REPO / "profiles" / "authors.yaml")
    assert authors["profile"] == "authors"
    assert authors["grid"]["train_seeds"] == [] and authors["grid"]["import_seeds"] == paper["grid"]["seeds"]
    for p in (paper, authors):
        del p["profile"], p["grid"]["train_seeds"], p["grid"]["import_seeds"]
    assert authors == paper


def _dvc_stage_groups(tmp_path: Path, profile: Path) -> dict[str, int]:
    """`dvc stage list` of this checkout's dvc.yaml with ``profile`` as params.yaml: cells per stage group."""
    import shutil
    import subprocess
    import sys

    for name in ("dvc.yaml", ".dvc/config"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / "params.yaml").write_text(render(profile))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    res = subprocess.run([str(Path(sys.executable).parent / "dvc"), "stage", "list", "--name-only"], cwd=tmp_path,
                         capture_output=True, text=True, env={**__import__("os").environ, "DVC_NO_ANALYTICS": "1"})
    assert res.returncode == 0, res.stderr
    groups: dict[str, int] = {}
    for name in res.stdout.split():
        groups[name.split("@")[0]] = groups.get(name.split("@")[0], 0) + 1
    return groups


def test_dvc_makes_import_stages_only_for_import_seeds(tmp_path):
    default = _dvc_stage_groups(tmp_path / "default", REPO / "params.yaml")
    assert "import_authors" not in default and default["train"] == 2
    authors = _dvc_stage_groups(tmp_path / "authors", REPO / "profiles" / "authors.yaml")
    assert "train" not in authors and authors["import_authors"] == 15 * 6 * 5 == authors["evaluate"]


def _import_closure(module: str) -> set[str]:
    """Repo files imported (statically, transitively) by ``module``."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        m = todo.pop()
        base = REPO / m.replace(".", "/")
        f = base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"
        if m in seen or not f.exists():
            continue
        seen.add(m)
        parts = m.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.split(".")[0] in ("fls", "pipeline")]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] in ("fls", "pipeline"):
                todo += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    files = set()
    for m in seen:
        base = REPO / m.replace(".", "/")
        f = base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"
        files.add(f.relative_to(REPO).as_posix())
    return files


def test_dvc_stages_depend_on_exactly_the_code_they_import():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, st in stages.items():
        command = re.search(r"fls ([a-z-]+)", st["cmd"]).group(1)
        module = "pipeline." + command.replace("-", "_")
        code = {d for d in st["deps"] if d.startswith(("fls/", "pipeline/"))}
        for d in code:
            assert (REPO / d).exists(), f"{name}: dep {d} does not exist"
        needed = _import_closure(module) - {"pipeline/__init__.py"}
        uncovered = [f for f in needed if not any(f == d or f.startswith(d + "/") for d in code)]
        assert not uncovered, f"{name}: imports {uncovered} but does not depend on them"
        unused = [d for d in code if not any(f == d or f.startswith(d + "/") for f in needed)]
        assert not unused, f"{name}: depends on {unused} that it never imports"


def test_fig3_dvc_plot_draws_a_line_per_arch_and_a_panel_per_game():
    """DVC's default template would join all (game, arch) rows of fig3_curves.csv into one line."""
    plot = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["report"]["plots"][0]["reports/fig3_curves.csv"]
    template = json.loads((REPO / plot["template"]).read_text())
    assert template["data"]["values"] == "<DVC_METRIC_DATA>"
    assert template["facet"]["field"] == "game" and template["spec"]["encoding"]["color"]["field"] == "series"
    (series,) = [t for t in template["spec"]["transform"] if t.get("as") == "series"]  # arch, or arch + authors' tag
    assert "datum.arch" in series["calculate"] and "datum.source == 'authors'" in series["calculate"]
    used = {"game", "arch", "source", "eprewmean_std"} | {plot["x"], plot["y"]}
    assert used <= set(figures.CURVE_COLUMNS)


# ------------------------------------------------------------------------------------------ Table 3b / 4b
def test_table3b_iqm_and_probability_of_improvement_across_seeds(tmp_path, grid):
    from fls.report import seed_stats, stats

    layout = Layout(evals=tmp_path)
    per_seed = {("nature_cnn", "Breakout"): [10, 12], ("sparse_fls", "Breakout"): [11, 13],
                ("nature_cnn", "SpaceInvaders"): [200, 260], ("sparse_fls", "SpaceInvaders"): [150, 180]}
    for (arch, game), means in per_seed.items():
        for seed, m in zip(GRID["seeds"], means):
            write_eval(tmp_path, game, arch, seed, [m - 1, m + 1])  # episode rewards around each seed's mean
    t = seed_stats.table3b(grid, layout, seed=0)
    rows = {(r.scope, r.arch): r for r in t.data.itertuples(index=False)}
    assert set(rows) == {(s, a) for s in ("Breakout", "SpaceInvaders", "all games") for a in GRID["archs"]}
    r = rows[("Breakout", "sparse_fls")]
    assert r.level == "seeds" and r.n == 2 and r.iqm == pytest.approx(12.0)
    assert r.poi == pytest.approx(stats.probability_of_improvement([np.array([11.0, 13.0])], [np.array([10.0, 12.0])]).point)
    assert r.poi == pytest.approx(0.75)  # 11>10, 13>10, 13>12, 11<12
    assert rows[("SpaceInvaders", "sparse_fls")].poi == 0.0 and rows[("SpaceInvaders", "sparse_fls")].verdict == "worse"
    allg = rows[("all games", "sparse_fls")]
    norm = np.concatenate([stats.human_normalised("Breakout", np.array([11.0, 13.0])),
                           stats.human_normalised("SpaceInvaders", np.array([150.0, 180.0]))])
    assert allg.normalised and allg.iqm == pytest.approx(stats.iqm(norm))
    assert allg.poi == pytest.approx((0.75 + 0.0) / 2)
    assert np.isnan(rows[("Breakout", "nature_cnn")].poi)  # the baseline is not compared with itself
    words = seed_stats.free_lunch_sentences(t)
    assert any(w.startswith("sparse_fls vs nature_cnn on Breakout: P(improvement) = 0.75 [") for w in words)


def test_table3b_with_one_seed_uses_episodes_and_says_so(tmp_path):
    from fls.report import seed_stats

    g = build_config(GridConfig, {**GRID, "games": ["Breakout"], "seeds": [1]})
    write_eval(tmp_path, "Breakout", "nature_cnn", 1, [1, 2, 3, 4])
    write_eval(tmp_path, "Breakout", "sparse_fls", 1, [1, 2, 3, 4])
    t = seed_stats.table3b(g, Layout(evals=tmp_path))
    r = t.data.set_index("arch").loc["sparse_fls"]
    assert r["level"] == "episodes" and r["n"] == 4 and r["poi"] == pytest.approx(0.5)
    assert r["poi_low"] < 0.5 < r["poi_high"] and r["verdict"].startswith("indistinguishable")
    assert "episodes (n = 4)" in t.display["unit"].tolist()


def test_table4b_mean_ci_over_seeds(tmp_path, grid):
    from fls.report import seed_stats

    layout = Layout(scores=tmp_path)
    for seed, v in zip(GRID["seeds"], (1.0, 2.0)):
        write_score(layout.score_dir("attention", "sparse_fls", "Breakout", seed), [v, v], [0.5, 0.5], [0.6, 0.6])
    t = seed_stats.table4b(grid, layout)
    r = t.data.set_index("metric").loc["nss"]
    assert r["level"] == "seeds" and r["mean"] == pytest.approx(1.5) and 1.0 <= r["low"] <= r["high"] <= 2.0
