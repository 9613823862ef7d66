"""What `fls grid run` has to run, asked of DVC itself.

DVC stays the single source of truth: stage commands, working directories, the dependency graph and
staleness all come from ``dvc.repo.Repo`` (its index, ``repo.index.graph`` and ``repo.status()``), so the
grid never carries a second copy of the DAG that could drift from ``dvc.yaml``.

Staleness follows ``dvc repro``: a stage runs if DVC reports it changed now, or -- for a stage downstream
of one that will run -- if it is still changed once its upstream stages have run and been committed
(the executor re-asks DVC at that moment). The plan therefore holds both kinds, tagged ``stale`` and
``downstream``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STALE = "stale"
DOWNSTREAM = "downstream"


class PlanError(ValueError):
    """The repository or the stage selection cannot be turned into a grid plan."""


@dataclass(frozen=True)
class PlannedStage:
    """One DVC stage the grid will run (or re-check), with what it waits for."""

    name: str  # as `dvc` names it from the repo root: "train@nature_cnn-Breakout-1", "sub/dvc.yaml:stage"
    group: str  # stage name without the matrix/foreach key: "train"
    commands: tuple[str, ...]
    wdir: str  # absolute working directory the commands run in
    upstream: tuple[str, ...]  # planned stages (transitively) upstream of this one; all must succeed first
    kind: str  # STALE (DVC reports it changed now) or DOWNSTREAM (runs only if still changed later)
    reasons: tuple[str, ...] = ()  # DVC's status entries, e.g. "changed deps: prep.txt (deleted)"
    pulled_in: bool = False  # not selected by --stages, but a stale upstream of a selected stage


@dataclass
class Plan:
    root: str
    stages: list[PlannedStage]  # in dependency order: every stage after all its upstream stages
    selectors: tuple[str, ...] = ()
    frozen_stale: list[str] = field(default_factory=list)  # stale but frozen: DVC never reruns them

    def __len__(self) -> int:
        return len(self.stages)

    def by_name(self) -> dict[str, PlannedStage]:
        return {s.name: s for s in self.stages}

    def downstream_of(self, name: str) -> list[str]:
        """Planned stages that wait for ``name`` (directly or not), in plan order."""
        return [s.name for s in self.stages if name in s.upstream]

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "selectors": list(self.selectors),
            "frozen_stale": list(self.frozen_stale),
            "stages": [
                {
                    "name": s.name,
                    "group": s.group,
                    "kind": s.kind,
                    "pulled_in": s.pulled_in,
                    "upstream": list(s.upstream),
                    "commands": list(s.commands),
                    "wdir": s.wdir,
                    "reasons": list(s.reasons),
                }
                for s in self.stages
            ],
        }


def parse_selectors(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"train,evaluate"`` -> ``("train", "evaluate")``; empty or None selects every stage."""
    if text is None:
        return ()
    parts = text.split(",") if isinstance(text, str) else [p for t in text for p in t.split(",")]
    return tuple(p.strip() for p in parts if p.strip())


def stage_group(addressing: str) -> str:
    """``"sub/dvc.yaml:train@a-1"`` -> ``"train"``."""
    return addressing.rsplit(":", 1)[-1].split("@", 1)[0]


def matches(addressing: str, selector: str) -> bool:
    """Does ``--stages`` entry ``selector`` pick this stage?

    A selector names a stage group (``train`` picks every ``train@...`` cell and a plain ``train`` stage,
    but not ``train_summary``), a full stage name, a prefix of a matrix cell containing ``@``
    (``train@nature_cnn`` picks all nature_cnn cells), or a shell glob (``train@*-Breakout-*``).
    """
    name = addressing.rsplit(":", 1)[-1]
    if selector in (addressing, name, stage_group(addressing)):
        return True
    if "@" in selector and name.startswith(selector):
        return True
    if any(ch in selector for ch in "*?["):
        return fnmatch.fnmatchcase(name, selector) or fnmatch.fnmatchcase(addressing, selector)
    return False


def _format_reasons(entries: Iterable[Any]) -> tuple[str, ...]:
    out: list[str] = []
    for entry in entries:
        if isinstance(entry, dict):
            for key, val in entry.items():
                if isinstance(val, dict):
                    detail = ", ".join(f"{p} ({s})" for p, s in val.items())
                    out.append(f"{key}: {detail}")
                else:
                    out.append(f"{key}: {val}")
        else:
            out.append(str(entry))
    return tuple(out)


def canonical_name(stage: Any, root: str) -> str:
    """The stage's name as `dvc` shows it when run at the repository root, whatever our cwd is.

    DVC's own ``stage.addressing`` is relative to the current directory, so it would change with it.
    """
    rel = os.path.relpath(stage.dvcfile.path, root)
    if not getattr(stage, "name", None) or rel.endswith(".dvc"):  # a .dvc file (data source, import)
        return rel
    return stage.name if rel == "dvc.yaml" else f"{rel}:{stage.name}"


def dvc_target(stage: Any) -> str:
    """A target string DVC resolves to exactly this stage from any cwd."""
    if not getattr(stage, "name", None) or stage.dvcfile.path.endswith(".dvc"):
        return stage.dvcfile.path
    return f"{stage.dvcfile.path}:{stage.name}"


@contextlib.contextmanager
def at_root(root: str) -> Iterator[None]:
    """Run DVC calls from the repository root: parts of DVC (the run cache) resolve paths from the cwd."""
    before = os.getcwd()
    os.chdir(root)
    try:
        yield
    finally:
        os.chdir(before)


def open_repo(root: str | os.PathLike[str]) -> Any:
    """``dvc.repo.Repo`` at ``root``, with DVC's errors turned into one-line PlanErrors."""
    # deferred here and below: DVC takes seconds to import and only grid planning needs it
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    path = Path(root)
    if not path.is_dir():
        raise PlanError(f"repo {root}: no such directory")
    try:
        repo = Repo(os.fspath(path))
    except NotDvcRepoError:
        raise PlanError(f"repo {root}: not a DVC repository (no .dvc folder); run `dvc init` there") from None
    return repo


def build_plan(
    root: str | os.PathLike[str],
    selectors: Sequence[str] = (),
    *,
    with_upstream: bool = True,
    repo: Any = None,
) -> Plan:
    """The stages ``fls grid run`` would run, in an order that respects DVC's stage graph.

    ``selectors`` restrict the plan to matching stages (see :func:`matches`); stale stages upstream of a
    selected one must run first and are pulled in, or, with ``with_upstream=False``, refused with an
    error naming them.
    """
    from dvc.exceptions import DvcException  # deferred, as in open_repo

    own = repo is None
    if own:
        repo = open_repo(root)
    try:
        with at_root(repo.root_dir):  # DVC's addressing and status keys are relative to the cwd
            try:
                graph = repo.index.graph  # networkx DiGraph, edge (a, b): stage a depends on stage b
                status = repo.status()  # {addressing: [changes]} for every changed stage or .dvc file
            except DvcException as exc:
                raise PlanError(f"DVC cannot read the pipeline in {repo.root_dir}: {exc}") from None
            return _plan_from_graph(repo.root_dir, graph, status, tuple(selectors), with_upstream)
    finally:
        if own:
            repo.close()


def _plan_from_graph(
    root: str, graph: Any, status: dict[str, Any], selectors: tuple[str, ...], with_upstream: bool
) -> Plan:
    import networkx as nx  # deferred: DVC's graph library, loaded with DVC (see open_repo)

    stages = {canonical_name(s, root): s for s in graph.nodes}
    names = {s: n for n, s in stages.items()}
    status = {canonical_name(s, root): status[s.addressing] for s in graph.nodes if s.addressing in status}
    if selectors:
        for sel in selectors:
            if not any(matches(name, sel) for name in stages):
                groups = sorted({stage_group(n) for n in stages})
                raise PlanError(f"stages: no stage matches '{sel}' (stage groups: {', '.join(groups) or 'none'})")

    stale = {name for name in status if name in stages}
    frozen_stale = sorted(n for n in stale if stages[n].frozen)
    stale -= set(frozen_stale)

    # Stages downstream of a stale one may become stale once it reruns; a frozen stage is never rerun,
    # so nothing propagates through it.
    dependants = graph.reverse(copy=False)  # edge (b, a): a depends on b
    frontier = [stages[n] for n in sorted(stale)]
    reached = set(frontier)
    while frontier:
        node = frontier.pop()
        for child in dependants.successors(node):
            if child not in reached and not child.frozen:
                reached.add(child)
                frontier.append(child)
    candidates = {names[node] for node in reached}

    def upstream_candidates(name: str) -> set[str]:
        return {names[n] for n in nx.descendants(graph, stages[name])} & candidates

    if selectors:
        chosen = {n for n in candidates if any(matches(n, sel) for sel in selectors)}
        needed: set[str] = set()
        for name in chosen:
            needed |= upstream_candidates(name) - chosen
        if needed and not with_upstream:
            listed = ", ".join(sorted(needed)[:10]) + (" ..." if len(needed) > 10 else "")
            raise PlanError(
                f"stages {','.join(selectors)}: {len(needed)} stale upstream stage(s) must run first "
                f"({listed}); add them to the stages or let upstream stages run (with_upstream)"
            )
        planned = chosen | needed
    else:
        needed = set()
        planned = candidates

    no_cmd = sorted(n for n in planned if not stages[n].cmd)
    if no_cmd:
        raise PlanError(
            f"stage(s) without a command are stale: {', '.join(no_cmd[:10])}; "
            "update them with `dvc commit`/`dvc update` (the grid only runs stages with a `cmd`)"
        )

    sub = graph.subgraph([stages[n] for n in planned]).reverse(copy=True)  # edges upstream -> dependant
    order = list(nx.lexicographical_topological_sort(sub, key=lambda s: names[s]))
    result: list[PlannedStage] = []
    for stage in order:
        name = names[stage]
        cmd = stage.cmd
        # as `dvc repro`: a list, or a string whose lines are separate commands
        lines = cmd if isinstance(cmd, list) else str(cmd).splitlines()
        commands = tuple(line for line in lines if line.strip())
        result.append(
            PlannedStage(
                name=name,
                group=stage_group(name),
                commands=commands,
                wdir=os.fspath(stage.wdir),
                upstream=tuple(sorted(upstream_candidates(name) & planned)),
                kind=STALE if name in stale else DOWNSTREAM,
                reasons=_format_reasons(status.get(name, [])),
                pulled_in=name in needed,
            )
        )
    return Plan(root=os.fspath(root), stages=result, selectors=selectors, frozen_stale=frozen_stale)
