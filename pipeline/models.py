"""`fls models`: list the fifteen architectures with parameter counts and saliency render geometry."""

from __future__ import annotations

import json as jsonlib
from typing import Annotated, Optional

import typer

from fls.games import base_game
from fls.models import model_summaries
from pipeline.errors import cli_errors
from pipeline.options import Game, JsonFlag

DEFAULT_NUM_ACTIONS = 4  # Breakout, the game Table 2 counts parameters for

_COLUMNS = ("arch", "params", "attention_grid", "receptive_field", "stride", "padding", "description")


def _table(rows: list[dict]) -> str:
    cells = [[_cell(r[c]) for c in _COLUMNS] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(_COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(_COLUMNS, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, list):
        return "x".join(str(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


@cli_errors
def main(
    num_actions: Annotated[
        Optional[int],
        typer.Option("--num-actions", min=1, help=f"Size of the action set (default {DEFAULT_NUM_ACTIONS}, Breakout)."),
    ] = None,
    game: Game = None,
    json: JsonFlag = False,
) -> None:
    """List the architectures (parameter counts, attention grid, saliency render geometry)."""
    if game is not None:
        game_actions = base_game(game).num_actions
        if num_actions is not None and num_actions != game_actions:
            raise ValueError(f"--num-actions {num_actions} contradicts --game {game} ({game_actions} actions)")
        num_actions = game_actions
    rows = model_summaries(num_actions if num_actions is not None else DEFAULT_NUM_ACTIONS)
    typer.echo(jsonlib.dumps(rows, indent=2) if json else _table(rows))
