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
    model, meta = load_policy_source(run=run)
    assert meta["arch"] == "sparse_fls" and meta["num_actions"] == 4 and meta["config"]["seed"] == 1
    assert (run / "metrics.csv").read_text().splitlines()[0] == "global_step,eprewmean"
    sal = read_saliency_pkl(src / "Breakout.cnn_sparse_fls" / "01" / "saliency.pkl")
    assert sorted(sal["trial_id"].unique()) == [3, 4] and np.isnan(sal["nss"].iloc[0])
    assert (run / "authors" / "eval.json").is_file() and (run / "authors" / "saliency.parquet").is_file()
    # resuming skips what is already imported; a tampered model.pkl is refused with a one-line error
    (src / "Breakout.cnn" / "09" / "model.pkl").write_bytes(pickle.dumps({"x": _Evil(tmp_path / "pwned")}))
    res = CliRunner().invoke(app, ["import-authors", "--in", str(src), "--out", str(out), "--quiet"])
    assert res.exit_code == 2 and "refused to load" in res.output and not (tmp_path / "pwned").exists()


def test_report_comparison_shows_both_columns(tmp_path):
    import json

    import pandas as pd

    from fls.authors.importer import import_authors
    from fls.report.authors import comparison_table, to_markdown
    from fls.report.layout import Layout

    src, runs = tmp_path / "authors", tmp_path / "runs_authors"
    make_authors_tree(src, [("sparse_fls", "Breakout", 1)], saliency_trials={"Breakout": [3, 4]})
    import_authors(src, runs, progress=False)
    layout = Layout(runs=runs, evals=tmp_path / "evals", scores=tmp_path / "scores")
    ev = layout.eval_dir("Breakout", "sparse_fls", 1)
    ev.mkdir(parents=True)
    (ev / "eval.json").write_text(json.dumps({"episodes": [{"reward": r} for r in (3.0, 5.0, 4.0)]}))
    sc = layout.score_dir("attention", "sparse_fls", "Breakout", 1)
    sc.mkdir(parents=True)
    pd.DataFrame({"trial_id": [4, 4, 9], "nss": [1.0, 2.0, 50.0], "kl": [0.5, 0.5, 9.0], "sauc": [0.6, 0.8, 0.1]}).to_parquet(sc / "per_input.parquet")
    df = comparison_table(runs, layout)
    r = df.iloc[0]
    ref = json.loads((runs / "sparse_fls" / "Breakout" / "1" / "authors" / "eval.json").read_text())
    assert r.authors_mean == pytest.approx(np.mean(ref["rewards"])) and r.fls_mean == pytest.approx(4.0)
    assert r.trials == 1 and r.fls_nss == pytest.approx(1.5)  # trial 9 is not in the authors' set
    assert 0 <= r.welch_p <= 1
    md = to_markdown(df)
    assert "authors' eval" in md and "fls re-eval" in md and "sparse_fls Breakout seed 1" in md
