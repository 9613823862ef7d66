"""`fls report`: Tables 2-5 and Figures 3-5 with the paper's numbers side by side (reads runs/, evals/, scores/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fls.report import build_report
from fls.report.build import ReportConfig
from pipeline.config_flags import ConfigFlag, config_flags
from pipeline.errors import cli_errors
from pipeline.options import OutDir


@cli_errors
@config_flags(ReportConfig)
def main(
    out: OutDir = Path("reports"),
    runs: Annotated[Path, typer.Option("--runs", help="Root of the training runs (runs/<arch>/<game>/<seed>).", file_okay=False)] = Path("runs"),
    evals: Annotated[Path, typer.Option("--evals", help="Root of the evaluations (evals/<game>/<arch>/<seed>).", file_okay=False)] = Path("evals"),
    scores: Annotated[Path, typer.Option("--scores", help="Root of the saliency scores (scores/<method>/...).", file_okay=False)] = Path("scores"),
    params: Annotated[
        Path, typer.Option("--params", help="params.yaml: the 'report' section, 'grid' (which cells to expect) and 'profile'.", dir_okay=False)
    ] = Path("params.yaml"),
    atari_head: Annotated[
        Optional[Path], typer.Option("--atari-head", help="Preprocessed Atari-HEAD for the gaze panels (report.atari_head).", file_okay=False)
    ] = None,
    panel_frames: ConfigFlag = None,
    perception_steps: ConfigFlag = None,
    no_figures: Annotated[bool, typer.Option("--no-figures", help="Tables only.")] = False,
    *,
    overrides: dict,
) -> None:
    """Write OUT/index.md, OUT/tables/*.{md,csv,tex}, OUT/figures/*.png, OUT/metrics.json."""
    overrides.update(atari_head=atari_head, figures=False if no_figures else None)
    written = build_report(params, runs, evals, scores, out, overrides)
    typer.echo(f"report: {len(written)} files under {out} (start at {out / 'index.md'})")
