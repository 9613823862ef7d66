"""A local stand-in for Zenodo's REST API that serves one directory as a record.

Used by the download tests (resume, corruption, skip) and by users who keep a copy of the dataset on
another machine: ``fls atari-head serve --dir DIR`` then ``download --api-url http://127.0.0.1:PORT/api``.
It binds to 127.0.0.1 only, serves only the regular files of its directory (no path traversal), and
can inject faults: drop the connection after N bytes of the first request of a file, or serve
content that does not match the listed md5.

Routes (``<id>`` is the record id):
- ``/api/records/<id>``: the record JSON (``files`` list with key, size, "md5:..." checksum, links)
- ``/api/records/<id>/files/<key>``: one file's JSON (current shape) -- its ``links.content`` holds the bytes
- ``/api/records/<id>/files/<key>/content``, ``/records/<id>/files/<key>``, ``/api/files/<bucket>/<key>``: bytes,
  with HTTP Range support (206 + Content-Range)
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

from fls.atari_head import RECORD_ID
from fls.atari_head.download import md5_file

_CHUNK = 1 << 16
_RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class RequestLog:
    method: str
    path: str
    range: str | None


@dataclass
class _State:
    root: Path
    record_id: str
    shape: str
    bucket: str
    files: dict[str, tuple[int, str]]  # key -> (size, md5)
    drop_after: dict[str, int]
    corrupt: set[str]
    log: list[RequestLog] = field(default_factory=list)
    dropped: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _listing(root: Path) -> dict[str, tuple[int, str]]:
    """Sizes and md5s of the served files; md5s come from ``record.json`` when its size matches."""
    known: dict[str, tuple[int, str]] = {}
    rec = root / "record.json"
    if rec.exists():
        try:
            for f in json.loads(rec.read_text()).get("files", []):
                known[str(f["key"])] = (int(f["size"]), str(f["checksum"]).split(":", 1)[-1])
        except (ValueError, KeyError, TypeError):
            known = {}
    out: dict[str, tuple[int, str]] = {}
    for p in sorted(root.iterdir()):
        if not p.is_file() or p.name.startswith(".") or p.name == "record.json" or p.name.endswith(".part"):
            continue
        size = p.stat().st_size
        if p.name in known and known[p.name][0] == size:
            out[p.name] = (size, known[p.name][1])
        else:
            out[p.name] = (size, md5_file(p))
    return out


class _Handler(BaseHTTPRequestHandler):
    server_version = "fls-zenodo-standin/1"
    protocol_version = "HTTP/1.1"
    timeout = 30  # per-connection socket timeout: a stalled client cannot hold a thread forever

    @property
    def state(self) -> _State:
        return self.server.state  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep tests quiet
        pass

    def _base(self) -> str:
        host, port = self.server.server_address[:2]  # type: ignore[misc]
        return f"http://{host}:{port}"

    def _json(self, obj: object, status: int = 200) -> None:
        body = json.dumps(obj, indent=1).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, msg: str) -> None:
        self._json({"status": status, "message": msg}, status)

    def _file_entry(self, key: str) -> dict:
        st = self.state
        size, md5 = st.files[key]
        base, rid, k = self._base(), st.record_id, quote(key)
        entry: dict = {"key": key, "size": size, "checksum": f"md5:{md5}", "id": hashlib.md5(key.encode()).hexdigest()}
        if st.shape == "legacy":
            entry["links"] = {"self": f"{base}/api/files/{st.bucket}/{k}"}
            entry["bucket"] = st.bucket
            entry["type"] = key.rsplit(".", 1)[-1]
        else:
            entry["links"] = {
                "self": f"{base}/api/records/{rid}/files/{k}",
                "content": f"{base}/api/records/{rid}/files/{k}/content",
            }
        return entry

    def _record(self) -> dict:
        st = self.state
        rec: dict = {
            "id": int(st.record_id) if st.record_id.isdigit() else st.record_id,
            "metadata": {"title": f"local stand-in for Zenodo record {st.record_id}"},
            "files": [self._file_entry(k) for k in st.files],
        }
        if st.shape == "legacy":
            rec["links"] = {"bucket": f"{self._base()}/api/files/{st.bucket}"}
        return rec

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        st = self.state
        path = unquote(urlsplit(self.path).path).rstrip("/")
        with st.lock:
            st.log.append(RequestLog(self.command, path, self.headers.get("Range")))
        rid = re.escape(st.record_id)
        if re.fullmatch(rf"/api/records/{rid}", path):
            return self._json(self._record())
        m = re.fullmatch(rf"/api/records/{rid}/files/([^/]+)", path)
        if m:
            key = m.group(1)
            if key not in st.files:
                return self._error(404, f"no file {key}")
            return self._json(self._file_entry(key))
        for pattern in (
            rf"/api/records/{rid}/files/([^/]+)/content",
            rf"/records/{rid}/files/([^/]+)",
            rf"/api/files/{re.escape(st.bucket)}/([^/]+)",
        ):
            m = re.fullmatch(pattern, path)
            if m:
                return self._content(m.group(1))
        return self._error(404, f"not found: {path}")

    def _content(self, key: str) -> None:
        st = self.state
        if key not in st.files:
            return self._error(404, f"no file {key}")
        size = st.files[key][0]
        start, end = 0, size - 1
        rng = self.headers.get("Range")
        status = 200
        if rng:
            m = _RANGE_RE.match(rng.strip())
            if not m or int(m.group(1)) >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            status = 206
        length = end - start + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        with st.lock:
            drop = key in st.drop_after and key not in st.dropped
            if drop:
                st.dropped.add(key)
        budget = st.drop_after[key] if drop else None
        sent = 0
        with open(st.root / key, "rb") as fh:
            fh.seek(start)
            pos = start
            while sent < length:
                chunk = fh.read(min(_CHUNK, length - sent))
                if not chunk:
                    break
                if key in st.corrupt and pos <= size // 2 < pos + len(chunk):
                    i = size // 2 - pos
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1 :]
                if budget is not None and sent + len(chunk) > budget:
                    self.wfile.write(chunk[: budget - sent])
                    self.wfile.flush()
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                self.wfile.write(chunk)
                sent += len(chunk)
                pos += len(chunk)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 16


class ZenodoServer:
    """Serve ``root`` as Zenodo record ``record_id`` on 127.0.0.1 in a background thread.

    Use as a context manager; ``api_url`` is what to pass to ``download(api_url=...)``.
    ``drop_after={key: n}`` cuts the first transfer of ``key`` after n bytes; ``corrupt={key}`` flips
    one byte of ``key`` in every transfer while the listing keeps the true md5.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        record_id: str = RECORD_ID,
        port: int = 0,
        shape: Literal["current", "legacy"] = "current",
        drop_after: dict[str, int] | None = None,
        corrupt: set[str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: directory to serve not found")
        if shape not in ("current", "legacy"):
            raise ValueError(f"zenodo server: shape must be 'current' or 'legacy', got {shape!r}")
        self.state = _State(
            root=root,
            record_id=str(record_id),
            shape=shape,
            bucket="b" + hashlib.md5(str(root.resolve()).encode()).hexdigest()[:12],
            files=_listing(root),
            drop_after=dict(drop_after or {}),
            corrupt=set(corrupt or ()),
        )
        self._httpd = _Server(("127.0.0.1", port), _Handler)
        self._httpd.timeout = timeout
        self._httpd.state = self.state  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def log(self) -> list[RequestLog]:
        with self.state.lock:
            return list(self.state.log)

    def start(self) -> ZenodoServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._httpd.server_close()

    def __enter__(self) -> ZenodoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
