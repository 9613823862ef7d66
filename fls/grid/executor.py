"""Run a grid plan as Ray tasks and record every finished stage with DVC.

Division of labour, chosen so that parallel runs never fight over DVC's repository lock:

* workers (Ray tasks, on any node) only run a stage's shell commands in its ``wdir`` and append to
  ``.fls_grid/logs/<stage>.log``; they never import or call DVC;
* the driver (this process) alone talks to DVC: it clears a stage's non-persistent outputs before the
  first launch (as ``dvc repro`` does), re-asks DVC whether a downstream stage is still stale once its
  upstream stages are committed, and after each success runs the equivalent of
  ``dvc commit <stage> --force`` -- one at a time, so ``dvc.lock`` is written by one process only.

Every success is committed at once, so an interrupted grid loses no finished stage and the next
``fls grid run`` (or ``dvc repro``) sees exactly what is still stale.

Failures: a worker lost or killed by the system (OOM killer on the worker, node death) is resubmitted
by Ray itself (``max_retries``); a command that exits non-zero (including one killed by a signal) is
resubmitted by the driver, up to ``max_retries`` times too. A retry does not clear outputs, so
``fls train`` resumes from its checkpoint. A stage that still fails is reported with the tail of its
log, its dependants are marked blocked, and all other stages carry on.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fls.grid.group import Group, form_groups
from fls.grid.plan import DOWNSTREAM, Plan, PlannedStage, at_root, canonical_name, dvc_target, open_repo
from fls.settings import check_fields, setting

GRID_DIR = ".fls_grid"
LOG_HEADER = "### fls-grid: start"

# Terminal and transient stage states, as they appear in the progress view and summary.json.
PENDING, RUNNING, DONE, UP_TO_DATE, FAILED, BLOCKED, CANCELLED = (
    "pending",
    "running",
    "done",
    "up-to-date",
    "failed",
    "blocked",
    "cancelled",
)
TERMINAL = (DONE, UP_TO_DATE, FAILED, BLOCKED, CANCELLED)


class GridError(ValueError):
    """Bad grid options or a Ray cluster that cannot satisfy them."""


# ---------------------------------------------------------------------------------------------------
# Worker side: plain Python, no DVC.


def _die_with_parent() -> None:
    # If the Ray worker running this stage is killed, its command must die too: otherwise the retry
    # would train a second copy of the same run into the same directory.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _shell_argv(shell: str, command: str) -> list[str]:
    # As `dvc repro`: the user's shell, without rc files that could change the environment.
    name = os.path.basename(shell).lower()
    opts = {"bash": ["--noprofile", "--norc"], "zsh": ["--no-rcs"]}.get(name, [])
    return [shell, *opts, "-c", command]


def execute_stage(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one stage's commands in its wdir (inside a Ray task); never raises for a failing command.

    ``spec`` keys: name, commands, wdir, log, shell, env (extra variables), submission.
    Returns returncode (0, the first non-zero exit, or -signal), start/end (epoch s), host, pid.
    """
    shell = spec.get("shell") or "/bin/sh"
    if not os.path.exists(shell):
        shell = "/bin/sh"
    env = dict(os.environ)
    env.update(spec.get("env", {}))
    log_path = Path(spec["log"])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    host = socket.gethostname()
    returncode = 0
    with open(log_path, "ab", buffering=0) as log:
        log.write(
            f"{LOG_HEADER} {spec['name']} submission={spec.get('submission', 1)} host={host} pid={os.getpid()} "
            f"at={datetime.now(timezone.utc).isoformat(timespec='seconds')}\n".encode()
        )
        for command in spec["commands"]:
            log.write(f"$ {command}\n".encode())
            try:
                proc = subprocess.Popen(
                    _shell_argv(shell, command),
                    cwd=spec["wdir"],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    close_fds=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:  # typically a wdir missing on this node: no shared storage at the same path
                log.write(
                    f"error: cannot start the command in {spec['wdir']} on {host}: {exc} "
                    "(is the repository at the same path on every node?)\n".encode()
                )
                returncode = 127
                break
            returncode = proc.wait()
            if returncode != 0:
                break
        end = time.time()
        log.write(f"### fls-grid: end rc={returncode} after {end - start:.1f}s\n".encode())
    return {"returncode": returncode, "start": start, "end": end, "host": host, "pid": os.getpid()}


# ---------------------------------------------------------------------------------------------------
# Driver side: DVC access, serialised in this process.


class DvcRecorder:
    """The driver's only door to DVC: staleness checks, output clearing and commits, one at a time.

    DVC rebuilds its whole index (about a second per 1000 stages) every time its repository lock is
    taken, so the scheduler groups the operations of one scheduling step in :meth:`session`.
    """

    def __init__(self, root: str | os.PathLike[str], lock_wait_s: float = 120.0) -> None:
        self.repo = open_repo(root)
        # One "Updating lock file" line per commit would drown the progress view.
        logging.getLogger("dvc").setLevel(max(logging.getLogger("dvc").getEffectiveLevel(), logging.WARNING))
        self.root = self.repo.root_dir
        self.lock_wait_s = lock_wait_s
        self._names: tuple[Any, dict[str, Any]] | None = None

    def close(self) -> None:
        self.repo.close()

    @contextlib.contextmanager
    def session(self) -> Iterator[DvcRecorder]:
        """Hold DVC's repository lock (from the repo root) for a batch of operations; re-entrant.

        Someone may run `dvc status` beside the grid: a busy lock is retried for ``lock_wait_s``.
        """
        # deferred: DVC takes seconds to import and only a running grid needs it (so does fls.grid.plan)
        from dvc.lock import LockError
        from dvc.repo import lock_repo

        deadline = time.monotonic() + self.lock_wait_s
        with contextlib.ExitStack() as stack:
            stack.enter_context(at_root(self.root))
            while True:
                try:
                    stack.enter_context(lock_repo(self.repo))
                    break
                except LockError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1.0)
            yield self

    def _stage(self, name: str) -> Any:
        index = self.repo.index
        if self._names is None or self._names[0] is not index:
            self._names = (index, {canonical_name(s, self.root): s for s in index.stages})
        try:
            return self._names[1][name]
        except KeyError:
            raise KeyError(f"stage {name} is no longer in the DVC pipeline") from None

    def is_stale(self, name: str) -> bool:
        with self.session():
            return bool(self.repo.status(targets=[dvc_target(self._stage(name))]))

    def clear_outputs(self, name: str) -> None:
        """Remove the stage's non-persistent outputs before its first launch, exactly as `dvc repro` does."""
        with self.session():
            self._stage(name).remove_outs(ignore_remove=False, force=False)

    def outputs_complete(self, name: str) -> bool:
        """True if every output is non-persistent and present.

        Non-persistent outputs were removed before the stage's first launch, so their presence proves a
        command of this grid run wrote them; the multi-run commands write a member's files only once that
        member has succeeded (its last file last), so a failed group's member with complete outputs is done.
        """
        with self.session():
            outs = list(self._stage(name).outs)
            return bool(outs) and all(not out.persist and out.exists for out in outs)

    def commit(self, name: str) -> None:
        """``dvc commit <name> --force``: store outputs in the cache and write deps/outs hashes to dvc.lock."""
        with self.session():
            self.repo.commit(dvc_target(self._stage(name)), force=True)


# ---------------------------------------------------------------------------------------------------
# Ray connection.


def connect_ray(address: str | None, *, num_cpus: int | None = None, num_gpus: int | None = None) -> bool:
    """Connect to ``address`` or start a local Ray; returns True if this call started/connected Ray.

    An already initialised Ray (a test, a notebook) is reused as is.
    """
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    import ray  # deferred: Ray takes seconds to import and only a running grid needs it

    if ray.is_initialized():
        return False
    common = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
    if address:
        try:
            ray.init(address=address, **common)
        except (ConnectionError, RuntimeError) as exc:
            hint = ""
            if "auth" in f"{exc} {exc.__cause__}".lower():
                hint = (
                    "; the cluster uses token authentication: set RAY_AUTH_MODE=token and give this machine "
                    "the cluster's token (~/.ray/auth_token or RAY_AUTH_TOKEN)"
                )
            message = f"address {address}: cannot connect to the Ray cluster ({_describe(exc)}){hint}"
            raise GridError(message) from None
    else:
        # address="local": always a private instance, even if `ray start` left a cluster on this machine
        ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, **common)
    return True


def _default_shell() -> str:
    return os.environ.get("SHELL") or "/bin/sh"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def log_path_for(root: str | os.PathLike[str], name: str) -> Path:
    safe = name.replace(os.sep, "__").replace(":", "_")
    return Path(root) / GRID_DIR / "logs" / f"{safe}.log"


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            text = fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def count_executions(path: Path) -> int:
    """How many times a stage's command was started in this grid run (Ray's own retries included)."""
    try:
        with open(path, "rb") as fh:
            return sum(1 for line in fh if line.startswith(LOG_HEADER.encode()))
    except FileNotFoundError:
        return 0


# ---------------------------------------------------------------------------------------------------
# Scheduling.


@dataclass
class RunOptions:
    """How ``fls grid run`` schedules stages; the CLI's --cpus-per-run, --max-retries and --group-size come
    from these declarations (``pipeline.config_flags``)."""

    gpus_per_run: float = 0.0  # resolved by run_grid: the CLI's "auto" is 0.25 with GPUs, else 0
    cpus_per_run: float = setting(1.0, gt=0, help="CPU cores reserved per stage.")
    max_retries: int = setting(2, ge=0, help="Retries per stage after a lost worker or non-zero exit.")
    group: tuple[str, ...] = ()  # stage groups whose ready stages run batched (fls.grid.group)
    group_size: int = setting(5, ge=1, help="Most stages in one batched task.")

    def validate(self) -> None:
        check_fields(self, "grid run", GridError)
        bad = [g for g in self.group if not g or any(ch in g for ch in "@:*?[")]
        if bad:
            raise GridError(f"group {','.join(self.group)}: expected stage group names such as train,evaluate")
        if self.gpus_per_run < 0 or self.gpus_per_run > 1 and self.gpus_per_run != int(self.gpus_per_run):
            raise GridError(f"gpus_per_run {self.gpus_per_run}: expected a fraction in [0, 1] or a whole number")


@dataclass
class StageRecord:
    name: str
    group: str
    state: str = PENDING
    submissions: int = 0  # launches by the driver (1 + retries after non-zero exits / lost tasks)
    executions: int = 0  # command starts, Ray's own retries of lost workers included
    returncode: int | None = None
    start: float | None = None
    end: float | None = None
    host: str | None = None
    log: str = ""
    error: str | None = None
    log_tail: str | None = None
    blocked_by: str | None = None
    task: str | None = None  # the batched task (--group) it last ran in; None when it ran as its own task
    grouped: bool = False  # its first launch was in a batch: the split rerun after a failed batch is free

    @property
    def duration_s(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return self.end - self.start

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["duration_s"] = self.duration_s
        return data


@dataclass
class GridResult:
    records: list[StageRecord]
    started: float
    finished: float
    options: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False

    def counts(self) -> dict[str, int]:
        out = {state: 0 for state in (DONE, UP_TO_DATE, FAILED, BLOCKED, CANCELLED, PENDING)}
        for rec in self.records:
            out[rec.state] = out.get(rec.state, 0) + 1
        return out

    @property
    def ok(self) -> bool:
        return all(r.state in (DONE, UP_TO_DATE) for r in self.records)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "fls.grid.summary/1",
            "started": datetime.fromtimestamp(self.started, timezone.utc).isoformat(timespec="seconds"),
            "finished": datetime.fromtimestamp(self.finished, timezone.utc).isoformat(timespec="seconds"),
            "wall_s": round(self.finished - self.started, 3),
            "interrupted": self.interrupted,
            "options": self.options,
            "counts": self.counts(),
            "stages": [r.to_json() for r in self.records],
        }


class _Observer:
    """Receives state changes (the progress view implements this)."""

    def update(self, records: dict[str, StageRecord], now: float) -> None:  # pragma: no cover - interface
        pass

    def close(self) -> None:  # pragma: no cover - interface
        pass


def cluster_slots(resources: dict[str, float], options: RunOptions) -> int:
    """How many stages the cluster can run at once with the requested shares (at least 1)."""
    slots = resources.get("CPU", 0.0) / options.cpus_per_run
    if options.gpus_per_run > 0:
        slots = min(slots, resources.get("GPU", 0.0) / options.gpus_per_run)
    return max(1, int(slots + 1e-9))


def run_plan(
    plan: Plan,
    options: RunOptions,
    recorder: DvcRecorder,
    observer: _Observer | None = None,
    *,
    poll_s: float = 1.0,
) -> GridResult:
    """Run every planned stage on the connected Ray cluster; returns when all are terminal."""
    import ray  # deferred, as in connect_ray

    options.validate()
    resources = ray.cluster_resources()
    if options.gpus_per_run > 0 and resources.get("GPU", 0.0) < options.gpus_per_run:
        raise GridError(
            f"gpus_per_run {options.gpus_per_run}: the Ray cluster has {resources.get('GPU', 0.0):g} GPU(s); "
            "use gpus_per_run 0 for CPU-only runs"
        )
    if resources.get("CPU", 0.0) < options.cpus_per_run:
        cpus = resources.get("CPU", 0.0)
        raise GridError(f"cpus_per_run {options.cpus_per_run}: the Ray cluster has {cpus:g} CPU(s)")

    remote = ray.remote(execute_stage)
    node_cpus = max([n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")] or [resources.get("CPU", 0.0)])
    task_options = {
        "num_cpus": options.cpus_per_run,
        "num_gpus": options.gpus_per_run,
        "max_retries": options.max_retries,  # Ray resubmits tasks whose worker or node died
        "retry_exceptions": False,
    }
    root = recorder.root
    shell = _default_shell()
    stages = plan.by_name()
    records = {s.name: StageRecord(s.name, s.group, log=str(log_path_for(root, s.name))) for s in plan.stages}
    running: dict[Any, str | Group] = {}
    earlier_executions: dict[str, int] = {}  # executions in a batch, before a member ran on its own
    started = time.time()
    interrupted = False
    grid_dir = Path(root) / GRID_DIR
    grid_dir.mkdir(exist_ok=True)
    (grid_dir / ".gitignore").write_text("# logs and summaries of `fls grid run`\n*\n")

    def notify() -> None:
        if observer is not None:
            observer.update(records, time.time())

    def block_dependants(name: str) -> None:
        for dep in plan.downstream_of(name):
            rec = records[dep]
            if rec.state == PENDING:
                rec.state, rec.blocked_by = BLOCKED, name

    def fail(name: str, error: str) -> None:
        rec = records[name]
        rec.state, rec.error = FAILED, error
        rec.log_tail = log_tail(Path(rec.log))
        block_dependants(name)

    def submit(stage: PlannedStage) -> None:
        rec = records[stage.name]
        rec.submissions += 1
        spec = {
            "name": stage.name,
            "commands": list(stage.commands),
            "wdir": stage.wdir,
            "log": rec.log,
            "shell": shell,
            "submission": rec.submissions,
            "env": {"DVC_ROOT": root, "DVC_STAGE": stage.name, "FLS_GRID_SUBMISSION": str(rec.submissions)},
        }
        ref = remote.options(name=f"fls-grid:{stage.name}", **task_options).remote(spec)
        running[ref] = stage.name
        rec.state = RUNNING
        if rec.start is None:
            rec.start = time.time()  # first submission; replaced by the task's own start when it reports

    def submit_group(group: Group) -> None:
        n = len(group.members)
        log = log_path_for(root, group.name)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_bytes(b"")
        names = [m.name for m in group.members]
        spec = {
            "name": group.name,
            "commands": [group.command],
            "wdir": group.members[0].wdir,
            "log": str(log),
            "shell": shell,
            "submission": 1,
            "env": {"DVC_ROOT": root, "DVC_STAGE": group.name, "FLS_GRID_STAGES": ",".join(names),
                    "FLS_GRID_SUBMISSION": "1"},
        }
        # one process for n runs: n shares of CPU (at most one node's), n GPU shares (at most one GPU)
        shares = dict(task_options, num_cpus=min(n * options.cpus_per_run, node_cpus))
        g = options.gpus_per_run
        shares["num_gpus"] = min(1.0, n * g) if 0 < g <= 1 else g
        ref = remote.options(name=f"fls-grid:{group.name}", **shares).remote(spec)
        running[ref] = group
        now = time.time()
        for name in names:
            rec = records[name]
            rec.submissions += 1
            rec.state, rec.task, rec.log, rec.grouped = RUNNING, group.name, str(log), True
            if rec.start is None:
                rec.start = now

    def launch_ready() -> None:
        ready: list[PlannedStage] = []
        progressed = True
        while progressed:  # an up-to-date stage can make its dependants ready at once
            progressed = False
            for stage in plan.stages:
                rec = records[stage.name]
                if rec.state != PENDING or any(records[u].state not in (DONE, UP_TO_DATE) for u in stage.upstream):
                    continue
                if stage.kind == DOWNSTREAM and not recorder.is_stale(stage.name):
                    rec.state = UP_TO_DATE  # its upstream reran with identical outputs, as `dvc repro` would skip it
                    progressed = True
                    continue
                log = Path(rec.log)
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_bytes(b"")  # one log per grid run; retries append to it
                try:
                    recorder.clear_outputs(stage.name)
                except Exception as exc:  # noqa: BLE001 - any DVC/filesystem problem fails this stage only
                    fail(stage.name, f"could not clear outputs before running: {_describe(exc)}")
                    progressed = True
                    continue
                rec.state = RUNNING  # claimed; submitted below, alone or in a batch
                ready.append(stage)
        for item in form_groups(ready, options.group, options.group_size) if options.group else ready:
            if isinstance(item, Group):
                submit_group(item)
            else:
                records[item.name].state = PENDING
                submit(item)

    def finish_group(group: Group, ref: Any) -> None:
        try:
            result: dict[str, Any] | None = ray.get(ref)
        except ray.exceptions.RayError:  # worker/node lost beyond Ray's own retries: every member reruns alone
            result = None
        executions = count_executions(log_path_for(root, group.name))
        for stage in group.members:
            rec = records[stage.name]
            rec.executions = earlier_executions[stage.name] = executions
            if result is not None:
                rec.returncode, rec.host, rec.start, rec.end = (
                    result["returncode"], result["host"], result["start"], result["end"])
            else:
                rec.end = time.time()
            ok = result is not None and result["returncode"] == 0
            if not ok:
                try:
                    ok = recorder.outputs_complete(stage.name)
                except Exception:  # noqa: BLE001 - then it simply reruns on its own
                    ok = False
            if ok:
                try:
                    recorder.commit(stage.name)
                except Exception as exc:  # noqa: BLE001 - e.g. a declared output was not produced
                    fail(stage.name, f"command succeeded but `dvc commit` failed: {_describe(exc)}")
                    continue
                rec.state = DONE
                continue
            # Which member failed is not known from one exit status: each unfinished member reruns on its
            # own (resuming from what the batch left), and fails, if it does, as its own stage.
            rec.log = str(log_path_for(root, stage.name))
            submit(stage)

    def finish(ref: Any) -> None:
        item = running.pop(ref)
        if isinstance(item, Group):
            finish_group(item, ref)
            return
        name = item
        rec = records[name]
        stage = stages[name]
        try:
            result = ray.get(ref)
        except ray.exceptions.RayError as exc:  # worker/node lost beyond Ray's own retries, or cancelled
            result = None
            error = _describe(exc)
        rec.executions = earlier_executions.get(name, 0) + count_executions(Path(rec.log))
        if result is not None:
            rec.returncode, rec.host = result["returncode"], result["host"]
            rec.end = result["end"]
            if rec.submissions == 1:
                rec.start = result["start"]
            if result["returncode"] == 0:
                try:
                    recorder.commit(name)
                except Exception as exc:  # noqa: BLE001 - e.g. a declared output was not produced
                    fail(name, f"command succeeded but `dvc commit` failed: {_describe(exc)}")
                    return
                rec.state = DONE
                return
            error = f"exit code {result['returncode']}"
            if result["returncode"] < 0:
                error = f"killed by signal {-result['returncode']} ({signal.Signals(-result['returncode']).name})"
        else:
            rec.end = time.time()
        if rec.submissions - (1 if rec.grouped else 0) <= options.max_retries:
            submit(stage)  # outputs are kept: a resumable command continues where it stopped
        else:
            fail(name, f"{error} (after {rec.submissions} submission(s), {rec.executions} execution(s))")

    try:
        with recorder.session():
            launch_ready()
        notify()
        while running:
            ready, _ = ray.wait(list(running), num_returns=1, timeout=poll_s)
            if ready:
                # Take every task that has finished by now, so one DVC lock (one index build) covers them all.
                ready, _ = ray.wait(list(running), num_returns=len(running), timeout=0)
                with recorder.session():
                    for ref in ready:
                        finish(ref)
                    launch_ready()
            notify()
    except KeyboardInterrupt:
        interrupted = True
        for ref, item in list(running.items()):
            ray.cancel(ref, force=True)
            for name in [m.name for m in item.members] if isinstance(item, Group) else [item]:
                records[name].state = CANCELLED
                records[name].end = time.time()
                records[name].executions = earlier_executions.get(name, 0) + count_executions(Path(records[name].log))
        running.clear()
    finally:
        if observer is not None:
            observer.close()
    return GridResult(
        records=[records[s.name] for s in plan.stages],
        started=started,
        finished=time.time(),
        options=asdict(options),
        interrupted=interrupted,
    )
