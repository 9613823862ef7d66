"""A small SYNTHETIC Atari-HEAD stand-in, byte for byte in the real dataset's on-disk layout.

The real dataset is ~25 GB behind a download; tests, CI and first-time users need something that
exercises the same code paths (zip -> tar.bz2 of PNGs -> label parsing -> alignment) in seconds.
Frames are real ALE gameplay (frameskip 1, no sticky actions, a seeded sticky-random policy); the
gaze is fake: it follows the centroid of what moved between consecutive frames, with noise, a few
``null`` rows, ``null`` fields and out-of-frame points, like the quirks of the real labels. It is
marked synthetic everywhere (README_SYNTHETIC.txt, subject "SYN", a ``synthetic`` column in
meta_data.csv, the record title) and must never be reported as human gaze.

Same seed -> byte-identical files (fixed zip timestamps, tar mtimes/owners, member order).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from ale_py import Action, ALEInterface, LoggerMode, roms

from fls.atari_head import PAPER_RECORD_ID, RECORD_ID, parse_games
from fls.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from fls.frames import FRAME_COLS, FRAME_ROWS

SUBJECT = "SYN"
DATE = "Jan-01-00-00-00"
LABEL_HEADER = "frame_id,episode_id,score,duration(ms),unclipped_reward,action,gaze_positions"
META_COLUMNS = (
    "GameName",
    "trial_id",
    "subject_id",
    "load_trial",
    "highest_score",
    "total_frame",
    "total_game_play_time(ms)",
    "total_episode",
    "avg_error",
    "percent_bad_frames",
    "synthetic",
)
# The early release's meta_data.csv (record 2603190): the columns the authors read, plus a few.
V2_META_COLUMNS = ("TrialNumber", "Subject", "Game", "NumberOfFrames", "HighestScore", "synthetic")
V2_GAME = {"breakout": "Breakout", "enduro": "Enduro", "ms_pacman": "Mspacman", "seaquest": "Seaquest",
           "space_invaders": "SpaceInvaders"}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
README = """\
SYNTHETIC Atari-HEAD sample -- NOT HUMAN DATA.

Written by `fls atari-head sample` (fls.atari_head.sample) with seed {seed}.
Frames are real ALE gameplay of a seeded random policy; the gaze is synthetic (it follows what moves
on screen, plus noise). The layout, file names and label format match the real Atari-HEAD dataset
(Zenodo record 3451402, https://zenodo.org/records/3451402) so that the download, parse and
preprocessing code can be tested end to end. Never report scores computed on this data as results.
"""


@dataclass
class _TrialData:
    stem: str
    trial_id: int
    number: int
    highscore: bool
    tar_bz2: bytes
    labels: str
    n_frames: int
    max_score: int
    n_episodes: int
    total_ms: int


def _zinfo(name: str, compress: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = compress
    info.external_attr = ((0o40755 if name.endswith("/") else 0o100644) & 0xFFFF) << 16
    info.create_system = 3
    return info


def _tar_bz2(files: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2", format=tarfile.GNU_FORMAT, compresslevel=9) as tar:
        for name, data in files:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 0
            ti.mode = 0o644
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class ZipTrial:
    """One trial as it sits in a game zip: ``<stem>.tar.bz2`` and ``<stem>.txt``."""

    stem: str
    highscore: bool
    tar_bz2: bytes
    labels: str


def frames_tar_bz2(frames: list[tuple[str, bytes]]) -> bytes:
    """A deterministic tar.bz2 of ``(member name, bytes)`` in the given order (mtime 0, root owner)."""
    return _tar_bz2(frames)


def game_zip_bytes(game: str, trials: list[ZipTrial]) -> bytes:
    """A game zip in the Atari-HEAD layout (``<game>/``, ``<game>/highscore/``), fixed timestamps."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(_zinfo(f"{game}/", zipfile.ZIP_STORED), b"")
        if any(t.highscore for t in trials):
            zf.writestr(_zinfo(f"{game}/highscore/", zipfile.ZIP_STORED), b"")
        for t in trials:
            folder = f"{game}/highscore" if t.highscore else game
            zf.writestr(_zinfo(f"{folder}/{t.stem}.tar.bz2", zipfile.ZIP_STORED), t.tar_bz2)
            zf.writestr(_zinfo(f"{folder}/{t.stem}.txt", zipfile.ZIP_DEFLATED), t.labels)
    return buf.getvalue()


def _fmt(v: float) -> str:
    return f"{v:.2f}"


def _play_trial(game: str, seed_seq: list[int], n_frames: int, trial_id: int, highscore: bool) -> _TrialData:
    rng = np.random.default_rng(seed_seq)
    ALEInterface.setLoggerMode(LoggerMode.Error)  # static: silences the banner of the next constructor too
    ale = ALEInterface()
    ale.setInt("random_seed", int(rng.integers(0, 2**31 - 1)))
    ale.setFloat("repeat_action_probability", 0.0)
    ale.setInt("frame_skip", 1)
    ale.loadROM(roms.get_rom_path(game))
    ale.reset_game()
    actions = [a.value for a in ale.getMinimalActionSet()]
    number = int(rng.integers(1_000_000, 9_999_999))
    stem = f"{trial_id}_{SUBJECT}_{number}_{DATE}"
    frames: list[tuple[str, bytes]] = []
    lines = [LABEL_HEADER]
    prev_gray: np.ndarray | None = None
    target = np.array([FRAME_COLS / 2, FRAME_ROWS / 2])  # (x, y)
    gaze = target.copy()
    action = actions[0]
    episode, score, max_score, total_ms = 0, 0, 0, 0
    for i in range(1, n_frames + 1):
        rgb = ale.getScreenRGB()
        ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        assert ok
        frames.append((f"{stem}/{SUBJECT}_{number}_{i}.png", png.tobytes()))
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.int16)
        if prev_gray is not None:
            moved = np.argwhere(np.abs(gray - prev_gray) > 10)
            if moved.shape[0]:
                target = np.array([moved[:, 1].mean(), moved[:, 0].mean()])
        prev_gray = gray
        gaze = 0.6 * gaze + 0.4 * target  # eyes lag behind what moves
        if rng.random() < 0.2:
            action = actions[int(rng.integers(len(actions)))]
        reward = int(ale.act(action))
        duration = int(rng.integers(40, 90))
        total_ms += duration
        if rng.random() < 0.04:
            gaze_txt = "null"
        else:
            pts = gaze + rng.normal(0.0, 4.0, size=(int(rng.integers(1, 7)), 2))
            if rng.random() < 0.03:  # the eye tracker also reports points off the screen
                pts[0] = [float(rng.uniform(-20, -1)), float(rng.uniform(FRAME_ROWS + 1, FRAME_ROWS + 20))]
            gaze_txt = ",".join(f"{_fmt(x)},{_fmt(y)}" for x, y in pts)
        dur_txt = "null" if rng.random() < 0.01 else str(duration)
        lines.append(f"{SUBJECT}_{number}_{i},{episode},{score},{dur_txt},{reward},{action},{gaze_txt}")
        score += reward
        max_score = max(max_score, score)
        if ale.game_over():
            ale.reset_game()
            episode += 1
            score = 0
    frames.sort(key=lambda f: f[0])  # name order, as tar of a directory: frame 10 before frame 2
    return _TrialData(
        stem=stem,
        trial_id=trial_id,
        number=number,
        highscore=highscore,
        tar_bz2=_tar_bz2(frames),
        labels="\n".join(lines) + "\n",
        n_frames=n_frames,
        max_score=max_score,
        n_episodes=episode + 1,
        total_ms=total_ms,
    )


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def record_json(files: dict[str, bytes], record_id: str = RECORD_ID, *, title: str = "") -> dict:
    """A Zenodo REST record (current API shape) listing ``files`` with sizes and md5 checksums."""
    api = "https://zenodo.org/api"
    return {
        "id": int(record_id) if record_id.isdigit() else record_id,
        "metadata": {"title": title},
        "files": [
            {
                "key": key,
                "size": len(data),
                "checksum": f"md5:{_md5(data)}",
                "links": {
                    "self": f"{api}/records/{record_id}/files/{key}",
                    "content": f"{api}/records/{record_id}/files/{key}/content",
                },
            }
            for key, data in sorted(files.items())
        ],
    }


def make_sample(
    out_dir: str | Path,
    seed: int = 0,
    games: str | list[str] | None = None,
    *,
    frames_per_trial: int = 300,
    trials_per_game: int = 2,
    highscore_trials: int = 1,
    release: str = "v4",
) -> dict[str, Path]:
    """Write the synthetic dataset into ``out_dir``; returns {file key: path}.

    ``release`` "v4": per-game zips (highscore trials under ``<game>/highscore/``), record 3451402. "v2": the
    early release's flat layout (every trial's ``.tar.bz2`` + ``.txt`` at the root, highscore trials as plain
    trials) and its meta_data.csv with numbers written as floats ("200.0"), ``Mspacman`` spelling, and one
    row with an empty cell (a reader must drop it), record 2603190.
    """
    if release not in ("v2", "v4"):
        raise ValueError(f"sample: release must be v2 or v4, got {release!r}")
    if frames_per_trial < 1 or trials_per_game < 0 or highscore_trials < 0 or trials_per_game + highscore_trials < 1:
        raise ValueError(
            f"sample: need frames_per_trial >= 1 and at least one trial, got {frames_per_trial=}, "
            f"{trials_per_game=}, {highscore_trials=}"
        )
    out = Path(out_dir)
    heads = parse_games(games)
    files: dict[str, bytes] = {}
    meta_rows: list[list[str]] = []
    v2_rows: list[list[str]] = []
    for gi, game in enumerate(heads):
        members: list[ZipTrial] = []
        for j in range(trials_per_game + highscore_trials):
            hs = j >= trials_per_game and release == "v4"
            trial_id = 100 * (gi + 1) + j + 1
            t = _play_trial(game, [seed, gi, j], frames_per_trial, trial_id, hs)
            if release == "v2":
                files[f"{t.stem}.tar.bz2"] = t.tar_bz2
                files[f"{t.stem}.txt"] = t.labels.encode()
                v2_rows.append(
                    [f"{t.trial_id}.0", SUBJECT, V2_GAME[game], f"{float(t.n_frames)}", f"{float(t.max_score)}", "1"]
                )
                continue
            members.append(ZipTrial(stem=t.stem, highscore=hs, tar_bz2=t.tar_bz2, labels=t.labels))
            meta_rows.append(
                [
                    f"{game}_highscore" if hs else game,
                    str(t.trial_id),
                    SUBJECT,
                    "",
                    str(t.max_score),
                    str(t.n_frames),
                    str(t.total_ms),
                    str(t.n_episodes),
                    "",
                    "",
                    "1",
                ]
            )
        if release == "v4":
            files[f"{game}.zip"] = game_zip_bytes(game, members)
    meta = io.StringIO()
    w = csv.writer(meta, lineterminator="\n")
    if release == "v4":
        w.writerow(META_COLUMNS)
        w.writerows(meta_rows)
    else:
        w.writerow(V2_META_COLUMNS)
        w.writerows(v2_rows[:1] + [["999.0", SUBJECT, "Breakout", "", "", "1"]] + v2_rows[1:])
    files["meta_data.csv"] = meta.getvalue().encode()
    enums = sorted(Action.__members__.items(), key=lambda kv: kv[1].value)
    files["action_enums.txt"] = "".join(f"{name} = {a.value}\n" for name, a in enums).encode()
    paths: dict[str, Path] = {}
    for key, data in files.items():
        paths[key] = atomic_write_bytes(out / key, data)
    atomic_write_text(out / "README_SYNTHETIC.txt", README.format(seed=seed))
    rec = record_json(
        files,
        PAPER_RECORD_ID if release == "v2" else RECORD_ID,
        title=f"Atari-HEAD SYNTHETIC sample ({release} layout, fls, seed {seed}) -- not human data",
    )
    atomic_write_json(out / "record.json", rec)
    paths["record.json"] = out / "record.json"
    paths["README_SYNTHETIC.txt"] = out / "README_SYNTHETIC.txt"
    return paths


def load_record(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
