"""`fls import-authors`: the authors' released models as fls run directories (weights + their own results)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fls.authors.importer import AuthorsConfig, AuthorsImportError, import_authors, import_one
from fls.config import load_config
from pipeline.errors import cli_errors
from pipeline.options import Arch, Game, OutDir, ParamsFile, Progress, Quiet, Seed


@cli_errors
def main(
    src: Annotated[
        Optional[Path],
        typer.Option("--in", help="The authors' download: <game>.<network>/<seed>/model.pkl folders (default: params authors.dir).",
                     file_okay=False),
    ] = None,
    out: OutDir = Path("runs"),
    arch: Arch = None,
    game: Game = None,
    seed: Seed = None,
    archs: Annotated[Optional[str], typer.Option("--archs", help="Comma-separated fls arch ids to import (default: all).")] = None,
    games: Annotated[Optional[str], typer.Option("--games", help="Comma-separated games to import (default: all).")] = None,
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="Comma-separated train seeds to import (default: all).")] = None,
    params: ParamsFile = None,
    progress: Progress = True,
    quiet: Quiet = False,
) -> None:
    """Whole download: OUT/<arch>/<game>/<seed>/{model.pt,metrics.csv,summary.json,run_info.json,authors/} and
    OUT/authors_index.json. With --arch/--game/--seed: that one model into the run directory OUT (the DVC stage)."""
    if params is None and src is None:
        raise AuthorsImportError("import-authors: give --in DIR (the authors' download) or --params with an 'authors.dir'")
    cfg = load_config(AuthorsConfig, params, "authors", {"dir": None if src is None else str(src)})
    one = [n for n, v in (("--arch", arch), ("--game", game), ("--seed", seed)) if v is not None]
    if one:
        if len(one) != 3 or any(v is not None for v in (archs, games, seeds)):
            raise AuthorsImportError("import-authors: one model needs all of --arch, --game, --seed (and no --archs/--games/--seeds)")
        entry = import_one(cfg.dir, arch, game, seed, out)
        typer.echo(f"import-authors: {entry['network']} {entry['game']} seed {entry['seed']} -> {out}")
        return
    split = lambda s: None if s is None else [x.strip() for x in s.split(",") if x.strip()]  # noqa: E731
    seed_list = None if seeds is None else [int(x) for x in split(seeds)]
    index = import_authors(cfg.dir, out, archs=split(archs), games=split(games), seeds=seed_list, progress=progress and not quiet)
    typer.echo(f"import-authors: {len(index['models'])} of {index['n_found']} models -> {out}")
