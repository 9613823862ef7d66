"""`score.protocol`: the authors' Table 4 choices (trial-max division, absolute KL zero test, sAUC others
among all inputs) against fls's, pinned on a small hand-made trial with hand-made maps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fls.frames import FRAME_SHAPE
from fls.scoring.score import ScoreConfig, score_trial

H, W = FRAME_SHAPE


class HandTrial:
    """Four inputs; input 0 has no fixation (like the authors' input 0), 1-3 one fixation cluster each."""

    trial_id = 7
    subject = "HM"

    def __init__(self):
        self.n_inputs = 4
        self.inputs = np.arange(4).reshape(4, 1)  # the stub source reads the input index from here
        self.frame_ids = np.array([[1, 1], [4, 5], [8, 9], [12, 13]])
        pts = {1: [(100, 80, 2)], 2: [(50, 40, 1), (51, 40, 1)], 3: [(150, 120, 3)]}
        rows, cols, counts, offsets = [], [], [], [0]
        for k in range(4):
            for r, c, n in pts.get(k, []):
                rows.append(r), cols.append(c), counts.append(n)
            offsets.append(len(rows))
        self.fix_rows, self.fix_cols = np.array(rows), np.array(cols)
        self.fix_counts, self.fix_offsets = np.array(counts), np.array(offsets)

    def fixation_points(self, k):
        a, b = self.fix_offsets[k], self.fix_offsets[k + 1]
        return self.fix_rows[a:b], self.fix_cols[a:b], self.fix_counts[a:b]

    def fixation_maps(self, ks):
        out = np.zeros((len(ks), H, W), dtype=np.int32)
        for i, k in enumerate(ks):
            r, c, n = self.fixation_points(int(k))
            out[i, r, c] = n
        return out


def hand_maps():
    """Frame maps per input. Input 0 (no fixation) holds the trial maximum, 10."""
    maps = np.full((4, H, W), 1e-3)
    maps[0, 0, 0] = 10.0
    maps[1, 100, 90] = 5e-8  # 10 px from input 1's fixation: inside the KL blur support
    maps[2, 50:52, 40] = 1.0
    maps[3, 150, 120] = 2.0
    return maps


class HandSource:
    """A saliency source whose 'native' maps are already frame maps (like the reference methods)."""

    def __init__(self):
        self.maps = hand_maps()

    def native(self, obs):
        return self.maps[np.asarray(obs).reshape(-1)]

    def to_frame(self, native):
        return np.asarray(native, dtype=np.float64)

    def __call__(self, obs):
        return self.native(obs)


def run(protocol, seed=42, n_other=10):
    cfg = ScoreConfig(protocol=protocol, seed=seed, n_other=n_other, n_draws=20, batch_size=2, progress=False)
    return score_trial(HandTrial(), HandSource(), cfg)


def test_kl_zero_test_sees_the_trial_max_division():
    authors, fls = run("authors"), run("fls")
    # 5e-8 / trial max 10 = 5e-9 <= 1e-8: the authors call it 0 under a fixation -> KL undefined;
    # fls compares 5e-8 with input 1's own max 1e-3 and scores it.
    assert math.isnan(authors.loc[1, "kl"]) and math.isfinite(fls.loc[1, "kl"])
    # input 2 has no near-zero pixel under its fixations: both define it, and KL ignores the scale
    assert authors.loc[2, "kl"] == pytest.approx(fls.loc[2, "kl"])
    # input 0 has no fixation: undefined in both, yet it set the authors' divisor (shown above)
    assert authors.loc[0, ["nss", "kl", "sauc", "sauc_exact"]].isna().all()
    # NSS is scale-free: the division changes nothing
    np.testing.assert_allclose(authors["nss"].to_numpy()[1:], fls["nss"].to_numpy()[1:])


def test_without_the_big_no_fixation_input_the_authors_divisor_changes():
    src = HandSource()
    src.maps[0, 0, 0] = 1e-3  # now the trial max is 2 (input 3): 5e-8 / 2 = 2.5e-8 > 1e-8
    cfg = ScoreConfig(protocol="authors", n_draws=20, batch_size=2, progress=False)
    df = score_trial(HandTrial(), src, cfg)
    assert math.isfinite(df.loc[1, "kl"])


def test_authors_other_inputs_include_inputs_without_fixations():
    # one other input per draw: fls picks among inputs 2, 3 (both fixated) and is always defined; the
    # authors also pick input 0 (no fixation), leaving an empty negative map (undefined) about 1/3 of the time
    nan_authors = [math.isnan(run("authors", seed=s, n_other=1).loc[1, "sauc"]) for s in range(60)]
    nan_fls = [math.isnan(run("fls", seed=s, n_other=1).loc[1, "sauc"]) for s in range(60)]
    assert not any(nan_fls)
    assert 8 <= sum(nan_authors) <= 32


def test_sauc_exact_column_and_same_undefined_inputs():
    for protocol in ("authors", "fls"):
        df = run(protocol)
        assert list(df.columns[-4:]) == ["nss", "kl", "sauc", "sauc_exact"]
        assert (df["sauc"].isna() == df["sauc_exact"].isna()).all()
        assert df["frame_id"].tolist() == [1, 5, 9, 13]


@pytest.mark.parametrize("method", ["attention", "gradient"])
def test_native_maps_upscale_to_the_frame_maps(method):
    import torch

    from fls.models import build_model
    from fls.scoring.score import SaliencySource

    torch.manual_seed(0)
    model = build_model("sparse_fls", 4).eval()
    src = SaliencySource(method, model, ScoreConfig(progress=False), torch.device("cpu"))
    obs = np.random.default_rng(0).integers(0, 256, size=(3, 4, 84, 84), dtype=np.uint8)
    native = src.native(obs)
    assert native.shape == (3, 84, 84)
    np.testing.assert_allclose(src.to_frame(native), src(obs), rtol=1e-6, atol=1e-9)
    c = float(native.max())
    np.testing.assert_allclose(src.to_frame(native / c), src(obs) / c, rtol=1e-5, atol=1e-9)


def test_cli_variant_conflicting_with_a_flag_is_a_one_line_error(tmp_path):
    from typer.testing import CliRunner

    from pipeline.app import app

    res = CliRunner().invoke(app, ["score", "--method", "uniform", "--game", "Breakout", "--atari-head", str(tmp_path),
                                   "--out", str(tmp_path / "o"), "--variant", "aligned-fls", "--protocol", "authors"])
    assert res.exit_code == 2 and "--variant aligned-fls says --protocol fls" in res.output
    res = CliRunner().invoke(app, ["score", "--method", "uniform", "--game", "Breakout", "--atari-head", str(tmp_path),
                                   "--out", str(tmp_path / "o"), "--variant", "shifted-fls"])
    assert res.exit_code == 2 and "<alignment>-<protocol>" in res.output
