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

import threading
from collections.abc import Sequence

import torch

from fls.evaluation.evaluate import EvalConfig, evaluate
from fls.evaluation.protocol import EvaluationError
from fls.evaluation.result import EvaluationResult


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
    cfg.validate()
    seeds = list(train_env_seeds) if train_env_seeds is not None else [() for _ in models]
    if len(seeds) != len(models):
        raise EvaluationError(f"evaluate_many: {len(models)} models but {len(seeds)} train_env_seeds lists")
    results: list[EvaluationResult | None] = [None] * len(models)
    errors: list[BaseException | None] = [None] * len(models)
    threads_now = torch.get_num_threads()

    def one(i: int) -> None:
        torch.set_num_threads(threads_now)  # this thread's OpenMP/MKL settings as the caller's
        try:
            results[i] = evaluate(models[i], game, cfg, train_env_seeds=seeds[i], device=device, progress=False)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors[i] = exc

    threads = [threading.Thread(target=one, args=(i,), name=f"eval-{i}", daemon=True) for i in range(len(models))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for exc in errors:
        if exc is not None:
            raise exc
    return [r for r in results if r is not None]
