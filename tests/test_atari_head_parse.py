"""Parsing Atari-HEAD trials out of game zips: label quirks, frame ordering, and errors that name the trial."""

from __future__ import annotations

import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from fls.atari_head import AtariHeadError
from fls.atari_head.parse import discover_trials, gaze_pixels, parse_labels, read_trial
from fls.atari_head.preprocess import preprocess
from fls.atari_head.sample import ZipTrial, frames_tar_bz2, game_zip_bytes

HEADER = "frame_id,episode_id,score,duration(ms),unclipped_reward,action,gaze_positions"
STEM = "7_AB_1234567_Jan-01-00-00-00"


def png(value: int) -> bytes:
    img = np.full((210, 160, 3), value, dtype=np.uint8)
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def label_rows(n: int, gaze: str = "80.0,100.0") -> list[str]:
    return [f"AB_1234567_{i},0,0,50,0,0,{gaze}" for i in range(1, n + 1)]


def write_zip(tmp_path: Path, trials: list[ZipTrial], game: str = "breakout") -> Path:
    path = tmp_path / f"{game}.zip"
    path.write_bytes(game_zip_bytes(game, trials))
    return path


def simple_trial(n: int, *, stem: str = STEM, highscore: bool = False, rows: list[str] | None = None, order=None) -> ZipTrial:
    numbers = list(range(1, n + 1)) if order is None else order
    frames = [(f"{stem}/AB_1234567_{i}.png", png(i)) for i in numbers]
    text = "\n".join([HEADER, *(label_rows(n) if rows is None else rows)]) + "\n"
    return ZipTrial(stem=stem, highscore=highscore, tar_bz2=frames_tar_bz2(frames), labels=text)


def test_labels_nulls_floats_and_out_of_frame_points():
    text = "\n".join(
        [
            HEADER,
            "AB_1_1,null,null,null,null,null,null",
            "AB_1_2,0,12,48.5,4,17,10.25,20.75,159.4,209.4,-3.0,5.0,80.0,215.0",
            "AB_1_3,1,0,50,0,1,null",
            "AB_1_4,1,0,50,0,1,3.0,4.0,",
        ]
    )
    lab = parse_labels(text, "t")
    assert lab.n_frames == 4
    assert list(lab.frame_numbers) == [1, 2, 3, 4]
    assert lab.episode_id == [None, 0, 1, 1]
    assert lab.score == [None, 12, 0, 0]
    assert lab.duration_ms == [None, 48.5, 50.0, 50.0]
    assert lab.unclipped_reward == [None, 4.0, 0.0, 0.0]
    assert lab.action == [None, 17, 1, 1]
    assert lab.n_null_gaze == 2
    assert lab.n_dropped == 2  # (-3, 5) and (80, 215)
    assert lab.n_kept == 3
    x, y = lab.gaze(1)
    np.testing.assert_allclose(x, [10.25, 159.4])
    np.testing.assert_allclose(y, [20.75, 209.4])
    assert lab.gaze(0)[0].size == 0 and lab.gaze(2)[0].size == 0
    assert lab.gaze(3)[0].tolist() == [3.0] and lab.gaze(3)[1].tolist() == [4.0]


def test_gaze_rounding_boundaries():
    rows, cols, ok = gaze_pixels(np.array([-0.4, -0.6, 159.4, 159.6, 10.5]), np.array([0.0, 0.0, 209.49, 3.0, 2.5]))
    assert ok.tolist() == [True, False, True, False, True]
    assert cols[ok].tolist() == [0, 159, 11]
    assert rows[ok].tolist() == [0, 209, 3]


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("AB_1_2,0,0,50,0,0,10.0", "odd number"),
        ("AB_1_2,0,zero,50,0,0,null", "non-numeric"),
        ("AB_1_2,0,0,50,0,18,null", "action 18"),
        ("AB_1_2,0,0,50", "at least 7"),
        ("frame_without_number,0,0,50,0,0,null", "does not end in"),
        ("AB_1_2,0,0,50,0,0,1.0,abc", "non-numeric"),
    ],
)
def test_malformed_line_names_trial_and_line(line, fragment):
    text = "\n".join([HEADER, "AB_1_1,0,0,50,0,0,null", line])
    with pytest.raises(AtariHeadError, match=rf"breakout/{STEM}: label line 3: .*{fragment}"):
        parse_labels(text, f"breakout/{STEM}")


def test_bad_header():
    with pytest.raises(AtariHeadError, match="header"):
        parse_labels("id,episode\nAB_1_1,0,0,50,0,0,null\n", "t")


def test_discover_includes_highscore_and_sorts(tmp_path):
    other = "3_AB_999_Feb-02-00-00-00"
    z = write_zip(tmp_path, [simple_trial(5), simple_trial(5, stem=other, highscore=True)])
    refs = discover_trials(z, "breakout")
    assert [(r.trial_id, r.highscore, r.subject) for r in refs] == [(7, False, "AB"), (3, True, "AB")]
    assert refs[1].archive == f"breakout/highscore/{other}.tar.bz2"
    assert refs[1].labels == f"breakout/highscore/{other}.txt"


def test_unsorted_tar_members_are_ordered_by_frame_number(tmp_path):
    order = [10, 2, 7, 1, 3, 9, 4, 8, 6, 5]
    z = write_zip(tmp_path, [simple_trial(10, order=order)])
    with zipfile.ZipFile(z) as zf:
        (ref,) = discover_trials(zf, "breakout")
        trial = read_trial(zf, ref)
        assert sorted(trial.pngs) == list(range(1, 11))
        for n in (1, 2, 10):
            frame = trial.frame(n)
            assert frame.shape == (210, 160, 3)
            assert int(frame[0, 0, 0]) == n  # the frame numbered n is the one written with value n


def test_count_mismatch(tmp_path):
    z = write_zip(tmp_path, [simple_trial(6, rows=label_rows(5))])
    with zipfile.ZipFile(z) as zf, pytest.raises(AtariHeadError, match=rf"breakout/{STEM}: 6 frames .* but 5 label rows"):
        read_trial(zf, discover_trials(zf, "breakout")[0])


def test_empty_trial(tmp_path):
    z = write_zip(tmp_path, [simple_trial(0, rows=[])])
    with zipfile.ZipFile(z) as zf, pytest.raises(AtariHeadError, match=rf"breakout/{STEM}: empty trial"):
        read_trial(zf, discover_trials(zf, "breakout")[0])


def test_corrupt_archive(tmp_path):
    t = simple_trial(4)
    bad = ZipTrial(stem=t.stem, highscore=False, tar_bz2=t.tar_bz2[: len(t.tar_bz2) // 2] + b"garbage", labels=t.labels)
    z = write_zip(tmp_path, [bad])
    with zipfile.ZipFile(z) as zf, pytest.raises(AtariHeadError, match=rf"breakout/{STEM}: corrupt frame archive"):
        read_trial(zf, discover_trials(zf, "breakout")[0])


def test_label_frame_ids_must_match_frames(tmp_path):
    rows = label_rows(4)
    rows[1], rows[2] = rows[2], rows[1]
    z = write_zip(tmp_path, [simple_trial(4, rows=rows)])
    with zipfile.ZipFile(z) as zf, pytest.raises(AtariHeadError, match="label row 2 has frame_id"):
        read_trial(zf, discover_trials(zf, "breakout")[0])


def test_archive_without_labels(tmp_path):
    t = simple_trial(4)
    path = tmp_path / "breakout.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"breakout/{t.stem}.tar.bz2", t.tar_bz2)
    with pytest.raises(AtariHeadError, match="has no label file"):
        discover_trials(path, "breakout")


def test_skip_bad_trials_records_reason(tmp_path):
    good = simple_trial(11, stem="1_AB_5_Jan-01-00-00-00")
    bad = simple_trial(6, rows=label_rows(5))
    write_zip(tmp_path, [good, bad])
    with pytest.raises(AtariHeadError, match="label rows"):
        preprocess(tmp_path, tmp_path / "out", "breakout", progress=False)
    summary = preprocess(tmp_path, tmp_path / "out", "breakout", skip_bad_trials=True, progress=False)
    assert (summary.n_trials, summary.n_skipped) == (1, 1)
    lines = (tmp_path / "out" / "index.csv").read_text().splitlines()
    rows = {ln.split(",")[0]: ln for ln in lines[1:]}
    assert rows["1"].endswith("trials/Breakout/1.npz,,v4")
    assert "label rows" in rows["7"] and not (tmp_path / "out" / "trials" / "Breakout" / "7.npz").exists()
