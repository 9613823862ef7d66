"""Safe loading of the authors' pickles, their event files, and `fls import-authors` on a synthetic tree."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from typer.testing import CliRunner

from fls import tb_events as events
from fls.authors.results import read_saliency_pkl, welch_test
from fls.authors.safe_pickle import UnsafePickleError, safe_load, safe_load_bytes
from fls.authors.synthetic import joblib_like_bytes, make_authors_tree
from fls.checkpoint import load_policy_source


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_code_running_pickle_is_refused(tmp_path):
    target = tmp_path / "pwned"
    blob = pickle.dumps({"ppo2_model/pi/w:0": np.zeros(3, np.float32), "x": _Evil(target)})
    (tmp_path / "model.pkl").write_bytes(blob)
    with pytest.raises(UnsafePickleError, match=r"refused to load '(posix|os|nt)\.system'") as e:
        safe_load(tmp_path / "model.pkl")
    assert "\n" not in str(e.value) and str(tmp_path / "model.pkl") in str(e.value)
    assert not target.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_plain_pickles_of_arrays_load(protocol):
    d = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "f": np.asfortranarray(np.ones((2, 3))), "s": np.int64(7)}
    out = safe_load_bytes(pickle.dumps(d, protocol=protocol))
    assert np.array_equal(out["a"], d["a"]) and np.array_equal(out["f"], d["f"]) and out["s"] == 7


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_joblib_layout_loads(protocol):
    d = {"ppo2_model/pi/c1/w:0": np.random.default_rng(0).standard_normal((8, 8, 4, 32)).astype(np.float32), "e": np.zeros((0, 3))}
    out = safe_load_bytes(joblib_like_bytes(d, protocol))
    assert set(out) == set(d) and all(np.array_equal(out[k], d[k]) for k in d)


def test_real_joblib_dump_loads(tmp_path):
    joblib = pytest.importorskip("joblib")
    d = {"w": np.random.default_rng(1).standard_normal((5, 7)).astype(np.float32)}
    for compress in (0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3)):
        joblib.dump(d, tmp_path / "m.pkl", compress=compress)
        assert np.array_equal(safe_load(tmp_path / "m.pkl")["w"], d["w"])


def test_object_arrays_and_classes_are_refused():
    with pytest.raises(UnsafePickleError):
        safe_load_bytes(pickle.dumps(np.array([{"a": 1}], dtype=object)))
    with pytest.raises(UnsafePickleError, match="refused to load 'collections.Counter'"):
        import collections

        safe_load_bytes(pickle.dumps(collections.Counter("ab")))


def test_crc32c_and_event_round_trip(tmp_path):
    assert events.crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value
    rows = [{"total_timesteps": 1024.0 * i, "eprewmean": float(i) / 2} for i in range(1, 4)]
    p = events.write_event_file(tmp_path / "events.out.tfevents.1.host", rows)
    assert events.read_curve(p) == [(1024, 0.5), (2048, 1.0), (3072, 1.5)]
    raw = bytearray(p.read_bytes())
    raw[-6] ^= 0xFF
    (tmp_path / "bad").write_bytes(bytes(raw))
    with pytest.raises(events.EventFileError, match="bad data checksum"):
        events.read_curve(tmp_path / "bad")


def test_welch():
    r = welch_test(np.array([1.0, 2, 3, 4]), np.array([1.5, 2.5, 3.5, 4.5, 5.5]))
    from scipy import stats

    assert r["p"] == pytest.approx(stats.ttest_ind([1.0, 2, 3, 4], [1.5, 2.5, 3.5, 4.5, 5.5], equal_var=False).pvalue)
    assert welch_test(np.array([1.0]), np.array([1.0, 2.0]))["p"] is None


def test_import_cli_makes_evaluable_runs(tmp_path):
    from pipeline.app import app

    src, out = tmp_path / "authors", tmp_path / "runs"
    make_authors_tree(src, [("sparse_fls", "Breakout", 1), ("nature_cnn", "Breakout", 9)], saliency_trials={"Breakout": [3, 4]})
    res = CliRunner().invoke(app, ["import-authors", "--in", str(src), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "2 of 2 models" in res.output
    run = out / "sparse_fls" / "Breakout" / "1"
    policy = load_policy_source(run=run)
    assert policy.arch == "sparse_fls" and policy.num_actions == 4 and policy.config["seed"] == 1
    assert (run / "metrics.csv").read_text().splitlines()[0] == "global_step,eprewmean"
    sal = read_saliency_pkl(src / "Breakout.cnn_sparse_fls" / "01" / "saliency.pkl")
    assert sorted(sal["trial_id"].unique()) == [3, 4] and np.isnan(sal["nss"].iloc[0])
    assert (run / "authors" / "eval.json").is_file() and (run / "authors" / "saliency.parquet").is_file()
    # resuming skips what is already imported; a tampered model.pkl is refused with a one-line error
    (src / "Breakout.cnn" / "09" / "model.pkl").write_bytes(pickle.dumps({"x": _Evil(tmp_path / "pwned")}))
    res = CliRunner().invoke(app, ["import-authors", "--in", str(src), "--out", str(out), "--quiet"])
    assert res.exit_code == 2 and "refused to load" in res.output and not (tmp_path / "pwned").exists()


# ------------------------------------------------------------------------------- one model (the DVC stage)
def test_single_model_mode_writes_every_declared_out_and_no_index(tmp_path):
    import json

    import yaml

    from fls.checkpoint import file_sha256
    from pipeline.app import app

    src = tmp_path / "data" / "authors"
    make_authors_tree(src, [("sparse_fls", "Breakout", 1), ("nature_cnn", "Breakout", 1)], saliency_trials={"Breakout": [3]})
    (src / "Pong.cnn" / "01").mkdir(parents=True)  # would fail a whole-download import (no such game): never read here
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"authors": {"dir": str(src)}}))
    run = tmp_path / "runs" / "sparse_fls" / "Breakout" / "1"
    res = CliRunner().invoke(app, ["import-authors", "--params", str(params), "--arch", "sparse_fls", "--game", "Breakout",
                                   "--seed", "1", "--out", str(run), "--quiet"])
    assert res.exit_code == 0, res.output
    # the outs dvc.yaml's import_authors stage declares
    for name in ("model.pt", "metrics.csv", "summary.json", "run_info.json", "authors/eval.json", "authors/saliency.parquet"):
        assert (run / name).is_file(), name
    assert not list(tmp_path.rglob("authors_index.json"))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["source"] == "authors" and summary["model_sha256"] == file_sha256(run / "model.pt")
    assert summary["sources"]["model.pkl"]["sha256"] == file_sha256(src / "Breakout.cnn_sparse_fls" / "01" / "model.pkl")
    policy = load_policy_source(run=run)
    assert policy.arch == "sparse_fls" and policy.config["source"] == "authors"
    assert not (tmp_path / "runs" / "nature_cnn").exists()  # only the asked-for model


def test_single_model_mode_errors_are_one_line(tmp_path):
    from pipeline.app import app

    src = tmp_path / "authors"
    make_authors_tree(src, [("sparse_fls", "Breakout", 1)])
    base = ["import-authors", "--in", str(src), "--out", str(tmp_path / "run"), "--quiet"]
    res = CliRunner().invoke(app, base + ["--arch", "sparse_fls", "--game", "Breakout", "--seed", "9"])
    assert res.exit_code == 2 and "Breakout.cnn_sparse_fls/09/" in res.output and len(res.output.strip().splitlines()) == 1
    res = CliRunner().invoke(app, base + ["--arch", "sparse_fls", "--game", "Breakout"])
    assert res.exit_code == 2 and "--seed" in res.output
    (src / "Breakout.cnn_sparse_fls" / "01" / "eval.pkl").unlink()
    res = CliRunner().invoke(app, base + ["--arch", "sparse_fls", "--game", "Breakout", "--seed", "1"])
    assert res.exit_code == 2 and "eval.pkl: missing" in res.output and not (tmp_path / "run" / "model.pt").exists()
    res = CliRunner().invoke(app, ["import-authors", "--out", str(tmp_path / "r"), "--arch", "sparse_fls"])
    assert res.exit_code == 2 and "--in" in res.output


def test_folder_without_event_file_gets_a_header_only_curve(tmp_path):
    from fls.authors.importer import import_one
    from fls.report.inputs import read_curve

    src = tmp_path / "authors"
    (folder,) = make_authors_tree(src, [("nature_cnn", "Breakout", 2)])
    for ev in folder.glob("events.out.tfevents.*"):
        ev.unlink()
    entry = import_one(src, "nature_cnn", "Breakout", 2, tmp_path / "run")
    assert entry["has_curve"] is False
    assert (tmp_path / "run" / "metrics.csv").read_text() == "global_step,eprewmean\n"
    assert read_curve(tmp_path / "run").empty


# ------------------------------------------------------------------------------- the report's comparison
def _imported_grid(tmp_path, train_seeds, import_seeds):
    from fls.config import build_config
    from fls.layout import GridConfig, Layout

    grid = build_config(GridConfig, dict(archs=["nature_cnn", "sparse_fls"], games=["Breakout"],
                                         seeds=sorted(train_seeds + import_seeds), train_seeds=train_seeds,
                                         import_seeds=import_seeds, infinite_archs=[], score_archs=["sparse_fls"],
                                         score_games=["Breakout"]))
    return grid, Layout(runs=tmp_path / "runs", evals=tmp_path / "evals", scores=tmp_path / "scores")


def _fls_eval(layout, arch, seed, rewards, sha):
    import json

    d = layout.eval_dir("Breakout", arch, seed)
    d.mkdir(parents=True)
    (d / "eval.json").write_text(json.dumps({"episodes": [{"reward": r} for r in rewards], "checkpoint": {"sha256": sha}}))


def test_report_comparison_shows_both_columns_for_imported_runs_only(tmp_path):
    import json

    import pandas as pd

    from fls.authors.importer import import_one
    from fls.checkpoint import file_sha256
    from fls.report import authors as authors_report
    from fls.report.seed_stats import flat_metrics

    src = tmp_path / "authors"
    make_authors_tree(src, [("sparse_fls", "Breakout", 9), ("nature_cnn", "Breakout", 9)], saliency_trials={"Breakout": [3, 4]})
    grid, layout = _imported_grid(tmp_path, [1], [9])
    for arch in ("sparse_fls", "nature_cnn"):
        import_one(src, arch, "Breakout", 9, layout.run_dir(arch, "Breakout", 9))
    sha = file_sha256(layout.run_dir("sparse_fls", "Breakout", 9) / "model.pt")
    _fls_eval(layout, "sparse_fls", 9, [3.0, 5.0, 4.0], sha)
    _fls_eval(layout, "nature_cnn", 9, [1.0, 2.0], "0" * 64)  # an evaluation of other weights
    _fls_eval(layout, "sparse_fls", 1, [7.0, 7.0], "1" * 64)  # a trained seed: never a comparison row
    sc = layout.score_dir("attention", "sparse_fls", "Breakout", 9)
    sc.mkdir(parents=True)
    (sc / "summary.json").write_text(json.dumps({"model": {"checkpoint": {"sha256": sha}}}))
    pd.DataFrame({"trial_id": [4, 4, 9], "nss": [1.0, 2.0, 50.0], "kl": [0.5, 0.5, 9.0], "sauc": [0.6, 0.8, 0.1]}).to_parquet(sc / "per_input.parquet")
    t = authors_report.table(grid, layout)
    rows = t.data.set_index(["arch", "seed"])
    assert list(rows.index) == [("nature_cnn", 9), ("sparse_fls", 9)]
    r = rows.loc[("sparse_fls", 9)]
    ref = json.loads((layout.run_dir("sparse_fls", "Breakout", 9) / "authors" / "eval.json").read_text())
    assert r.authors_mean == pytest.approx(np.mean(ref["rewards"])) and r.fls_mean == pytest.approx(4.0)
    assert r.trials == 1 and r.fls_nss == pytest.approx(1.5)  # trial 9 is not in the authors' set
    sal = read_saliency_pkl(src / "Breakout.cnn_sparse_fls" / "09" / "saliency.pkl")
    assert r.authors_nss == pytest.approx(np.nanmean(sal[sal["trial_id"] == 4]["nss"]))
    assert 0 <= r.welch_p <= 1
    other = rows.loc[("nature_cnn", 9)]
    assert np.isfinite(other.authors_mean) and np.isnan(other.fls_mean)  # sha mismatch: not shown as a re-evaluation
    md = tables_md(t)
    assert "authors' eval" in md and "fls re-eval" in md and "sparse_fls Breakout seed 9" in md and "RELEASED" in md
    metrics = flat_metrics([t])
    assert metrics["authors/sparse_fls/Breakout/9/fls_mean"] == pytest.approx(4.0)
    assert "authors/sparse_fls/Breakout/9/welch_p" in metrics and not [k for k in metrics if "/authors_" in k]
    assert "2 of the authors' released models imported; 1 evaluated by both" in authors_report.summary_sentence(t)
    # a grid with no imported runs has no comparison table
    grid_trained, _ = _imported_grid(tmp_path, [1], [])
    assert authors_report.table(grid_trained, layout) is None


def tables_md(t):
    from fls.report.tables import to_markdown

    return to_markdown(t.display) + "\n".join(t.notes)


def test_figure3_draws_the_authors_curves_beside_fls_and_alone(tmp_path):
    import pandas as pd

    from fls.authors.importer import import_one
    from fls.report import figures

    src = tmp_path / "authors"
    folders = make_authors_tree(src, [("sparse_fls", "Breakout", 9), ("sparse_fls", "Breakout", 17)], curve_points=6)
    grid, layout = _imported_grid(tmp_path, [1], [9, 17])
    for seed in (9, 17):
        import_one(src, "sparse_fls", "Breakout", seed, layout.run_dir("sparse_fls", "Breakout", seed))
    trained = layout.run_dir("sparse_fls", "Breakout", 1)
    trained.mkdir(parents=True)
    pd.DataFrame({"global_step": [1024, 2048], "eprewmean": [0.5, 1.5]}).to_csv(trained / "metrics.csv", index=False)
    c = figures.curve_table(grid, layout)
    assert set(c["source"]) == {"fls", "authors"}
    ours = c[c["source"] == "fls"]
    assert ours["eprewmean_mean"].tolist() == [0.5, 1.5] and (ours["seeds"] == 1).all()
    theirs = c[c["source"] == "authors"].set_index("step")
    curves = [dict(events.read_curve(next(f.glob("events.out.tfevents.*")))) for f in folders]
    steps = sorted(k for k in curves[0] if np.isfinite(curves[0][k]) and np.isfinite(curves[1][k]))
    assert list(theirs.index) == steps and (theirs["seeds"] == 2).all() and len(steps) >= 4
    for step in steps:  # the band is the mean / std over the two seeds of the event files' eprewmean
        vals = np.array([curves[0][step], curves[1][step]])
        assert theirs.loc[step, "eprewmean_mean"] == pytest.approx(vals.mean())
        assert theirs.loc[step, "eprewmean_std"] == pytest.approx(vals.std())
    assert theirs["frames"].tolist() == [4 * s for s in steps]
    # imported only: the curves are the authors' alone
    grid_authors, _ = _imported_grid(tmp_path, [], [9, 17])
    only = figures.curve_table(grid_authors, layout)
    assert set(only["source"]) == {"authors"} and len(only) == len(steps)
    png = figures.plot_curves(c, tmp_path / "f.png", "t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_index_and_metrics_carry_the_comparison(tmp_path):
    import json

    import yaml

    from fls.authors.importer import import_one
    from fls.checkpoint import file_sha256
    from fls.report import build_report

    src = tmp_path / "authors"
    make_authors_tree(src, [("sparse_fls", "Breakout", 1)])
    grid, layout = _imported_grid(tmp_path, [], [1])
    run = layout.run_dir("sparse_fls", "Breakout", 1)
    import_one(src, "sparse_fls", "Breakout", 1, run)
    _fls_eval(layout, "sparse_fls", 1, [2.0, 6.0], file_sha256(run / "model.pt"))
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"profile": "authors", "data": {"atari_head_source": "zenodo"},
                                      "grid": {**vars(grid)}, "report": {"figures": False}}))
    out = tmp_path / "reports"
    build_report(params, layout.runs, layout.evals, layout.scores, out)
    index = (out / "index.md").read_text()
    assert "## The authors' released weights: their numbers beside fls's" in index
    assert "(tables/authors_comparison.md)" in index and "sparse_fls Breakout seed 1" in index
    assert "authors' released weights" in index.split("## Tables")[0] and "not comparable" not in index
    md = (out / "tables" / "authors_comparison.md").read_text()
    assert "4 ± 2 (n = 2)" in md  # fls's re-evaluation: mean 4, population std 2
    csv = (out / "tables" / "authors_comparison.csv").read_text().splitlines()
    assert csv[0].startswith("arch,game,seed,authors_mean") and len(csv) == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["authors/sparse_fls/Breakout/1/fls_mean"] == 4.0 and metrics["table3/sparse_fls/Breakout/mean"] == 4.0
    t3 = (out / "tables" / "table3_scores.md").read_text()
    assert "authors' released weights" in t3  # the banner of every table says whose weights these are
