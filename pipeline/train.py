"""``fls train``: train one agent with PPO (or resume / recognise a finished run in --out)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fls.config import load_config
from fls.ppo.config import TrainConfig
from fls.ppo.trainer import train
from pipeline.errors import cli_errors
from pipeline.options import Arch, Device, Game, OutDir, ParamsFile, Seed


@cli_errors
def main(
    out: OutDir,
    arch: Arch = None,
    game: Game = None,
    seed: Seed = None,
    total_steps: Annotated[
        Optional[str], typer.Option("--total-steps", metavar="N", help="Agent steps over all envs, e.g. 5e7 (the paper's).")
    ] = None,
    params: ParamsFile = None,
    device: Device = None,
    checkpoint_every: Annotated[Optional[int], typer.Option("--checkpoint-every", help="Checkpoint every N updates.")] = None,
    num_envs: Annotated[Optional[int], typer.Option("--num-envs", help="Parallel envs (paper: 8).")] = None,
    num_steps: Annotated[Optional[int], typer.Option("--num-steps", help="Steps per env per rollout (paper: 128).")] = None,
    torch_threads: Annotated[Optional[int], typer.Option("--torch-threads", help="CPU threads (parallel batch shards; 0 = one per CPU).")] = None,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Show a progress bar.")] = None,
    tensorboard: Annotated[
        Optional[bool], typer.Option("--tensorboard/--no-tensorboard", help="Also write TensorBoard events to OUT/tensorboard/.")
    ] = None,
    max_episode_steps: Annotated[
        Optional[int],
        typer.Option("--max-episode-steps", help="Whole-game cap in agent steps for this game; drops train.max_episode_steps_by_game."),
    ] = None,
    restart_on_change: Annotated[
        bool,
        typer.Option(
            "--restart-on-change",
            help="If --out holds a run made with other learning settings, delete it and start afresh (default: refuse).",
        ),
    ] = False,
) -> None:
    """Train an agent; rerunning the same command on the same --out resumes it from checkpoint.pt."""
    overrides = {
        "arch": arch, "game": game, "seed": seed, "total_steps": total_steps, "device": device,
        "checkpoint_every": checkpoint_every, "num_envs": num_envs, "num_steps": num_steps,
        "torch_threads": torch_threads, "progress": progress, "tensorboard": tensorboard,
        "max_episode_steps": max_episode_steps,
        "max_episode_steps_by_game": {} if max_episode_steps is not None else None,
    }
    cfg = load_config(TrainConfig, params, "train" if params is not None else None, overrides)
    try:
        result = train(cfg, Path(out), restart_on_change=restart_on_change)
    except KeyboardInterrupt:
        typer.echo(f"{out}: interrupted; rerun the same command to resume from the last checkpoint", err=True)
        raise typer.Exit(code=130) from None
    if result.status == "already_finished":
        typer.echo(f"{out}: already finished ({result.global_step} steps, eprewmean {result.eprewmean:.2f}); nothing to do")
        return
    typer.echo(
        f"{out}: {result.status} at {result.global_step} steps ({result.updates} updates), "
        f"eprewmean {result.eprewmean:.2f} over {result.episodes} games, {result.sps:.0f} steps/s"
    )
