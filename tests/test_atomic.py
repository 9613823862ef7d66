import json
import os
import stat

import pytest

from fls.atomic import atomic_path, atomic_write_json


def test_atomic_write_json_is_stable_and_has_normal_permissions(tmp_path):
    out = tmp_path / "sub" / "x.json"
    atomic_write_json(out, {"b": 1, "a": [1, 2]})
    first = out.read_bytes()
    atomic_write_json(out, {"a": [1, 2], "b": 1})
    assert out.read_bytes() == first  # sorted keys: same content, same bytes
    assert json.loads(first) == {"a": [1, 2], "b": 1}
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in out.parent.iterdir()] == ["x.json"]  # no temporaries left


def test_atomic_path_keeps_old_file_when_writer_fails(tmp_path):
    out = tmp_path / "model.bin"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            assert tmp.suffix == ".bin" and tmp.parent == tmp_path
            tmp.write_bytes(b"half-written")
            raise RuntimeError("killed")
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin"]
