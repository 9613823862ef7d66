"""Several training runs in one process (e.g. the five seeds of one arch and game), each as if alone.

Why: one run keeps a CPU busy only in bursts. Its rollout alternates emulator steps (native threads) with
batch-8 inference, and on a GPU machine its network leaves the accelerator mostly idle. R runs side by side
in one process overlap those phases, so R runs finish sooner than R runs one after another, and a grid
node needs R times fewer processes (and model copies of the framework) for the same work.

How: every run is an ordinary ``fls.ppo.trainer._Trainer`` with its own envs, seed, model, optimizer, lr
schedule, checkpoint and run directory (the same six files as ``fls train`` writes), driven by its own
thread. The one thing runs would share, torch's global random generators, is replaced per run by private
generators that continue from exactly the state the run would have had alone
(``_Trainer.use_own_rng``), and construction (seeding, model init, restore) is done one run at a time.
Every per-run computation is then the same sequence of the same ops as a single run: on CPU (one torch
thread per op, as the trainer uses there) each run is bit-identical to ``train()`` of the same config,
which tests/test_multirun.py checks. Resume is per run: each run resumes from its own checkpoint.pt, or
is recognised as finished, independently of the others.

Not here: batching the inference and update of runs of one architecture into one kernel
(``torch.func.stack_module_state`` + ``vmap``); it would change float rounding on CPU and was not
measured on a GPU (none was available), see docs/scale_out.md.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fls.config import ConfigError
from fls.ppo.config import TrainConfig
from fls.ppo.run_dir import OpenedRun, TrainResult, open_run
from fls.ppo.trainer import _Trainer

_CONSTRUCT = threading.Lock()  # seeding and model init use torch's global generator: one run at a time


class MultiRunError(ConfigError):
    """Bad multi-run request (duplicate output directories, mismatched lists, bad seed list)."""


@dataclass
class RunOutcome:
    """One member run: its result, or the error that ended it (other runs carry on)."""

    cfg: TrainConfig
    out: Path
    result: TrainResult | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.result is not None


class _Interrupted(Exception):
    """Raised inside a run's thread to end it at an update boundary (Ctrl-C in the main thread)."""


def parse_seeds(text: str) -> list[int]:
    """``"1,9,17"`` -> [1, 9, 17]; a one-line error for anything else."""
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise MultiRunError(f"seeds: expected comma-separated integers such as 1,9,17, got {text!r}") from None
    if not seeds:
        raise MultiRunError(f"seeds: expected at least one seed, got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise MultiRunError(f"seeds: duplicate seed in {text!r}")
    return seeds


def run_dir(root: str | os.PathLike[str], cfg: TrainConfig) -> Path:
    """The pipeline's layout: ``<root>/<arch>/<game>/<seed>`` (dvc.yaml's train outs)."""
    return Path(root) / cfg.arch / cfg.game / str(cfg.seed)


def seed_configs(base: TrainConfig, seeds: Sequence[int]) -> list[TrainConfig]:
    return [replace(base, seed=int(s)) for s in seeds]


def train_many(
    cfgs: Sequence[TrainConfig],
    out_dirs: Sequence[str | os.PathLike[str]],
    *,
    stop_after_updates: int | None = None,
    on_update: Callable[[int, dict[str, Any]], None] | None = None,
    restart_on_change: bool = False,
) -> list[RunOutcome]:
    """Train (or resume, or recognise as finished) every ``cfgs[i]`` in ``out_dirs[i]``, all at once.

    Each run behaves as ``train(cfgs[i], out_dirs[i], ...)`` would; ``on_update(i, row)`` gets run i's
    metrics rows. A run that fails (e.g. a corrupt checkpoint) is reported in its outcome and does not stop
    the others. A ``KeyboardInterrupt`` ends every run at its next update boundary (each keeps its last
    checkpoint) and is re-raised.
    """
    if len(cfgs) != len(out_dirs):
        raise MultiRunError(f"train_many: {len(cfgs)} configs but {len(out_dirs)} output directories")
    outs = [Path(o) for o in out_dirs]
    resolved = [o.resolve() for o in outs]
    if len(set(resolved)) != len(resolved):
        dup = next(str(o) for o in outs if resolved.count(o.resolve()) > 1)
        raise MultiRunError(f"train_many: output directory {dup} is given to more than one run")
    outcomes = [RunOutcome(cfg, out) for cfg, out in zip(cfgs, outs)]
    stop = threading.Event()

    trainers: list[_Trainer | None] = []
    for o in outcomes:
        try:
            opened = open_run(o.cfg, o.out, restart_on_change=restart_on_change)
            if isinstance(opened, TrainResult):
                o.result = opened
                trainers.append(None)
                continue
            trainers.append(_construct(o.cfg, opened))
        except Exception as exc:  # noqa: BLE001 - reported per run
            o.error = exc
            trainers.append(None)

    def drive(i: int, trainer: _Trainer) -> None:
        def hook(row: dict[str, Any]) -> None:
            if on_update is not None:
                on_update(i, row)
            if stop.is_set():
                raise _Interrupted

        try:
            outcomes[i].result = trainer.run(stop_after_updates, hook)
        except _Interrupted:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported per run
            outcomes[i].error = exc

    threads = [
        threading.Thread(target=drive, args=(i, t), name=f"run-{outcomes[i].cfg.seed}", daemon=True)
        for i, t in enumerate(trainers) if t is not None
    ]
    for th in threads:
        th.start()
    try:
        for th in threads:
            while th.is_alive():
                th.join(timeout=0.5)
    except KeyboardInterrupt:
        stop.set()
        for th in threads:
            th.join()
        raise
    return outcomes


def _construct(cfg: TrainConfig, opened: OpenedRun) -> _Trainer:
    with _CONSTRUCT:
        trainer = _Trainer(cfg, opened.out, opened.checkpoint)
        trainer.use_own_rng()
    return trainer


def report(outcomes: Sequence[RunOutcome], file: Any = None) -> int:
    """One line per run; returns how many failed."""
    file = file or sys.stdout
    failed = 0
    for o in outcomes:
        if o.error is not None:
            failed += 1
            print(f"{o.out}: error: {str(o.error).splitlines()[0] if str(o.error) else type(o.error).__name__}", file=file)
            continue
        r = o.result
        assert r is not None
        if r.status == "already_finished":
            print(f"{o.out}: already finished ({r.global_step} steps); nothing to do", file=file)
        else:
            print(f"{o.out}: {r.status} at {r.global_step} steps ({r.updates} updates), eprewmean {r.eprewmean:.2f} "
                  f"over {r.episodes} games, {r.sps:.0f} steps/s", file=file)
    return failed
