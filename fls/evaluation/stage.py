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
from fls.checkpoint import load_policy_source
from fls.config import resolved
from fls.device import resolve_device
from fls.evaluation.evaluate import EvalConfig, evaluate
from fls.evaluation.protocol import (
    EPISODE_FIELDS,
    EvaluationError,
    check_action_set,
    check_same_game,
    summarize,
    train_env_seeds,
)
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


def write_outputs(result: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """``OUT/eval.json`` (everything), ``OUT/episodes.csv`` (the episode rows) and ``OUT/metrics.json``.

    metrics.json is what dvc.yaml registers under ``metrics:``: the result numbers only, recomputed from
    the episode rows, so ``dvc metrics diff`` never lists config, provenance or timing.
    """
    out = Path(out_dir)
    paths = {"eval": out / EVAL, "episodes": out / EVAL_EPISODES, "metrics": out / EVAL_METRICS}
    atomic_write_text(paths["episodes"], episodes_csv(result["episodes"]))
    atomic_write_json(paths["metrics"], summarize(result["episodes"]))
    atomic_write_json(paths["eval"], result)
    return paths


def load_subject(
    *,
    run: str | Path | None = None,
    checkpoint: str | Path | None = None,
    arch: str | None = None,
    init_seed: int | None = None,
    num_actions: int | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The policy to evaluate (``fls.checkpoint.load_policy_source``) plus the training run's env seeds.

    ``meta["checkpoint"]`` is what eval.json records about where the weights came from.
    """
    model, meta = load_policy_source(
        run=run, checkpoint=checkpoint, arch=arch, init_seed=init_seed, num_actions=num_actions, device=device
    )
    meta["train_env_seeds"] = train_env_seeds(meta) if meta["checkpoint"]["path"] is not None else []
    return model, meta


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
) -> dict[str, Any]:
    """What ``fls evaluate`` does: load, check, evaluate, optionally film, and write OUT/eval.json & co."""
    cfg.validate()
    dev = resolve_device(cfg.device)
    if arch is not None and game is None:
        raise EvaluationError("--arch (fresh model) needs --game")
    num_actions = base_game(game).num_actions if game is not None else None
    model, meta = load_subject(
        run=run, checkpoint=checkpoint, arch=arch, init_seed=init_seed, num_actions=num_actions, device=dev
    )
    game = game if game is not None else str(meta["game"])
    where = meta["checkpoint"]["path"] or f"fresh {meta['arch']} model"
    check_action_set(meta["num_actions"], game, where=where)
    check_same_game(meta["game"], game, where=where)
    result = evaluate(model, game, cfg, train_env_seeds=meta["train_env_seeds"], device=dev, progress=progress)
    result["checkpoint"] = meta["checkpoint"]
    result["trained_on"] = meta["game"]
    if video is not None or frames is not None:
        result["video"] = make_perception_video(model, game, cfg, video=video, frames_dir=frames, device=dev)
    else:
        result["video"] = None
    extra = {"checkpoint": meta["checkpoint"], "game": game, "arch": meta["arch"]}
    result["run_info"] = run_info(resolved(cfg), stage="evaluate", extra=extra)
    paths = write_outputs(result, out)
    write_run_info(Path(out) / RUN_INFO, resolved(cfg), stage="evaluate", extra=extra)
    result["paths"] = {k: str(v) for k, v in paths.items()}
    return result
