"""`fls atari-head`: get the Atari-HEAD gaze dataset, preprocess it for scoring, or make a synthetic sample."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from fls.atari_head import AtariHeadConfig
from fls.atari_head.acquire import DOWNLOAD_READS, PREPROCESS_READS, SAMPLE_READS, acquire, write_download, write_sample
from fls.atari_head.preprocess import preprocess
from fls.atari_head.zenodo_server import ZenodoServer
from fls.config import load_config, resolved
from fls.runinfo import write_run_info
from fls.stage_files import RUN_INFO
from pipeline.errors import cli_errors
from pipeline.config_flags import ConfigFlag, config_flags
from pipeline.options import OutDir, ParamsFile

app = typer.Typer(
    help="Atari-HEAD human gaze data: acquire (the DVC stage), download, preprocess, synthetic sample, local server.",
    no_args_is_help=True,
)

Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]


def _config(params: Optional[Path], overrides: dict, reads: tuple[str, ...]) -> AtariHeadConfig:
    return load_config(AtariHeadConfig, params, "atari_head" if params is not None else None, overrides, reads=reads)


def _sample_line(cfg: AtariHeadConfig, out: Path) -> str:
    return f"synthetic Atari-HEAD sample (seed {cfg.sample_seed}) written to {out}"


def _download_line(result, out: Path) -> str:
    return (f"{len(result.downloaded)} placed/downloaded, {len(result.skipped)} already complete "
            f"(verified by {result.verified_by}) in {out}")


@app.command("acquire")
@cli_errors
def acquire_cmd(
    out: OutDir,
    params: Annotated[
        Path, typer.Option("--params", dir_okay=False, help="params.yaml: data.atari_head_source (sample | zenodo), the data and atari_head keys.")
    ] = Path("params.yaml"),
    progress: Progress = True,
) -> None:
    """The atari_head_acquire stage: the synthetic sample or the Zenodo download, as data.atari_head_source says."""
    source, cfg, written = acquire(params, out, progress=progress)
    typer.echo(_sample_line(cfg, out) if source == "sample" else _download_line(written, out))


@app.command("download")
@cli_errors
@config_flags(AtariHeadConfig)
def download_cmd(
    out: OutDir,
    games: ConfigFlag = None,
    api_url: ConfigFlag = None,
    record_id: ConfigFlag = None,
    release: ConfigFlag = None,
    from_dir: Annotated[
        Optional[Path],
        typer.Option("--from-dir", file_okay=False, help="Use files placed by hand in this folder instead of the network."),
    ] = None,
    record: Annotated[
        Optional[Path], typer.Option("--record", dir_okay=False, help="Record JSON to verify --from-dir files against.")
    ] = None,
    retries: ConfigFlag = None,
    backoff: ConfigFlag = None,
    timeout: ConfigFlag = None,
    progress: Progress = True,
    params: ParamsFile = None,
    *,
    overrides: dict,
) -> None:
    """Download (resumable, md5-verified) the game zips + meta_data.csv, or verify hand-placed files."""
    cfg = _config(params, overrides, DOWNLOAD_READS)
    result = write_download(cfg, out, progress=progress, from_dir=from_dir, record=record)
    typer.echo(_download_line(result, out))


@app.command("preprocess")
@cli_errors
@config_flags(AtariHeadConfig)
def preprocess_cmd(
    in_dir: Annotated[
        Path, typer.Option("--in", file_okay=False, help="Download output: <game>.zip files (v4) or flat trials (v2).")
    ],
    out: OutDir,
    games: ConfigFlag = None,
    skip_bad_trials: ConfigFlag = None,
    workers: ConfigFlag = None,
    release: ConfigFlag = None,
    progress: Progress = True,
    params: ParamsFile = None,
    *,
    overrides: dict,
) -> None:
    """Replay every trial through the agents' preprocessing; write per-trial NPZs (both gaze alignments) and index.csv."""
    cfg = _config(params, overrides, PREPROCESS_READS)
    summary = preprocess(
        in_dir,
        out,
        cfg.games,
        skip_bad_trials=cfg.skip_bad_trials,
        workers=cfg.workers,
        progress=progress,
        release=cfg.release,
    )
    write_run_info(out / RUN_INFO, resolved(cfg), stage="atari_head.preprocess", extra={"summary": summary.as_dict()})
    typer.echo(json.dumps(summary.as_dict()))


@app.command("sample")
@cli_errors
@config_flags(AtariHeadConfig)
def sample_cmd(
    out: OutDir,
    sample_seed: ConfigFlag = None,
    games: ConfigFlag = None,
    frames: Annotated[int, typer.Option("--frames", min=3, help="Raw frames per trial.")] = 300,
    trials: Annotated[int, typer.Option("--trials", min=0, help="Regular trials per game (plus one highscore trial).")] = 2,
    release: ConfigFlag = None,
    params: ParamsFile = None,
    *,
    overrides: dict,
) -> None:
    """Write a small SYNTHETIC dataset in the real Atari-HEAD layout (real ALE frames, fake gaze)."""
    cfg = _config(params, overrides, SAMPLE_READS)
    write_sample(cfg, out, frames=frames, trials=trials)
    typer.echo(_sample_line(cfg, out))


@app.command("serve")
@cli_errors
def serve_cmd(
    directory: Annotated[Path, typer.Option("--dir", file_okay=False, help="Folder whose files to serve as the record.")],
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")] = 0,
    record_id: Annotated[str, typer.Option("--record-id", help="Record id to serve under (2603190 for a v2 folder).")] = "3451402",
) -> None:
    """Serve a folder on 127.0.0.1 as a Zenodo record (for `download --api-url`)."""
    server = ZenodoServer(directory, record_id=record_id, port=port)
    typer.echo(f"serving {directory} as record {record_id}: --api-url {server.api_url} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
