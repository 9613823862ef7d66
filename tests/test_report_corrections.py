"""Table 4 corrections (paired change per seed) and the appendix figures (6-7 curves, 8-14 scatter)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fls.atomic import atomic_write_json, atomic_write_text
from fls.report import appendix_figures, table4_corrections
from fls.layout import GridConfig, Layout
from helpers import preprocessed_sample


def summary(path, nss, sauc, alignment, protocol):
    m = lambda v: {"mean": v, "std": 0.0, "n_defined": 1, "n_undefined": 0}  # noqa: E731
    atomic_write_json(path / "summary.json", {"metrics": {"nss": m(nss), "kl": m(1.0), "sauc": m(sauc), "sauc_exact": m(sauc)},
                                              "alignment": alignment, "protocol": protocol})


def test_corrections_are_paired_per_seed(tmp_path):
    grid = GridConfig(archs=["sparse_fls"], games=["Breakout"], seeds=[1, 9], score_archs=["sparse_fls"],
                      score_games=["Breakout"], score_variants=["aligned-fls"])
    lay = Layout(runs=tmp_path / "runs", evals=tmp_path / "evals", scores=tmp_path / "scores")
    for seed, base, corr in ((1, 1.0, 1.5), (9, 3.0, 3.7)):
        summary(lay.score_dir("attention", "sparse_fls", "Breakout", seed), base, 0.6, "authors", "authors")
        summary(table4_corrections.corrected_dir(lay, "aligned-fls", "sparse_fls", "Breakout", seed), corr, 0.65, "aligned", "fls")
    t = table4_corrections.table(grid, lay)
    row = t.data[(t.data["metric"] == "nss")].iloc[0]
    assert row["main"] == "authors-authors" and row["seeds"] == 2
    assert row["change_mean"] == np.float64(0.6) or math.isclose(row["change_mean"], 0.6)
    assert math.isclose(row["change_std"], 0.1)
    assert math.isclose(t.data[t.data["metric"] == "sauc_exact"].iloc[0]["change_mean"], 0.05)
    assert "+0.600 ± 0.100" in t.display.to_string()


def test_appendix_figures(tmp_path):
    grid = GridConfig(archs=["sparse_fls", "sparse_fls_norm"], games=["Breakout"], seeds=[1], infinite_archs=[])
    lay = Layout(runs=tmp_path / "runs", evals=tmp_path / "evals", scores=tmp_path / "scores")
    rng = np.random.default_rng(0)
    for arch in grid.archs:
        d = lay.run_dir(arch, "Breakout", 1)
        atomic_write_text(d / "metrics.csv", pd.DataFrame({"global_step": [1024, 2048, 3072],
                                                             "eprewmean": [1.0, 2.0, 3.0]}).to_csv(index=False))
        ep = pd.DataFrame({"env": 0, "index_in_env": range(50), "reward": rng.integers(0, 30, 50),
                           "length_frames": 4 * rng.integers(100, 900, 50), "truncated": False})
        ep["length_steps"] = ep["length_frames"] // 4
        atomic_write_text(lay.eval_dir("Breakout", arch, 1) / "episodes.csv", ep.to_csv(index=False))
    curves = appendix_figures.write_extra_curves(grid, lay, tmp_path / "fig", "t")
    assert set(curves) == {"fig6_sparse_fls_variants"}  # no Fig. 7 arch was trained
    scat = appendix_figures.write_scatter_plots(grid, lay, tmp_path / "fig", "t")
    assert scat["fig8_scatter_Breakout"].stat().st_size > 1000
    dens = appendix_figures.point_density(np.r_[np.zeros(20), 10.0], np.r_[np.zeros(20), 10.0])
    assert dens[:-1].min() > dens[-1]  # the lone point is the least dense


def test_raw_rgb_of_a_preprocessed_trial_both_releases(tmp_path):
    import cv2

    from fls.atari_head.dataset import iter_trials, read_raw_rgb
    from fls.preprocessing import process_pair

    for release in ("v4", "v2"):
        raw = tmp_path / release
        pre = preprocessed_sample(raw, tmp_path / f"pre_{release}", seed=2, frames=14, trials=1, release=release)
        trial = next(iter_trials(pre, "breakout"))
        a, b = trial.frame_ids[2]
        rgb = read_raw_rgb(raw, trial, [a, b])
        # the raw files read back are the ones the network input was pooled from
        np.testing.assert_array_equal(process_pair(rgb[a], rgb[b]), trial.inputs[2, -1])
        assert rgb[a].shape == (210, 160, 3) and cv2 is not None


def test_authors_overlay_blend_and_red_fixations():
    from fls.report.figures import authors_overlay

    rgb = np.full((210, 160, 3), 100, dtype=np.uint8)
    sal = np.zeros((210, 160))
    sal[10, 10] = 1.0
    fmap = np.zeros((210, 160))
    fmap[50, 60] = 2.0
    out = authors_overlay(rgb, sal, fmap)
    assert math.isclose(out[0, 0, 1], 0.5 * 100 / 255)
    assert math.isclose(out[10, 10, 2], 0.5 * 100 / 255 + 0.5)
    assert out[50, 60, 0] == 1.0 and math.isclose(out[50, 60, 1], 0.5 * 100 / 255)
