"""Replay Atari-HEAD trials through the agents' preprocessing and pair each network input with its gaze.

SPEC "Atari-HEAD" scoring alignment, with the 1-based frame numbers of the files: network input k
(k = 0, 1, ...) stacks the processed frames of skips m = k-3..k (m >= 0), where skip m's processed
frame is ``fls.preprocessing.process_pair(frame 4m+2, frame 4m+3)``. Its fixations are the union,
with counts, of the gazes of those (up to) 8 raw frames, at 210x160, rounded to the nearest pixel.

The first three inputs have fewer than 4 real skips; their missing stack slots are zeros, which is
exactly what ``ale_py.vector_env.AtariVectorEnv`` (the env ``fls.envs`` builds on) returns after a
reset with ``noop_max=0`` (measured: slots 0-2 all zero, slot 3 the first frame), and what
``fls.preprocessing.stack_inputs`` produces. They are kept as valid inputs (the agents see such
stacks at every episode start), and their fixation union covers only the skips that exist.
Stacks run on across episode boundaries inside a trial (the recording is continuous); the
episode of each input's last raw frame is stored so a scorer can filter if it wants to.

One NPZ per trial (schema: docs/atari_head.md) and an ``index.csv`` listing every trial.
"""

from __future__ import annotations

import csv
import io
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from fls.atari_head import FRAME_COLS, AtariHeadError, paper_game, parse_games
from fls.atari_head.parse import RawTrial, TrialRef, discover_trials, gaze_pixels, read_trial
from fls.atomic import atomic_path, atomic_write_text
from fls.preprocessing import FRAME_SKIP, STACK, process_pair, stack_inputs

SCHEMA_VERSION = 1
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
)


def skip_frames(m: int) -> tuple[int, int]:
    """The two raw frames (1-based numbers) max-pooled into skip m's processed frame."""
    return FRAME_SKIP * m + 2, FRAME_SKIP * m + 3


def input_raw_frames(k: int) -> list[int]:
    """The raw frames (1-based) that network input k is built from, oldest first."""
    out: list[int] = []
    for m in range(max(0, k - STACK + 1), k + 1):
        out.extend(skip_frames(m))
    return out


def count_inputs(n_frames: int) -> int:
    """Number of complete skips (both pooled frames exist) in a trial of ``n_frames`` raw frames."""
    return 0 if n_frames < 3 else (n_frames - 3) // FRAME_SKIP + 1


@dataclass
class TrialArrays:
    inputs: np.ndarray  # (K, 4, 84, 84) uint8
    frame_ids: np.ndarray  # (K,) int32
    episode_ids: np.ndarray  # (K,) int32, -1 where null
    actions: np.ndarray  # (K,) int16, -1 where null
    fix_offsets: np.ndarray  # (K+1,) int64
    fix_rows: np.ndarray  # int16
    fix_cols: np.ndarray  # int16
    fix_counts: np.ndarray  # int32


def build_inputs(trial: RawTrial) -> np.ndarray:
    """(K, 4, 84, 84) uint8 network inputs; decodes only the frames the protocol uses."""
    k = count_inputs(trial.n_frames)
    if k == 0:
        return np.zeros((0, STACK, 84, 84), dtype=np.uint8)
    processed = np.empty((k, 84, 84), dtype=np.uint8)
    for m in range(k):
        a, b = skip_frames(m)
        processed[m] = process_pair(trial.frame(a), trial.frame(b))
    return stack_inputs(processed)


def build_fixations(trial: RawTrial) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CSR fixation unions per input: offsets (K+1,), rows, cols, counts (unique pixels, row-major order)."""
    labels = trial.labels
    k_total = count_inputs(trial.n_frames)
    # Linear pixel indices of the kept gazes of each skip's two frames.
    per_skip: list[np.ndarray] = []
    for m in range(k_total):
        parts = []
        for f in skip_frames(m):
            x, y = labels.gaze(f - 1)
            rows, cols, ok = gaze_pixels(x, y)
            parts.append((rows[ok] * FRAME_COLS + cols[ok]).astype(np.int64))
        per_skip.append(np.concatenate(parts))
    offsets = np.zeros(k_total + 1, dtype=np.int64)
    lin_all: list[np.ndarray] = []
    cnt_all: list[np.ndarray] = []
    for k in range(k_total):
        lin = np.concatenate(per_skip[max(0, k - STACK + 1) : k + 1])
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
    last = np.array([skip_frames(m)[1] for m in range(k)], dtype=np.int32)
    ep = np.array([trial.labels.episode_id[f - 1] for f in last], dtype=object)
    ac = np.array([trial.labels.action[f - 1] for f in last], dtype=object)
    offsets, rows, cols, counts = build_fixations(trial)
    return TrialArrays(
        inputs=build_inputs(trial),
        frame_ids=last,
        episode_ids=np.array([-1 if v is None else v for v in ep], dtype=np.int32),
        actions=np.array([-1 if v is None else v for v in ac], dtype=np.int16),
        fix_offsets=offsets,
        fix_rows=rows,
        fix_cols=cols,
        fix_counts=counts,
    )


def write_trial_npz(path: Path, ref: TrialRef, trial: RawTrial, arrays: TrialArrays) -> None:
    payload: dict[str, Any] = {
        "inputs": arrays.inputs,
        "frame_ids": arrays.frame_ids,
        "episode_ids": arrays.episode_ids,
        "actions": arrays.actions,
        "fix_offsets": arrays.fix_offsets,
        "fix_rows": arrays.fix_rows,
        "fix_cols": arrays.fix_cols,
        "fix_counts": arrays.fix_counts,
        "schema_version": np.int32(SCHEMA_VERSION),
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


def _process_trial(zip_path: Path, ref: TrialRef, out_dir: Path, skip_bad_trials: bool) -> dict[str, Any]:
    """Read, preprocess and write one trial; returns its index row (``skipped`` set when it was bad)."""
    rel = Path("trials") / paper_game(ref.game) / f"{ref.trial_id}.npz"
    row: dict[str, Any] = {
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
        with zipfile.ZipFile(zip_path) as zf:
            trial = read_trial(zf, ref)
        arrays = trial_arrays(trial)
    except AtariHeadError as exc:
        if not skip_bad_trials:
            raise
        row["skipped"] = str(exc)
        return row
    write_trial_npz(out_dir / rel, ref, trial, arrays)
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
) -> PreprocessSummary:
    """Preprocess every trial of ``games`` found in ``in_dir/<game>.zip`` into ``out_dir``.

    With ``skip_bad_trials`` a trial that fails to parse is listed in ``index.csv`` with its reason in
    ``skipped`` (and no NPZ); otherwise the first bad trial raises ``AtariHeadError``. ``workers`` > 1
    processes trials in parallel processes (the output does not depend on it; bz2 and PNG decoding
    dominate, so this scales with cores on the real ~3.4M-frame dataset).
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if workers < 1:
        raise ValueError(f"preprocess: workers must be >= 1, got {workers}")
    heads = parse_games(games)
    zips = {g: in_dir / f"{g}.zip" for g in heads}
    for g, z in zips.items():
        if not z.exists():
            raise FileNotFoundError(f"{z}: Atari-HEAD zip for '{g}' not found (run `fls atari-head download` first)")
        if not zipfile.is_zipfile(z):
            raise AtariHeadError(f"{z}: not a readable zip file")
    t0 = time.perf_counter()
    jobs: list[tuple[Path, TrialRef]] = []
    for g in heads:
        refs = discover_trials(zips[g], g)
        if not refs:
            raise AtariHeadError(f"{zips[g]}: no trials found under {g}/ (expected {g}/<trial>.tar.bz2 + .txt)")
        seen: dict[int, str] = {}
        for ref in refs:
            if ref.trial_id in seen:
                raise AtariHeadError(f"{zips[g]}: trial id {ref.trial_id} appears twice ({seen[ref.trial_id]}, {ref.name})")
            seen[ref.trial_id] = ref.name
            jobs.append((zips[g], ref))
    bar = tqdm(total=len(jobs), desc="atari-head preprocess", unit="trial", disable=not progress)
    rows: list[dict[str, Any]] = []
    try:
        if workers == 1:
            for z, ref in jobs:
                rows.append(_process_trial(z, ref, out_dir, skip_bad_trials))
                bar.update(1)
                bar.set_postfix(frames=sum(r["n_frames"] for r in rows))
        else:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(_process_trial, z, ref, out_dir, skip_bad_trials) for z, ref in jobs]
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
