"""`fls atari-head`: get the Atari-HEAD gaze dataset, preprocess it for scoring, or make a synthetic sample."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from fls.atari_head import AtariHeadConfig
from fls.atari_head.acquire import DOWNLOAD_READS, PREPROCESS_READS, SAMPLE_READS, acquire, write_download, write_sample
from fls.config import load_config, resolved
from fls.runinfo import write_run_info
from fls.stage_files import RUN_INFO
from pipeline.errors import cli_errors
from pipeline.options import OutDir, ParamsFile, Seed

app = typer.Typer(
    help="Atari-HEAD human gaze data: acquire (the DVC stage), download, preprocess, synthetic sample, local server.",
    no_args_is_help=True,
)

Games = Annotated[
    Optional[str],
    typer.Option("--games", help="Comma list of games (breakout,enduro,ms_pacman,seaquest,space_invaders); default all five."),
]
SkipBad = Annotated[
    Optional[bool],
    typer.Option("--skip-bad-trials/--no-skip-bad-trials", help="List unreadable trials in index.csv instead of failing."),
]


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
def download_cmd(
    out: OutDir,
    games: Games = None,
    api_url: Annotated[Optional[str], typer.Option("--api-url", help="Zenodo API root (default https://zenodo.org/api).")] = None,
    record_id: Annotated[
        Optional[str], typer.Option("--record-id", help="Zenodo record id: 3451402 (v4, default) or 2603190 (v2, the paper's).")
    ] = None,
    release: Annotated[Optional[str], typer.Option("--release", help="auto | v2 | v4 (atari_head.release).")] = None,
    from_dir: Annotated[
        Optional[Path],
        typer.Option("--from-dir", file_okay=False, help="Use files placed by hand in this folder instead of the network."),
    ] = None,
    record: Annotated[
        Optional[Path], typer.Option("--record", dir_okay=False, help="Record JSON to verify --from-dir files against.")
    ] = None,
    retries: Annotated[Optional[int], typer.Option("--retries", min=0, help="Retries per file.")] = None,
    backoff: Annotated[Optional[float], typer.Option("--backoff", min=0, help="First retry delay (s), doubled each time.")] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", help="Socket timeout (s).")] = None,
    progress: Progress = True,
    params: ParamsFile = None,
) -> None:
    """Download (resumable, md5-verified) the game zips + meta_data.csv, or verify hand-placed files."""
    overrides = {"games": games, "api_url": api_url, "record_id": record_id, "retries": retries, "backoff": backoff,
                 "timeout": timeout, "release": release}
    cfg = _config(params, overrides, DOWNLOAD_READS)
    result = write_download(cfg, out, progress=progress, from_dir=from_dir, record=record)
    typer.echo(_download_line(result, out))


@app.command("preprocess")
@cli_errors
def preprocess_cmd(
    in_dir: Annotated[
        Path, typer.Option("--in", file_okay=False, help="Download output: <game>.zip files (v4) or flat trials (v2).")
    ],
    out: OutDir,
    games: Games = None,
    skip_bad_trials: SkipBad = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Trials preprocessed in parallel.")] = None,
    release: Annotated[Optional[str], typer.Option("--release", help="auto | v2 | v4 (atari_head.release).")] = None,
    progress: Progress = True,
    params: ParamsFile = None,
) -> None:
    """Replay every trial through the agents' preprocessing; write per-trial NPZs (both gaze alignments) and index.csv."""
    from fls.atari_head.preprocess import preprocess

    cfg = _config(params, {"games": games, "skip_bad_trials": skip_bad_trials, "workers": workers, "release": release},
                  PREPROCESS_READS)
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
def sample_cmd(
    out: OutDir,
    seed: Seed = None,
    games: Games = None,
    frames: Annotated[int, typer.Option("--frames", min=3, help="Raw frames per trial.")] = 300,
    trials: Annotated[int, typer.Option("--trials", min=0, help="Regular trials per game (plus one highscore trial).")] = 2,
    release: Annotated[Optional[str], typer.Option("--release", help="Layout: v4 (zips) or v2 (flat; auto = v4).")] = None,
    params: ParamsFile = None,
) -> None:
    """Write a small SYNTHETIC dataset in the real Atari-HEAD layout (real ALE frames, fake gaze)."""
    cfg = _config(params, {"games": games, "sample_seed": seed, "release": release}, SAMPLE_READS)
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
    from fls.atari_head.zenodo_server import ZenodoServer

    server = ZenodoServer(directory, record_id=record_id, port=port)
    typer.echo(f"serving {directory} as record {record_id}: --api-url {server.api_url} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
