"""`fls evaluate`: score a trained policy over whole-game episodes (the protocol of docs/evaluation.md), optionally film it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fls.config import load_config
from fls.evaluation.evaluate import EvalConfig
from fls.evaluation.stage import evaluate_to_dir
from pipeline.errors import cli_errors
from pipeline.options import Arch, Device, Game, InitSeed, OutDir, ParamsFile, Quiet, RunDir, Seed


@cli_errors
def main(
    out: OutDir,
    run: RunDir = None,
    checkpoint: Annotated[
        Optional[Path], typer.Option("--checkpoint", help="A checkpoint file (model.pt / checkpoint.pt).", dir_okay=False)
    ] = None,
    game: Annotated[
        Optional[str], typer.Option("--game", help="Game to play (default: the run's game); BreakoutInfinite allowed.")
    ] = None,
    episodes: Annotated[Optional[int], typer.Option("--episodes", help="Whole-game episodes in total (8192).")] = None,
    num_envs: Annotated[Optional[int], typer.Option("--num-envs", help="Parallel envs; must divide --episodes (16).")] = None,
    seed: Seed = None,
    max_episode_steps: Annotated[
        Optional[int],
        typer.Option("--max-episode-steps", help="Episode cap in agent steps for every game; drops evaluate.max_episode_steps_by_game."),
    ] = None,
    deterministic: Annotated[
        Optional[bool], typer.Option("--deterministic/--stochastic", help="Argmax actions instead of sampling.")
    ] = None,
    video: Annotated[Optional[Path], typer.Option("--video", help="Write a perception video (.mp4) here.", dir_okay=False)] = None,
    frames: Annotated[Optional[Path], typer.Option("--frames", help="Write every k-th video frame as PNG here.", file_okay=False)] = None,
    frame_every: Annotated[Optional[int], typer.Option("--frame-every", help="k for --frames (10).")] = None,
    video_max_steps: Annotated[Optional[int], typer.Option("--video-max-steps", help="Video length cap in agent steps (2000).")] = None,
    env_groups: Annotated[
        Optional[int], typer.Option("--env-groups", help="Env groups: one steps while the net acts for another (2; 1 = no pipelining).")
    ] = None,
    params: ParamsFile = None,
    device: Device = None,
    arch: Arch = None,
    init_seed: InitSeed = None,
    quiet: Quiet = False,
) -> None:
    """Evaluate a policy: OUT/eval.json (per-episode scores + summary), OUT/episodes.csv, OUT/run_info.json."""
    overrides = {
        "episodes": episodes,
        "num_envs": num_envs,
        "seed": seed,
        "max_episode_steps": max_episode_steps,
        # an explicit cap is the cap: per-game entries from the params file must not override the flag
        "max_episode_steps_by_game": {} if max_episode_steps is not None else None,
        "deterministic": deterministic,
        "device": device,
        "frame_every": frame_every,
        "video_max_steps": video_max_steps,
        "env_groups": env_groups,
    }
    cfg = load_config(EvalConfig, params, "evaluate" if params is not None else None, overrides,
                      reads=EvalConfig.fields_read(filming=video is not None or frames is not None))
    record = evaluate_to_dir(
        cfg,
        out,
        run=run,
        checkpoint=checkpoint,
        arch=arch,
        init_seed=init_seed,
        game=game,
        video=video,
        frames=frames,
        progress=not quiet,
    )
    result, s = record.result, record.result.summary
    typer.echo(
        f"{result.arch} on {result.game}: {s.n} episodes, mean {s.mean:.1f} +- {s.std:.1f} "
        f"(min {s.min:.0f}, max {s.max:.0f}, {s.n_truncated} cut at {s.max_episode_steps} steps) "
        f"-> {record.paths['eval']}"
    )
    if record.video:
        v = record.video
        typer.echo(f"video: {v['steps']} steps, score {v['score']:.0f}" + (f" -> {v['video']}" if "video" in v else ""))
