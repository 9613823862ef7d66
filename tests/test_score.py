"""fls.scoring and `fls score` on a tiny synthetic Atari-HEAD sample (real ALE frames, fake gaze)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from fls import metrics as M
from fls.atari_head.dataset import load_trial
from fls.models import render_frame
from fls.scoring import METHODS, METRICS, PER_INPUT_COLUMNS, ScoreConfig, ScoringError, score_model
from fls.scoring.posthoc import gradient_saliency, perturbation_saliency, to_frame
from fls.scoring.reference_maps import center_bias_map, reference_map
from fls.scoring.score import METHOD_FIELDS, fixation_totals, negative_map, select_trials
from fls.scoring.summary import ScoreFileError, ScoreSummary
from helpers import fresh_model, preprocessed_sample
from pipeline.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def head_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("atari_head")
    return preprocessed_sample(root / "raw", root / "pre", seed=3, frames=48, trials=2)


@pytest.fixture(scope="module")
def trials(head_dir):
    return [load_trial(p) for p in select_trials(head_dir, "Breakout", None)["path"]]


CPU = dict(device="cpu", progress=False)


# ------------------------------------------------------------------------------------------ library


def test_attention_scores_are_the_metrics_of_the_rendered_attention(trials):
    model = fresh_model("sparse_fls")
    cfg = ScoreConfig(method="attention", n_draws=10, seed=5, **CPU)
    df = score_model(model, trials, cfg)
    assert list(df.columns) == list(PER_INPUT_COLUMNS)
    assert len(df) == sum(t.n_inputs for t in trials)
    t = trials[0]
    with torch.no_grad():
        sal = render_frame(model(torch.from_numpy(t.inputs)).attention, model.spec).double().numpy()
    fix = t.fixation_maps(range(t.n_inputs))
    rows = df[df["trial_id"] == t.trial_id]
    np.testing.assert_allclose(rows["nss"], M.nss(sal, fix), rtol=1e-9)
    np.testing.assert_allclose(rows["kl"], M.kl_divergence(sal, fix, sigma=5.0), rtol=1e-9)
    has = fixation_totals(t) > 0
    k = 4
    g = M.input_rng(5, t.trial_id, k)
    neg = negative_map(t, M.choose_other_inputs(g, k, has, 10))
    expected = M.shuffled_auc(sal[k], fix[k], neg, n_draws=10, rng=g)
    assert rows["sauc"].iloc[k] == pytest.approx(expected, abs=1e-12)
    assert (rows["n_fixations"].to_numpy() == fix.reshape(len(fix), -1).sum(1)).all()


def test_scores_do_not_depend_on_batch_size_or_subsetting(trials):
    model = fresh_model("sparse_fls")
    full = score_model(model, trials, ScoreConfig(batch_size=64, n_draws=5, **CPU))
    small = score_model(model, trials, ScoreConfig(batch_size=3, n_draws=5, **CPU))
    pd.testing.assert_frame_equal(full, small)
    head = score_model(model, trials[1:], ScoreConfig(max_inputs=4, n_draws=5, **CPU))
    expect = full[full["trial_id"] == trials[1].trial_id].head(4).reset_index(drop=True)
    pd.testing.assert_frame_equal(head, expect)


def test_reference_maps_uniform_is_undefined_for_nss_and_sauc(trials):
    df = score_model(None, trials, ScoreConfig(method="uniform", n_draws=5, **CPU))
    assert df["nss"].isna().all() and df["sauc"].isna().all()
    assert df.loc[df["n_fixations"] > 0, "kl"].notna().all()
    cb = score_model(None, trials, ScoreConfig(method="center_bias", n_draws=5, **CPU))
    ok = cb["n_fixations"] > 0
    assert cb.loc[ok, ["nss", "kl", "sauc"]].notna().all().all()
    assert cb["sauc"].between(0, 1).all()


def test_center_bias_map_geometry():
    m = center_bias_map((210, 160), 0.25)
    assert m.shape == (210, 160)
    np.testing.assert_allclose(m, m[::-1, ::-1])  # symmetric about the centre
    assert m[104, 79] == pytest.approx(m.max()) and m.max() <= 1.0
    # one std (0.25 * 210 = 52.5 rows) from the centre the value is exp(-1/2) relative to the peak
    rows = np.arange(210) - 104.5
    assert np.interp(52.5, rows, m[:, 79] / m.max()) == pytest.approx(np.exp(-0.5), rel=1e-3)
    with pytest.raises(ValueError, match="unknown reference map"):
        reference_map("nope")


def test_nature_cnn_has_no_attention_to_score(trials):
    with pytest.raises(ScoringError, match="no attention"):
        score_model(fresh_model("nature_cnn"), trials, ScoreConfig(**CPU))


# ------------------------------------------------------------------------------------------ post-hoc


class _Linear(torch.nn.Module):
    """logits = (w * x).sum() for two actions: only pixels where w != 0 matter."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = w

    def forward(self, obs):
        x = obs.float() / 255.0
        a = (x * self.w).flatten(1).sum(1)
        return SimpleNamespace(logits=torch.stack([a, -2 * a], dim=1))


def test_gradient_saliency_of_a_linear_policy_is_its_weight_magnitude():
    w = torch.zeros(4, 84, 84)
    w[3, 10:20, 30:40] = 2.0
    w[0, 10:20, 30:40] = -1.0
    obs = torch.randint(0, 255, (3, 4, 84, 84), dtype=torch.uint8)
    g = gradient_saliency(_Linear(w), obs)
    # top logit is a (if a >= 0) or -2a: |d/dx| is |w|/255 or 2|w|/255, summed over frames
    scale = torch.where(_Linear(w)(obs).logits[:, 0] >= 0, 1.0, 2.0)[:, None, None]
    torch.testing.assert_close(g, scale * w.abs().sum(0)[None] / 255.0)


def test_perturbation_saliency_peaks_where_the_policy_looks():
    w = torch.zeros(4, 84, 84)
    w[:, 60:66, 20:26] = 1.0  # the policy reads one small patch
    obs = torch.zeros(2, 4, 84, 84, dtype=torch.uint8)
    obs[:, :, 62:64, 22:24] = 255  # a bright object there: blurring it changes the logits
    sal = perturbation_saliency(_Linear(w), obs, sigma=5, stride=5, blur_sigma=3)
    assert sal.shape == (2, 84, 84) and (sal >= 0).all()
    r, c = np.unravel_index(int(sal[0].argmax()), (84, 84))
    assert abs(r - 62.5) <= 5 and abs(c - 22.5) <= 5
    assert float(sal[0, 5:15, 60:80].max()) < 1e-3 * float(sal[0].max())  # nothing far away
    assert to_frame(sal).shape == (2, 210, 160)


def test_posthoc_methods_run_on_a_real_model(trials):
    t = trials[:1]
    for method in ("gradient", "perturbation"):
        df = score_model(fresh_model("sparse_fls"), t, ScoreConfig(method=method, max_inputs=2, n_draws=5, perturb_stride=21, **CPU))
        assert len(df) == 2 and df["nss"].notna().all() and df["sauc"].notna().all()


# another value for each field only one method reads (fls.scoring.score.METHOD_FIELDS)
OWN_FIELD_CHANGES = {"center_sigma": 0.1, "perturb_sigma": 2.0, "perturb_stride": 21, "perturb_blur": 1.0}


@pytest.mark.parametrize("method", METHODS)
def test_only_a_methods_own_fields_change_its_scores(trials, method):
    """`fls score` takes only ``fields_read()`` from params.yaml (and dvc.yaml tracks only those): the
    other methods' fields must not move this method's scores, and its own must."""
    assert set(OWN_FIELD_CHANGES) == {f for fs in METHOD_FIELDS.values() for f in fs}
    model = None if method in ("uniform", "center_bias") else fresh_model("sparse_fls")
    base = dict(method=method, max_inputs=3, n_draws=5, perturb_stride=11, **CPU)
    ref = score_model(model, trials[:1], ScoreConfig(**base))
    own = METHOD_FIELDS.get(method, ())
    for name, value in OWN_FIELD_CHANGES.items():
        assert (name in ScoreConfig(method=method).fields_read()) == (name in own)
        df = score_model(model, trials[:1], ScoreConfig(**{**base, name: value}))
        if name in own:
            assert not df[list(METRICS)].equals(ref[list(METRICS)]), f"{method}: {name} changed nothing"
        else:
            pd.testing.assert_frame_equal(df, ref)


# ------------------------------------------------------------------------------------------ CLI


def _read(out):
    summary = json.loads((out / "summary.json").read_text())
    per_trial = json.loads((out / "per_trial.json").read_text())
    table = pd.read_parquet(out / "per_input.parquet")
    return summary, per_trial, table


def test_cli_scores_a_fresh_model(head_dir, tmp_path):
    out = tmp_path / "attn"
    res = runner.invoke(
        app,
        ["score", "--atari-head", str(head_dir), "--arch", "daqn", "--game", "Breakout", "--out", str(out),
         "--max-trials", "2", "--max-inputs", "5", "--n-draws", "10", "--device", "cpu", "--quiet"],
    )
    assert res.exit_code == 0, res.output
    assert "SYNTHETIC" in res.output
    summary, per_trial, table = _read(out)
    assert summary["game"] == "Breakout" and summary["arch"] == "daqn" and summary["method"] == "attention"
    assert summary["synthetic_gaze"] is True and summary["n_trials"] == 2 and summary["n_inputs"] == 10
    for m in ("nss", "kl", "sauc"):
        s = summary["metrics"][m]
        assert s["n_defined"] + s["n_undefined"] == 10
        defined = table[m].dropna()
        assert s["n_defined"] == len(defined) and s["mean"] == pytest.approx(defined.mean())
    assert [t["trial_id"] for t in per_trial["trials"]] == sorted(table["trial_id"].unique().tolist())
    info = json.loads((out / "run_info.json").read_text())
    assert info["stage"] == "score" and info["config"]["max_inputs"] == 5
    metrics = json.loads((out / "metrics.json").read_text())  # the dvc `metrics:` file: results only
    assert metrics == {"n_trials": 2, "n_inputs": 10, "n_inputs_with_fixations": summary["n_inputs_with_fixations"],
                       **summary["metrics"]}
    # summary.json read back through its typed view writes the same bytes; a missing field is named
    typed = ScoreSummary.from_json(summary, str(out / "summary.json"))
    assert json.dumps(typed.to_json(), indent=2, sort_keys=True) + "\n" == (out / "summary.json").read_text()
    assert typed.model.weights.init_seed == 0 and typed.metrics["nss"].n_defined + typed.metrics["nss"].n_undefined == 10
    with pytest.raises(ScoreFileError, match=r"summary\.json: metrics\.kl: missing field 'n_undefined'"):
        ScoreSummary.from_json({**summary, "metrics": {**summary["metrics"], "kl": {"mean": 1.0, "std": 0.0, "n_defined": 3}}},
                               str(out / "summary.json"))


def test_cli_reference_method_needs_no_model(head_dir, tmp_path):
    out = tmp_path / "uni"
    res = runner.invoke(app, ["score", "--atari-head", str(head_dir), "--game", "breakout", "--method", "uniform",
                              "--out", str(out), "--max-inputs", "3", "--quiet"])
    assert res.exit_code == 0, res.output
    summary, _, _ = _read(out)
    assert summary["arch"] is None and summary["model"] == {"arch": None, "checkpoint": None}
    assert summary["metrics"]["nss"]["n_defined"] == 0 and summary["metrics"]["nss"]["mean"] is None
    typed = ScoreSummary.from_json(summary, str(out / "summary.json"))
    assert typed.model.model_free and typed.to_json() == summary
    assert summary["metrics"]["kl"]["n_defined"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "uniform", "--arch", "daqn", "--game", "Breakout"], "model-free"),
        (["--method", "uniform"], "needs game"),
        (["--method", "attention", "--arch", "nature_cnn", "--game", "Breakout"], "no attention"),
        (["--arch", "daqn", "--game", "Enduro"], "no usable trials of Enduro"),
        (["--arch", "daqn", "--game", "BeamRider"], "not in Atari-HEAD"),
        (["--method", "saliency", "--game", "Breakout"], "method"),
    ],
)
def test_cli_bad_input_gives_one_line_errors(head_dir, tmp_path, args, message):
    res = runner.invoke(app, ["score", "--atari-head", str(head_dir), "--out", str(tmp_path / "x"), "--quiet", *args])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def test_cli_missing_preprocessed_dir(tmp_path):
    res = runner.invoke(app, ["score", "--atari-head", str(tmp_path / "nope"), "--game", "Breakout",
                              "--method", "uniform", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "index.csv" in res.output


def test_cli_scores_a_checkpoint_and_refuses_another_games_gaze(head_dir, tmp_path, trials):
    from fls.checkpoint import Checkpoint, save_checkpoint

    model = fresh_model("sparse_fls_pool", seed=7)
    run = tmp_path / "run"
    payload = {"arch": "sparse_fls_pool", "num_actions": 4, "model": model.state_dict(), "optimizer": None, "update": 3,
               "global_step": 3072, "config": {"seed": 9, "arch": "sparse_fls_pool", "game": "Breakout"}}
    save_checkpoint(run / "model.pt", Checkpoint(**{**payload, "game": "Breakout"}))
    out = tmp_path / "scored"
    res = runner.invoke(app, ["score", "--atari-head", str(head_dir), "--run", str(run), "--out", str(out),
                              "--max-inputs", "4", "--n-draws", "5", "--seed", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    summary, _, table = _read(out)
    assert summary["game"] == "Breakout" and summary["model"]["train_seed"] == 9
    assert summary["model"]["checkpoint"]["global_step"] == 3072
    direct = score_model(model, trials, ScoreConfig(max_inputs=4, n_draws=5, seed=1, **CPU))
    pd.testing.assert_frame_equal(table, direct)

    save_checkpoint(tmp_path / "enduro.pt", Checkpoint(**{**payload, "game": "Enduro", "num_actions": 9,
                                                          "model": fresh_model("sparse_fls_pool", 9).state_dict()}))
    res = runner.invoke(app, ["score", "--atari-head", str(head_dir), "--checkpoint", str(tmp_path / "enduro.pt"),
                              "--game", "Breakout", "--out", str(tmp_path / "y"), "--quiet"])
    assert res.exit_code == 2 and "trained on Enduro" in res.output


def test_cli_reads_the_score_section_of_params_and_flags_override_it(head_dir, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("score:\n  method: center_bias\n  n_draws: 7\n  max_inputs: 2\n  seed: 3\n")
    out = tmp_path / "p"
    res = runner.invoke(app, ["score", "--atari-head", str(head_dir), "--game", "Breakout", "--params", str(params),
                              "--n-draws", "4", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    summary, _, table = _read(out)
    assert summary["method"] == "center_bias"
    assert summary["config"]["n_draws"] == 4 and summary["config"]["seed"] == 3
    assert len(table) == 2 * summary["n_trials"]
    params.write_text("score:\n  n_drawz: 7\n")
    res = runner.invoke(app, ["score", "--atari-head", str(head_dir), "--game", "Breakout", "--params", str(params),
                              "--out", str(out), "--quiet"])
    assert res.exit_code == 2 and "n_drawz" in res.output


@pytest.mark.gpu
def test_cuda_scores_match_cpu(trials):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    model = fresh_model("sparse_fls")
    cfg = dict(n_draws=10, max_inputs=6, progress=False)
    cpu = score_model(model, trials, ScoreConfig(device="cpu", **cfg))
    gpu = score_model(model, trials, ScoreConfig(device="cuda", **cfg))
    # same random draws; the maps differ only by float32 rounding between devices
    np.testing.assert_allclose(gpu["nss"], cpu["nss"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gpu["kl"], cpu["kl"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gpu["sauc"], cpu["sauc"], atol=1e-2)
