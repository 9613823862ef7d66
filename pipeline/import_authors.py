"""`fls import-authors`: the authors' released models as fls run directories (weights + their own results)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fls.authors.importer import import_authors
from pipeline.errors import cli_errors
from pipeline.options import OutDir, Quiet


@cli_errors
def main(
    src: Annotated[Path, typer.Option("--in", help="The authors' download: <game>.<network>/<seed>/model.pkl folders.", file_okay=False)],
    out: OutDir = Path("runs"),
    archs: Annotated[Optional[str], typer.Option("--archs", help="Comma-separated fls arch ids to import (default: all).")] = None,
    games: Annotated[Optional[str], typer.Option("--games", help="Comma-separated games to import (default: all).")] = None,
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="Comma-separated train seeds to import (default: all).")] = None,
    quiet: Quiet = False,
) -> None:
    """Write OUT/<arch>/<game>/<seed>/{model.pt,metrics.csv,summary.json,run_info.json,authors/} and OUT/authors_index.json."""
    split = lambda s: None if s is None else [x.strip() for x in s.split(",") if x.strip()]  # noqa: E731
    seed_list = None if seeds is None else [int(x) for x in split(seeds)]
    index = import_authors(src, out, archs=split(archs), games=split(games), seeds=seed_list, progress=not quiet)
    typer.echo(f"import-authors: {len(index['models'])} of {index['n_found']} models -> {out}")
