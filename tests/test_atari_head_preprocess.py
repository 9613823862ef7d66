"""Alignment of preprocessed Atari-HEAD inputs and fixations with SPEC's raw frames {4m+2, 4m+3 : m=k-3..k}.

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
from fls.atari_head.preprocess import count_inputs, input_raw_frames, preprocess
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


def spec_frames(k: int) -> set[int]:
    return {f for m in range(max(0, k - 3), k + 1) for f in (4 * m + 2, 4 * m + 3)}


def lit_frames(processed: np.ndarray) -> set[int]:
    """Raw frames whose stripe is lit in an 84x84 processed frame."""
    assert set(np.unique(processed).tolist()) <= {0, 255}  # stripes map onto whole output rows
    rows = processed[:, 0] == 255
    return {r // 2 + 1 for r in np.flatnonzero(rows)}


@pytest.fixture(scope="module")
def trial(tmp_path_factory) -> Trial:
    root = tmp_path_factory.mktemp("ah_markers")
    stem = "5_AB_42_Jan-01-00-00-00"
    frames = [(f"{stem}/AB_42_{n}.png", stripe_png(n)) for n in sorted(range(1, N_FRAMES + 1), key=str)]
    rows = [HEADER]
    for n in range(1, N_FRAMES + 1):
        if n == NULL_GAZE_FRAME:
            gaze = "null"
        else:  # two points on (100, n), one on SHARED, one off-screen
            gaze = f"{n}.2,100.1,{n - 0.3},99.8,{SHARED[1]}.0,{SHARED[0]}.4,-4.0,20.0"
        rows.append(f"AB_42_{n},0,0,50,0,{n % 18},{gaze}")
    zt = ZipTrial(stem=stem, highscore=False, tar_bz2=frames_tar_bz2(frames), labels="\n".join(rows) + "\n")
    (root / "breakout.zip").write_bytes(game_zip_bytes("breakout", [zt]))
    preprocess(root, root / "out", "breakout", progress=False)
    return load_trial(root / "out" / "trials" / "Breakout" / "5.npz")


def test_input_count_and_frame_ids(trial):
    k = (N_FRAMES - 3) // 4 + 1
    assert trial.n_inputs == k == count_inputs(N_FRAMES)
    assert trial.inputs.shape == (k, 4, 84, 84) and trial.inputs.dtype == np.uint8
    assert trial.frame_ids.tolist() == [4 * i + 3 for i in range(k)]
    assert trial.actions.tolist() == [(4 * i + 3) % 18 for i in range(k)]


def test_inputs_use_exactly_spec_raw_frames(trial):
    for k in range(trial.n_inputs):
        union: set[int] = set()
        for slot in range(4):
            m = k - 3 + slot
            got = lit_frames(trial.inputs[k, slot])
            if m < 0:
                assert got == set() and not trial.inputs[k, slot].any()  # zero padding, as AtariVectorEnv on reset
            else:
                assert got == {4 * m + 2, 4 * m + 3}, (k, slot)
            union |= got
        assert union == spec_frames(k) == set(input_raw_frames(k))


def test_fixation_union_is_exactly_the_gazes_of_those_frames(trial):
    for k in range(trial.n_inputs):
        frames = spec_frames(k) - {NULL_GAZE_FRAME}
        expected = np.zeros((210, 160), dtype=np.int32)
        for n in frames:
            expected[100, n] += 2
            expected[SHARED] += 1
        np.testing.assert_array_equal(trial.fixation_map(k), expected, err_msg=f"input {k}")
        r, c, cnt = trial.fixation_points(k)
        assert list(zip(r.tolist(), c.tolist())) == sorted(zip(r.tolist(), c.tolist()))
        assert trial.n_fixations(k) == int(cnt.sum()) == 3 * len(frames)


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


def test_index_and_loader(trial):
    out = trial.path.parent.parent.parent
    df = load_index(out)
    assert df.loc[0, "n_inputs"] == trial.n_inputs and df.loc[0, "game"] == "Breakout"
    assert df.loc[0, "path"] == str(trial.path) and df.loc[0, "skipped"] == ""
    assert [t.trial_id for t in iter_trials(out, "breakout")] == [5]
    assert (trial.game, trial.head_game, trial.subject, trial.highscore) == ("Breakout", "breakout", "AB", False)


def test_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="index.csv"):
        load_index(tmp_path)
    np.savez(tmp_path / "x.npz", inputs=np.zeros((1, 4, 84, 84), np.uint8))
    with pytest.raises(AtariHeadError, match="missing arrays"):
        load_trial(tmp_path / "x.npz")


def test_short_trials_have_no_inputs():
    assert [count_inputs(n) for n in (0, 1, 2, 3, 6, 7)] == [0, 0, 0, 1, 1, 2]
