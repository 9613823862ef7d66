"""Scale-out: run the stale DVC stages in parallel on a Ray cluster while DVC stays the source of truth.

``dvc repro`` runs one stage at a time and two ``dvc repro`` in one workspace collide on DVC's lock, so
the 450-run paper grid would take months on one GPU. Here DVC still decides *what* is stale and in
which order (:mod:`fls.grid.plan`), Ray decides *where* each stage's command runs
(:mod:`fls.grid.executor`), and the driver records every finished stage with DVC so ``dvc status`` and
``dvc repro`` see the work as done. See docs/scale_out.md.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from fls.grid.executor import (
    DvcRecorder,
    GridError,
    GridResult,
    RunOptions,
    cluster_slots,
    connect_ray,
    run_plan,
)
from fls.grid.plan import Plan, PlanError, build_plan, parse_selectors
from fls.grid.progress import GridProgress, write_summary
from fls.runinfo import write_run_info
from fls.stage_files import RUN_INFO

__all__ = [
    "GridError",
    "GridOutcome",
    "GridResult",
    "Plan",
    "PlanError",
    "RunOptions",
    "build_plan",
    "parse_selectors",
    "run_grid",
]


@dataclass
class GridOutcome:
    plan: Plan
    result: GridResult | None  # None for a dry run or an empty plan
    summary_path: Path | None


def run_grid(
    root: str | os.PathLike[str],
    selectors: Sequence[str] = (),
    *,
    address: str | None = None,
    gpus_per_run: float | None = None,
    cpus_per_run: float | None = None,
    max_retries: int | None = None,
    group: Sequence[str] = (),
    group_size: int | None = None,
    with_upstream: bool = True,
    dry_run: bool = False,
    show_progress: bool | None = None,
) -> GridOutcome:
    """Plan from DVC, run on Ray (local unless ``address``), commit each success, write summary.json.

    ``gpus_per_run=None`` asks for 0.25 GPU per stage when the cluster has GPUs and none otherwise.
    ``group`` (e.g. ``("train", "evaluate")``) batches ready stages of those groups, at most ``group_size``
    per Ray task, into one multi-run command (fls.grid.group); each member is still committed on its own.
    """
    given = {"cpus_per_run": cpus_per_run, "max_retries": max_retries, "group_size": group_size}  # None: RunOptions' default
    early = RunOptions(group=tuple(group), **{k: v for k, v in given.items() if v is not None})
    early.validate()  # bad --group values fail before DVC or Ray start
    recorder = DvcRecorder(root)
    try:
        plan = build_plan(recorder.root, selectors, with_upstream=with_upstream, repo=recorder.repo)
        if dry_run or not plan.stages:
            return GridOutcome(plan, None, None)
        started_ray = connect_ray(address)
        import ray  # deferred: Ray takes seconds to import and only a running grid needs it

        try:
            resources = ray.cluster_resources()
            if gpus_per_run is None:
                gpus_per_run = 0.25 if resources.get("GPU", 0.0) > 0 else 0.0
            options = replace(early, gpus_per_run=gpus_per_run)  # run_plan validates it
            disable = None if show_progress is None else not show_progress  # None: tqdm shows it on a terminal
            progress = GridProgress(len(plan), cluster_slots(resources, options), disable=disable)
            result = run_plan(plan, options, recorder, progress)
        finally:
            if started_ray:
                ray.shutdown()
        path = write_summary(recorder.root, result, plan)
        config = {"repo": recorder.root, "selectors": list(plan.selectors), "address": address, **result.options}
        extra = {"ray": ray.__version__, "cluster_resources": resources}
        write_run_info(path.parent / RUN_INFO, config, stage="grid", extra=extra)
        return GridOutcome(plan, result, path)
    finally:
        recorder.close()
