"""The early Atari-HEAD release (Zenodo record 2603190, "v2"), the one the paper scored: a flat record.

At the record's root sit one ``<trial>_<subject>_<n>_<date>.tar.bz2`` and one same-named ``.txt`` per trial
and a ``meta_data.csv`` whose columns include ``TrialNumber``, ``NumberOfFrames`` and ``Game`` (gym
spelling; ``Mspacman`` means MsPacman). Numbers may be written as floats ("12.0") and rows with an empty
cell exist; like the authors' reader, such rows are dropped. The trial number is the stem's leading
integer. The meta file is read first so that a download fetches only the trials of the requested games.

Version 4 (record 3451402) has one zip per game instead; ``detect_release`` tells the two apart on disk.
"""

from __future__ import annotations

import csv
import io
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fls.atari_head import AtariHeadError, head_game
from fls.atari_head.parse import TRIAL_STEM_RE, RawTrial, TrialRef, check_trial, parse_labels, read_pngs_from_tar
from fls.games import UnknownGameError, get_game

RELEASES = ("v2", "v4")
RECORD_RELEASE = {"2603190": "v2", "3451402": "v4"}
META_FILE = "meta_data.csv"
META_REQUIRED = ("TrialNumber", "NumberOfFrames", "Game")


@dataclass(frozen=True)
class MetaRow:
    trial_id: int
    n_frames: int
    game: str  # Atari-HEAD stem ("ms_pacman"), or "" for a game fls does not know


def _int_cell(value: str, where: str, column: str) -> int:
    try:
        v = float(value)
    except ValueError:
        raise AtariHeadError(f"{where}: column {column} holds {value!r}, expected a number") from None
    if not v.is_integer():
        raise AtariHeadError(f"{where}: column {column} holds {value!r}, expected a whole number")
    return int(v)


def parse_meta(text: str, where: str = META_FILE) -> list[MetaRow]:
    """Rows of a v2 ``meta_data.csv``; rows with any empty cell are dropped (as the authors' ``dropna``)."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise AtariHeadError(f"{where}: empty file (expected a header with {', '.join(META_REQUIRED)})") from None
    missing = [c for c in META_REQUIRED if c not in header]
    if missing:
        raise AtariHeadError(f"{where}: missing columns {missing} (a v2 meta_data.csv has {', '.join(META_REQUIRED)})")
    col = {c: header.index(c) for c in META_REQUIRED}
    rows: list[MetaRow] = []
    for lineno, cells in enumerate(reader, start=2):
        if not cells or not any(c.strip() for c in cells):
            continue
        cells = [c.strip() for c in cells] + [""] * (len(header) - len(cells))
        if any(c == "" for c in cells[: len(header)]):
            continue
        line = f"{where} line {lineno}"
        tid = _int_cell(cells[col["TrialNumber"]], line, "TrialNumber")
        nf = _int_cell(cells[col["NumberOfFrames"]], line, "NumberOfFrames")
        try:
            game = get_game(cells[col["Game"]]).atari_head or ""
        except UnknownGameError:
            game = ""  # a game of the dataset the paper does not score (e.g. Venture)
        rows.append(MetaRow(tid, nf, game))
    return rows


def trial_number(name: str) -> int | None:
    """Leading integer of a trial file name (``100_RZ_..._date.tar.bz2`` -> 100)."""
    head = PurePosixPath(name).name.split("_", 1)[0]
    return int(head) if head.isdigit() else None


def stems_by_trial(names: list[str]) -> dict[int, str]:
    """Trial number -> stem for every ``<stem>.tar.bz2`` among ``names`` whose stem is a trial stem."""
    out: dict[int, str] = {}
    for n in names:
        if not n.endswith(".tar.bz2"):
            continue
        stem = n[: -len(".tar.bz2")]
        if "/" in stem or not TRIAL_STEM_RE.match(stem):
            continue
        tid = trial_number(stem)
        if tid is not None:
            if tid in out:
                raise AtariHeadError(f"trial number {tid} has two archives: {out[tid]}.tar.bz2 and {n}")
            out[tid] = stem
    return out


def wanted_trials(meta: list[MetaRow], games: list[str]) -> list[MetaRow]:
    """Meta rows of the requested games (Atari-HEAD stems), by trial number."""
    want = {head_game(g) for g in games}
    return sorted((r for r in meta if r.game in want), key=lambda r: r.trial_id)


def trial_keys(meta: list[MetaRow], games: list[str], names: list[str], where: str) -> list[str]:
    """Record file keys (``.tar.bz2`` + ``.txt``) of the trials of ``games``; every one must exist."""
    stems = stems_by_trial(names)
    have = set(names)
    keys: list[str] = []
    for r in wanted_trials(meta, games):
        stem = stems.get(r.trial_id)
        if stem is None:
            raise AtariHeadError(f"{where}: meta_data.csv lists trial {r.trial_id} ({r.game}) but there is no {r.trial_id}_*.tar.bz2")
        if f"{stem}.txt" not in have:
            raise AtariHeadError(f"{where}: {stem}.tar.bz2 has no label file {stem}.txt beside it")
        keys += [f"{stem}.tar.bz2", f"{stem}.txt"]
    return keys


def discover_flat_trials(directory: str | Path, game: str) -> list[TrialRef]:
    """Trials of ``game`` (Atari-HEAD stem) in a v2 folder, by trial number, as listed in its meta_data.csv."""
    d = Path(directory)
    meta_path = d / META_FILE
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path}: not found (a v2 Atari-HEAD folder has meta_data.csv at its root)")
    meta = parse_meta(meta_path.read_text(encoding="utf-8"), str(meta_path))
    names = sorted(p.name for p in d.iterdir() if p.is_file())
    stems = stems_by_trial(names)
    refs: list[TrialRef] = []
    for r in wanted_trials(meta, [game]):
        stem = stems.get(r.trial_id)
        if stem is None:
            raise AtariHeadError(f"{meta_path}: lists trial {r.trial_id} ({game}) but {d} has no {r.trial_id}_*.tar.bz2")
        if not (d / f"{stem}.txt").exists():
            raise AtariHeadError(f"{d / (stem + '.tar.bz2')}: has no label file {stem}.txt beside it")
        m = TRIAL_STEM_RE.match(stem)
        assert m is not None
        refs.append(
            TrialRef(
                game=game,
                stem=stem,
                trial_id=r.trial_id,
                subject=m.group("subject"),
                number=int(m.group("number")),
                date=m.group("date"),
                highscore=False,
                archive=f"{stem}.tar.bz2",
                labels=f"{stem}.txt",
            )
        )
    return refs


def read_flat_trial(directory: str | Path, ref: TrialRef) -> RawTrial:
    """Labels + frames of one v2 trial from its two files in ``directory``."""
    d = Path(directory)
    try:
        text = (d / ref.labels).read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise AtariHeadError(f"{d / ref.labels}: label file is not UTF-8 text") from None
    except OSError as exc:
        raise AtariHeadError(f"{d / ref.labels}: cannot read label file ({exc})") from None
    labels = parse_labels(text, ref.name)
    try:
        with open(d / ref.archive, "rb") as raw:
            pngs = read_pngs_from_tar(raw, ref)
    except OSError as exc:
        raise AtariHeadError(f"{d / ref.archive}: cannot read frame archive ({exc})") from None
    except (tarfile.TarError, EOFError, zlib.error) as exc:  # pragma: no cover - read_pngs_from_tar wraps these
        raise AtariHeadError(f"{d / ref.archive}: corrupt frame archive ({exc})") from None
    return check_trial(ref, labels, pngs)


def detect_release(directory: str | Path, games: list[str]) -> str:
    """"v4" when the folder holds ``<game>.zip`` files, "v2" when it holds flat trials + meta_data.csv."""
    d = Path(directory)
    if any((d / f"{g}.zip").exists() for g in games):
        return "v4"
    if (d / META_FILE).exists() and any(p.name.endswith(".tar.bz2") for p in d.iterdir()):
        return "v2"
    zips = ", ".join(f"{g}.zip" for g in games)
    raise FileNotFoundError(
        f"{d}: no {zips} (release v4) and no flat <trial>.tar.bz2 + meta_data.csv (release v2) "
        f"(run `fls atari-head download` first)"
    )
