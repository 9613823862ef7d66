"""``fls env``: inspect the game environment the agents are trained and evaluated in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fls.envs.trace import TraceConfig, trace_env, write_trace
from fls.envs.types import DEFAULT_MAX_EPISODE_STEPS
from pipeline.errors import cli_errors
from pipeline.options import Progress, Quiet

app = typer.Typer(help="Inspect the training / evaluation environment.", no_args_is_help=True)


@app.command("trace")
@cli_errors
def trace(
    game: Annotated[str, typer.Option("--game", help="Game name, e.g. Breakout (BreakoutInfinite allowed).")],
    steps: Annotated[int, typer.Option("--steps", help="Agent steps to play.")],
    actions_seed: Annotated[int, typer.Option("--actions-seed", help="Seed of numpy.random.default_rng for the actions.")],
    out: Annotated[Path, typer.Option("--out", help="NPZ file to write (obs, actions, reward, done, game_over, lives).", dir_okay=False)],
    seed: Annotated[int, typer.Option("--seed", help="Env seed.")] = 0,
    noop_max: Annotated[int, typer.Option("--noop-max", help="Raw no-op frames at game start: 1..K (0: none).")] = 30,
    episodic_life: Annotated[
        bool, typer.Option("--episodic-life/--no-episodic-life", help="A lost life ends the learning episode (Baselines' default).")
    ] = True,
    max_episode_steps: Annotated[int, typer.Option("--max-episode-steps", help="Whole-game cap in agent steps.")] = DEFAULT_MAX_EPISODE_STEPS,
    progress: Progress = True,
    quiet: Quiet = False,
) -> None:
    """Play random actions in the training env and save what the agent sees (schema: fls/envs/trace.py)."""
    cfg = TraceConfig(game=game, steps=steps, actions_seed=actions_seed, seed=seed, noop_max=noop_max,
                      episodic_life=episodic_life, max_episode_steps=max_episode_steps)
    tr = trace_env(cfg, progress=progress and not quiet)
    path = write_trace(tr, out)
    typer.echo(f"{path}: {steps} steps, {int(tr['done'].sum())} learning-episode ends, "
               f"{int(tr['game_over'].sum())} game ends")
