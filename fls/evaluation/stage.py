"""What ``fls evaluate`` does around the protocol: load the policy, check it, evaluate, film, write OUT/.

The protocol (episode ledger, action sampler, checks) is ``fls.evaluation.protocol``, its runner
``fls.evaluation.evaluate``; the perception video is ``fls.evaluation.video``. This module joins them and
owns the evaluation directory's files (eval.json, episodes.csv, metrics.json, run_info.json).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from fls.atomic import atomic_write_json, atomic_write_text
from fls.checkpoint import PolicySource, load_policy_source
from fls.config import resolved
from fls.device import resolve_device
from fls.evaluation.config import EvalConfig
from fls.evaluation.evaluate import evaluate
from fls.evaluation.protocol import (
    EPISODE_FIELDS,
    EvaluationError,
    check_action_set,
    check_same_game,
    summarize,
    train_env_seeds,
)
from fls.evaluation.result import EvalRecord, EvaluationResult
from fls.evaluation.video import make_perception_video
from fls.games import base_game
from fls.runinfo import run_info, write_run_info
from fls.stage_files import EVAL, EVAL_EPISODES, EVAL_METRICS, RUN_INFO


def episodes_csv(rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(EPISODE_FIELDS), lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: row[k] for k in EPISODE_FIELDS})
    return buf.getvalue()


def write_outputs(record: EvalRecord, out_dir: str | Path) -> dict[str, Path]:
    """``OUT/eval.json`` (everything), ``OUT/episodes.csv`` (the episode rows) and ``OUT/metrics.json``.

    metrics.json is what dvc.yaml registers under ``metrics:``: the result numbers only, recomputed from
    the episode rows, so ``dvc metrics diff`` never lists config, provenance or timing.
    """
    out = Path(out_dir)
    paths = {"eval": out / EVAL, "episodes": out / EVAL_EPISODES, "metrics": out / EVAL_METRICS}
    atomic_write_text(paths["episodes"], episodes_csv(record.result.episodes))
    atomic_write_json(paths["metrics"], summarize(record.result.episodes))
    atomic_write_json(paths["eval"], record.to_json())
    return paths


def evaluate_to_dir(
    cfg: EvalConfig,
    out: str | Path,
    *,
    run: str | Path | None = None,
    checkpoint: str | Path | None = None,
    arch: str | None = None,
    init_seed: int | None = None,
    game: str | None = None,
    video: str | Path | None = None,
    frames: str | Path | None = None,
    progress: bool = True,
) -> EvalRecord:
    """What ``fls evaluate`` does: load, check, evaluate, optionally film, and write OUT/eval.json & co."""
    cfg.validate()
    dev = resolve_device(cfg.device)
    policy, seeds, game = prepare_subject(
        run=run, checkpoint=checkpoint, arch=arch, init_seed=init_seed, game=game, device=dev
    )
    result = evaluate(policy.model, game, cfg, train_env_seeds=seeds, device=dev, progress=progress)
    return finish_to_dir(result, policy, cfg, out, game=game, video=video, frames=frames, device=dev)


def prepare_subject(
    *,
    run: str | Path | None = None,
    checkpoint: str | Path | None = None,
    arch: str | None = None,
    init_seed: int | None = None,
    game: str | None = None,
    device: torch.device | str = "cpu",
) -> tuple[PolicySource, list[int], str]:
    """The checked policy, its training env seeds and the game to play: ``evaluate_to_dir`` before playing.

    Split out so that ``fls.evaluation.multi`` loads and checks each of several models exactly as here.
    """
    if arch is not None and game is None:
        raise EvaluationError("arch (a fresh model) needs game")
    num_actions = base_game(game).num_actions if game is not None else None
    policy = load_policy_source(
        run=run, checkpoint=checkpoint, arch=arch, init_seed=init_seed, num_actions=num_actions, device=device
    )
    weights = policy.weights
    # a fresh model trained nowhere; a checkpoint's training env seeds must not be evaluated on
    seeds = train_env_seeds(policy.config, where=weights.path) if weights.path is not None else []
    game = game if game is not None else str(policy.game)
    where = weights.path or f"fresh {policy.arch} model"
    check_action_set(policy.num_actions, game, where=where)
    check_same_game(policy.game, game, where=where)
    return policy, seeds, game


def finish_to_dir(
    result: EvaluationResult,
    policy: PolicySource,
    cfg: EvalConfig,
    out: str | Path,
    *,
    game: str,
    video: str | Path | None = None,
    frames: str | Path | None = None,
    device: torch.device | str = "cpu",
) -> EvalRecord:
    """``evaluate_to_dir`` after playing: provenance, optional film, OUT/eval.json & co."""
    weights = policy.weights
    filmed = None
    if video is not None or frames is not None:
        filmed = make_perception_video(policy.model, game, cfg, video=video, frames_dir=frames, device=device)
    extra = {"checkpoint": weights.to_json(), "game": game, "arch": policy.arch}
    record = EvalRecord(result=result, checkpoint=weights, trained_on=policy.game, video=filmed,
                        run_info=run_info(resolved(cfg), stage="evaluate", extra=extra))
    paths = write_outputs(record, out)
    write_run_info(Path(out) / RUN_INFO, resolved(cfg), stage="evaluate", extra=extra)
    record.paths = {k: str(v) for k, v in paths.items()}
    return record
