"""`fls grid`: run the stale DVC stages in parallel on Ray (`run`) or show what would run (`status`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from fls.config import read_params
from fls.grid import build_plan, parse_selectors, run_grid
from fls.grid.cost import grid_cost, load_bench, measure_here
from fls.grid.executor import RunOptions
from fls.grid.progress import plan_table, summary_table
from pipeline.config_flags import ConfigFlag, config_flags
from pipeline.errors import cli_errors
from pipeline.options import JsonFlag

app = typer.Typer(
    help="Run the DVC pipeline's stale stages in parallel on a Ray cluster (DVC stays the source of truth).",
    no_args_is_help=True,
)

Stages = Annotated[
    Optional[str],
    typer.Option(
        "--stages",
        help="Comma-separated stage groups/names/globs to run, e.g. train,evaluate or 'train@nature_cnn'. Default: all.",
    ),
]
Repo = Annotated[Path, typer.Option("--repo", help="Root of the DVC project.", file_okay=False)]
NoUpstream = Annotated[
    bool,
    typer.Option("--no-upstream", help="Refuse (instead of pulling in) stale upstream stages of --stages."),
]


@app.command("run")
@cli_errors
@config_flags(RunOptions)
def run(
    address: Annotated[
        Optional[str],
        typer.Option("--address", help="Ray cluster to join (e.g. 10.0.0.1:6379 or auto); default: start Ray here."),
    ] = None,
    stages: Stages = None,
    gpus_per_run: Annotated[
        Optional[float],
        typer.Option(
            "--gpus-per-run", help="GPU share per stage (0.25 = four runs per GPU). Default: 0.25 if GPUs, else 0."
        ),
    ] = None,
    cpus_per_run: ConfigFlag = None,
    max_retries: ConfigFlag = None,
    group: Annotated[
        Optional[str],
        typer.Option(
            "--group",
            help="Stage groups to batch (train,evaluate): ready stages sharing one command pattern run as one "
            "multi-run task (fls train --seeds / fls evaluate --runs); each stage is still committed on its own.",
        ),
    ] = None,
    group_size: ConfigFlag = None,
    repo: Repo = Path("."),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and exit without starting Ray.")] = False,
    no_upstream: NoUpstream = False,
    *,
    overrides: dict,
) -> None:
    """Run every stale stage as a Ray task, in dependency order, committing each success with DVC."""
    outcome = run_grid(
        repo,
        parse_selectors(stages),
        address=address,
        gpus_per_run=gpus_per_run,
        cpus_per_run=cpus_per_run,
        max_retries=max_retries,
        group=parse_selectors(group),
        group_size=group_size,
        with_upstream=not no_upstream,
        dry_run=dry_run,
    )
    if outcome.result is None:
        typer.echo(plan_table(outcome.plan))
        return
    typer.echo(summary_table(outcome.result))
    typer.echo(f"summary: {outcome.summary_path}")
    if outcome.result.interrupted:
        raise typer.Exit(code=130)
    if not outcome.result.ok:
        raise typer.Exit(code=1)


@app.command("status")
@cli_errors
def status(
    stages: Stages = None, repo: Repo = Path("."), no_upstream: NoUpstream = False, as_json: JsonFlag = False
) -> None:
    """Print what `fls grid run` would run, in order, without running anything."""
    plan = build_plan(repo, parse_selectors(stages), with_upstream=not no_upstream)
    if as_json:
        typer.echo(json.dumps(plan.to_json(), indent=2))
    else:
        typer.echo(plan_table(plan))


@app.command("cost")
@cli_errors
def cost(
    params: Annotated[Path, typer.Option("--params", help="Profile to price, e.g. profiles/paper.yaml.", dir_okay=False)],
    bench: Annotated[
        Optional[Path],
        typer.Option("--bench", help="benchmarks/gpu_check.py JSON of the node; default: measure this machine (--quick).", dir_okay=False),
    ] = None,
    mean_episode_steps: Annotated[
        float, typer.Option("--mean-episode-steps", help="Assumed mean agent steps per evaluation game.")
    ] = 3000.0,
    score_inputs_per_game: Annotated[
        int, typer.Option("--score-inputs-per-game", help="Assumed Atari-HEAD inputs per game.")
    ] = 250_000,
    as_json: JsonFlag = False,
) -> None:
    """Node-hours per stage group and in total for a profile, from measured throughputs (with assumptions)."""
    data = read_params(params)
    bench_data = load_bench(bench) if bench is not None else measure_here()
    report = grid_cost(data, bench_data, mean_episode_steps=mean_episode_steps, score_inputs_per_game=score_inputs_per_game)
    typer.echo(json.dumps(report.to_json(), indent=2) if as_json else report.table())
