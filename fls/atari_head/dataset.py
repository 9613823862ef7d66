"""Reader for preprocessed Atari-HEAD (``fls atari-head preprocess``): the scorers' view of the gaze data.

Fixations are stored as CSR (unique pixels + counts per input) because a dense (K, 210, 160) map
per trial would be ~130 KB per input; maps are rebuilt on demand. Schema: docs/atari_head.md.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fls.atari_head import AtariHeadError, paper_game
from fls.atari_head.flat import discover_flat_trials, read_flat_trial
from fls.atari_head.parse import decode_png, discover_trials, read_frame_pngs
from fls.atari_head.preprocess import ALIGNMENTS, FIX_ARRAYS, INDEX_COLUMNS, SCHEMA_VERSION
from fls.frames import FRAME_COLS, FRAME_ROWS, OBS_SHAPE

_ARRAYS = ("inputs", "frame_ids", "episode_ids", "actions")
_SCALARS = (
    "schema_version",
    "release",
    "game",
    "head_game",
    "trial_id",
    "subject",
    "stem",
    "highscore",
    "n_frames",
    "n_gaze_kept",
    "n_gaze_dropped",
    "n_null_gaze",
)


class Trial:
    """One preprocessed trial: network inputs and the fixation union of each input under one alignment.

    The NPZ holds the fixations of both alignments (``authors``, ``aligned``; fls.atari_head.preprocess);
    ``alignment`` picks which ones ``fix_*`` and the fixation methods expose.
    """

    def __init__(self, path: str | Path, alignment: str = "aligned") -> None:
        self.path = Path(path)
        if alignment not in ALIGNMENTS:
            raise AtariHeadError(f"alignment must be one of {list(ALIGNMENTS)}, got {alignment!r}")
        self.alignment = alignment
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: preprocessed trial not found")
        fix_keys = tuple(f"{alignment}_{n}" for n in FIX_ARRAYS)
        try:
            with np.load(self.path, allow_pickle=False) as z:
                if "schema_version" in z.files and int(z["schema_version"]) != SCHEMA_VERSION:
                    raise AtariHeadError(
                        f"{self.path}: schema_version {int(z['schema_version'])}, this code reads {SCHEMA_VERSION} "
                        f"(rerun `fls atari-head preprocess`)"
                    )
                missing = [k for k in (*_ARRAYS, *_SCALARS, *fix_keys) if k not in z.files]
                if missing:
                    raise AtariHeadError(f"{self.path}: missing arrays {missing} (not an fls Atari-HEAD trial?)")
                data = {k: z[k] for k in (*_ARRAYS, *_SCALARS)}
                data.update({n: z[k] for n, k in zip(FIX_ARRAYS, fix_keys)})
        except (OSError, ValueError) as exc:
            if isinstance(exc, AtariHeadError):
                raise
            raise AtariHeadError(f"{self.path}: not a readable NPZ ({exc})") from None
        if int(data["schema_version"]) != SCHEMA_VERSION:
            raise AtariHeadError(
                f"{self.path}: schema_version {int(data['schema_version'])}, this code reads {SCHEMA_VERSION}"
            )
        self.inputs: np.ndarray = data["inputs"]
        self.frame_ids: np.ndarray = data["frame_ids"]
        self.episode_ids: np.ndarray = data["episode_ids"]
        self.actions: np.ndarray = data["actions"]
        self.fix_offsets: np.ndarray = data["fix_offsets"]
        self.fix_rows: np.ndarray = data["fix_rows"]
        self.fix_cols: np.ndarray = data["fix_cols"]
        self.fix_counts: np.ndarray = data["fix_counts"]
        self.release = str(data["release"])
        self.game = str(data["game"])
        self.head_game = str(data["head_game"])
        self.trial_id = int(data["trial_id"])
        self.subject = str(data["subject"])
        self.stem = str(data["stem"])
        self.highscore = bool(data["highscore"])
        self.n_frames = int(data["n_frames"])
        self.n_gaze_kept = int(data["n_gaze_kept"])
        self.n_gaze_dropped = int(data["n_gaze_dropped"])
        self.n_null_gaze = int(data["n_null_gaze"])
        k = self.inputs.shape[0]
        if (
            self.inputs.dtype != np.uint8
            or self.inputs.shape[1:] != OBS_SHAPE
            or self.fix_offsets.shape != (k + 1,)
            or self.frame_ids.shape != (k, 2)
            or int(self.fix_offsets[-1]) != self.fix_rows.shape[0]
            or not (self.fix_rows.shape == self.fix_cols.shape == self.fix_counts.shape)
        ):
            raise AtariHeadError(f"{self.path}: inconsistent array shapes (inputs {self.inputs.shape})")

    @property
    def n_inputs(self) -> int:
        return int(self.inputs.shape[0])

    def _check(self, k: int) -> int:
        k = int(k)
        if not 0 <= k < self.n_inputs:
            raise IndexError(f"{self.path}: input {k} out of range 0..{self.n_inputs - 1}")
        return k

    def fixation_points(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, counts) of the unique fixated pixels of input k, at 210x160."""
        k = self._check(k)
        a, b = self.fix_offsets[k], self.fix_offsets[k + 1]
        return self.fix_rows[a:b].astype(np.int64), self.fix_cols[a:b].astype(np.int64), self.fix_counts[a:b].astype(np.int64)

    def n_fixations(self, k: int) -> int:
        """Total fixation count of input k (0 means the input is undefined for the metrics)."""
        return int(self.fixation_points(k)[2].sum())

    def fixation_map(self, k: int) -> np.ndarray:
        """(210, 160) int32 fixation counts of input k."""
        out = np.zeros((FRAME_ROWS, FRAME_COLS), dtype=np.int32)
        r, c, n = self.fixation_points(k)
        out[r, c] = n
        return out

    def fixation_maps(self, ks: Sequence[int] | np.ndarray) -> np.ndarray:
        """(len(ks), 210, 160) int32 fixation counts."""
        ks = [int(k) for k in np.asarray(ks).reshape(-1)]
        out = np.zeros((len(ks), FRAME_ROWS, FRAME_COLS), dtype=np.int32)
        for i, k in enumerate(ks):
            r, c, n = self.fixation_points(k)
            out[i, r, c] = n
        return out

    def __repr__(self) -> str:
        return f"Trial({self.game} {self.trial_id} {self.subject}, {self.n_inputs} inputs)"


def load_trial(path: str | Path, alignment: str = "aligned") -> Trial:
    return Trial(path, alignment)


def load_index(directory: str | Path) -> pd.DataFrame:
    """``index.csv`` of a preprocessed directory; ``path`` made absolute, ``skipped`` as '' when not skipped."""
    directory = Path(directory)
    p = directory / "index.csv"
    if not p.exists():
        raise FileNotFoundError(f"{p}: no index.csv (run `fls atari-head preprocess --out {directory}`)")
    df = pd.read_csv(
        p, dtype={"release": str, "subject": str, "stem": str, "path": str, "skipped": str}, keep_default_na=False
    )
    missing = [c for c in INDEX_COLUMNS if c not in df.columns]
    if missing:
        raise AtariHeadError(f"{p}: missing columns {missing}")
    df["path"] = [str(directory / q) if q else "" for q in df["path"]]
    df["highscore"] = df["highscore"].astype(int).astype(bool)
    return df


def iter_trials(directory: str | Path, game: str | None = None, alignment: str = "aligned") -> Iterator[Trial]:
    """Every non-skipped trial in the index (optionally of one game, by paper or Atari-HEAD name)."""
    df = load_index(directory)
    df = df[df["skipped"] == ""]
    if game is not None:
        df = df[df["game"] == paper_game(game)]
    for path in df["path"]:
        yield Trial(path, alignment)


def read_raw_rgb(raw_dir: str | Path, trial: Trial, numbers: Sequence[int]) -> dict[int, np.ndarray]:
    """RGB (210, 160, 3) uint8 of the raw files ``numbers`` (1-based) of a preprocessed trial, from the raw
    download (``<game>.zip`` for v4, the flat trial files for v2). The NPZs keep only the 84x84 gray
    inputs; the figures that show the colour frame read these few files back instead (one trial's tar)."""
    raw_dir = Path(raw_dir)
    want = sorted({int(n) for n in numbers})
    if trial.release == "v2":
        refs = [r for r in discover_flat_trials(raw_dir, trial.head_game) if r.stem == trial.stem]
        if not refs:
            raise AtariHeadError(f"{raw_dir}: no raw files of trial {trial.stem}")
        pngs = read_flat_trial(raw_dir, refs[0]).pngs
        name = refs[0].name
    else:
        zpath = raw_dir / f"{trial.head_game}.zip"
        if not zpath.exists():
            raise FileNotFoundError(f"{zpath}: raw Atari-HEAD zip not found")
        with zipfile.ZipFile(zpath) as zf:
            refs = [r for r in discover_trials(zf, trial.head_game) if r.stem == trial.stem and r.highscore == trial.highscore]
            if not refs:
                raise AtariHeadError(f"{zpath}: no trial {trial.stem}")
            pngs = read_frame_pngs(zf, refs[0])
        name = refs[0].name
    missing = [n for n in want if n not in pngs]
    if missing:
        raise AtariHeadError(f"{name}: no frame(s) {missing[:5]}")
    return {n: decode_png(pngs[n], f"{name}: frame {n}") for n in want}
