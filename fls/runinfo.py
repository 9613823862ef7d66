"""Provenance written beside every output: resolved config, command line, git revision, package versions.

With this file next to a result, anyone can tell which code and settings produced it, even outside DVC.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from fls.atomic import atomic_write_json

_PACKAGES = ("fls", "torch", "gymnasium", "ale-py", "numpy", "pandas", "scipy", "opencv-python-headless", "typer", "dvc")


def git_revision(cwd: str | Path | None = None) -> dict[str, Any]:
    """Commit hash and dirty flag of the repo containing ``cwd`` (or this file); ``None`` outside git."""
    where = Path(cwd) if cwd is not None else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=where, capture_output=True, text=True, timeout=10
        )
        return {"commit": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def run_info(config: dict[str, Any], *, stage: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    info = {
        "stage": stage,
        "config": config,
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "git": git_revision(Path.cwd()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
    }
    if extra:
        info.update(extra)
    return info


def write_run_info(path: str | Path, config: dict[str, Any], *, stage: str, extra: dict[str, Any] | None = None) -> Path:
    """Write provenance JSON atomically to ``path`` (e.g. ``OUT/run_info.json``)."""
    return atomic_write_json(path, run_info(config, stage=stage, extra=extra))
