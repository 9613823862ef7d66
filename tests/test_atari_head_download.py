"""Downloading Atari-HEAD from a Zenodo-shaped API served on 127.0.0.1 (resume, md5, skip, offline)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fls.atari_head.download import DownloadError, download, from_dir, record_files
from fls.atari_head.sample import make_sample, record_json
from fls.atari_head.zenodo_server import ZenodoServer
from pipeline.app import app

SIZES = {"breakout.zip": 300_000, "enduro.zip": 120_000, "meta_data.csv": 500, "action_enums.txt": 200}


@pytest.fixture()
def served(tmp_path) -> Path:
    """Random files standing in for the record (download never opens the zips)."""
    root = tmp_path / "zenodo"
    root.mkdir()
    rng = np.random.default_rng(0)
    for key, size in SIZES.items():
        (root / key).write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    return root


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def content_requests(server: ZenodoServer, key: str) -> list:
    return [r for r in server.log if r.path.endswith(f"/{key}/content") or r.path.endswith(f"/{key}") and "/files/" in r.path]


@pytest.mark.parametrize("shape", ["current", "legacy"])
def test_complete_download(served, tmp_path, shape):
    out = tmp_path / "out"
    with ZenodoServer(served, shape=shape) as server:
        result = download("breakout", out, api_url=server.api_url, backoff=0, progress=False)
    assert result.downloaded == ["breakout.zip", "meta_data.csv", "action_enums.txt"]
    for key in result.downloaded:
        assert md5(out / key) == md5(served / key)
    assert not (out / "enduro.zip").exists()  # only the requested game
    assert not list(out.glob("*.part"))
    rec = json.loads((out / "record.json").read_text())
    assert {f["key"] for f in rec["files"]} == set(SIZES)


def test_resume_after_dropped_connection_uses_range(served, tmp_path):
    out = tmp_path / "out"
    with ZenodoServer(served, drop_after={"breakout.zip": 100_000}) as server:
        download("breakout", out, api_url=server.api_url, backoff=0, progress=False)
        reqs = content_requests(server, "breakout.zip")
    assert md5(out / "breakout.zip") == md5(served / "breakout.zip")
    assert [r.range for r in reqs][0] is None
    assert len(reqs) == 2 and reqs[1].range is not None and reqs[1].range.startswith("bytes=")
    resumed_from = int(reqs[1].range[len("bytes=") : -1])
    assert 0 < resumed_from <= 100_000  # picked up where the dropped transfer stopped


def test_resume_from_part_file_of_an_earlier_run(served, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "breakout.zip.part").write_bytes((served / "breakout.zip").read_bytes()[:12345])
    with ZenodoServer(served) as server:
        download("breakout", out, api_url=server.api_url, backoff=0, progress=False)
        reqs = content_requests(server, "breakout.zip")
    assert [r.range for r in reqs] == ["bytes=12345-"]
    assert md5(out / "breakout.zip") == md5(served / "breakout.zip")


def test_wrong_md5_leaves_no_complete_file(served, tmp_path):
    out = tmp_path / "out"
    with ZenodoServer(served, corrupt={"breakout.zip"}) as server:
        with pytest.raises(DownloadError, match=r"breakout.zip: .*md5"):
            download("breakout", out, api_url=server.api_url, backoff=0, progress=False)
    assert not (out / "breakout.zip").exists()
    assert not (out / "breakout.zip.part").exists()


def test_already_complete_file_is_not_requested(served, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "breakout.zip").write_bytes((served / "breakout.zip").read_bytes())
    with ZenodoServer(served) as server:
        result = download("breakout", out, api_url=server.api_url, backoff=0, progress=False)
        assert content_requests(server, "breakout.zip") == []
        assert len(content_requests(server, "meta_data.csv")) == 1
    assert result.skipped == ["breakout.zip"]


def test_incomplete_existing_file_is_fetched_again(served, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "breakout.zip").write_bytes(b"not the real thing")
    with ZenodoServer(served) as server:
        result = download("breakout", out, api_url=server.api_url, backoff=0, progress=False)
    assert "breakout.zip" in result.downloaded and md5(out / "breakout.zip") == md5(served / "breakout.zip")


def test_no_network_gives_one_line_hint(tmp_path):
    with ZenodoServer(tmp_path) as server:
        dead = server.api_url
    with pytest.raises(DownloadError) as exc:
        download("breakout", tmp_path / "out", api_url=dead, retries=1, backoff=0, timeout=2, progress=False)
    msg = str(exc.value)
    assert "\n" not in msg and "--from-dir" in msg and "zenodo.org/records/3451402" in msg


def test_game_missing_from_record(served, tmp_path):
    with ZenodoServer(served) as server, pytest.raises(DownloadError, match="has no seaquest.zip"):
        download("seaquest", tmp_path / "out", api_url=server.api_url, backoff=0, progress=False)


def test_record_shapes():
    base = {"key": "a.zip", "size": 3, "checksum": "md5:ABC"}
    current = record_files({"files": [{**base, "links": {"self": "u/json", "content": "u/content"}}]})
    legacy = record_files({"files": [{**base, "links": {"self": "u/bytes"}}]})
    entries = record_files({"files": {"enabled": True, "entries": {"a.zip": {"size": 3, "checksum": "md5:abc"}}}})
    assert current["a.zip"].url == "u/content" and legacy["a.zip"].url == "u/bytes"
    assert entries["a.zip"].url == "https://zenodo.org/api/records/3451402/files/a.zip/content"
    assert current["a.zip"].md5 == "abc" == entries["a.zip"].md5
    with pytest.raises(DownloadError, match="not md5"):
        record_files({"files": [{**base, "checksum": "sha256:00"}]})


def test_from_dir_verifies_against_record(served, tmp_path):
    files = {k: (served / k).read_bytes() for k in SIZES}
    (served / "record.json").write_text(json.dumps(record_json(files)))
    out = tmp_path / "out"
    result = from_dir(served, "breakout,enduro", out)
    assert result.verified_by == "md5" and md5(out / "enduro.zip") == md5(served / "enduro.zip")
    (served / "enduro.zip").write_bytes(b"x" * SIZES["enduro.zip"])
    with pytest.raises(DownloadError, match=r"enduro.zip: does not match .*md5"):
        from_dir(served, "enduro", tmp_path / "out2")


def test_from_dir_without_record_checks_zip_layout(tmp_path):
    src = tmp_path / "src"
    make_sample(src, seed=1, games="breakout", frames_per_trial=8, trials_per_game=1, highscore_trials=0)
    (src / "record.json").unlink()
    result = from_dir(src, "breakout", tmp_path / "out")
    assert result.verified_by == "layout" and (tmp_path / "out" / "breakout.zip").exists()
    (src / "breakout.zip").write_bytes(b"PK not a zip")
    with pytest.raises(DownloadError, match="not a readable zip"):
        from_dir(src, "breakout", tmp_path / "out3")
    with pytest.raises(FileNotFoundError, match="enduro.zip: not found"):
        from_dir(src, "enduro", tmp_path / "out4")


def test_cli_download(served, tmp_path):
    out = tmp_path / "out"
    with ZenodoServer(served) as server:
        res = CliRunner().invoke(
            app,
            ["atari-head", "download", "--games", "enduro", "--out", str(out), "--api-url", server.api_url, "--backoff", "0", "--no-progress"],
        )
    assert res.exit_code == 0, res.output
    assert md5(out / "enduro.zip") == md5(served / "enduro.zip")
    info = json.loads((out / "run_info.json").read_text())
    assert info["config"]["games"] == ["enduro"] and info["result"]["downloaded"][0] == "enduro.zip"
    res = CliRunner().invoke(app, ["atari-head", "download", "--games", "pong", "--out", str(out)])
    assert res.exit_code == 2 and "unknown game 'pong'" in res.output


def test_cli_download_reads_params_section(served, tmp_path):
    out = tmp_path / "out"
    with ZenodoServer(served) as server:
        params = tmp_path / "params.yaml"
        params.write_text(f"atari_head:\n  games: [enduro]\n  api_url: {server.api_url}\n  backoff: 0\n  retries: 1\n")
        res = CliRunner().invoke(app, ["atari-head", "download", "--out", str(out), "--params", str(params), "--no-progress"])
        assert res.exit_code == 0, res.output
        assert (out / "enduro.zip").exists() and not (out / "breakout.zip").exists()
        params.write_text("atari_head:\n  gamez: [enduro]\n")
        res = CliRunner().invoke(app, ["atari-head", "download", "--out", str(out), "--params", str(params)])
        assert res.exit_code == 2 and "unknown field 'gamez'" in res.output


def test_cli_serve_then_download(served, tmp_path):
    """`fls atari-head serve` blocks, so it runs as a child process that the test stops itself."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", "from pipeline.app import main; main()", "atari-head", "serve", "--dir", str(served)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        seen = []
        for _ in range(50):  # other modules may print warnings first
            line = proc.stdout.readline()
            seen.append(line)
            if "--api-url " in line or not line:
                break
        assert "--api-url " in line, "".join(seen)
        api_url = line.split("--api-url ")[1].split()[0]
        result = download("enduro", tmp_path / "out", api_url=api_url, backoff=0, progress=False)
        assert result.downloaded[0] == "enduro.zip"
        assert md5(tmp_path / "out" / "enduro.zip") == md5(served / "enduro.zip")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
