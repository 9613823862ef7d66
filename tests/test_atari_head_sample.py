"""The synthetic Atari-HEAD sample: real on-disk layout, determinism, and the full sample->serve->download->preprocess trip."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from ale_py import ALEInterface, roms
from typer.testing import CliRunner

from fls.atari_head.dataset import iter_trials, load_index
from fls.atari_head.download import download
from fls.atari_head.preprocess import count_inputs, preprocess
from fls.atari_head.sample import make_sample
from fls.atari_head.zenodo_server import ZenodoServer
from pipeline.app import app

FRAMES = 24
GAMES = "breakout,ms_pacman"


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ah_sample")
    make_sample(out, seed=5, games=GAMES, frames_per_trial=FRAMES, trials_per_game=2, highscore_trials=1)
    return out


def test_layout_matches_real_dataset(sample):
    assert sorted(p.name for p in sample.iterdir()) == [
        "README_SYNTHETIC.txt",
        "action_enums.txt",
        "breakout.zip",
        "meta_data.csv",
        "ms_pacman.zip",
        "record.json",
    ]
    assert "SYNTHETIC" in (sample / "README_SYNTHETIC.txt").read_text()
    with zipfile.ZipFile(sample / "breakout.zip") as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        archives = [n for n in names if n.endswith(".tar.bz2")]
        assert len(archives) == 3 and sum("/highscore/" in n for n in archives) == 1
        stem_re = re.compile(r"^breakout/(highscore/)?\d+_SYN_\d+_[A-Za-z]{3}-\d\d-\d\d-\d\d-\d\d\.tar\.bz2$")
        assert all(stem_re.match(a) for a in archives)
        arch = archives[0]
        assert arch[: -len(".tar.bz2")] + ".txt" in names
        with tarfile.open(fileobj=io.BytesIO(zf.read(arch)), mode="r:bz2") as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            numbers = [int(re.search(r"_(\d+)\.png$", m.name).group(1)) for m in members]
            assert sorted(numbers) == list(range(1, FRAMES + 1))
            assert numbers != sorted(numbers)  # name order, like the real tars
            img = cv2.imdecode(np.frombuffer(tar.extractfile(members[0]).read(), np.uint8), cv2.IMREAD_UNCHANGED)
            assert img.shape == (210, 160, 3)
        lines = zf.read(arch[: -len(".tar.bz2")] + ".txt").decode().splitlines()
    assert lines[0].startswith("frame_id,episode_id,score,duration(ms),unclipped_reward,action,")
    assert len(lines) == FRAMES + 1
    ale = ALEInterface()
    ale.loadROM(roms.get_rom_path("breakout"))
    minimal = {a.value for a in ale.getMinimalActionSet()}
    actions = {int(ln.split(",")[5]) for ln in lines[1:]}
    assert actions <= minimal  # labels carry full-enum ids (Breakout's LEFT is 4, not 3)
    with open(sample / "meta_data.csv") as fh:
        meta = list(csv.reader(fh))
    assert meta[0][:4] == ["GameName", "trial_id", "subject_id", "load_trial"] and "synthetic" in meta[0]
    assert {r[0] for r in meta[1:]} == {"breakout", "breakout_highscore", "ms_pacman", "ms_pacman_highscore"}
    enums = (sample / "action_enums.txt").read_text().splitlines()
    assert len(enums) == 18 and enums[0] == "NOOP = 0" and enums[4] == "LEFT = 4"
    rec = json.loads((sample / "record.json").read_text())
    for f in rec["files"]:
        data = (sample / f["key"]).read_bytes()
        assert f["size"] == len(data) and f["checksum"] == "md5:" + hashlib.md5(data).hexdigest()


def test_gaze_has_nulls_and_offscreen_points(sample, tmp_path):
    preprocess(sample, tmp_path, GAMES, progress=False)
    df = load_index(tmp_path)
    assert (df["n_null_gaze"] > 0).any() and (df["n_gaze_dropped"] > 0).any() and (df["n_gaze_kept"] > 0).all()
    assert df["n_inputs"].tolist() == [count_inputs(FRAMES)] * 6


def test_same_seed_same_bytes(sample, tmp_path):
    make_sample(tmp_path / "a", seed=5, games=GAMES, frames_per_trial=FRAMES, trials_per_game=2, highscore_trials=1)
    for key in ("breakout.zip", "ms_pacman.zip", "meta_data.csv", "record.json"):
        assert (tmp_path / "a" / key).read_bytes() == (sample / key).read_bytes(), key
    make_sample(tmp_path / "b", seed=6, games="breakout", frames_per_trial=FRAMES, trials_per_game=2, highscore_trials=1)
    assert (tmp_path / "b" / "breakout.zip").read_bytes() != (sample / "breakout.zip").read_bytes()


def test_round_trip_sample_serve_download_preprocess(sample, tmp_path):
    with ZenodoServer(sample, drop_after={"ms_pacman.zip": 5000}) as server:
        download(GAMES, tmp_path / "raw", api_url=server.api_url, backoff=0, progress=False)
    for key in ("breakout.zip", "ms_pacman.zip", "meta_data.csv", "action_enums.txt"):
        assert (tmp_path / "raw" / key).read_bytes() == (sample / key).read_bytes()
    summary = preprocess(tmp_path / "raw", tmp_path / "pre", GAMES, progress=False)
    assert (summary.n_trials, summary.n_skipped, summary.n_raw_frames) == (6, 0, 6 * FRAMES)
    trials = list(iter_trials(tmp_path / "pre"))
    assert sorted((t.game, t.highscore) for t in trials).count(("MsPacman", True)) == 1
    t = trials[0]
    assert t.subject == "SYN" and t.n_inputs == count_inputs(FRAMES)
    assert t.inputs[-1].any()  # real game frames, not blank
    assert sum(t.n_fixations(k) for k in range(t.n_inputs)) > 0
    # Parallel preprocessing writes the same index and arrays.
    preprocess(tmp_path / "raw", tmp_path / "pre2", GAMES, workers=2, progress=False)
    assert (tmp_path / "pre2" / "index.csv").read_text() == (tmp_path / "pre" / "index.csv").read_text()
    for a, b in zip(trials, iter_trials(tmp_path / "pre2")):
        for name in ("inputs", "frame_ids", "fix_offsets", "fix_rows", "fix_cols", "fix_counts"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_cli_sample_and_preprocess(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["atari-head", "sample", "--out", str(tmp_path / "s"), "--seed", "2", "--games", "enduro", "--frames", "8", "--trials", "1"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["atari-head", "preprocess", "--in", str(tmp_path / "s"), "--out", str(tmp_path / "p"), "--games", "enduro", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output.strip().splitlines()[-1])["n_trials"] == 2
    assert json.loads((tmp_path / "p" / "run_info.json").read_text())["stage"] == "atari_head.preprocess"
    res = runner.invoke(app, ["atari-head", "preprocess", "--in", str(tmp_path / "s"), "--out", str(tmp_path / "p"), "--games", "breakout"])
    assert res.exit_code == 2 and "breakout.zip" in res.output
