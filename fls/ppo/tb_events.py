"""A minimal TensorBoard event-file writer (scalars only), so ``train.tensorboard: true`` needs no package.

The format is TFRecord framing (little-endian uint64 length, masked CRC-32C of the length, payload, masked
CRC-32C of the payload) around ``tensorflow.Event`` protocol-buffer messages, of which only these fields are
used: ``wall_time`` (1, double), ``step`` (2, int64), ``file_version`` (3, string), ``summary`` (5) holding
repeated ``Summary.Value`` (1) with ``tag`` (1, string) and ``simple_value`` (2, float). ``read_events``
decodes the same subset (tests, and anyone checking a file without TensorBoard installed).
"""

from __future__ import annotations

import shutil
import struct
import time
from pathlib import Path

FILE_NAME = "events.out.tfevents.0.fls"  # fixed name: a resumed run rewrites one file, never adds a second


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_bytes(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def encode_event(wall_time: float, step: int, scalars: dict[str, float] | None = None, file_version: str | None = None) -> bytes:
    msg = b"\x09" + struct.pack("<d", wall_time) + b"\x10" + _varint(step)
    if file_version is not None:
        msg += _field_bytes(3, file_version.encode())
    if scalars:
        values = b"".join(
            _field_bytes(1, _field_bytes(1, tag.encode()) + b"\x15" + struct.pack("<f", float(v)))
            for tag, v in scalars.items()
        )
        msg += _field_bytes(5, values)
    return msg


def frame(payload: bytes) -> bytes:
    n = struct.pack("<Q", len(payload))
    return n + struct.pack("<I", masked_crc(n)) + payload + struct.pack("<I", masked_crc(payload))


class EventWriter:
    """One event file in ``log_dir`` (recreated on open: the trainer replays the kept history into it)."""

    def __init__(self, log_dir: Path) -> None:
        shutil.rmtree(log_dir, ignore_errors=True)
        log_dir.mkdir(parents=True)
        self.path = log_dir / FILE_NAME
        self._fh = self.path.open("wb")
        self._fh.write(frame(encode_event(time.time(), 0, file_version="brain.Event:2")))

    def add_scalars(self, step: int, scalars: dict[str, float]) -> None:
        self._fh.write(frame(encode_event(time.time(), step, scalars)))
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


# ----------------------------------------------------------------------------------- reading (subset)


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def _fields(buf: bytes):
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _read_varint(buf, i)
        elif wire == 1:
            v, i = buf[i:i + 8], i + 8
        elif wire == 5:
            v, i = buf[i:i + 4], i + 4
        elif wire == 2:
            n, i = _read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, v


def read_events(path: Path) -> list[dict]:
    """[{wall_time, step, file_version?, scalars: {tag: value}}] of every record; ValueError on a bad CRC."""
    data = Path(path).read_bytes()
    out, i = [], 0
    while i < len(data):
        header = data[i:i + 8]
        (n,) = struct.unpack("<Q", header)
        if struct.unpack("<I", data[i + 8:i + 12])[0] != masked_crc(header):
            raise ValueError(f"{path}: bad length CRC at byte {i}")
        payload = data[i + 12:i + 12 + n]
        if struct.unpack("<I", data[i + 12 + n:i + 16 + n])[0] != masked_crc(payload):
            raise ValueError(f"{path}: bad payload CRC at byte {i}")
        i += 16 + n
        ev: dict = {"scalars": {}}
        for field, v in _fields(payload):
            if field == 1:
                ev["wall_time"] = struct.unpack("<d", v)[0]
            elif field == 2:
                ev["step"] = v
            elif field == 3:
                ev["file_version"] = v.decode()
            elif field == 5:
                for f, value in _fields(v):
                    if f == 1:
                        parts = dict(_fields(value))
                        ev["scalars"][parts[1].decode()] = struct.unpack("<f", parts[2])[0]
        out.append(ev)
    return out
