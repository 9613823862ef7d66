"""Options shared by several stage commands, as ``Annotated`` aliases so each is declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

ParamsFile = Annotated[
    Optional[Path],
    typer.Option("--params", help="params.yaml to read this stage's section from (flags override it).", dir_okay=False),
]
OutDir = Annotated[Path, typer.Option("--out", help="Output directory (created if missing).", file_okay=False)]
Arch = Annotated[Optional[str], typer.Option("--arch", help="Architecture id (see `fls models`).")]
Game = Annotated[Optional[str], typer.Option("--game", help="Game name, e.g. Breakout.")]
Seed = Annotated[Optional[int], typer.Option("--seed", help="Random seed.")]
Device = Annotated[Optional[str], typer.Option("--device", help="torch device; default: cuda if available, else cpu.")]
RunDir = Annotated[Optional[Path], typer.Option("--run", help="A training run directory (as written by `fls train`).", file_okay=False)]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
InitSeed = Annotated[
    Optional[int], typer.Option("--init-seed", help="With --arch: seed of the fresh model's initialisation (0).")
]
# Every command shows or hides its progress bar with --progress/--no-progress (from the config field where
# it has one); --quiet is the old spelling, kept working but hidden from --help.
Progress = Annotated[
    bool, typer.Option("--progress/--no-progress", help="Show a progress bar. (default: --progress)", show_default=False)
]
Quiet = Annotated[bool, typer.Option("--quiet", hidden=True, help="Deprecated: use --no-progress.")]
