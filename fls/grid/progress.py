"""Progress view, plan/summary tables and summary.json for `fls grid`.

The ETA comes from measured stage durations rather than tqdm's rate: a grid mixes hour-long training
runs with minute-long evaluations, so each remaining stage is charged the mean duration of finished
stages of its own group (``train``, ``evaluate`` ...), falling back to the mean over all groups.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from fls.atomic import atomic_write_json
from fls.grid.executor import (
    BLOCKED,
    CANCELLED,
    DONE,
    FAILED,
    GRID_DIR,
    PENDING,
    RUNNING,
    TERMINAL,
    UP_TO_DATE,
    GridResult,
    StageRecord,
)
from fls.grid.plan import Plan


def estimate_eta(
    remaining: Sequence[tuple[str, float | None]],
    durations: Mapping[str, Sequence[float]],
    slots: int,
) -> float | None:
    """Seconds until the remaining stages finish, or None before any stage has a measured duration.

    ``remaining`` holds (group, seconds already running or None if not started) per unfinished stage;
    ``durations`` the measured durations of finished stages by group; ``slots`` how many run at once.
    A running stage is charged what its group's mean has left (never below zero).
    """
    measured = [d for group in durations.values() for d in group]
    if not remaining:
        return 0.0
    if not measured:
        return None
    overall = sum(measured) / len(measured)
    work = 0.0
    for group, elapsed in remaining:
        values = durations.get(group) or ()
        mean = sum(values) / len(values) if values else overall
        work += max(0.0, mean - (elapsed or 0.0))
    return work / max(1, slots)


def format_seconds(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def count_states(records: Iterable[StageRecord]) -> dict[str, int]:
    out = {DONE: 0, UP_TO_DATE: 0, RUNNING: 0, PENDING: 0, FAILED: 0, BLOCKED: 0, CANCELLED: 0}
    for rec in records:
        out[rec.state] = out.get(rec.state, 0) + 1
    return out


class GridProgress:
    """tqdm bar over the planned stages with done/running/failed/blocked counts and a duration-based ETA."""

    def __init__(self, total: int, slots: int, *, file: TextIO | None = None, disable: bool | None = None) -> None:
        self.slots = slots
        self.bar = tqdm(
            total=total,
            unit="stage",
            desc="grid",
            file=file or sys.stderr,
            disable=disable,
            dynamic_ncols=True,
            bar_format="{desc} {n_fmt}/{total_fmt} |{bar}| {elapsed} {postfix}",
        )
        self.last_line = ""
        self.finished = 0  # stages in a terminal state (tracked here too: a disabled tqdm counts nothing)

    def status_line(self, records: Mapping[str, StageRecord], now: float) -> str:
        counts = count_states(records.values())
        durations: dict[str, list[float]] = {}
        remaining: list[tuple[str, float | None]] = []
        for rec in records.values():
            if rec.state == DONE and rec.duration_s is not None:
                durations.setdefault(rec.group, []).append(rec.duration_s)
            elif rec.state == RUNNING:
                remaining.append((rec.group, now - rec.start if rec.start else None))
            elif rec.state == PENDING:
                remaining.append((rec.group, None))
        eta = estimate_eta(remaining, durations, self.slots)
        return (
            f"done={counts[DONE]} up-to-date={counts[UP_TO_DATE]} running={counts[RUNNING]} "
            f"pending={counts[PENDING]} failed={counts[FAILED]} blocked={counts[BLOCKED]} eta={format_seconds(eta)}"
        )

    def update(self, records: Mapping[str, StageRecord], now: float) -> None:
        finished = sum(1 for r in records.values() if r.state in TERMINAL)
        self.last_line = self.status_line(records, now)
        self.bar.set_postfix_str(self.last_line, refresh=False)
        self.bar.update(finished - self.finished)
        self.finished = finished

    def close(self) -> None:
        self.bar.close()


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
    return "\n".join(lines)


def plan_table(plan: Plan) -> str:
    """Human-readable `fls grid status`: one line per stage in run order, then totals."""
    if not plan.stages:
        text = "Nothing to run: DVC reports every selected stage up to date."
    else:
        rows = []
        for i, s in enumerate(plan.stages, 1):
            kind = s.kind + (" (pulled in)" if s.pulled_in else "")
            why = "; ".join(s.reasons) if s.reasons else "runs if its upstream outputs change"
            rows.append([str(i), s.name, kind, str(len(s.upstream)), why[:90]])
        stale = sum(1 for s in plan.stages if s.kind == "stale")
        text = _table(["#", "stage", "state", "waits for", "why"], rows)
        text += (
            f"\n\n{len(plan.stages)} stage(s) planned: {stale} stale now, {len(plan.stages) - stale} downstream "
            f"(run if still stale once their upstream stages are committed), "
            f"{sum(1 for s in plan.stages if s.pulled_in)} pulled in as upstream of --stages."
        )
    if plan.frozen_stale:
        text += f"\nFrozen and stale (never run by DVC or the grid): {', '.join(plan.frozen_stale)}"
    return text


def summary_table(result: GridResult) -> str:
    """End-of-run table: every stage's state, attempts, duration and node, then failures with log tails."""
    rows = []
    for rec in result.records:
        rows.append(
            [
                rec.name,
                rec.state,
                str(rec.executions),
                format_seconds(rec.duration_s) if rec.duration_s is not None else "-",
                rec.host or "-",
                rec.error or (f"blocked by {rec.blocked_by}" if rec.blocked_by else "")
                or (f"in {rec.task}" if rec.task else ""),
            ]
        )
    parts = [_table(["stage", "state", "runs", "time", "node", "note"], rows)]
    counts = result.counts()
    parts.append(
        "\n"
        + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        + f" in {format_seconds(result.finished - result.started)}."
    )
    for rec in result.records:
        if rec.state == FAILED:
            parts.append(f"\n--- {rec.name} failed: {rec.error}\n    log: {rec.log}")
            if rec.log_tail:
                parts.append("\n".join("    | " + line for line in rec.log_tail.splitlines()))
    if not result.ok:
        parts.append("\nRerun `fls grid run` to retry what is still stale; finished stages are already committed.")
    return "\n".join(parts)


def write_summary(root: str | os.PathLike[str], result: GridResult, plan: Plan) -> Path:
    """``.fls_grid/summary.json`` (schema ``fls.grid.summary/1``, see docs/scale_out.md)."""
    data: dict[str, Any] = result.to_json()
    data["repo"] = os.fspath(root)
    data["selectors"] = list(plan.selectors)
    return atomic_write_json(Path(root) / GRID_DIR / "summary.json", data)
