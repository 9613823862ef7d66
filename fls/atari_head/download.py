"""Fetch Atari-HEAD from Zenodo (or take it from a folder) and make sure every byte is the published one.

Release v4 (record 3451402) is one zip per game; the early release v2 (record 2603190, the paper's) is flat,
one ``.tar.bz2`` + ``.txt`` per trial: there ``meta_data.csv`` is fetched first and only the trials of the
requested games follow (fls.atari_head.flat).

The zips are large (GBs per game) and Zenodo connections drop, so a transfer goes to ``<name>.part``,
resumes with an HTTP Range request, retries with exponential backoff, and only becomes ``<name>``
(atomic rename) once its size and md5 match the record listing. A file that is already complete is
verified and not fetched again. Without network, ``from_dir`` checks hand-placed files the same way.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tqdm import tqdm

from fls.atari_head import API_URL, HEAD_GAMES, RECORD_ID, AtariHeadError, parse_games
from fls.atari_head.flat import META_FILE, RECORD_RELEASE, RELEASES, parse_meta, trial_keys
from fls.atari_head.parse import discover_trials
from fls.atomic import atomic_path, atomic_write_json

EXTRA_FILES = ("meta_data.csv", "action_enums.txt")
_CHUNK = 1 << 16
_RETRYABLE_HTTP = {408, 429, 500, 502, 503, 504}


class DownloadError(AtariHeadError):
    """A file could not be fetched or does not match the record (message names the file)."""


@dataclass(frozen=True)
class RemoteFile:
    key: str
    size: int
    md5: str | None
    url: str


@dataclass
class DownloadResult:
    files: dict[str, Path] = field(default_factory=dict)
    downloaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already complete and verified
    verified_by: str = "md5"  # "md5" (record listing) or "layout" (zip structure only)

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": {k: str(v) for k, v in self.files.items()},
            "downloaded": self.downloaded,
            "skipped": self.skipped,
            "verified_by": self.verified_by,
        }


def wanted_keys(games: str | list[str] | None) -> list[str]:
    return [f"{g}.zip" for g in parse_games(games)]


def _manual_hint(record_id: str, keys: list[str]) -> str:
    return (
        f"download {', '.join(keys)} and meta_data.csv by hand from https://zenodo.org/records/{record_id} "
        f"into a folder DIR (save the record JSON as DIR/record.json to have md5s checked) and run "
        f"`fls atari-head download --from-dir DIR --out OUT`"
    )


def md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sleep(backoff: float, attempt: int) -> None:
    if backoff > 0:
        time.sleep(backoff * (2**attempt))


def fetch_record(
    api_url: str = API_URL, record_id: str = RECORD_ID, *, retries: int = 5, backoff: float = 2.0, timeout: float = 60.0
) -> dict[str, Any]:
    """The record JSON from ``<api_url>/records/<id>``, retried; a one-line error when unreachable."""
    url = f"{api_url.rstrip('/')}/records/{record_id}"
    last = ""
    for attempt in range(retries + 1):
        try:
            req = urllib.request.Request(url, headers={"Accept": "application/json"})
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if exc.code not in _RETRYABLE_HTTP:
                break
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            last = str(getattr(exc, "reason", exc)) or type(exc).__name__
        except ValueError as exc:
            raise DownloadError(f"{url}: response is not JSON ({exc})") from None
        if attempt < retries:
            _sleep(backoff, attempt)
    raise DownloadError(f"cannot get {url} ({last}); without network, {_manual_hint(record_id, ['<game>.zip'])}")


def record_files(record: dict[str, Any], api_url: str = API_URL, record_id: str = RECORD_ID) -> dict[str, RemoteFile]:
    """Key -> RemoteFile from a record in either the legacy or the current Zenodo shape.

    ``files`` may be a list or ``{"entries": {...} | [...]}``; the byte link is ``links.content``
    (current: ``links.self`` is then the file's JSON) or else ``links.self`` / ``links.download``
    (legacy); with no link at all the current API's content URL is built from ``api_url``.
    """
    files = record.get("files")
    if isinstance(files, dict):
        files = files.get("entries", [])
        if isinstance(files, dict):
            files = [{"key": k, **v} for k, v in files.items()]
    if not isinstance(files, list):
        raise DownloadError(f"record {record_id}: no 'files' list in the record JSON")
    out: dict[str, RemoteFile] = {}
    for i, f in enumerate(files):
        if not isinstance(f, dict):
            raise DownloadError(f"record {record_id}: files[{i}] is not an object")
        key = f.get("key") or f.get("filename")
        if not key:
            raise DownloadError(f"record {record_id}: files[{i}] has no 'key'")
        try:
            size = int(f["size"] if "size" in f else f["filesize"])
        except (KeyError, TypeError, ValueError):
            raise DownloadError(f"record {record_id}: file {key} has no integer 'size'") from None
        checksum = str(f.get("checksum") or "")
        md5 = None
        if checksum:
            algo, _, digest = checksum.partition(":")
            if not digest:
                algo, digest = "md5", algo
            if algo.lower() != "md5":
                raise DownloadError(f"record {record_id}: file {key} checksum {checksum!r} is not md5")
            md5 = digest.lower()
        links = f.get("links") or {}
        url = links.get("content") or links.get("download") or links.get("self")
        if not url:
            url = f"{api_url.rstrip('/')}/records/{record_id}/files/{quote(key)}/content"
        out[str(key)] = RemoteFile(str(key), size, md5, str(url))
    return out


def verify_file(path: Path, remote: RemoteFile) -> str | None:
    """None when ``path`` has the listed size and md5, else what is wrong."""
    size = path.stat().st_size
    if size != remote.size:
        return f"size {size} bytes, expected {remote.size}"
    if remote.md5 is not None:
        got = md5_file(path)
        if got != remote.md5:
            return f"md5 {got}, expected {remote.md5}"
    return None


def _fetch(remote: RemoteFile, dest: Path, *, retries: int, backoff: float, timeout: float, progress: bool) -> None:
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    last = ""
    bar = tqdm(
        total=remote.size, unit="B", unit_scale=True, unit_divisor=1024, desc=remote.key, disable=not progress, leave=True
    )
    try:
        for attempt in range(retries + 1):
            have = part.stat().st_size if part.exists() else 0
            if have > remote.size:
                part.unlink()
                have = 0
            if have == remote.size:
                break
            bar.reset(total=remote.size)
            bar.update(have)
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                req = urllib.request.Request(remote.url, headers=headers)
                with urllib.request.urlopen(req, timeout=timeout) as resp:
                    if have and resp.status == 206:
                        cr = resp.headers.get("Content-Range", "")
                        if not cr.startswith(f"bytes {have}-"):
                            raise DownloadError(f"{remote.key}: server answered range {cr!r} to bytes={have}-")
                        mode = "ab"
                    else:  # 200: the server ignored the range, start over
                        mode = "wb"
                        bar.reset(total=remote.size)
                    with open(part, mode) as fh:
                        while True:
                            chunk = resp.read(_CHUNK)
                            if not chunk:
                                break
                            fh.write(chunk)
                            bar.update(len(chunk))
                if part.stat().st_size >= remote.size:
                    break
                last = f"connection closed after {part.stat().st_size} of {remote.size} bytes"
            except urllib.error.HTTPError as exc:
                if exc.code == 416 and part.exists():
                    part.unlink()  # our partial file is not a prefix the server recognises
                    last = "HTTP 416"
                elif exc.code in _RETRYABLE_HTTP:
                    last = f"HTTP {exc.code}"
                else:
                    raise DownloadError(f"{remote.key}: HTTP {exc.code} from {remote.url}") from None
            except (urllib.error.URLError, OSError, http.client.HTTPException, socket.timeout) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            if attempt < retries:
                _sleep(backoff, attempt)
        else:
            raise DownloadError(
                f"{remote.key}: gave up after {retries + 1} attempts ({last}); rerun to resume from {part}"
            )
    finally:
        bar.close()
    problem = verify_file(part, remote)
    if problem is not None:
        part.unlink()
        raise DownloadError(f"{remote.key}: downloaded file does not match the record ({problem}); deleted, rerun to retry")
    os.replace(part, dest)


def record_release(record_id: str, keys: list[str] | set[str], release: str = "auto") -> str:
    """"v2" or "v4": as given, else by record id (2603190 / 3451402), else by layout (any ``<game>.zip``: v4)."""
    if release in RELEASES:
        return release
    if release != "auto":
        raise DownloadError(f"release must be auto, v2 or v4, got {release!r}")
    if str(record_id) in RECORD_RELEASE:
        return RECORD_RELEASE[str(record_id)]
    return "v4" if any(f"{g}.zip" in keys for g in HEAD_GAMES) else "v2"


def download(
    games: str | list[str] | None,
    out_dir: str | Path,
    *,
    api_url: str = API_URL,
    record_id: str = RECORD_ID,
    retries: int = 5,
    backoff: float = 2.0,
    timeout: float = 60.0,
    progress: bool = True,
    release: str = "auto",
) -> DownloadResult:
    """Download the files of ``games`` plus meta_data.csv / action_enums.txt into ``out_dir``.

    v4: the game zips. v2: meta_data.csv first, then the ``.tar.bz2`` + ``.txt`` of each trial it lists
    for ``games``. The record JSON is saved as ``out_dir/record.json`` so the files can be re-verified offline.
    """
    out = Path(out_dir)
    record = fetch_record(api_url, record_id, retries=retries, backoff=backoff, timeout=timeout)
    listing = record_files(record, api_url, record_id)
    release = record_release(record_id, set(listing), release)
    atomic_write_json(out / "record.json", record)
    result = DownloadResult()

    def get(key: str) -> None:
        dest = out / key
        remote = listing[key]
        if dest.exists() and verify_file(dest, remote) is None:
            result.skipped.append(key)
        else:
            _fetch(remote, dest, retries=retries, backoff=backoff, timeout=timeout, progress=progress)
            result.downloaded.append(key)
        result.files[key] = dest

    if release == "v2":
        if META_FILE not in listing:
            raise DownloadError(f"record {record_id} has no {META_FILE} (a v2 record lists its trials there)")
        get(META_FILE)
        meta = parse_meta((out / META_FILE).read_text(encoding="utf-8"), str(out / META_FILE))
        try:
            keys = trial_keys(meta, parse_games(games), sorted(listing), f"record {record_id}")
        except AtariHeadError as exc:
            raise DownloadError(str(exc)) from None
        keys += [k for k in EXTRA_FILES if k in listing and k != META_FILE]
    else:
        keys = wanted_keys(games)
        missing = [k for k in keys if k not in listing]
        if missing:
            raise DownloadError(f"record {record_id} has no {', '.join(missing)} (files: {', '.join(sorted(listing))})")
        keys += [k for k in EXTRA_FILES if k in listing]
    for key in keys:
        get(key)
    return result


def check_zip_layout(path: Path, game: str) -> None:
    """Without md5s: the zip opens and holds at least one ``<game>/<trial>.tar.bz2`` + ``.txt`` pair."""
    try:
        with zipfile.ZipFile(path) as zf:
            refs = discover_trials(zf, game)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{path}: not a readable zip ({exc})") from None
    if not refs:
        raise DownloadError(f"{path}: no trials under {game}/ (expected {game}/<trial>.tar.bz2 and .txt)")


def _place(src: Path, dest: Path) -> None:
    """Hard-link if possible (the zips are large), else copy via a temporary and rename."""
    if dest.exists():
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)


def from_dir(
    src: str | Path,
    games: str | list[str] | None,
    out_dir: str | Path,
    *,
    record: str | Path | None = None,
    release: str = "auto",
) -> DownloadResult:
    """Verify hand-placed files in ``src`` and put them into ``out_dir`` (nothing is copied if equal).

    With a record listing (``record`` or ``src/record.json``, the JSON of the Zenodo record) every file
    is checked against its size and md5; otherwise each zip must open and contain the trial layout
    (v4), or each listed trial must have both files (v2, where meta_data.csv says which trials to take).
    """
    src, out = Path(src), Path(out_dir)
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: from_dir: no such folder")
    if release == "auto":
        flat = (src / META_FILE).exists() and any(p.name.endswith(".tar.bz2") for p in src.iterdir())
        release = "v2" if flat and not any((src / k).exists() for k in wanted_keys(games)) else "v4"
    if release == "v2":
        if not (src / META_FILE).exists():
            raise FileNotFoundError(f"{src / META_FILE}: not found (a v2 folder lists its trials there)")
        meta = parse_meta((src / META_FILE).read_text(encoding="utf-8"), str(src / META_FILE))
        names = sorted(p.name for p in src.iterdir() if p.is_file())
        keys = [META_FILE, *trial_keys(meta, parse_games(games), names, str(src))]
        keys += [k for k in EXTRA_FILES if (src / k).exists() and k not in keys]
    else:
        keys = wanted_keys(games)
        for k in keys:
            if not (src / k).exists():
                raise FileNotFoundError(f"{src / k}: not found; {_manual_hint(RECORD_ID, keys)}")
        keys += [k for k in EXTRA_FILES if (src / k).exists()]
    rec_path = Path(record) if record is not None else src / "record.json"
    listing: dict[str, RemoteFile] | None = None
    if rec_path.exists():
        try:
            rec = json.loads(rec_path.read_text())
        except ValueError as exc:
            raise DownloadError(f"{rec_path}: not valid JSON ({exc})") from None
        listing = record_files(rec)
    elif record is not None:
        raise FileNotFoundError(f"{rec_path}: record listing not found")
    result = DownloadResult(verified_by="md5" if listing is not None else "layout")
    for key in keys:
        path = src / key
        if listing is not None:
            if key not in listing:
                raise DownloadError(f"{rec_path}: the record lists no {key}")
            problem = verify_file(path, listing[key])
            if problem is not None:
                raise DownloadError(f"{path}: does not match {rec_path} ({problem})")
        elif key.endswith(".zip"):
            check_zip_layout(path, key[: -len(".zip")])
        dest = out / key
        if dest.resolve() != path.resolve():
            _place(path, dest)
            result.downloaded.append(key)
        else:
            result.skipped.append(key)
        result.files[key] = dest
    if listing is not None and (out / "record.json").resolve() != rec_path.resolve():
        atomic_write_json(out / "record.json", json.loads(rec_path.read_text()))
    return result
