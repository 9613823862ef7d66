"""Read the authors' pickles (``model.pkl``, ``eval.pkl``, ``saliency.pkl``) without running their code.

Pickles execute whatever callables they name, so a file from the internet may only name the handful of
callables needed to rebuild numpy arrays, numpy scalars and plain containers; anything else is refused
before it is called. ``model.pkl`` comes from Baselines' ``joblib.dump({variable_name: array})``: joblib
pickles a ``NumpyArrayWrapper`` record (shape, dtype, order) per array and writes the array's raw bytes
into the stream right after it, optionally wrapped in a zlib/gzip/bz2/xz container. We read that layout
ourselves (joblib is not a dependency): the wrapper is never instantiated as joblib's class, only its
state dict is read, and the raw bytes become a numpy array.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

_JOBLIB_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
MAX_ARRAY_BYTES = 1 << 31  # 2 GiB: far above any policy; stops a forged shape from exhausting memory


class UnsafePickleError(ValueError):
    """A pickle that names a callable outside the allowed numpy/container set, or is malformed."""


class _WrapperRecord:
    """Stand-in for joblib's NumpyArrayWrapper: holds its state until BUILD replaces it by the array."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state: dict[str, Any] | None = None


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"array subclass {subtype!r} is not allowed (only numpy.ndarray)")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError(f"numpy scalar of dtype {dtype!r} is not allowed")
    if not isinstance(data, bytes):
        raise UnsafePickleError("numpy scalar without its raw bytes")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _dtype(spec: Any, align: Any = False, copy: Any = False) -> np.dtype:
    d = np.dtype(spec)
    if d.hasobject:
        raise UnsafePickleError("object dtypes are not allowed (they would unpickle arbitrary objects)")
    return d


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any = "C") -> np.ndarray:
    # numpy's protocol-5 reduction of a contiguous array
    if not isinstance(dtype, np.dtype) or dtype.hasobject or order not in ("C", "F"):
        raise UnsafePickleError(f"array of dtype {dtype!r} / order {order!r} is not allowed")
    return np.frombuffer(bytes(buf), dtype=dtype).reshape(shape, order=order).copy()


def _codecs_encode(text: Any, encoding: Any = "latin1") -> bytes:
    # protocol-2 pickles of bytes written by Python 3 go through _codecs.encode(str, 'latin1')
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("_codecs.encode is only allowed for latin1 text")
    return text.encode("latin1")


_ALLOWED: dict[tuple[str, str], Any] = {}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_mod, "_reconstruct")] = _reconstruct
    _ALLOWED[(_mod, "scalar")] = _scalar
for _mod in ("numpy", "numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_mod, "dtype")] = _dtype
    _ALLOWED[(_mod, "ndarray")] = np.ndarray
_ALLOWED.update(
    {
        ("collections", "OrderedDict"): OrderedDict,
        ("builtins", "list"): list,
        ("builtins", "dict"): dict,
        ("builtins", "tuple"): tuple,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "bytearray"): bytearray,
        ("__builtin__", "list"): list,
        ("__builtin__", "set"): set,
        ("_codecs", "encode"): _codecs_encode,
    }
)
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_mod, "_frombuffer")] = _frombuffer
# What REDUCE may call (np.ndarray itself is only ever an argument, the subtype of _reconstruct).
_CALLABLE = (_reconstruct, _scalar, _dtype, _codecs_encode, _frombuffer, OrderedDict, list, dict, tuple, set, frozenset, bytearray)


class _Unpickler(pickle._Unpickler):  # the pure-Python unpickler: its opcode table can be extended
    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: io.BufferedIOBase, where: str) -> None:
        super().__init__(file)
        self._where = where

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == _JOBLIB_WRAPPER:
            return _WrapperRecord
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._where}: refused to load '{module}.{name}' (only numpy arrays/dtypes and plain containers are allowed)"
            ) from None

    def load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        if not any(func is f for f in _CALLABLE):
            raise UnsafePickleError(f"{self._where}: refused to call {func!r}")
        self.stack[-1] = func(*args)

    dispatch[pickle.REDUCE[0]] = load_reduce

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        if cls is _WrapperRecord:
            self.append(_WrapperRecord())
        elif cls in (OrderedDict, dict, list, set, tuple, frozenset, bytearray):
            self.append(cls.__new__(cls, *args))
        else:
            raise UnsafePickleError(f"{self._where}: refused to instantiate {cls!r}")

    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        self.stack.append(kwargs)  # same checks as NEWOBJ; keyword arguments are never needed here
        if kwargs:
            raise UnsafePickleError(f"{self._where}: refused NEWOBJ_EX with keyword arguments")
        self.stack.pop()
        self.load_newobj()

    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, _WrapperRecord):
            self.stack[-1] = self._read_joblib_array(state)
        elif isinstance(inst, np.ndarray):
            ok = isinstance(state, tuple) and len(state) == 5 and isinstance(state[2], np.dtype) and not state[2].hasobject
            if not ok:
                raise UnsafePickleError(f"{self._where}: refused array state (object arrays are not allowed)")
            inst.__setstate__(state)
        elif isinstance(inst, np.dtype):
            inst.__setstate__(state)
        elif isinstance(inst, OrderedDict) and not state:
            pass
        else:
            raise UnsafePickleError(f"{self._where}: refused to set the state of {type(inst).__name__}")

    dispatch[pickle.BUILD[0]] = load_build

    def load_inst(self) -> None:
        raise UnsafePickleError(f"{self._where}: refused INST/OBJ opcode (old-style class instances)")

    dispatch[pickle.INST[0]] = load_inst
    dispatch[pickle.OBJ[0]] = load_inst

    def load_ext(self) -> None:
        raise UnsafePickleError(f"{self._where}: refused extension-registry opcode")

    for _op in (pickle.EXT1, pickle.EXT2, pickle.EXT4):
        dispatch[_op[0]] = load_ext

    def load_persid(self) -> None:
        raise UnsafePickleError(f"{self._where}: refused persistent id")

    dispatch[pickle.PERSID[0]] = load_persid
    dispatch[pickle.BINPERSID[0]] = load_persid

    def _read_joblib_array(self, state: Any) -> np.ndarray:
        if not isinstance(state, dict):
            raise UnsafePickleError(f"{self._where}: joblib array record without a state dict")
        dtype, shape, order = state.get("dtype"), state.get("shape"), state.get("order", "C")
        if state.get("subclass", np.ndarray) is not np.ndarray:
            raise UnsafePickleError(f"{self._where}: joblib array of subclass {state.get('subclass')!r} is not allowed")
        if not isinstance(dtype, np.dtype) or dtype.hasobject:
            raise UnsafePickleError(f"{self._where}: joblib array of dtype {dtype!r} is not allowed")
        if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape) or order not in ("C", "F"):
            raise UnsafePickleError(f"{self._where}: joblib array record with bad shape/order {shape!r}/{order!r}")
        count = int(np.prod(shape, dtype=np.int64))
        nbytes = count * dtype.itemsize
        if nbytes > MAX_ARRAY_BYTES:
            raise UnsafePickleError(f"{self._where}: joblib array of {nbytes} bytes is implausibly large")
        if state.get("numpy_array_alignment_bytes") is not None:  # joblib >= 1.2 pads before the data
            pad = self.read(1)
            if len(pad) != 1:
                raise UnsafePickleError(f"{self._where}: truncated joblib array padding")
            self.read(pad[0])
        data = self.read(nbytes) if nbytes else b""
        if len(data) != nbytes:
            raise UnsafePickleError(f"{self._where}: truncated joblib array data ({len(data)} of {nbytes} bytes)")
        arr = np.frombuffer(data, dtype=dtype, count=count).copy()
        if order == "F":
            return arr.reshape(shape[::-1]).transpose()
        return arr.reshape(shape)


def _decompress(raw: bytes, where: str) -> bytes:
    """joblib's compressed containers (by magic number); a plain pickle starts with 0x80 and passes through."""
    try:
        if raw[:2] == b"\x1f\x8b":
            return gzip.decompress(raw)
        if raw[:3] == b"BZh":
            return bz2.decompress(raw)
        if raw[:6] == b"\xfd7zXZ\x00" or raw[:1] == b"\x5d":
            return lzma.decompress(raw)
        if raw[:1] == b"\x78" and (raw[0] * 256 + raw[1]) % 31 == 0:
            return zlib.decompress(raw)
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise UnsafePickleError(f"{where}: damaged compressed pickle ({exc})") from None
    if raw[:2] == b"ZF":
        raise UnsafePickleError(f"{where}: joblib < 0.10 compressed format is not supported")
    return raw


def safe_load_bytes(raw: bytes, where: str = "<bytes>") -> Any:
    """Unpickle ``raw`` admitting only numpy arrays/dtypes/scalars and plain containers (see module doc)."""
    data = _decompress(raw, where)
    try:
        return _Unpickler(io.BytesIO(data), where).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
        raise UnsafePickleError(f"{where}: not a readable pickle ({type(exc).__name__}: {exc})") from None


def safe_load(path: str | Path) -> Any:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    return safe_load_bytes(p.read_bytes(), str(p))
