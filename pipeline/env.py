"""``fls env``: inspect the game environment the agents are trained and evaluated in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fls.envs.trace import TraceConfig, trace_env, write_trace
from pipeline.config_flags import ConfigFlag, config_flags
from pipeline.errors import cli_errors
from pipeline.options import Progress, Quiet

app = typer.Typer(help="Inspect the training / evaluation environment.", no_args_is_help=True)


@app.command("trace")
@cli_errors
@config_flags(TraceConfig)
def trace(
    game: Annotated[str, typer.Option("--game", help="Game name, e.g. Breakout (BreakoutInfinite allowed).")],
    steps: Annotated[int, typer.Option("--steps", help="Agent steps to play.")],
    actions_seed: Annotated[int, typer.Option("--actions-seed", help="Seed of numpy.random.default_rng for the actions.")],
    out: Annotated[Path, typer.Option("--out", help="NPZ file to write (obs, actions, reward, done, game_over, lives).", dir_okay=False)],
    seed: ConfigFlag = None,
    noop_max: ConfigFlag = None,
    episodic_life: ConfigFlag = None,
    max_episode_steps: ConfigFlag = None,
    progress: Progress = True,
    quiet: Quiet = False,
    *,
    overrides: dict,
) -> None:
    """Play random actions in the training env and save what the agent sees (schema: fls/envs/trace.py)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    cfg = TraceConfig(game=game, steps=steps, actions_seed=actions_seed, **given)
    tr = trace_env(cfg, progress=progress and not quiet)
    path = write_trace(tr, out)
    typer.echo(f"{path}: {steps} steps, {int(tr['done'].sum())} learning-episode ends, "
               f"{int(tr['game_over'].sum())} game ends")
