"""Every fls module imports, is named in docs/architecture.md, and no fls modules import each other in a circle;
the `fls` CLI registers every stage module and refuses to start without one.

A circle hidden behind a function-local import still couples the two modules (neither can be read, moved
or tested without the other) and breaks as soon as someone hoists the import, so the walk below counts
every import statement, at module level or inside a function, plus the names a package loads lazily
through an ``_EXPORTS`` table (``fls/envs/__init__.py``).
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

from helpers import REPO

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted((REPO / "fls").rglob("*.py"))}


def _imports(name: str, path: Path) -> dict[str, int]:
    """fls modules that ``name`` imports anywhere in its body -> line of the first such import."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing module's package
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            # `from pkg import sub` imports the submodule; `from mod import name` the module itself
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets):
            if isinstance(node.value, ast.Dict):
                targets = [v.value for v in node.value.values if isinstance(v, ast.Constant)]
        for t in targets:
            if t in MODULES and t != name:
                found.setdefault(t, node.lineno)
    return found


def _find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None (depth-first search with an explicit path)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in graph:
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_the_walk_sees_function_local_and_lazy_imports():
    """The graph must contain the edges this test exists for, or an empty walk would pass it."""
    graph = {m: _imports(m, p) for m, p in MODULES.items()}
    assert "fls.envs.vector" in graph["fls.envs"]  # through the lazy _EXPORTS table
    assert "fls.envs.registration" in graph["fls"]
    assert _find_cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b": 1}, "b": {}, "c": {"a": 1, "b": 1}}) is None


def test_no_import_cycle_among_fls_modules():
    graph = {m: _imports(m, p) for m, p in MODULES.items()}
    cycle = _find_cycle(graph)
    if cycle is not None:
        hops = [f"{MODULES[a].relative_to(REPO)}:{graph[a][b]} imports {b}" for a, b in zip(cycle, cycle[1:])]
        raise AssertionError("import cycle: " + "; ".join(hops))


def test_every_fls_module_imports():
    failed = {}
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001  (report every module that fails, not just the first)
            failed[name] = f"{type(exc).__name__}: {exc}"
    assert not failed, failed


def _named_in_map(doc: str) -> set[str]:
    """Paths the architecture map names in backticks, with ``dir/{a,b}.py`` expanded to both files."""
    named = set()
    for ref in re.findall(r"`(fls/[^`]+)`", doc):
        brace = re.search(r"\{([^}]*)\}", ref)
        alts = brace.group(1).split(",") if brace else [None]
        named |= {ref if a is None else ref[: brace.start()] + a + ref[brace.end():] for a in alts}
    return named


def test_architecture_map_names_every_module():
    named = _named_in_map((REPO / "docs" / "architecture.md").read_text())
    assert {"fls/envs/types.py", "fls/report/tables.py"} <= named  # a plain and a braced reference
    files = {p.relative_to(REPO).as_posix() for p in MODULES.values() if p.name != "__init__.py"}
    assert not sorted(files - named), f"docs/architecture.md does not say where these live: {sorted(files - named)}"
    stale = sorted(n for n in named if n.endswith(".py") and not (REPO / n).exists())
    assert not stale, f"docs/architecture.md names modules that do not exist: {stale}"


def test_fls_registers_every_stage_module():
    from pipeline.app import app

    helpers = {"__init__", "app", "config_flags", "errors", "options"}
    stages = {p.stem for p in (REPO / "pipeline").glob("*.py")} - helpers
    assert stages and all(f"pipeline.{m}" in sys.modules for m in stages)
    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert names == {m.replace("_", "-") for m in stages}


def test_fls_stops_at_start_up_when_a_stage_module_fails_to_import():
    """A stage that cannot import must not vanish from the CLI while the other commands keep working."""
    code = "import sys; sys.modules['pipeline.score'] = None; import pipeline.app"  # None: import fails
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "pipeline.score" in res.stderr, res.stderr[-2000:]
