"""End to end: the authors' released models through the DVC pipeline, on a synthetic stand-in of their release.

A copy of the repo with the tiny profile switched to `grid.import_seeds` (no train seeds) and a synthetic
authors-style download (fls/authors/synthetic.py: Baselines-format model.pkl, eval.pkl, saliency.pkl and an
event file per model) in data/authors; `dvc repro` must import instead of training, evaluate and score the
imported weights, and report the authors' numbers beside fls's. Slow (about a minute or two on a 2-core CPU):
`pytest -m slow tests/test_authors_e2e.py`.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from fls.profiles import load_profile
from helpers import BIN, REPO, commit_project, copy_repo, run_checked as _run

MODELS = [("nature_cnn", "Breakout", 1), ("sparse_fls", "Breakout", 1)]

pytestmark = pytest.mark.slow


def _authors_profile() -> dict:
    """The tiny profile's settings with every seed imported and only the stages this check needs."""
    params = load_profile(REPO / "profiles" / "tiny.yaml")  # as rendered into params.yaml
    params["profile"] = "tiny_authors"
    params["grid"].update(archs=["nature_cnn", "sparse_fls"], games=["Breakout"], seeds=[1], train_seeds=[],
                          import_seeds=[1], infinite_archs=[], score_archs=["sparse_fls"], score_games=["Breakout"],
                          reference_methods=[], posthoc_methods=[], posthoc_archs=[], score_variants=[])
    return params


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from fls.authors.synthetic import make_authors_tree

    root = tmp_path_factory.mktemp("authors_e2e")
    copy_repo(root)
    (root / "params.yaml").write_text(yaml.safe_dump(_authors_profile(), sort_keys=False))
    # the synthetic sample's Breakout trials are 101 (regular) and 102 (highscore): the authors scored both
    make_authors_tree(root / "data" / "authors", MODELS, saliency_trials={"Breakout": [101, 102]}, curve_points=6)
    env = commit_project(root, "tiny authors profile")
    res = _run([str(BIN / "dvc"), "repro"], root, env)
    return root, env, res.stdout


def test_import_replaces_training(project):
    from fls.authors.convert import ARCH_TO_NETWORK, convert_variables
    from fls.authors.safe_pickle import safe_load
    from fls.checkpoint import file_sha256

    root, env, stdout = project
    ran = {line.split("'")[1] for line in stdout.splitlines() if line.startswith("Running stage")}
    assert not [s for s in ran if s.startswith("train")], ran
    assert {f"import_authors@{a}-{g}-{s}" for a, g, s in MODELS} <= ran
    for arch, game, seed in MODELS:
        run = root / "runs" / arch / game / str(seed)
        assert not (run / "checkpoint.pt").exists() and not (run / "episodes.csv").exists()  # train-only files
        summary = json.loads((run / "summary.json").read_text())
        assert summary["source"] == "authors" and summary["model_sha256"] == file_sha256(run / "model.pt")
        pkl = root / "data" / "authors" / f"{game}.{ARCH_TO_NETWORK[arch]}" / f"{seed:02d}" / "model.pkl"
        assert summary["sources"]["model.pkl"]["sha256"] == file_sha256(pkl)
        _, _, expected = convert_variables(safe_load(pkl), ARCH_TO_NETWORK[arch], where=str(pkl))
        got = torch.load(run / "model.pt", map_location="cpu", weights_only=False)["model"]
        assert set(got) == set(expected) and all(torch.equal(torch.as_tensor(expected[k]), got[k]) for k in got)
        # the evaluation ran on exactly these weights
        ev = json.loads((root / "evals" / game / arch / str(seed) / "eval.json").read_text())
        assert ev["checkpoint"]["sha256"] == summary["model_sha256"]
    assert _run([str(BIN / "dvc"), "status", "--json"], root, env).stdout.strip() in ("{}", "")


def test_report_shows_the_authors_numbers_beside_fls(project):
    root, _, _ = project
    t = pd.read_csv(root / "reports" / "tables" / "authors_comparison.csv").set_index(["arch", "game", "seed"])
    assert sorted(t.index) == sorted(MODELS)
    for cell in MODELS:
        r = t.loc[cell]
        assert np.isfinite([r.authors_mean, r.authors_std, r.fls_mean, r.fls_std, r.welch_p]).all(), cell
        assert r.authors_n == 8 and r.fls_n == 2  # their 8 synthetic episodes, the tiny profile's 2
    scored = t.loc[("sparse_fls", "Breakout", 1)]
    assert scored.trials >= 1 and np.isfinite([scored.authors_nss, scored.fls_nss, scored.authors_sauc, scored.fls_sauc]).all()
    assert np.isnan(t.loc[("nature_cnn", "Breakout", 1)].fls_nss)  # no attention: fls scores no map of it
    index = (root / "reports" / "index.md").read_text()
    assert "## The authors' released weights" in index and "(tables/authors_comparison.md)" in index
    metrics = json.loads((root / "reports" / "metrics.json").read_text())
    assert metrics["authors/sparse_fls/Breakout/1/fls_mean"] == pytest.approx(t.loc[("sparse_fls", "Breakout", 1)].fls_mean)


def test_figure3_draws_the_authors_training_curves(project):
    from fls import tb_events as events
    from fls.authors.convert import ARCH_TO_NETWORK

    root, _, _ = project
    assert (root / "reports" / "figures" / "fig3_reward_curves.png").stat().st_size > 0
    curves = pd.read_csv(root / "reports" / "fig3_curves.csv")
    assert set(curves["source"]) == {"authors"} and set(curves["arch"]) == {a for a, _, _ in MODELS}
    for arch, game, seed in MODELS:
        folder = root / "data" / "authors" / f"{game}.{ARCH_TO_NETWORK[arch]}" / f"{seed:02d}"
        expected = [(s, v) for s, v in events.read_curve(next(folder.glob("events.out.tfevents.*"))) if np.isfinite(v)]
        drawn = curves[curves["arch"] == arch]
        assert drawn["step"].tolist() == [s for s, _ in expected]
        assert drawn["eprewmean_mean"].to_numpy() == pytest.approx([v for _, v in expected], rel=1e-5)
