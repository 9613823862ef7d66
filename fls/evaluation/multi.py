"""Evaluate several models of one game in one process, each exactly as ``fls.evaluation.evaluate`` alone.

Why: the protocol's 8192 episodes per model are emulator-bound, and one model's evaluation leaves cores
idle between its inference and its envs' steps. All models of a (game, seed set) side by side in one
process overlap those phases and share the process's start-up. Each model keeps its own 16 envs (the
same seeds), its own action generator and its own ``EpisodeLedger`` (16 x 512 per-env accounting), and
runs in its own thread, so its eval.json body equals that of ``evaluate`` for the same model and config
(bit-identical on CPU; tests/test_evaluate_multi.py). On CPU the forward passes are not fused into one
batch across models; see docs/scale_out.md.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from fls.checkpoint import PolicySource
from fls.device import resolve_device
from fls.evaluation.config import EvalConfig
from fls.evaluation.evaluate import evaluate
from fls.evaluation.protocol import EvaluationError
from fls.evaluation.result import EvalRecord, EvaluationResult
from fls.evaluation.stage import finish_to_dir, prepare_subject


def evaluate_each(
    models: Sequence[torch.nn.Module],
    game: str,
    cfg: EvalConfig,
    *,
    train_env_seeds: Sequence[Sequence[int]] | None = None,
    device: torch.device | str | None = None,
) -> list[EvaluationResult | BaseException]:
    """Each model's ``evaluate`` result, or the error that ended it; one model's failure stops no other."""
    cfg.validate()
    seeds = list(train_env_seeds) if train_env_seeds is not None else [() for _ in models]
    if len(seeds) != len(models):
        raise EvaluationError(f"evaluate_many: {len(models)} models but {len(seeds)} train_env_seeds lists")
    results: list[EvaluationResult | BaseException | None] = [None] * len(models)
    threads_now = torch.get_num_threads()

    def one(i: int) -> None:
        torch.set_num_threads(threads_now)  # this thread's OpenMP/MKL settings as the caller's
        try:
            results[i] = evaluate(models[i], game, cfg, train_env_seeds=seeds[i], device=device, progress=False)
        except BaseException as exc:  # noqa: BLE001 - returned to the caller
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,), name=f"eval-{i}", daemon=True) for i in range(len(models))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r if r is not None else EvaluationError(f"model {i}: no result") for i, r in enumerate(results)]


def evaluate_many(
    models: Sequence[torch.nn.Module],
    game: str,
    cfg: EvalConfig,
    *,
    train_env_seeds: Sequence[Sequence[int]] | None = None,
    device: torch.device | str | None = None,
) -> list[EvaluationResult]:
    """``[evaluate(models[i], game, cfg, train_env_seeds=train_env_seeds[i]) for i]``, run concurrently.

    The first error (by model index) is raised after every thread has ended.
    """
    outcomes = evaluate_each(models, game, cfg, train_env_seeds=train_env_seeds, device=device)
    for item in outcomes:
        if isinstance(item, BaseException):
            raise item
    return [r for r in outcomes if not isinstance(r, BaseException)]


def out_dir_for(out_root: str | os.PathLike[str], run: str | os.PathLike[str], game: str) -> Path:
    """``runs/<arch>/<game>/<seed>`` played on ``game`` -> ``<out_root>/<game>/<arch>/<seed>``.

    The layout of dvc.yaml's evaluate and evaluate_infinite stages (their ``--out`` for their ``--run``),
    so ``fls evaluate --runs ... --out-root evals`` writes where those stages' outs are.
    """
    path = Path(run)
    return Path(out_root) / game / path.parent.parent.name / path.name


@dataclass
class RunEvaluation:
    """One member of ``evaluate_runs_to_dirs``: where it went, and its result or the error that ended it."""

    run: Path
    out: Path
    result: EvalRecord | None = None
    error: BaseException | None = None


def parse_runs(text: str) -> list[Path]:
    """``"runs/a/G/1,runs/a/G/9"`` -> two paths; a one-line error for an empty list or a repeated run."""
    runs = [Path(p.strip()) for p in text.split(",") if p.strip()]
    if not runs:
        raise EvaluationError(f"runs: expected comma-separated run directories, got {text!r}")
    if len({r.resolve() for r in runs}) != len(runs):
        raise EvaluationError(f"runs: a run directory is given twice in {text!r}")
    return runs


def evaluate_runs_to_dirs(
    cfg: EvalConfig,
    runs: Sequence[str | os.PathLike[str]],
    out_root: str | os.PathLike[str],
    *,
    game: str | None = None,
) -> list[RunEvaluation]:
    """``fls evaluate --run R --out <out_root>/<game>/<arch>/<seed>`` for every run R, in one process.

    Each run is loaded and checked as ``evaluate_to_dir`` does, all play at once (``evaluate_each``), and
    each writes the same files with the same bytes as its single command (run_info's command line and
    eval.json's timing aside). A run that cannot be loaded or fails while playing writes nothing and is
    reported in its entry; the others go on. Without ``game`` every run must have been trained on the same
    game (one evaluation config, one game per process).
    """
    cfg.validate()
    dev = resolve_device(cfg.device)
    members = [RunEvaluation(Path(r), Path()) for r in runs]
    loaded: list[tuple[RunEvaluation, PolicySource, list[int], str]] = []
    for m in members:
        try:
            policy, seeds, played = prepare_subject(run=m.run, game=game, device=dev)
        except Exception as exc:  # noqa: BLE001 - reported per run
            m.error = exc
            continue
        m.out = out_dir_for(out_root, m.run, played)
        loaded.append((m, policy, seeds, played))
    games = sorted({played for _, _, _, played in loaded})
    if len(games) > 1:
        raise EvaluationError(f"runs: the runs were trained on different games ({', '.join(games)}); name the game to play")
    if not loaded:
        return members
    outs = [m.out.resolve() for m, _, _, _ in loaded]
    if len(set(outs)) != len(outs):
        raise EvaluationError("runs: two runs map to the same output directory under out_root (same arch and seed)")
    outcomes = evaluate_each(
        [policy.model for _, policy, _, _ in loaded], games[0], cfg,
        train_env_seeds=[seeds for _, _, seeds, _ in loaded], device=dev,
    )
    for (m, policy, _seeds, played), outcome in zip(loaded, outcomes):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome  # KeyboardInterrupt and the like end the command
            m.error = outcome
            continue
        try:
            m.result = finish_to_dir(outcome, policy, cfg, m.out, game=played, device=dev)
        except Exception as exc:  # noqa: BLE001 - reported per run
            m.error = exc
    return members
