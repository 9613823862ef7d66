"""Per-update training logs in the conventional formats: dvclive (and optionally TensorBoard events).

``metrics.csv`` stays the run's own record; this module mirrors each of its rows into
``RUN/dvclive/`` so that ``dvc plots show/diff`` draws the curves from ``dvclive/plots/metrics/*.tsv`` and
``dvc exp show`` lists ``dvclive/metrics.json`` (latest value of every result metric) — both declared in
dvc.yaml's ``train`` stage. The x axis (dvclive ``step``) is the agent step count, so curves of runs with
different batch sizes line up.

Resume: a killed run restarts from its last checkpoint and the trainer has already cut metrics.csv back to
it; the dvclive files are then rebuilt from metrics.csv (the run's record of truth, written row by row
before any dvclive file) and appended to: no step is duplicated or lost, even if the kill hit a dvclive
write half-way.
Timing figures (``charts/SPS``, ``time/*``) are plotted but kept out of metrics.json: they change on every
run and are not results, and ``dvc metrics diff`` should only list results.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Any

from fls.stage_files import LIVE_DIR, TB_DIR
from fls.tb_events import EventWriter

# metrics.csv column -> logged name (namespaces as in CleanRL / common PPO loggers).
RENAMED = {"eprewmean": "charts/episodic_return", "episodes": "charts/episodes"}
NOT_LOGGED = ("global_step", "update")  # global_step is the step axis itself
TIMING = ("charts/SPS", "time/rollout_s", "time/update_s")  # plotted, never in metrics.json


def logged_name(column: str) -> str:
    return RENAMED.get(column, column)


class TrainingLog:
    """dvclive (+ TensorBoard) mirror of metrics.csv for one run directory."""

    def __init__(self, run_dir: Path, *, history: list[dict[str, Any]], tensorboard: bool = False) -> None:
        """``history``: the metrics.csv rows kept after the trainer's resume cut (empty for a fresh run)."""
        os.environ.setdefault("DVC_STUDIO_OFFLINE", "true")  # never post anywhere from a training run
        from dvclive import Live  # deferred: dvclive pulls in much of dvc; only a training run needs it

        live_dir = Path(run_dir) / LIVE_DIR
        shutil.rmtree(live_dir, ignore_errors=True)
        # save_dvc_exp/dvcyaml off: dvc.yaml declares these files itself (exact caching, no generated yaml).
        self.live = Live(dir=str(live_dir), resume=False, save_dvc_exp=False, dvcyaml=None, report=None)
        self.tb = None
        if tensorboard:
            self.tb = EventWriter(Path(run_dir) / TB_DIR)
        for row in history:
            self.log(row, summary=False)
        if history:
            self.live.make_summary()

    @classmethod
    def replaying(cls, run_dir: Path, metrics_csv: Path, *, tensorboard: bool = False) -> "TrainingLog":
        """A log whose files already hold every complete row of ``metrics_csv`` (the kept history)."""
        history = []
        if metrics_csv.exists():
            with metrics_csv.open(newline="") as fh:
                history = [{k: float(v) if v != "" else float("nan") for k, v in r.items()} for r in csv.DictReader(fh)]
        return cls(run_dir, history=history, tensorboard=tensorboard)

    def log(self, row: dict[str, Any], summary: bool = True) -> None:
        step = int(row["global_step"])
        self.live.step = step
        values = {logged_name(k): float(v) for k, v in row.items() if k not in NOT_LOGGED}
        for name, value in values.items():
            self.live.log_metric(name, value)
        for name in TIMING:
            self.live.summary.get(name.split("/")[0], {}).pop(name.split("/")[1], None)
        self.live.summary = {k: v for k, v in self.live.summary.items() if v != {}}
        if summary:
            self.live.make_summary()
        if self.tb is not None:
            self.tb.add_scalars(step, values)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
