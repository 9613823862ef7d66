"""Which files and which gaze rows feed every preprocessed input, for both alignments and both releases.

docs/atari_head.md, "Alignment" (1-based files): step 0 is file 1 alone, step m >= 1 pools files {4m, 4m+1}; input k
stacks steps k-3..k. Gaze: ``authors`` = rows {4m-1, 4m : m = k-3..k}; ``aligned`` = the pooled files.

Raw frame n (1-based) lights only its own 5-row stripe (rows 5(n-1)..5n-1), which INTER_AREA maps onto
exactly rows 2(n-1), 2(n-1)+1 of the 84x84 frame; so each stack slot reveals which raw frames were
max-pooled into it. Frame n's gaze is at column n, and every frame also looks at one shared pixel,
so the fixation union of an input reveals which frames' gazes it collected and how often.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fls.atari_head import AtariHeadError
from fls.atari_head.dataset import Trial, iter_trials, load_index, load_trial
from fls.atari_head.preprocess import count_inputs, input_gaze_frames, input_raw_frames, preprocess
from fls.atari_head.sample import ZipTrial, frames_tar_bz2, game_zip_bytes

HEADER = "frame_id,episode_id,score,duration(ms),unclipped_reward,action,gaze_positions"
N_FRAMES = 42  # 42 stripes of 5 rows fill the 210-row frame
NULL_GAZE_FRAME = 11
SHARED = (50, 60)  # (row, col) every frame also fixates


def stripe_png(n: int) -> bytes:
    img = np.zeros((210, 160, 3), dtype=np.uint8)
    img[5 * (n - 1) : 5 * n] = 255
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def step_files(m: int) -> set[int]:
    return {1} if m == 0 else {4 * m, 4 * m + 1}


def spec_frames(k: int) -> set[int]:
    return {f for m in range(max(0, k - 3), k + 1) for f in step_files(m)}


def spec_gaze_rows(k: int, alignment: str) -> list[int]:
    """The label rows (frame numbers) docs/atari_head.md says feed input k's fixations, written out by hand."""
    if alignment == "authors":
        return [f for m in range(k - 3, k + 1) for f in (4 * m - 1, 4 * m) if f >= 1]
    return sorted(spec_frames(k))


def lit_frames(processed: np.ndarray) -> set[int]:
    """Raw frames whose stripe is lit in an 84x84 processed frame."""
    assert set(np.unique(processed).tolist()) <= {0, 255}  # stripes map onto whole output rows
    rows = processed[:, 0] == 255
    return {r // 2 + 1 for r in np.flatnonzero(rows)}


def _marker_trial():
    stem = "5_AB_42_Jan-01-00-00-00"
    frames = [(f"{stem}/AB_42_{n}.png", stripe_png(n)) for n in sorted(range(1, N_FRAMES + 1), key=str)]
    rows = [HEADER]
    for n in range(1, N_FRAMES + 1):
        if n == NULL_GAZE_FRAME:
            gaze = "null"
        else:  # two points on (100, n), one on SHARED, one off-screen
            gaze = f"{n}.2,100.1,{n - 0.3},99.8,{SHARED[1]}.0,{SHARED[0]}.4,-4.0,20.0"
        rows.append(f"AB_42_{n},0,0,50,0,{n % 18},{gaze}")
    return stem, frames_tar_bz2(frames), "\n".join(rows) + "\n"


@pytest.fixture(scope="module", params=["v4", "v2"])
def marker_dir(request, tmp_path_factory):
    """The marker trial preprocessed from a v4 game zip or from a v2 flat record folder."""
    root = tmp_path_factory.mktemp(f"ah_markers_{request.param}")
    stem, tar, labels = _marker_trial()
    if request.param == "v4":
        zt = ZipTrial(stem=stem, highscore=False, tar_bz2=tar, labels=labels)
        (root / "breakout.zip").write_bytes(game_zip_bytes("breakout", [zt]))
    else:
        (root / f"{stem}.tar.bz2").write_bytes(tar)
        (root / f"{stem}.txt").write_text(labels)
        (root / "meta_data.csv").write_text(
            "TrialNumber,Subject,Game,NumberOfFrames\n5.0,AB,Breakout,42.0\n6,AB,,\n7.0,AB,Mspacman,12.0\n"
        )
    preprocess(root, root / "out", "breakout", progress=False)
    return root / "out", request.param


@pytest.fixture(scope="module", params=["authors", "aligned"])
def trial(request, marker_dir) -> Trial:
    out, _ = marker_dir
    return load_trial(out / "trials" / "Breakout" / "5.npz", request.param)


def test_input_count_and_frame_ids(trial, marker_dir):
    k = (N_FRAMES - 2) // 4 + 1
    assert trial.n_inputs == k == count_inputs(N_FRAMES) == 11
    assert trial.inputs.shape == (k, 4, 84, 84) and trial.inputs.dtype == np.uint8
    assert trial.frame_ids.tolist() == [[1, 1]] + [[4 * i, 4 * i + 1] for i in range(1, k)]
    assert trial.actions.tolist() == [1] + [(4 * i + 1) % 18 for i in range(1, k)]
    assert trial.release == marker_dir[1]


def test_inputs_use_exactly_spec_raw_frames(trial):
    for k in range(trial.n_inputs):
        union: set[int] = set()
        for slot in range(4):
            m = k - 3 + slot
            got = lit_frames(trial.inputs[k, slot])
            if m < 0:
                assert got == set() and not trial.inputs[k, slot].any()  # zeroed stack at reset
            else:
                assert got == step_files(m), (k, slot)
            union |= got
        assert union == spec_frames(k) == set(input_raw_frames(k))


def test_fixation_union_is_exactly_the_gazes_of_those_rows(trial):
    for k in range(trial.n_inputs):
        rows = spec_gaze_rows(k, trial.alignment)
        assert rows == input_gaze_frames(k, trial.alignment)
        expected = np.zeros((210, 160), dtype=np.int32)
        for n in rows:
            if n == NULL_GAZE_FRAME:
                continue
            expected[100, n] += 2
            expected[SHARED] += 1
        np.testing.assert_array_equal(trial.fixation_map(k), expected, err_msg=f"input {k}")
        r, c, cnt = trial.fixation_points(k)
        assert list(zip(r.tolist(), c.tolist())) == sorted(zip(r.tolist(), c.tolist()))
        assert trial.n_fixations(k) == int(cnt.sum()) == 3 * len([n for n in rows if n != NULL_GAZE_FRAME])


def test_worked_examples_of_docs():
    # docs/atari_head.md: input 2 under each alignment
    assert input_raw_frames(2) == [1, 4, 5, 8, 9]
    assert input_gaze_frames(2, "authors") == [3, 4, 7, 8]
    assert input_gaze_frames(2, "aligned") == [1, 4, 5, 8, 9]
    assert input_gaze_frames(0, "authors") == [] and input_gaze_frames(0, "aligned") == [1]
    assert input_gaze_frames(5, "authors") == [7, 8, 11, 12, 15, 16, 19, 20]


def test_fixation_maps_batch_and_counts(trial):
    ks = [0, 3, trial.n_inputs - 1]
    maps = trial.fixation_maps(ks)
    assert maps.shape == (3, 210, 160) and maps.dtype == np.int32
    for i, k in enumerate(ks):
        np.testing.assert_array_equal(maps[i], trial.fixation_map(k))
    assert trial.n_gaze_dropped == N_FRAMES - 1  # one off-screen point per non-null frame
    assert trial.n_gaze_kept == 3 * (N_FRAMES - 1)
    assert trial.n_null_gaze == 1
    with pytest.raises(IndexError):
        trial.fixation_map(trial.n_inputs)


def test_index_and_loader(trial, marker_dir):
    out = trial.path.parent.parent.parent
    df = load_index(out)
    assert len(df) == 1 and df.loc[0, "release"] == marker_dir[1]  # the v2 meta's MsPacman row is not asked for
    assert df.loc[0, "n_inputs"] == trial.n_inputs and df.loc[0, "game"] == "Breakout"
    assert df.loc[0, "path"] == str(trial.path) and df.loc[0, "skipped"] == ""
    assert [t.trial_id for t in iter_trials(out, "breakout", trial.alignment)] == [5]
    assert (trial.game, trial.head_game, trial.subject, trial.highscore) == ("Breakout", "breakout", "AB", False)


def test_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="index.csv"):
        load_index(tmp_path)
    np.savez(tmp_path / "x.npz", inputs=np.zeros((1, 4, 84, 84), np.uint8))
    with pytest.raises(AtariHeadError, match="missing arrays"):
        load_trial(tmp_path / "x.npz")


def test_short_trials_have_no_inputs():
    # step m needs file 4m+2 (the authors' env ends the episode on reading past the last file)
    assert [count_inputs(n) for n in (0, 1, 2, 5, 6, 9, 10)] == [0, 0, 1, 1, 2, 2, 3]


def test_unknown_alignment_is_refused(trial):
    with pytest.raises(AtariHeadError, match="alignment"):
        load_trial(trial.path, "shifted")
