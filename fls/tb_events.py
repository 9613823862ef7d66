"""TensorBoard event files without TensorFlow or TensorBoard: the authors' curves in, fls's curves out.

Two users: ``fls import-authors`` reads Baselines' training curves (``read_curve``), and ``fls train``
with ``train.tensorboard: true`` writes its own (``EventWriter``), so neither needs a package.

An event file is a TFRecord stream: each record is ``uint64 length | uint32 masked crc32c(length) |
data | uint32 masked crc32c(data)``, and ``data`` is a serialized ``tensorflow.Event`` protobuf. Baselines'
logger writes one Event per PPO update whose ``summary`` holds one ``Value{tag, simple_value}`` per logged
key (``eprewmean``, ``total_timesteps``, ...). Only those few protobuf fields are decoded here:

  Event:   1 wall_time (double), 2 step (int64), 5 summary (Summary)
  Summary: 1 value (repeated Value)
  Value:   1 tag (string), 2 simple_value (float), 8 tensor (TensorProto: 1 dtype, 4 tensor_content, 5 float_val)

The writer covers the scalar subset (``simple_value``), which is all either side needs.
"""

from __future__ import annotations

import math
import shutil
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from fls.atomic import atomic_write_bytes


class EventFileError(ValueError):
    """A damaged or truncated event file (message names the file and the byte offset)."""


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes):
    """Yield (field number, wire type, value) of one protobuf message; unknown fields are skipped over."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated field")
        yield field, wire, value


def _tensor_scalar(buf: bytes) -> float | None:
    dtype, content, floats = 0, None, []
    for field, wire, value in _fields(buf):
        if field == 1 and wire == 0:
            dtype = value
        elif field == 4 and wire == 2:
            content = value
        elif field == 5 and wire == 2:  # packed float_val
            floats += list(struct.unpack(f"<{len(value) // 4}f", value))
        elif field == 5 and wire == 5:
            floats.append(struct.unpack("<f", value)[0])
    if dtype != 1:  # DT_FLOAT only
        return None
    if content is not None and len(content) == 4:
        return struct.unpack("<f", content)[0]
    return floats[0] if len(floats) == 1 else None


@dataclass(frozen=True)
class ScalarEvent:
    step: int  # the Event's step (Baselines: 1, 2, ... one per logged update)
    wall_time: float
    values: dict[str, float]  # tag -> value of every scalar in this event


def _parse_event(data: bytes) -> ScalarEvent | None:
    step, wall, values = 0, 0.0, {}
    has_summary = False
    for field, wire, value in _fields(data):
        if field == 1 and wire == 1:
            wall = struct.unpack("<d", value)[0]
        elif field == 2 and wire == 0:
            step = value - (1 << 64) if value >= 1 << 63 else value
        elif field == 5 and wire == 2:
            has_summary = True
            for f2, w2, v2 in _fields(value):
                if f2 != 1 or w2 != 2:
                    continue
                tag, scalar = None, None
                for f3, w3, v3 in _fields(v2):
                    if f3 == 1 and w3 == 2:
                        tag = v3.decode("utf-8", errors="replace")
                    elif f3 == 2 and w3 == 5:
                        scalar = struct.unpack("<f", v3)[0]
                    elif f3 == 8 and w3 == 2:
                        scalar = _tensor_scalar(v3)
                if tag is not None and scalar is not None:
                    values[tag] = float(scalar)
    return ScalarEvent(step, wall, values) if has_summary else None


def read_records(path: str | Path, *, check_crc: bool = True) -> list[bytes]:
    """The raw records of a TFRecord file; a bad checksum or a truncated record is an error naming the offset."""
    p = Path(path)
    raw = p.read_bytes()
    out, pos = [], 0
    while pos < len(raw):
        if pos + 12 > len(raw):
            raise EventFileError(f"{p}: truncated record header at byte {pos}")
        header = raw[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (len_crc,) = struct.unpack("<I", raw[pos + 8 : pos + 12])
        if check_crc and masked_crc(header) != len_crc:
            raise EventFileError(f"{p}: bad length checksum at byte {pos} (not a TFRecord/event file?)")
        start, end = pos + 12, pos + 12 + length
        if end + 4 > len(raw):
            raise EventFileError(f"{p}: truncated record at byte {pos} ({length} bytes announced)")
        data = raw[start:end]
        (data_crc,) = struct.unpack("<I", raw[end : end + 4])
        if check_crc and masked_crc(data) != data_crc:
            raise EventFileError(f"{p}: bad data checksum in the record at byte {pos}")
        out.append(data)
        pos = end + 4
    return out


def read_scalars(path: str | Path) -> list[ScalarEvent]:
    """Every event with a summary, in file order."""
    events = []
    for i, data in enumerate(read_records(path)):
        try:
            ev = _parse_event(data)
        except (ValueError, struct.error) as exc:
            raise EventFileError(f"{path}: record {i} is not an Event protobuf ({exc})") from None
        if ev is not None:
            events.append(ev)
    return events


def read_curve(path: str | Path, tag: str = "eprewmean", x_tag: str = "total_timesteps") -> list[tuple[int, float]]:
    """(agent steps, value) pairs of one scalar tag; x is ``x_tag`` from the same event (Baselines logs
    ``total_timesteps`` beside ``eprewmean``), falling back to the event's step when the tag is absent.
    NaN values (Baselines' eprewmean before the first finished episode) are kept as NaN."""
    curve = []
    for ev in read_scalars(path):
        if tag not in ev.values:
            continue
        x = ev.values.get(x_tag)
        step = int(round(x)) if x is not None and math.isfinite(x) else ev.step
        curve.append((step, ev.values[tag]))
    return curve


# --- writer (tests, synthetic fixtures) ---------------------------------------------------------------


def _enc_varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _enc_len(field: int, payload: bytes) -> bytes:
    return _enc_varint(field << 3 | 2) + _enc_varint(len(payload)) + payload


def encode_event(step: int, wall_time: float, values: dict[str, float] | None = None, file_version: str | None = None) -> bytes:
    msg = _enc_varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _enc_varint(2 << 3) + _enc_varint(step)
    if file_version is not None:
        msg += _enc_len(3, file_version.encode())
    if values is not None:
        summary = b"".join(
            _enc_len(1, _enc_len(1, tag.encode()) + _enc_varint(2 << 3 | 5) + struct.pack("<f", v)) for tag, v in values.items()
        )
        msg += _enc_len(5, summary)
    return msg


def frame_record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc(header)) + data + struct.pack("<I", masked_crc(data))


def write_event_file(path: str | Path, rows: list[dict[str, float]], wall_start: float = 1.5e9) -> Path:
    """An event file as Baselines' logger writes it: a file_version record, then one event per row (step 1, 2, ...)."""
    blob = frame_record(encode_event(0, wall_start, file_version="brain.Event:2"))
    for i, row in enumerate(rows, start=1):
        blob += frame_record(encode_event(i, wall_start + i, values=row))
    return atomic_write_bytes(path, blob)


FILE_NAME = "events.out.tfevents.0.fls"  # fixed name: a resumed run rewrites one file, never adds a second


class EventWriter:
    """One event file in ``log_dir``, recreated on open (the trainer replays the kept history into it)."""

    def __init__(self, log_dir: Path) -> None:
        shutil.rmtree(log_dir, ignore_errors=True)
        log_dir.mkdir(parents=True)
        self.path = log_dir / FILE_NAME
        self._fh = self.path.open("wb")
        self._fh.write(frame_record(encode_event(0, time.time(), file_version="brain.Event:2")))

    def add_scalars(self, step: int, scalars: dict[str, float]) -> None:
        self._fh.write(frame_record(encode_event(step, time.time(), {k: float(v) for k, v in scalars.items()})))
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
