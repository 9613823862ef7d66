"""The paper's early release (record 2603190, "v2"): flat trials + meta_data.csv, end to end through the local
Zenodo stand-in with a dropped connection, then preprocessing and scoring; and the same for v4 zips."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fls.atari_head import AtariHeadError
from fls.atari_head.download import DownloadError, download, from_dir
from fls.atari_head.flat import detect_release, parse_meta, stems_by_trial
from fls.atari_head.preprocess import count_inputs, preprocess
from fls.atari_head.sample import make_sample
from fls.atari_head.zenodo_server import ZenodoServer
from pipeline.app import app

FRAMES = 30
runner = CliRunner()


@pytest.fixture(scope="module")
def v2_sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("v2") / "zenodo"
    make_sample(root, seed=5, games="breakout,enduro", frames_per_trial=FRAMES, trials_per_game=1, highscore_trials=1,
                release="v2")
    return root


def test_meta_rows_with_floats_and_empty_cells():
    text = (
        "TrialNumber,Subject,Game,NumberOfFrames\n"
        "100.0,RZ,Breakout,1234.0\n"
        "101,RZ,,\n"  # empty cells: dropped, like the authors' dropna()
        "102.0,KM,Mspacman,10\n"
        "103,KM,Venture,10\n"  # a game fls does not score
        "\n"
    )
    rows = parse_meta(text)
    assert [(r.trial_id, r.n_frames, r.game) for r in rows] == [(100, 1234, "breakout"), (102, 10, "ms_pacman"), (103, 10, "")]
    with pytest.raises(AtariHeadError, match="missing columns"):
        parse_meta("GameName,trial_id\nbreakout,1\n", "m.csv")
    with pytest.raises(AtariHeadError, match="line 2: column TrialNumber holds '1.5'"):
        parse_meta("TrialNumber,Game,NumberOfFrames\n1.5,Breakout,3\n", "m.csv")


def test_trial_number_is_the_stems_leading_integer():
    names = ["100_RZ_3592991_Aug-24-10-23-45.tar.bz2", "100_RZ_3592991_Aug-24-10-23-45.txt", "meta_data.csv", "x.tar.bz2"]
    assert stems_by_trial(names) == {100: "100_RZ_3592991_Aug-24-10-23-45"}


def test_sample_v2_layout(v2_sample):
    names = sorted(p.name for p in v2_sample.iterdir())
    assert not [n for n in names if n.endswith(".zip")]
    trials = [n for n in names if n.endswith(".tar.bz2")]
    assert len(trials) == 4 and all(n[: -len(".tar.bz2")] + ".txt" in names for n in trials)
    meta = (v2_sample / "meta_data.csv").read_text()
    assert ",," in meta and ".0," in meta  # an empty row and float-typed numbers
    assert json.loads((v2_sample / "record.json").read_text())["id"] == 2603190
    assert detect_release(v2_sample, ["breakout"]) == "v2"


def test_v2_download_with_dropped_connection_then_preprocess_and_score(v2_sample, tmp_path):
    enduro = sorted(p.name for p in v2_sample.glob("2*_*.tar.bz2"))[0]  # trial ids 2xx are enduro's
    with ZenodoServer(v2_sample, record_id="2603190", drop_after={enduro: 3000, "meta_data.csv": 40}) as server:
        result = download("enduro", tmp_path / "raw", api_url=server.api_url, record_id="2603190", backoff=0,
                          progress=False)
        ranges = [r.range for r in server.log if r.path.endswith(f"/{enduro}/content")]
    assert result.downloaded[0] == "meta_data.csv"  # read first: it says which trials to fetch
    assert ranges[0] is None and ranges[1] == "bytes=3000-"  # resumed, not restarted
    got = sorted(p.name for p in (tmp_path / "raw").iterdir() if p.name[0].isdigit())
    assert got == sorted(n for n in (p.name for p in v2_sample.iterdir()) if n.startswith("2") and n.endswith((".tar.bz2", ".txt")))
    for n in got:
        assert (tmp_path / "raw" / n).read_bytes() == (v2_sample / n).read_bytes()
    # second run: everything verified, nothing fetched
    with ZenodoServer(v2_sample, record_id="2603190") as server:
        again = download("enduro", tmp_path / "raw", api_url=server.api_url, record_id="2603190", backoff=0,
                         progress=False)
    assert again.downloaded == [] and len(again.skipped) == len(result.downloaded)

    summary = preprocess(tmp_path / "raw", tmp_path / "pre", "enduro", progress=False)
    assert (summary.n_trials, summary.n_raw_frames) == (2, 2 * FRAMES)
    index = pd.read_csv(tmp_path / "pre" / "index.csv")
    assert set(index["release"]) == {"v2"} and set(index["n_inputs"]) == {count_inputs(FRAMES)}

    for protocol, alignment in (("authors", "authors"), ("fls", "aligned")):
        out = tmp_path / f"score_{protocol}"
        res = runner.invoke(app, ["score", "--arch", "sparse_fls", "--init-seed", "0", "--game", "Enduro", "--atari-head",
                                  str(tmp_path / "pre"), "--out", str(out), "--protocol", protocol, "--alignment",
                                  alignment, "--max-inputs", "6", "--device", "cpu", "--quiet"])
        assert res.exit_code == 0, res.output
        s = json.loads((out / "summary.json").read_text())
        assert (s["protocol"], s["alignment"], s["release"]) == (protocol, alignment, "v2")
        assert set(s["metrics"]) == {"nss", "kl", "sauc", "sauc_exact"}
        df = pd.read_parquet(out / "per_input.parquet")
        assert "sauc_exact" in df.columns
        # the authors' input 0 has no gaze; the aligned input 0 has file 1's
        assert (df.loc[0, "n_fixations"] == 0) == (alignment == "authors")


def test_v2_from_dir_checks_md5_and_needs_the_listed_trials(v2_sample, tmp_path):
    res = from_dir(v2_sample, "breakout", tmp_path / "out")
    assert res.verified_by == "md5" and res.downloaded[0] == "meta_data.csv"
    assert len([k for k in res.downloaded if k.endswith(".tar.bz2")]) == 2
    broken = tmp_path / "broken"
    broken.mkdir()
    for p in v2_sample.iterdir():
        if not p.name.startswith("102_"):
            (broken / p.name).write_bytes(p.read_bytes())
    with pytest.raises(AtariHeadError, match="trial 102"):
        from_dir(broken, "breakout", tmp_path / "out2")


def test_v2_record_without_the_trial_is_a_one_line_error(v2_sample, tmp_path):
    root = tmp_path / "z"
    root.mkdir()
    for p in v2_sample.iterdir():
        if p.name != "record.json" and not p.name.startswith("201_"):
            (root / p.name).write_bytes(p.read_bytes())
    with ZenodoServer(root, record_id="2603190") as server:
        with pytest.raises(DownloadError, match="lists trial 201"):
            download("enduro", tmp_path / "raw", api_url=server.api_url, record_id="2603190", backoff=0, progress=False)


def test_v4_download_with_dropped_connection_then_preprocess(tmp_path):
    src = tmp_path / "zenodo"
    make_sample(src, seed=1, games="breakout", frames_per_trial=FRAMES, trials_per_game=1, highscore_trials=1)
    with ZenodoServer(src, drop_after={"breakout.zip": 2000}) as server:
        download("breakout", tmp_path / "raw", api_url=server.api_url, backoff=0, progress=False)
    assert (tmp_path / "raw" / "breakout.zip").read_bytes() == (src / "breakout.zip").read_bytes()
    summary = preprocess(tmp_path / "raw", tmp_path / "pre", "breakout", progress=False, release="v4")
    assert summary.n_trials == 2
    assert set(pd.read_csv(tmp_path / "pre" / "index.csv")["release"]) == {"v4"}
    with pytest.raises(AtariHeadError, match="meta_data.csv: missing columns"):  # v4's meta is not v2's
        preprocess(tmp_path / "raw", tmp_path / "pre2", "breakout", progress=False, release="v2")


def test_cli_sample_v2_and_preprocess(tmp_path):
    res = runner.invoke(app, ["atari-head", "sample", "--out", str(tmp_path / "s"), "--games", "breakout", "--frames", "10",
                              "--trials", "1", "--release", "v2"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["atari-head", "preprocess", "--in", str(tmp_path / "s"), "--out", str(tmp_path / "p"),
                              "--games", "breakout", "--release", "v2", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output.strip().splitlines()[-1])["n_trials"] == 2
    arr = np.load(tmp_path / "p" / "trials" / "Breakout" / "101.npz")
    assert str(arr["release"]) == "v2" and arr["frame_ids"].shape == (count_inputs(10), 2)
