"""Score saliency maps against Atari-HEAD gaze: every input of every trial of a game, three metrics each.

The saliency of an input comes from one of five methods: the model's built-in attention rendered to the
raw frame (``attention``, the paper's Table 4), a model-free reference (``uniform``, ``center_bias``), or a
post-hoc method applied to the model (``perturbation``, ``gradient``). Metrics are computed at 210x160
against the fixation union of the input's 8 raw frames (fls.metrics); undefined values stay NaN in the
per-input table and are counted, not averaged, in the summaries.

Randomness (shuffled AUC only) comes from one stream per input, ``input_rng(seed, trial_id, k)``: scores
do not depend on batch size, trial order or ``max_trials``/``max_inputs``; the random draws do not depend
on the device either (a GPU may still round the saliency maps differently from a CPU).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from fls import metrics as M
from fls.atari_head import head_game, paper_game
from fls.atari_head.dataset import load_index, load_trial
from fls.atari_head.sample import SUBJECT as SYNTHETIC_SUBJECT
from fls.atomic import atomic_path, atomic_write_json
from fls.checkpoint import PolicySource, load_policy_source
from fls.config import resolved
from fls.device import resolve_device
from fls.frames import FRAME_SHAPE
from fls.games import get_game
from fls.models.saliency import render_84, render_frame
from fls.runinfo import write_run_info
from fls.scoring.posthoc import gradient_saliency, perturbation_saliency, posthoc_frame_maps, to_frame
from fls.scoring.reference_maps import reference_map
from fls.scoring.summary import SCHEMA_VERSION, MetricStats, ScoredModel, ScoreSummary
from fls.settings import check_fields, setting
from fls.stage_files import RUN_INFO, SCORE_METRICS, SCORE_PER_INPUT, SCORE_PER_TRIAL, SCORE_SUMMARY

METHODS = ("attention", "uniform", "center_bias", "perturbation", "gradient")
MODEL_METHODS = ("attention", "perturbation", "gradient")
METRICS = ("nss", "kl", "sauc", "sauc_exact")
PER_INPUT_COLUMNS = ("trial_id", "subject", "input", "frame_id", "n_fixations", "nss", "kl", "sauc", "sauc_exact")
PROTOCOLS = ("authors", "fls")
# ScoreConfig fields only one method reads (every other field is read by every method)
METHOD_FIELDS: dict[str, tuple[str, ...]] = {
    "center_bias": ("center_sigma",),
    "perturbation": ("perturb_sigma", "perturb_stride", "perturb_blur"),
}


class ScoringError(ValueError):
    """Scoring cannot proceed as asked (missing trials, a model without attention, conflicting options)."""


@dataclass
class ScoreConfig:
    """The ``score`` section of params.yaml."""

    method: Literal["attention", "uniform", "center_bias", "perturbation", "gradient"] = setting(
        "attention", choices=METHODS, help="attention | uniform | center_bias | perturbation | gradient.",
    )
    # authors: maps divided by the trial maximum, KL "0" = |s| <= 1e-8, sAUC others among all inputs (Table 4);
    # fls: per-map relative KL test, others among the inputs with fixations (docs/saliency_metrics.md)
    protocol: Literal["authors", "fls"] = setting(
        "fls", choices=PROTOCOLS, help="authors (Table 4 as the authors computed it) | fls (score.protocol).",
    )
    batch_size: int = setting(64, ge=1, help="Inputs per batch (network forward pass / metric batch).")
    n_draws: int = setting(100, ge=1, help="Shuffled-AUC draws per input.")
    n_other: int = setting(10, ge=1, help="Shuffled AUC: other inputs of the trial whose fixations give the negatives.")
    seed: int = setting(42, help="Shuffled-AUC random streams (the authors used random_state=42).")
    kl_sigma: float = setting(5.0, gt=0, help="Fixation blur for KL, px at 210x160.")
    center_sigma: float = setting(0.25, gt=0, help="center_bias: Gaussian std as a fraction of frame height / width.")
    perturb_sigma: float = setting(5.0, gt=0, help="perturbation: mask std, px at 84x84.")
    perturb_stride: int = setting(5, ge=1, help="perturbation: grid step, px at 84x84.")
    perturb_blur: float = setting(3.0, gt=0, help="perturbation: blur std of the perturbed copy, px at 84x84.")
    device: str = setting("auto", help="torch device; auto: cuda if available, else cpu.")
    max_trials: Optional[int] = setting(None, ge=1, help="Quick run: first N trials (by trial id).")
    max_inputs: Optional[int] = setting(None, ge=1, help="Quick run: first N inputs per trial.")
    progress: bool = setting(True, help="Show a progress bar.")

    def fields_read(self) -> tuple[str, ...]:
        """The fields a run of ``method`` reads: all but the other methods' own (``METHOD_FIELDS``).

        ``fls score`` takes only these from params.yaml, so the score stages of dvc.yaml list only them
        and a uniform map is not rescored when ``perturb_sigma`` changes.
        """
        others = {f for m, fs in METHOD_FIELDS.items() if m != self.method for f in fs}
        return tuple(f.name for f in fields(self) if f.name not in others)

    def validate(self) -> None:
        check_fields(self, "score")  # bounds and choices, from the declarations above


# ------------------------------------------------------------------------------------------ saliency


class SaliencySource:
    """Turns a batch of uint8 network inputs into (B, 210, 160) float64 saliency maps for one method."""

    def __init__(self, method: str, model: torch.nn.Module | None, cfg: ScoreConfig, device: torch.device) -> None:
        self.method = method
        self.model = model
        self.cfg = cfg
        self.device = device
        self._reference: np.ndarray | None = None
        if method in MODEL_METHODS:
            if model is None:
                raise ScoringError(f"method '{method}' needs a model (run, checkpoint or arch)")
            if method == "attention" and not model.spec.has_attention:
                raise ScoringError(
                    f"architecture '{model.spec.id}' has no attention to score; use method 'perturbation' or 'gradient'"
                )
            model.eval()
        else:
            self._reference = reference_map(method, FRAME_SHAPE, sigma_frac=cfg.center_sigma)

    def native(self, obs: np.ndarray) -> np.ndarray:
        """(B, h, w) float32 maps before upscaling to the frame (84x84 for the model methods).

        The authors divide these by their maximum over the whole trial and only then upscale; upscaling is
        linear, so ``to_frame(native / c)`` is ``self(obs) / c`` up to float rounding.
        """
        if self._reference is not None:
            return np.broadcast_to(self._reference, (len(obs), *self._reference.shape))
        x = torch.from_numpy(np.ascontiguousarray(obs)).to(self.device)
        if self.method == "attention":
            with torch.inference_mode():
                m84 = render_84(self.model(x).attention, self.model.spec)
        elif self.method == "perturbation":
            m84 = perturbation_saliency(
                self.model, x, sigma=self.cfg.perturb_sigma, stride=self.cfg.perturb_stride, blur_sigma=self.cfg.perturb_blur
            )
        else:
            m84 = gradient_saliency(self.model, x)
        return m84.detach().float().cpu().numpy()

    def to_frame(self, native: np.ndarray) -> np.ndarray:
        """(B, 210, 160) float64 frame maps from ``native`` maps (bilinear, as ``render_frame``)."""
        if self._reference is not None:
            return np.asarray(native, dtype=np.float64)
        return to_frame(torch.from_numpy(np.ascontiguousarray(native, dtype=np.float32))).double().numpy()

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if self._reference is not None:
            return np.broadcast_to(self._reference, (len(obs), *self._reference.shape))
        x = torch.from_numpy(np.ascontiguousarray(obs)).to(self.device)
        if self.method == "attention":
            with torch.inference_mode():
                att = self.model(x).attention
                return render_frame(att, self.model.spec).double().cpu().numpy()
        kw: dict[str, Any] = {}
        if self.method == "perturbation":
            kw = {"sigma": self.cfg.perturb_sigma, "stride": self.cfg.perturb_stride, "blur_sigma": self.cfg.perturb_blur}
        return posthoc_frame_maps(self.method, self.model, x, **kw)


# ------------------------------------------------------------------------------------------ one trial


def fixation_totals(trial: Any) -> np.ndarray:
    """(K,) total fixation count of every input of the trial (from its CSR arrays)."""
    counts = np.asarray(trial.fix_counts, dtype=np.int64)
    cum = np.concatenate([[0], np.cumsum(counts)])
    off = np.asarray(trial.fix_offsets, dtype=np.int64)
    return cum[off[1:]] - cum[off[:-1]]


def negative_map(trial: Any, others: np.ndarray) -> np.ndarray:
    """(210, 160) summed fixation counts of inputs ``others`` (repeats count again)."""
    out = np.zeros(FRAME_SHAPE, dtype=np.int64)
    for j in others:
        r, c, n = trial.fixation_points(int(j))
        np.add.at(out, (r, c), n)
    return out


def trial_max(source: SaliencySource, trial: Any, ks: np.ndarray, batch_size: int) -> tuple[float, list[np.ndarray]]:
    """(maximum of the native maps over inputs ``ks``, those maps batch by batch): the authors' divisor.

    Their code renders the attention of every step of the replayed trial (with or without fixations) and
    divides all of it by the largest value, unless that is ~0 (``np.allclose(max, 0)``: divisor 1).
    """
    maps: list[np.ndarray] = []
    top = 0.0
    for b0 in range(0, len(ks), batch_size):
        m = source.native(trial.inputs[ks[b0 : b0 + batch_size]])
        maps.append(m)
        if m.size:
            top = max(top, float(np.max(m)))
    return (top if not np.isclose(top, 0.0) else 1.0), maps


def score_trial(trial: Any, source: SaliencySource, cfg: ScoreConfig) -> pd.DataFrame:
    """Per-input metrics of one trial (inputs ``0..max_inputs-1``); columns ``PER_INPUT_COLUMNS``.

    ``cfg.protocol`` "authors": every map of the scored inputs is divided by their maximum (``trial_max``;
    with ``max_inputs`` the maximum is over the scored inputs only), KL's "0" is absolute, the sAUC others
    come from all other inputs. "fls": maps as rendered, relative KL test, others among fixated inputs.
    """
    authors = cfg.protocol == "authors"
    totals = fixation_totals(trial)
    has_fix = totals > 0
    k_all = np.arange(trial.n_inputs if cfg.max_inputs is None else min(trial.n_inputs, cfg.max_inputs))
    pool = "all" if authors else "fixated"
    zero_test = "absolute" if authors else "relative"
    native: list[np.ndarray] = []
    divisor = 1.0
    if authors:
        divisor, native = trial_max(source, trial, k_all, cfg.batch_size)
    cols: dict[str, list[np.ndarray]] = {m: [] for m in METRICS}
    for bi, b0 in enumerate(range(0, len(k_all), cfg.batch_size)):
        ks = k_all[b0 : b0 + cfg.batch_size]
        if authors:
            sal = source.to_frame(native[bi] / divisor)
            sal = np.where(has_fix[ks][:, None, None], sal, np.nan)
        else:
            sal = np.full((len(ks), *FRAME_SHAPE), np.nan)
            live = ks[has_fix[ks]]  # inputs without fixations are undefined whatever the map: skip the model
            if len(live):
                sal[has_fix[ks]] = source(trial.inputs[live])
        fix = trial.fixation_maps(ks)
        rngs = [M.input_rng(cfg.seed, trial.trial_id, int(k)) for k in ks]
        neg = np.stack(
            [
                negative_map(trial, M.choose_other_inputs(g, int(k), has_fix, cfg.n_other, among=pool))
                for g, k in zip(rngs, ks)
            ]
        )
        cols["nss"].append(M.nss(sal, fix))
        cols["kl"].append(M.kl_divergence(sal, fix, sigma=cfg.kl_sigma, zero_test=zero_test))
        cols["sauc"].append(M.shuffled_auc(sal, fix, neg, n_draws=cfg.n_draws, rng=rngs))
        cols["sauc_exact"].append(M.shuffled_auc_exact(sal, fix, neg))
    frame_ids = np.asarray(trial.frame_ids)
    last_file = frame_ids[:, -1] if frame_ids.ndim == 2 else frame_ids
    df = pd.DataFrame(
        {
            "trial_id": np.full(len(k_all), int(trial.trial_id), dtype=np.int64),
            "subject": [str(trial.subject)] * len(k_all),
            "input": k_all.astype(np.int64),
            "frame_id": last_file[k_all].astype(np.int64),
            "n_fixations": totals[k_all].astype(np.int64),
        }
    )
    for m in METRICS:
        df[m] = np.concatenate(cols[m]) if cols[m] else np.zeros(0)
    return df


def score_model(
    model: torch.nn.Module | None,
    trials: Iterable[Any],
    cfg: ScoreConfig,
    *,
    device: torch.device | str | None = None,
    n_trials: int | None = None,
) -> pd.DataFrame:
    """Per-input metrics of every input of every trial (one row each, ``PER_INPUT_COLUMNS``).

    ``model`` may be None for the reference methods. ``device`` defaults to ``cfg.device`` (auto: CUDA if
    available); the model is moved there.
    """
    dev = torch.device(device) if device is not None else resolve_device(cfg.device)
    if model is not None:
        model = model.to(dev)
    source = SaliencySource(cfg.method, model, cfg, dev)
    frames = []
    for trial in tqdm(trials, total=n_trials, desc=f"score {cfg.method}", unit="trial", disable=not cfg.progress):
        frames.append(score_trial(trial, source, cfg))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c in METRICS else "int64") for c in PER_INPUT_COLUMNS})
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------------------------ summaries


RESULT_COUNTS = ("n_trials", "n_inputs", "n_inputs_with_fixations")


def metric_summary(df: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {m: M.summarise(df[m].to_numpy(dtype=np.float64)) for m in METRICS}


def per_trial_summary(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for tid, g in df.groupby("trial_id", sort=True):
        out.append(
            {
                "trial_id": int(tid),
                "subject": str(g["subject"].iloc[0]),
                "n_inputs": int(len(g)),
                "n_inputs_with_fixations": int((g["n_fixations"] > 0).sum()),
                "metrics": metric_summary(g),
            }
        )
    return out


# ------------------------------------------------------------------------------------------ the stage


def select_trials(atari_head_dir: str | Path, game: str, max_trials: int | None) -> pd.DataFrame:
    """Index rows of the game's usable trials, sorted by trial id, the first ``max_trials`` of them."""
    name = paper_game(head_game(game))
    df = load_index(atari_head_dir)
    rows = df[(df["game"] == name) & (df["skipped"] == "")].sort_values("trial_id", kind="stable")
    if rows.empty:
        raise ScoringError(f"{Path(atari_head_dir) / 'index.csv'}: no usable trials of {name}")
    return rows if max_trials is None else rows.head(max_trials)


def load_scored_model(
    cfg: ScoreConfig,
    *,
    run: str | Path | None,
    checkpoint: str | Path | None,
    arch: str | None,
    init_seed: int | None,
    game: str | None,
    device: torch.device,
) -> tuple[PolicySource | None, ScoredModel, str]:
    """(the policy or None, its record for summary.json, game) for the method; the game defaults to the run's."""
    given = [n for n, v in (("run", run), ("checkpoint", checkpoint), ("arch", arch)) if v is not None]
    if cfg.method not in MODEL_METHODS:
        if given:
            raise ScoringError(f"method '{cfg.method}' is model-free: drop {', '.join(given)}")
        if game is None:
            raise ScoringError(f"method '{cfg.method}' needs game")
        return None, ScoredModel(arch=None), get_game(game).name
    num_actions = get_game(game).num_actions if (arch is not None and game is not None) else None
    policy = load_policy_source(
        run=run, checkpoint=checkpoint, arch=arch, init_seed=init_seed, num_actions=num_actions, device=device
    )
    trained_game = policy.game
    if trained_game is not None and game is not None and get_game(game).name != get_game(trained_game).name:
        raise ScoringError(f"the model was trained on {trained_game}, not {get_game(game).name}: score it on its own game")
    name = get_game(game if game is not None else trained_game).name
    info = ScoredModel(arch=policy.arch, weights=policy.weights, trained_game=trained_game,
                       train_seed=policy.config.get("seed"))
    return policy, info, name


def score_to_dir(
    cfg: ScoreConfig,
    out: str | Path,
    *,
    atari_head: str | Path,
    game: str | None = None,
    run: str | Path | None = None,
    checkpoint: str | Path | None = None,
    arch: str | None = None,
    init_seed: int | None = None,
    alignment: str = "aligned",
) -> ScoreSummary:
    """The ``fls score`` stage: OUT/per_input.parquet, per_trial.json, summary.json, run_info.json.

    ``alignment`` picks which gaze of the preprocessed trials is the ground truth (``atari_head.alignment``).
    """
    t0 = time.perf_counter()
    out = Path(out)
    dev = resolve_device(cfg.device)
    policy, model_info, game_name = load_scored_model(
        cfg, run=run, checkpoint=checkpoint, arch=arch, init_seed=init_seed, game=game, device=dev
    )
    model = policy.model if policy is not None else None
    rows = select_trials(atari_head, game_name, cfg.max_trials)
    trials = (load_trial(p, alignment) for p in rows["path"])
    df = score_model(model, trials, cfg, device=dev, n_trials=len(rows))
    df = df[list(PER_INPUT_COLUMNS)]
    synthetic = bool((rows["subject"] == SYNTHETIC_SUBJECT).any())

    with atomic_path(out / SCORE_PER_INPUT) as tmp:
        df.to_parquet(tmp, index=False)
    atomic_write_json(out / SCORE_PER_TRIAL, {"schema_version": SCHEMA_VERSION, "trials": per_trial_summary(df)})
    summary = ScoreSummary(
        game=game_name,
        method=cfg.method,
        model=model_info,
        atari_head=str(atari_head),
        release=",".join(sorted(set(rows["release"].astype(str)))),
        alignment=alignment,
        protocol=cfg.protocol,
        synthetic_gaze=synthetic,
        n_trials=int(df["trial_id"].nunique()),
        n_inputs=int(len(df)),
        n_inputs_with_fixations=int((df["n_fixations"] > 0).sum()),
        metrics={m: MetricStats(**v) for m, v in metric_summary(df).items()},
        config=resolved(cfg),
        device=str(dev),
        seconds=round(time.perf_counter() - t0, 3),
    )
    body = summary.to_json()
    atomic_write_json(out / SCORE_SUMMARY, body)
    # The dvc.yaml `metrics:` file: results only (counts and per-metric statistics), nothing of the config.
    atomic_write_json(out / SCORE_METRICS, {**{k: body[k] for k in RESULT_COUNTS}, **body["metrics"]})
    write_run_info(
        out / RUN_INFO,
        resolved(cfg),
        stage="score",
        extra={"game": game_name, "model": model_info.to_json(), "alignment": alignment},
    )
    return summary

