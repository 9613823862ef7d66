"""``fls train``: train one agent with PPO (or resume / recognise a finished run in --out).

With ``--seeds 1,9,17 --out-root runs`` it trains one run per seed in this one process
(``fls.ppo.multirun``), each in ``runs/<arch>/<game>/<seed>`` exactly as separate ``--out`` runs would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fls.config import ConfigError, load_config
from fls.ppo.config import TrainConfig
from fls.ppo.multirun import parse_seeds, report, run_dir, seed_configs, train_many
from fls.ppo.trainer import train
from pipeline.errors import cli_errors
from pipeline.config_flags import ConfigFlag, config_flags
from pipeline.options import ParamsFile


@cli_errors
@config_flags(TrainConfig)
def main(
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Output directory of the run (created if missing).", file_okay=False)
    ] = None,
    seeds: Annotated[
        Optional[str],
        typer.Option("--seeds", help="Several runs in this process, one per seed (e.g. 1,9,17); needs --out-root."),
    ] = None,
    out_root: Annotated[
        Optional[Path],
        typer.Option("--out-root", help="With --seeds: run i goes to OUT_ROOT/<arch>/<game>/<seed i>.", file_okay=False),
    ] = None,
    arch: ConfigFlag = None,
    game: ConfigFlag = None,
    seed: ConfigFlag = None,
    total_steps: ConfigFlag = None,
    params: ParamsFile = None,
    device: ConfigFlag = None,
    checkpoint_every: ConfigFlag = None,
    num_envs: ConfigFlag = None,
    num_steps: ConfigFlag = None,
    torch_threads: ConfigFlag = None,
    progress: ConfigFlag = None,
    tensorboard: ConfigFlag = None,
    max_episode_steps: ConfigFlag = None,
    restart_on_change: Annotated[
        bool,
        typer.Option(
            "--restart-on-change",
            help="If --out holds a run made with other learning settings, delete it and start afresh (default: refuse).",
        ),
    ] = False,
    *,
    overrides: dict,
) -> None:
    """Train an agent; rerunning the same command on the same --out resumes it from checkpoint.pt."""
    # an explicit cap is the cap: per-game entries from the params file must not override the flag
    overrides["max_episode_steps_by_game"] = {} if max_episode_steps is not None else None
    if seeds is not None:
        if out is not None or seed is not None or out_root is None:
            raise ConfigError("--seeds: needs --out-root, and excludes --out and --seed")
        return _train_seeds(seeds, out_root, params, overrides, restart_on_change)
    if out is None:
        raise ConfigError("--out: give --out (one run) or --seeds with --out-root (several runs)")
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


def _train_seeds(seeds: str, out_root: Path, params: Optional[Path], overrides: dict, restart_on_change: bool) -> None:
    base = load_config(TrainConfig, params, "train" if params is not None else None, overrides)  # validated
    cfgs = seed_configs(base, parse_seeds(seeds))  # its errors start "seeds: " (the value of --seeds)
    try:
        outcomes = train_many(cfgs, [run_dir(out_root, c) for c in cfgs], restart_on_change=restart_on_change)
    except KeyboardInterrupt:
        typer.echo(f"{out_root}: interrupted; rerun the same command to resume every run from its last checkpoint", err=True)
        raise typer.Exit(code=130) from None
    failed = report(outcomes)
    if failed:
        raise typer.Exit(code=1)
