"""Getting the raw Atari-HEAD files a params file asks for, and which ``atari_head`` keys each step reads.

``acquire`` is the ``atari_head_acquire`` stage: ``data.atari_head_source`` picks the synthetic sample made
offline or the real Zenodo record, so that DVC runs one command whatever the source (a DVC stage cannot
branch on a param). ``write_sample`` and ``write_download`` are also what ``fls atari-head sample`` and
``download`` run, so the stage's files are the ones those commands write.

Each step takes only its own fields from the ``atari_head`` section (``fls.config.load_config(reads=...)``):
``*_READS`` below are those fields, and the atari_head stages of dvc.yaml list exactly them, minus
``UNTRACKED``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fls.atari_head import AtariHeadConfig
from fls.atari_head.download import DownloadResult, download
from fls.atari_head.download import from_dir as place_from_dir
from fls.atari_head.sample import make_sample
from fls.config import ConfigError, load_config, resolved
from fls.runinfo import write_run_info
from fls.stage_files import RUN_INFO

SOURCES = ("sample", "zenodo")

SAMPLE_READS = ("games", "sample_seed", "release")
DOWNLOAD_READS = ("games", "api_url", "record_id", "retries", "backoff", "timeout", "release")
PREPROCESS_READS = ("games", "skip_bad_trials", "workers", "release")
# Read, but not listed in dvc.yaml: how the files are fetched or processed, never which bytes land on disk
# (the record id and its md5 checksums pin a download; each trial is preprocessed alone and index.csv keeps
# the job order). A retry count or worker count must not rerun a 25 GB download or the preprocessing; they
# are recorded in run_info.json, the provenance beside the files.
UNTRACKED = ("api_url", "retries", "backoff", "timeout", "workers")


@dataclass
class DataConfig:
    """The ``data`` section of params.yaml: where ``atari_head_acquire`` gets the raw files."""

    atari_head_source: str = "sample"  # sample: SYNTHETIC stand-in made offline | zenodo: the real record
    sample_frames: int = 300  # sample only: raw frames per synthetic trial
    sample_trials: int = 2  # sample only: regular trials per game (plus one highscore trial)

    def fields_read(self) -> tuple[str, ...]:
        """The fields acquiring from this source reads (a download ignores the sample's size)."""
        if self.atari_head_source == "sample":
            return ("atari_head_source", "sample_frames", "sample_trials")
        return ("atari_head_source",)

    def validate(self) -> None:
        if self.atari_head_source not in SOURCES:
            raise ConfigError(f"data.atari_head_source must be sample or zenodo, got {self.atari_head_source!r}")
        if self.sample_frames < 3:
            raise ConfigError(f"data: field 'sample_frames' must be >= 3, got {self.sample_frames}")
        if self.sample_trials < 0:
            raise ConfigError(f"data: field 'sample_trials' must be >= 0, got {self.sample_trials}")


def write_sample(cfg: AtariHeadConfig, out: str | Path, *, frames: int, trials: int) -> dict[str, Path]:
    """The synthetic sample (``cfg.release`` v2 = flat layout, else v4) plus run_info.json in ``out``."""
    out = Path(out)
    layout = "v2" if cfg.release == "v2" else "v4"
    paths = make_sample(out, cfg.sample_seed, cfg.games, frames_per_trial=frames, trials_per_game=trials, release=layout)
    write_run_info(
        out / RUN_INFO,
        resolved(cfg),
        stage="atari_head.sample",
        extra={"frames_per_trial": frames, "trials_per_game": trials, "files": sorted(paths)},
    )
    return paths


def write_download(
    cfg: AtariHeadConfig,
    out: str | Path,
    *,
    progress: bool,
    from_dir: str | Path | None = None,
    record: str | Path | None = None,
) -> DownloadResult:
    """The record's files for ``cfg.games`` (or hand-placed ones from ``from_dir``) plus run_info.json in ``out``."""
    out = Path(out)
    if from_dir is not None:
        result = place_from_dir(from_dir, cfg.games, out, record=record, release=cfg.release)
    else:
        if record is not None:
            raise ValueError("record only applies with from_dir")
        result = download(
            cfg.games,
            out,
            api_url=cfg.api_url,
            record_id=cfg.record_id,
            retries=cfg.retries,
            backoff=cfg.backoff,
            timeout=cfg.timeout,
            progress=progress,
            release=cfg.release,
        )
    write_run_info(out / RUN_INFO, resolved(cfg), stage="atari_head.download", extra={"result": result.as_dict()})
    return result


def acquire(
    params_file: str | Path, out: str | Path, *, progress: bool = False
) -> tuple[str, AtariHeadConfig, dict[str, Path] | DownloadResult]:
    """``data.atari_head_source`` of ``params_file`` into ``out``: (source, its atari_head config, what
    ``write_sample`` or ``write_download`` returned)."""
    data = load_config(DataConfig, params_file, "data", reads=DataConfig.fields_read)
    if data.atari_head_source == "sample":
        cfg = load_config(AtariHeadConfig, params_file, "atari_head", reads=SAMPLE_READS)
        return "sample", cfg, write_sample(cfg, out, frames=data.sample_frames, trials=data.sample_trials)
    cfg = load_config(AtariHeadConfig, params_file, "atari_head", reads=DOWNLOAD_READS)
    return "zenodo", cfg, write_download(cfg, out, progress=progress)
