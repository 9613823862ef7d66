"""`fls score`: saliency of a model (or a reference map) against Atari-HEAD human gaze (Table 4 metrics)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fls.atari_head import AtariHeadConfig
from fls.config import load_config, read_params
from fls.scoring import ScoreConfig, score_to_dir
from fls.variants import parse_variant
from pipeline.errors import cli_errors
from pipeline.config_flags import ConfigFlag, config_flags
from pipeline.options import Arch, Game, InitSeed, OutDir, ParamsFile, Quiet, RunDir


@cli_errors
@config_flags(ScoreConfig)
def main(
    out: OutDir,
    atari_head: Annotated[
        Path,
        typer.Option("--atari-head", file_okay=False, help="Preprocessed Atari-HEAD folder (`fls atari-head preprocess`)."),
    ],
    run: RunDir = None,
    checkpoint: Annotated[
        Optional[Path], typer.Option("--checkpoint", help="A checkpoint file (model.pt / checkpoint.pt).", dir_okay=False)
    ] = None,
    arch: Arch = None,
    init_seed: InitSeed = None,
    game: Game = None,
    method: ConfigFlag = None,
    protocol: ConfigFlag = None,
    alignment: Annotated[
        Optional[str],
        typer.Option("--alignment", help="Gaze of each input: authors | aligned (atari_head.alignment; aligned)."),
    ] = None,
    variant: Annotated[
        Optional[str],
        typer.Option("--variant", help="<alignment>-<protocol> in one flag (e.g. aligned-fls), for the score_corrected stages."),
    ] = None,
    batch_size: ConfigFlag = None,
    n_draws: ConfigFlag = None,
    seed: ConfigFlag = None,
    max_trials: ConfigFlag = None,
    max_inputs: ConfigFlag = None,
    params: ParamsFile = None,
    device: ConfigFlag = None,
    progress: ConfigFlag = None,
    quiet: Quiet = False,
    *,
    overrides: dict,
) -> None:
    """Score saliency vs gaze: OUT/per_input.parquet, per_trial.json, summary.json, run_info.json."""
    if variant is not None:
        v_alignment, v_protocol = parse_variant(variant)
        for flag, given, implied in (("--alignment", alignment, v_alignment), ("--protocol", protocol, v_protocol)):
            if given is not None and given != implied:
                raise ValueError(f"--variant {variant} says {flag} {implied}, but {flag} {given} was given")
        alignment, protocol = v_alignment, v_protocol
    overrides["protocol"] = protocol
    if quiet:  # the deprecated spelling of --no-progress
        overrides["progress"] = False
    cfg = load_config(ScoreConfig, params, "score" if params is not None else None, overrides, reads=ScoreConfig.fields_read)
    # the gaze to score against, the one atari_head key scoring reads (not at all when a flag gives it)
    has_head = alignment is None and params is not None and "atari_head" in read_params(params)
    head = load_config(AtariHeadConfig, params, "atari_head" if has_head else None, {"alignment": alignment},
                       reads=("alignment",))
    s = score_to_dir(
        cfg,
        out,
        atari_head=atari_head,
        game=game,
        run=run,
        checkpoint=checkpoint,
        arch=arch,
        init_seed=init_seed,
        alignment=head.alignment,
    )

    def fmt(m: str) -> str:
        v = s.metrics[m]
        mean = "undefined" if v.mean is None else f"{v.mean:.3f}"
        return f"{m} {mean} ({v.n_defined} defined, {v.n_undefined} undefined)"

    who = s.arch or "reference"
    line = f"{who} [{s.method}, {s.protocol} protocol, {s.alignment} gaze] on {s.game}: {s.n_inputs} inputs of {s.n_trials} trial{'s' if s.n_trials != 1 else ''}; "
    typer.echo(line + "; ".join(fmt(m) for m in ("nss", "kl", "sauc", "sauc_exact")))
    if s.synthetic_gaze:
        typer.echo("note: the gaze is SYNTHETIC (fls atari-head sample) -- not a result")
