"""Read Atari-HEAD trials straight out of the per-game zips, without unpacking anything to disk.

The real zips are several GB; a trial is a ``.tar.bz2`` of PNG frames plus a ``.txt`` label file.
The tar is read as a stream from the zip member, and frames are kept as their (small) PNG bytes so
that only the frames the scoring protocol uses are ever decoded. Every problem is raised as an
``AtariHeadError`` naming the zip member (and the label line), so a bad trial can be reported or
skipped instead of silently corrupting the ground truth.
"""

from __future__ import annotations

import re
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from fls.atari_head import NUM_FULL_ACTIONS, AtariHeadError
from fls.frames import FRAME_COLS, FRAME_ROWS

# <trialid>_<subject>_<n>_<date>, e.g. 100_RZ_3592991_Aug-24-10-23-45
TRIAL_STEM_RE = re.compile(r"^(?P<trial_id>\d+)_(?P<subject>[A-Za-z0-9]+)_(?P<number>\d+)_(?P<date>[^/]+)$")
_TRAILING_NUMBER_RE = re.compile(r"_(\d+)$")
LABEL_FIELDS = ("frame_id", "episode_id", "score", "duration(ms)", "unclipped_reward", "action")


@dataclass(frozen=True)
class TrialRef:
    """Where one trial lives inside a game zip."""

    game: str  # Atari-HEAD stem, e.g. "breakout"
    stem: str  # "<trialid>_<subject>_<n>_<date>"
    trial_id: int
    subject: str
    number: int
    date: str
    highscore: bool  # found under <game>/highscore/
    archive: str  # zip member of the frames (.tar.bz2)
    labels: str  # zip member of the labels (.txt)

    @property
    def name(self) -> str:
        return f"{self.game}/{'highscore/' if self.highscore else ''}{self.stem}"


@dataclass
class Labels:
    """Parsed label file; gaze is stored as CSR over frames (kept points only)."""

    frame_ids: list[str]
    frame_numbers: np.ndarray  # (N,) int64, trailing number of each frame_id
    episode_id: list[int | None]
    score: list[int | None]
    duration_ms: list[float | None]
    unclipped_reward: list[float | None]
    action: list[int | None]  # ALE full 18-action enum
    gaze_offsets: np.ndarray  # (N+1,) int64
    gaze_x: np.ndarray  # (P,) float64, column
    gaze_y: np.ndarray  # (P,) float64, row
    n_dropped: int  # points outside the 210x160 frame
    n_null_gaze: int  # rows whose gaze list is `null`

    @property
    def n_frames(self) -> int:
        return len(self.frame_ids)

    @property
    def n_kept(self) -> int:
        return int(self.gaze_x.shape[0])

    def gaze(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of the kept gaze points of row ``i``."""
        a, b = self.gaze_offsets[i], self.gaze_offsets[i + 1]
        return self.gaze_x[a:b], self.gaze_y[a:b]


def gaze_pixels(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest pixel (row, col) of gaze points and the mask of those inside the 210x160 frame.

    Rounding is half-up (floor(v + 0.5)); a point is in the frame when its rounded pixel is, so a
    gaze at x = 159.7 (pixel 160) counts as outside. Parser and preprocessing share this rule.
    """
    cols = np.floor(np.asarray(x, dtype=np.float64) + 0.5)
    rows = np.floor(np.asarray(y, dtype=np.float64) + 0.5)
    ok = np.isfinite(cols) & np.isfinite(rows) & (cols >= 0) & (cols < FRAME_COLS) & (rows >= 0) & (rows < FRAME_ROWS)
    return rows, cols, ok


def trailing_number(stem: str) -> int | None:
    m = _TRAILING_NUMBER_RE.search(stem)
    return int(m.group(1)) if m else None


def _open_zip(zip_or_path: zipfile.ZipFile | str | Path) -> tuple[zipfile.ZipFile, bool]:
    if isinstance(zip_or_path, zipfile.ZipFile):
        return zip_or_path, False
    path = Path(zip_or_path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: Atari-HEAD zip not found")
    try:
        return zipfile.ZipFile(path), True
    except (zipfile.BadZipFile, OSError) as exc:
        raise AtariHeadError(f"{path}: not a readable zip ({exc})") from None


def discover_trials(zip_or_path: zipfile.ZipFile | str | Path, game: str) -> list[TrialRef]:
    """Trials of ``game`` in its zip: ``<game>/<stem>.tar.bz2`` (+ ``.txt``), also under ``highscore/``.

    Sorted by (highscore, trial_id). An archive without labels (or the reverse) is an error.
    """
    zf, close = _open_zip(zip_or_path)
    try:
        names = zf.namelist()
        where = zf.filename or "<zip>"
    finally:
        if close:
            zf.close()
    archives: dict[tuple[bool, str], str] = {}
    labels: dict[tuple[bool, str], str] = {}
    for name in names:
        p = PurePosixPath(name)
        parts = p.parts
        if len(parts) == 2 and parts[0] == game:
            highscore = False
        elif len(parts) == 3 and parts[0] == game and parts[1] == "highscore":
            highscore = True
        else:
            continue
        if name.endswith(".tar.bz2"):
            stem = p.name[: -len(".tar.bz2")]
            if TRIAL_STEM_RE.match(stem):
                archives[(highscore, stem)] = name
        elif name.endswith(".txt"):
            stem = p.name[: -len(".txt")]
            if TRIAL_STEM_RE.match(stem):
                labels[(highscore, stem)] = name
    refs: list[TrialRef] = []
    for key in sorted(set(archives) | set(labels)):
        if key not in labels:
            raise AtariHeadError(f"{where}: {archives[key]} has no label file {key[1]}.txt beside it")
        if key not in archives:
            raise AtariHeadError(f"{where}: {labels[key]} has no frame archive {key[1]}.tar.bz2 beside it")
        m = TRIAL_STEM_RE.match(key[1])
        assert m is not None
        refs.append(
            TrialRef(
                game=game,
                stem=key[1],
                trial_id=int(m.group("trial_id")),
                subject=m.group("subject"),
                number=int(m.group("number")),
                date=m.group("date"),
                highscore=key[0],
                archive=archives[key],
                labels=labels[key],
            )
        )
    refs.sort(key=lambda r: (r.highscore, r.trial_id, r.stem))
    return refs


def _parse_int(tok: str) -> int:
    v = float(tok)
    if not v.is_integer():
        raise ValueError(tok)
    return int(v)


def parse_labels(text: str, trial: str) -> Labels:
    """Parse a label file's text. ``trial`` only names the trial in error messages."""
    lines = text.splitlines()
    if not lines:
        raise AtariHeadError(f"{trial}: label file is empty (expected a header line)")
    # Columns are positional; only the first name is checked so that spelling variants of the
    # other header names in the published files do not reject every trial.
    header = [h.strip().lower() for h in lines[0].split(",")]
    if header[0] != LABEL_FIELDS[0] or len(header) < len(LABEL_FIELDS):
        raise AtariHeadError(
            f"{trial}: label header line 1 is {lines[0][:80]!r}, expected {','.join(LABEL_FIELDS)},gaze_positions"
        )
    frame_ids: list[str] = []
    numbers: list[int] = []
    episode: list[int | None] = []
    score: list[int | None] = []
    duration: list[float | None] = []
    reward: list[float | None] = []
    action: list[int | None] = []
    offsets = [0]
    xs: list[float] = []
    ys: list[float] = []
    n_null = 0
    n_dropped = 0
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        f = [t.strip() for t in line.rstrip().rstrip(",").split(",")]  # tolerate a trailing comma
        where = f"{trial}: label line {lineno}"
        if len(f) < 7:
            raise AtariHeadError(f"{where}: expected at least 7 comma-separated fields (6 + gaze or 'null'), got {len(f)}")
        num = trailing_number(f[0])
        if num is None:
            raise AtariHeadError(f"{where}: frame_id {f[0]!r} does not end in _<frame number>")
        try:
            ep = None if f[1] == "null" else _parse_int(f[1])
            sc = None if f[2] == "null" else _parse_int(f[2])
            du = None if f[3] == "null" else float(f[3])
            rw = None if f[4] == "null" else float(f[4])
            ac = None if f[5] == "null" else _parse_int(f[5])
        except ValueError:
            raise AtariHeadError(f"{where}: non-numeric value in fields 2-6 {f[1:6]}") from None
        if ac is not None and not 0 <= ac < NUM_FULL_ACTIONS:
            raise AtariHeadError(f"{where}: action {ac} outside ALE's full enum 0..{NUM_FULL_ACTIONS - 1}")
        gz = f[6:]
        if gz == ["null"]:
            n_null += 1
        else:
            if len(gz) % 2:
                raise AtariHeadError(f"{where}: gaze list has an odd number of values ({len(gz)}), expected x,y pairs")
            try:
                vals = np.array([float(t) for t in gz], dtype=np.float64)
            except ValueError:
                raise AtariHeadError(f"{where}: gaze list holds a non-numeric value") from None
            if not np.all(np.isfinite(vals)):
                raise AtariHeadError(f"{where}: gaze list holds a non-finite value")
            gx, gy = vals[0::2], vals[1::2]
            _, _, ok = gaze_pixels(gx, gy)
            n_dropped += int((~ok).sum())
            xs.extend(gx[ok].tolist())
            ys.extend(gy[ok].tolist())
        frame_ids.append(f[0])
        numbers.append(num)
        episode.append(ep)
        score.append(sc)
        duration.append(du)
        reward.append(rw)
        action.append(ac)
        offsets.append(len(xs))
    return Labels(
        frame_ids=frame_ids,
        frame_numbers=np.asarray(numbers, dtype=np.int64),
        episode_id=episode,
        score=score,
        duration_ms=duration,
        unclipped_reward=reward,
        action=action,
        gaze_offsets=np.asarray(offsets, dtype=np.int64),
        gaze_x=np.asarray(xs, dtype=np.float64),
        gaze_y=np.asarray(ys, dtype=np.float64),
        n_dropped=n_dropped,
        n_null_gaze=n_null,
    )


def read_labels(zf: zipfile.ZipFile, ref: TrialRef) -> Labels:
    try:
        raw = zf.read(ref.labels)
    except (zipfile.BadZipFile, KeyError, OSError, zlib.error, EOFError) as exc:
        raise AtariHeadError(f"{ref.name}: cannot read label file {ref.labels} ({exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AtariHeadError(f"{ref.name}: label file {ref.labels} is not UTF-8 text") from None
    return parse_labels(text, ref.name)


def read_pngs_from_tar(raw, ref: TrialRef) -> dict[int, bytes]:
    """PNG bytes by frame number from a tar.bz2 stream ``raw`` (members in any order)."""
    frames: dict[int, bytes] = {}
    try:
        with tarfile.open(fileobj=raw, mode="r|bz2") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                base = PurePosixPath(member.name).name
                if not base.lower().endswith(".png"):
                    continue
                num = trailing_number(base[:-4])
                if num is None:
                    raise AtariHeadError(f"{ref.name}: frame {member.name!r} does not end in _<frame number>.png")
                if num in frames:
                    raise AtariHeadError(f"{ref.name}: frame number {num} appears twice in {ref.archive}")
                fh = tar.extractfile(member)
                if fh is None:
                    raise AtariHeadError(f"{ref.name}: cannot read {member.name!r} in {ref.archive}")
                frames[num] = fh.read()
    except AtariHeadError:
        raise
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError, zlib.error, KeyError) as exc:
        raise AtariHeadError(f"{ref.name}: corrupt frame archive {ref.archive} ({type(exc).__name__}: {exc})") from None
    return frames


def read_frame_pngs(zf: zipfile.ZipFile, ref: TrialRef) -> dict[int, bytes]:
    """PNG bytes by frame number, streamed from the trial's tar.bz2 inside the game zip."""
    try:
        with zf.open(ref.archive) as raw:
            return read_pngs_from_tar(raw, ref)
    except AtariHeadError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, KeyError) as exc:
        raise AtariHeadError(f"{ref.name}: corrupt frame archive {ref.archive} ({type(exc).__name__}: {exc})") from None


def decode_png(data: bytes, where: str) -> np.ndarray:
    """PNG bytes -> (210, 160, 3) uint8 RGB."""
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise AtariHeadError(f"{where}: not a decodable PNG")
    if img.shape != (FRAME_ROWS, FRAME_COLS, 3):
        raise AtariHeadError(f"{where}: frame is {img.shape}, expected ({FRAME_ROWS}, {FRAME_COLS}, 3)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@dataclass
class RawTrial:
    """A trial's labels and its frames as PNG bytes, checked to line up frame for frame."""

    ref: TrialRef
    labels: Labels
    pngs: dict[int, bytes]  # frame number (1..N) -> PNG bytes

    @property
    def n_frames(self) -> int:
        return self.labels.n_frames

    def frame(self, number: int) -> np.ndarray:
        """RGB frame by its 1-based frame number."""
        return decode_png(self.pngs[number], f"{self.ref.name}: frame {number}")


def read_trial(zf: zipfile.ZipFile, ref: TrialRef) -> RawTrial:
    """Labels + frames of one trial; frames must be numbered 1..N and match the label rows in order."""
    return check_trial(ref, read_labels(zf, ref), read_frame_pngs(zf, ref))


def check_trial(ref: TrialRef, labels: Labels, pngs: dict[int, bytes]) -> RawTrial:
    """The trial, once its frames are numbered 1..N and line up with the label rows (else AtariHeadError)."""
    n = labels.n_frames
    if n == 0 and not pngs:
        raise AtariHeadError(f"{ref.name}: empty trial (no frames, no label rows)")
    if len(pngs) != n:
        raise AtariHeadError(f"{ref.name}: {len(pngs)} frames in {ref.archive} but {n} label rows in {ref.labels}")
    expected = np.arange(1, n + 1, dtype=np.int64)
    if set(pngs) != set(expected.tolist()):
        missing = sorted(set(expected.tolist()) - set(pngs))[:5]
        raise AtariHeadError(f"{ref.name}: frames are not numbered 1..{n} (missing e.g. {missing})")
    if not np.array_equal(labels.frame_numbers, expected):
        bad = int(np.flatnonzero(labels.frame_numbers != expected)[0])
        raise AtariHeadError(
            f"{ref.name}: label row {bad + 1} has frame_id {labels.frame_ids[bad]!r}, expected frame number {bad + 1}"
        )
    return RawTrial(ref=ref, labels=labels, pngs=pngs)

