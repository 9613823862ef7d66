"""`fls atari-head acquire` (the atari_head_acquire stage): the files `sample` / `download` write, chosen by params."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml
from typer.testing import CliRunner

from fls.atari_head.zenodo_server import ZenodoServer
from pipeline.app import app

runner = CliRunner()


def _params(path: Path, source: str, **atari_head) -> Path:
    body = {"data": {"atari_head_source": source, "sample_frames": 8, "sample_trials": 1},
            "atari_head": {"games": ["enduro"], "sample_seed": 2, "alignment": "authors", **atari_head}}
    path.write_text(yaml.safe_dump(body))
    return path


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _same_outputs(a: Path, b: Path) -> None:
    """Same files, byte for byte, and the same run_info.json up to the output folder's own path in it."""
    fa, fb = _files(a), _files(b)
    assert fa.keys() == fb.keys() and "run_info.json" in fa
    assert {k: v for k, v in fa.items() if k != "run_info.json"} == {k: v for k, v in fb.items() if k != "run_info.json"}
    assert fa["run_info.json"].decode().replace(str(a), str(b)) == fb["run_info.json"].decode()


def test_acquire_sample_writes_what_the_sample_command_writes(tmp_path):
    params = _params(tmp_path / "params.yaml", "sample")
    res = runner.invoke(app, ["atari-head", "acquire", "--params", str(params), "--out", str(tmp_path / "a"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "synthetic Atari-HEAD sample (seed 2)" in res.output
    # what dvc.yaml ran before this command existed (its shell branch for `sample`)
    res = runner.invoke(app, ["atari-head", "sample", "--params", str(params), "--frames", "8", "--trials", "1",
                              "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    _same_outputs(tmp_path / "a", tmp_path / "b")
    info = json.loads((tmp_path / "a" / "run_info.json").read_text())
    assert (info["stage"], info["frames_per_trial"], info["trials_per_game"]) == ("atari_head.sample", 8, 1)
    assert info["config"]["games"] == ["enduro"] and (tmp_path / "a" / "enduro.zip").exists()


def test_acquire_zenodo_writes_what_the_download_command_writes(tmp_path):
    served = tmp_path / "zenodo"
    served.mkdir()
    rng = np.random.default_rng(0)
    for key, size in {"enduro.zip": 20_000, "meta_data.csv": 300, "action_enums.txt": 100}.items():
        (served / key).write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    with ZenodoServer(served) as server:
        params = _params(tmp_path / "params.yaml", "zenodo", api_url=server.api_url, backoff=0, retries=1)
        res = runner.invoke(app, ["atari-head", "acquire", "--params", str(params), "--out", str(tmp_path / "a"), "--no-progress"])
        assert res.exit_code == 0, res.output
        assert "3 placed/downloaded" in res.output
        res = runner.invoke(app, ["atari-head", "download", "--params", str(params), "--out", str(tmp_path / "b"), "--no-progress"])
        assert res.exit_code == 0, res.output
    _same_outputs(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "a" / "enduro.zip").read_bytes() == (served / "enduro.zip").read_bytes()


def test_acquire_bad_source_or_data_key_is_a_one_line_error(tmp_path):
    params = _params(tmp_path / "params.yaml", "ftp")
    res = runner.invoke(app, ["atari-head", "acquire", "--params", str(params), "--out", str(tmp_path / "a")])
    assert res.exit_code == 2 and not (tmp_path / "a").exists()
    (line,) = res.output.strip().splitlines()
    assert "data.atari_head_source" in line and "sample or zenodo" in line and "'ftp'" in line
    body = yaml.safe_load(params.read_text())
    body["data"] = {"atari_head_source": "sample", "sample_frame": 8}
    params.write_text(yaml.safe_dump(body))
    res = runner.invoke(app, ["atari-head", "acquire", "--params", str(params), "--out", str(tmp_path / "a")])
    assert res.exit_code == 2 and "unknown field 'sample_frame'" in res.output and not (tmp_path / "a").exists()
