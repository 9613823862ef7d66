"""`fls evaluate`: score a trained policy over whole-game episodes (the protocol of docs/evaluation.md), optionally film it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fls.config import ConfigError, load_config
from fls.evaluation.config import EvalConfig
from fls.evaluation.multi import evaluate_runs_to_dirs, parse_runs
from fls.evaluation.stage import evaluate_to_dir
from pipeline.config_flags import ConfigFlag, config_flags
from pipeline.errors import cli_errors
from pipeline.options import Arch, InitSeed, OutDir, ParamsFile, Progress, Quiet, RunDir


@cli_errors
@config_flags(EvalConfig)
def main(
    out: OutDir = None,  # type: ignore[assignment]  # required unless --runs
    run: RunDir = None,
    runs: Annotated[
        Optional[str],
        typer.Option("--runs", help="Several run directories (a,b,c) played in this one process; needs --out-root."),
    ] = None,
    out_root: Annotated[
        Optional[Path],
        typer.Option("--out-root", help="With --runs: run .../<arch>/<game>/<seed> goes to OUT_ROOT/<played game>/<arch>/<seed>.", file_okay=False),
    ] = None,
    checkpoint: Annotated[
        Optional[Path], typer.Option("--checkpoint", help="A checkpoint file (model.pt / checkpoint.pt).", dir_okay=False)
    ] = None,
    game: Annotated[
        Optional[str], typer.Option("--game", help="Game to play (default: the run's game); BreakoutInfinite allowed.")
    ] = None,
    episodes: ConfigFlag = None,
    num_envs: ConfigFlag = None,
    seed: ConfigFlag = None,
    max_episode_steps: ConfigFlag = None,
    deterministic: ConfigFlag = None,
    video: Annotated[Optional[Path], typer.Option("--video", help="Write a perception video (.mp4) here.", dir_okay=False)] = None,
    frames: Annotated[Optional[Path], typer.Option("--frames", help="Write every k-th video frame as PNG here.", file_okay=False)] = None,
    frame_every: ConfigFlag = None,
    video_max_steps: ConfigFlag = None,
    env_groups: ConfigFlag = None,
    env_workers: ConfigFlag = None,
    params: ParamsFile = None,
    device: ConfigFlag = None,
    arch: Arch = None,
    init_seed: InitSeed = None,
    progress: Progress = True,
    quiet: Quiet = False,
    *,
    overrides: dict,
) -> None:
    """Evaluate a policy: OUT/eval.json (per-episode scores + summary), OUT/episodes.csv, OUT/run_info.json."""
    # an explicit cap is the cap: per-game entries from the params file must not override the flag
    overrides["max_episode_steps_by_game"] = {} if max_episode_steps is not None else None
    cfg = load_config(EvalConfig, params, "evaluate" if params is not None else None, overrides,
                      reads=EvalConfig.fields_read(filming=video is not None or frames is not None))
    if runs is not None or out_root is not None:
        single = {"--out": out, "--run": run, "--checkpoint": checkpoint, "--arch": arch, "--init-seed": init_seed,
                  "--video": video, "--frames": frames}
        return _evaluate_runs(cfg, runs, out_root, game, [k for k, v in single.items() if v is not None])
    if out is None:
        raise ConfigError("--out: give --out (one policy) or --runs with --out-root (several runs)")
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
        progress=progress and not quiet,
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


def _evaluate_runs(cfg: EvalConfig, runs: Optional[str], out_root: Optional[Path], game: Optional[str], clash: list[str]) -> None:
    if runs is None or out_root is None:
        raise ConfigError("--runs and --out-root: give both (several runs, each to OUT_ROOT/<game>/<arch>/<seed>)")
    if clash:
        raise ConfigError(f"--runs: cannot be combined with {', '.join(clash)} (single-policy options)")
    members = evaluate_runs_to_dirs(cfg, parse_runs(runs), out_root, game=game)
    for m in members:
        if m.error is not None or m.result is None:
            text = str(m.error).splitlines()[0] if m.error is not None and str(m.error) else type(m.error).__name__
            typer.echo(f"{m.run}: error: {text}")
            continue
        r, s = m.result.result, m.result.result.summary
        typer.echo(f"{m.run}: {r.arch} on {r.game}: {s.n} episodes, mean {s.mean:.1f} -> {m.result.paths['eval']}")
    if any(m.error is not None for m in members):
        raise typer.Exit(code=1)
