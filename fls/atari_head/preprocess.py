"""Replay Atari-HEAD trials through the agents' preprocessing and pair each network input with its gaze.

docs/atari_head.md, "Alignment"; 1-based file numbers. The trial is replayed as the authors' streaming-image env does
it, with no no-op and no fire reset: the reset observation (step 0) is file 1 alone; step m >= 1 is the
pixel-wise max of files 4m and 4m+1; each is processed to 84x84 gray and input k stacks steps k-3..k, the
slots before the reset zeroed (``fls.preprocessing.stack_inputs``). A trial of N files gives
``(N - 2) // 4 + 1`` inputs (step m needs file 4m+2 to exist: the env ends the episode when it reads past
the last file, and that last step's observation is replaced by a reset).

The gaze of input k is the union, with counts, at 210x160, of the gaze of label rows chosen by the
alignment (both are stored in every NPZ, the scorer picks one, ``ALIGNMENTS``):

- ``authors``: rows whose frame number is in {4m-1, 4m : m = k-3..k}, one frame earlier than the images,
  as the authors' ``benchmark_atari_head.py`` selects them; input 0 therefore has no gaze. Pixels are
  ``(round(y), round(x))`` with Python's half-to-even rounding, as theirs (the in-frame test is the same).
- ``aligned``: the rows of the very files each slot was pooled from ({4m, 4m+1}; {1} for step 0), pixels
  rounded half up (``fls.atari_head.parse.gaze_pixels``).

Stacks run on across episode boundaries inside a trial (the recording is continuous); the episode of
each input's last file is stored so a scorer can filter if it wants to.

One NPZ per trial (schema: docs/atari_head.md) and an ``index.csv`` listing every trial.
"""

from __future__ import annotations

import csv
import io
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from fls.atari_head import AtariHeadError, paper_game, parse_games
from fls.atari_head.flat import RELEASES, detect_release, discover_flat_trials, read_flat_trial
from fls.atari_head.parse import RawTrial, TrialRef, discover_trials, gaze_pixels, read_trial
from fls.atomic import atomic_path, atomic_write_text
from fls.frames import FRAME_COLS, FRAME_SKIP, OBS_SHAPE, OBS_SIZE, STACK
from fls.preprocessing import process_pair, stack_inputs

SCHEMA_VERSION = 2
ALIGNMENTS = ("authors", "aligned")
FIX_ARRAYS = ("fix_offsets", "fix_rows", "fix_cols", "fix_counts")
INDEX_COLUMNS = (
    "trial_id",
    "game",
    "subject",
    "highscore",
    "stem",
    "n_frames",
    "n_inputs",
    "n_gaze_kept",
    "n_gaze_dropped",
    "n_null_gaze",
    "path",
    "skipped",
    "release",
)


def step_files(m: int) -> tuple[int, int]:
    """The two files (1-based) max-pooled into step m's frame: (1, 1) for the reset, else (4m, 4m+1)."""
    return (1, 1) if m == 0 else (FRAME_SKIP * m, FRAME_SKIP * m + 1)


def gaze_files(m: int, alignment: str) -> tuple[int, ...]:
    """The files (1-based) whose label rows give step m's gaze under ``alignment``."""
    if alignment == "authors":
        return tuple(f for f in (FRAME_SKIP * m - 1, FRAME_SKIP * m) if f >= 1)
    if alignment == "aligned":
        return (1,) if m == 0 else step_files(m)
    raise ValueError(f"alignment must be one of {list(ALIGNMENTS)}, got {alignment!r}")


def input_raw_frames(k: int) -> list[int]:
    """The files (1-based) network input k's image is built from, oldest first (repeats removed)."""
    out: list[int] = []
    for m in range(max(0, k - STACK + 1), k + 1):
        out.extend(f for f in step_files(m) if f not in out)
    return out


def input_gaze_frames(k: int, alignment: str) -> list[int]:
    """The label rows (1-based frame numbers) whose gaze forms input k's fixations, oldest first."""
    out: list[int] = []
    for m in range(max(0, k - STACK + 1), k + 1):
        out.extend(gaze_files(m, alignment))
    return out


def count_inputs(n_frames: int) -> int:
    """Steps the replay of ``n_frames`` files yields (step m needs file 4m+2; none without 2 files)."""
    return 0 if n_frames < 2 else (n_frames - 2) // FRAME_SKIP + 1


@dataclass
class TrialArrays:
    inputs: np.ndarray  # (K, 4, 84, 84) uint8
    frame_ids: np.ndarray  # (K, 2) int32: the files the last slot pooled
    episode_ids: np.ndarray  # (K,) int32, -1 where null
    actions: np.ndarray  # (K,) int16, -1 where null
    fixations: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]  # alignment -> CSR arrays


def build_inputs(trial: RawTrial) -> np.ndarray:
    """(K, 4, 84, 84) uint8 network inputs; decodes only the frames the protocol uses."""
    k = count_inputs(trial.n_frames)
    if k == 0:
        return np.zeros((0, *OBS_SHAPE), dtype=np.uint8)
    processed = np.empty((k, OBS_SIZE, OBS_SIZE), dtype=np.uint8)
    for m in range(k):
        a, b = step_files(m)
        fa = trial.frame(a)
        processed[m] = process_pair(fa, fa if b == a else trial.frame(b))
    return stack_inputs(processed)


def build_fixations(trial: RawTrial, alignment: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CSR fixation unions per input: offsets (K+1,), rows, cols, counts (unique pixels, row-major order)."""
    labels = trial.labels
    k_total = count_inputs(trial.n_frames)
    # Linear pixel indices of the kept gazes of each step's gaze files.
    per_step: list[np.ndarray] = []
    for m in range(k_total):
        parts = [np.zeros(0, dtype=np.int64)]
        for f in gaze_files(m, alignment):
            x, y = labels.gaze(f - 1)
            rows, cols, ok = gaze_pixels(x, y)
            if alignment == "authors":  # Python's round(): half to even (a gaze at x = 100.5 is column 100)
                rows, cols = np.rint(y), np.rint(x)
            parts.append((rows[ok] * FRAME_COLS + cols[ok]).astype(np.int64))
        per_step.append(np.concatenate(parts))
    offsets = np.zeros(k_total + 1, dtype=np.int64)
    lin_all: list[np.ndarray] = []
    cnt_all: list[np.ndarray] = []
    for k in range(k_total):
        lin = np.concatenate(per_step[max(0, k - STACK + 1) : k + 1])
        uniq, counts = np.unique(lin, return_counts=True)
        lin_all.append(uniq)
        cnt_all.append(counts)
        offsets[k + 1] = offsets[k] + uniq.shape[0]
    lin = np.concatenate(lin_all) if lin_all else np.zeros(0, dtype=np.int64)
    counts = np.concatenate(cnt_all) if cnt_all else np.zeros(0, dtype=np.int64)
    return (
        offsets,
        (lin // FRAME_COLS).astype(np.int16),
        (lin % FRAME_COLS).astype(np.int16),
        counts.astype(np.int32),
    )


def trial_arrays(trial: RawTrial) -> TrialArrays:
    k = count_inputs(trial.n_frames)
    pooled = np.array([step_files(m) for m in range(k)], dtype=np.int32).reshape(k, 2)
    last = pooled[:, 1]
    ep = [trial.labels.episode_id[f - 1] for f in last]
    ac = [trial.labels.action[f - 1] for f in last]
    return TrialArrays(
        inputs=build_inputs(trial),
        frame_ids=pooled,
        episode_ids=np.array([-1 if v is None else v for v in ep], dtype=np.int32),
        actions=np.array([-1 if v is None else v for v in ac], dtype=np.int16),
        fixations={a: build_fixations(trial, a) for a in ALIGNMENTS},
    )


def write_trial_npz(path: Path, ref: TrialRef, trial: RawTrial, arrays: TrialArrays, release: str) -> None:
    payload: dict[str, Any] = {
        "inputs": arrays.inputs,
        "frame_ids": arrays.frame_ids,
        "episode_ids": arrays.episode_ids,
        "actions": arrays.actions,
        "schema_version": np.int32(SCHEMA_VERSION),
        "release": np.str_(release),
        "game": np.str_(paper_game(ref.game)),
        "head_game": np.str_(ref.game),
        "trial_id": np.int64(ref.trial_id),
        "subject": np.str_(ref.subject),
        "stem": np.str_(ref.stem),
        "highscore": np.bool_(ref.highscore),
        "n_frames": np.int64(trial.n_frames),
        "n_gaze_kept": np.int64(trial.labels.n_kept),
        "n_gaze_dropped": np.int64(trial.labels.n_dropped),
        "n_null_gaze": np.int64(trial.labels.n_null_gaze),
    }
    for alignment, csr in arrays.fixations.items():
        for name, arr in zip(FIX_ARRAYS, csr):
            payload[f"{alignment}_{name}"] = arr
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **payload)


def _write_index(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(INDEX_COLUMNS), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    atomic_write_text(path, buf.getvalue())


@dataclass
class PreprocessSummary:
    n_trials: int
    n_skipped: int
    n_raw_frames: int
    n_inputs: int
    seconds: float
    index_path: Path

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_trials": self.n_trials,
            "n_skipped": self.n_skipped,
            "n_raw_frames": self.n_raw_frames,
            "n_inputs": self.n_inputs,
            "seconds": round(self.seconds, 3),
            "index": str(self.index_path),
        }


def _process_trial(source: Path, ref: TrialRef, out_dir: Path, skip_bad_trials: bool, release: str) -> dict[str, Any]:
    """Read, preprocess and write one trial; returns its index row (``skipped`` set when it was bad).

    ``source`` is the game zip (v4) or the flat record folder (v2).
    """
    rel = Path("trials") / paper_game(ref.game) / f"{ref.trial_id}.npz"
    row: dict[str, Any] = {
        "release": release,
        "trial_id": ref.trial_id,
        "game": paper_game(ref.game),
        "subject": ref.subject,
        "highscore": int(ref.highscore),
        "stem": ref.stem,
        "n_frames": 0,
        "n_inputs": 0,
        "n_gaze_kept": 0,
        "n_gaze_dropped": 0,
        "n_null_gaze": 0,
        "path": "",
        "skipped": "",
    }
    try:
        if release == "v2":
            trial = read_flat_trial(source, ref)
        else:
            with zipfile.ZipFile(source) as zf:
                trial = read_trial(zf, ref)
        arrays = trial_arrays(trial)
    except AtariHeadError as exc:
        if not skip_bad_trials:
            raise
        row["skipped"] = str(exc)
        return row
    write_trial_npz(out_dir / rel, ref, trial, arrays, release)
    row.update(
        n_frames=trial.n_frames,
        n_inputs=int(arrays.inputs.shape[0]),
        n_gaze_kept=trial.labels.n_kept,
        n_gaze_dropped=trial.labels.n_dropped,
        n_null_gaze=trial.labels.n_null_gaze,
        path=rel.as_posix(),
    )
    return row


def preprocess(
    in_dir: str | Path,
    out_dir: str | Path,
    games: str | list[str] | None = None,
    *,
    skip_bad_trials: bool = False,
    workers: int = 1,
    progress: bool = True,
    release: str = "auto",
) -> PreprocessSummary:
    """Preprocess every trial of ``games`` found in ``in_dir`` into ``out_dir``.

    ``release``: "v4" (``in_dir/<game>.zip``), "v2" (flat trials + meta_data.csv, record 2603190) or
    "auto" (``fls.atari_head.flat.detect_release``).

    With ``skip_bad_trials`` a trial that fails to parse is listed in ``index.csv`` with its reason in
    ``skipped`` (and no NPZ); otherwise the first bad trial raises ``AtariHeadError``. ``workers`` > 1
    processes trials in parallel processes (the output does not depend on it; bz2 and PNG decoding
    dominate, so this scales with cores on the real ~3.4M-frame dataset).
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if workers < 1:
        raise ValueError(f"preprocess: workers must be >= 1, got {workers}")
    heads = parse_games(games)
    if release == "auto":
        release = detect_release(in_dir, heads)
    if release not in RELEASES:
        raise ValueError(f"preprocess: release must be auto, v2 or v4, got {release!r}")
    t0 = time.perf_counter()
    jobs: list[tuple[Path, TrialRef]] = []
    if release == "v4":
        zips = {g: in_dir / f"{g}.zip" for g in heads}
        for g, z in zips.items():
            if not z.exists():
                raise FileNotFoundError(f"{z}: Atari-HEAD zip for '{g}' not found (run `fls atari-head download` first)")
            if not zipfile.is_zipfile(z):
                raise AtariHeadError(f"{z}: not a readable zip file")
    for g in heads:
        if release == "v4":
            where = zips[g]
            refs = discover_trials(where, g)
            if not refs:
                raise AtariHeadError(f"{where}: no trials found under {g}/ (expected {g}/<trial>.tar.bz2 + .txt)")
        else:
            where = in_dir
            refs = discover_flat_trials(in_dir, g)
            if not refs:
                raise AtariHeadError(f"{in_dir / 'meta_data.csv'}: lists no trial of {g}")
        seen: dict[int, str] = {}
        for ref in refs:
            if ref.trial_id in seen:
                raise AtariHeadError(f"{where}: trial id {ref.trial_id} appears twice ({seen[ref.trial_id]}, {ref.name})")
            seen[ref.trial_id] = ref.name
            jobs.append((where, ref))
    bar = tqdm(total=len(jobs), desc="atari-head preprocess", unit="trial", disable=not progress)
    rows: list[dict[str, Any]] = []
    try:
        if workers == 1:
            for z, ref in jobs:
                rows.append(_process_trial(z, ref, out_dir, skip_bad_trials, release))
                bar.update(1)
                bar.set_postfix(frames=sum(r["n_frames"] for r in rows))
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(_process_trial, z, ref, out_dir, skip_bad_trials, release) for z, ref in jobs]
                for fut in futures:  # in job order, so index.csv does not depend on scheduling
                    rows.append(fut.result())
                    bar.update(1)
    finally:
        bar.close()
    index_path = out_dir / "index.csv"
    _write_index(index_path, rows)
    n_skipped = sum(1 for r in rows if r["skipped"])
    return PreprocessSummary(
        n_trials=len(rows) - n_skipped,
        n_skipped=n_skipped,
        n_raw_frames=sum(r["n_frames"] for r in rows),
        n_inputs=sum(r["n_inputs"] for r in rows),
        seconds=time.perf_counter() - t0,
        index_path=index_path,
    )
