"""Perception videos: Figure-4 frame layout, mp4 readable back, PNG frames, every architecture."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from fls.evaluation.config import EvalConfig
from fls.evaluation.video import (
    VIDEO_SIZE,
    VideoError,
    compose_frame,
    make_perception_video,
    normalise,
    read_video_info,
)
from fls.models import ARCHS
from helpers import fresh_model
from pipeline.app import app


class FakeRawEnv:
    """Random frames; the game ends after ``length`` steps."""

    def __init__(self, length: int = 12, seed: int = 0) -> None:
        self.length = length
        self.rng = np.random.default_rng(seed)
        self.t = 0

    def _frames(self):
        obs = self.rng.integers(0, 256, (4, 84, 84), dtype=np.uint8)
        rgb = self.rng.integers(0, 256, (210, 160, 3), dtype=np.uint8)
        return obs, rgb

    def reset(self):
        self.t = 0
        return self._frames()

    def step(self, action: int):
        self.t += 1
        obs, rgb = self._frames()
        return obs, rgb, 1.0, self.t >= self.length

    def close(self) -> None:
        pass


def test_compose_frame_layout_and_colours():
    rgb = np.zeros((210, 160, 3), dtype=np.uint8)
    obs = np.full((84, 84), 100, dtype=np.uint8)
    sal_frame = np.zeros((210, 160), dtype=np.float32)
    sal_frame[10, 20] = 3.0  # the maximum: drawn at full overlay strength
    sal_84 = np.zeros((84, 84), dtype=np.float32)
    sal_84[0, 0] = 2.0
    out = compose_frame(rgb, obs, sal_frame, sal_84)
    assert out.shape == (*VIDEO_SIZE, 3) and out.dtype == np.uint8
    assert out[10, 20].min() > 200 and out[10, 21].max() == 0  # white where salient, raw frame elsewhere
    bottom = out[210:]
    assert (bottom[..., 2] == 100).all() and (bottom[..., 0] == 0).all()  # input in blue, no red
    # input pixel (0, 0) covers the top-left ~2x2 block of the 160x160 panel: green there only.
    assert bottom[0, 0, 1] == 255 and bottom[0, 1, 1] == 255 and bottom[100, 100, 1] == 0


def test_no_attention_frame_is_plain_and_normalise_handles_zero_maps():
    rgb = np.full((210, 160, 3), 50, dtype=np.uint8)
    out = compose_frame(rgb, np.zeros((84, 84), np.uint8), None, None)
    assert (out[:210] == 50).all() and (out[210:, :, 1] == 0).all()
    assert not normalise(np.zeros((7, 7))).any() and not normalise(np.full((7, 7), 3.0)).any()
    assert normalise(np.array([[0.0, 2.0], [np.nan, 1.0]])).tolist() == [[0.0, 1.0], [0.0, 0.5]]
    with pytest.raises(VideoError, match="raw frame"):
        compose_frame(np.zeros((84, 84, 3), np.uint8), np.zeros((84, 84), np.uint8), None, None)


def test_video_is_readable_with_expected_frames_and_pngs(tmp_path):
    cfg = EvalConfig(video_max_steps=50, frame_every=5)
    video, frames = tmp_path / "v.mp4", tmp_path / "frames"
    info = make_perception_video(fresh_model("sparse_fls"), "Breakout", cfg, video=video, frames_dir=frames, env=FakeRawEnv(12))
    assert info["steps"] == 12 and info["game_over"] and info["score"] == 12.0
    got = read_video_info(video)
    assert got == {"frames": 12, "height": VIDEO_SIZE[0], "width": VIDEO_SIZE[1]}
    pngs = sorted(frames.glob("*.png"))
    assert [p.name for p in pngs] == ["step_000000.png", "step_000005.png", "step_000010.png"]
    assert cv2.imread(str(pngs[0])).shape == (*VIDEO_SIZE, 3)


def test_video_length_is_capped(tmp_path):
    cfg = EvalConfig(video_max_steps=7)
    info = make_perception_video(fresh_model("daqn"), "Breakout", cfg, video=tmp_path / "v.mp4", env=FakeRawEnv(100))
    assert info["steps"] == 7 and not info["game_over"]
    assert read_video_info(tmp_path / "v.mp4")["frames"] == 7


@pytest.mark.parametrize("arch", list(ARCHS))
def test_every_architecture_films(tmp_path, arch):
    cfg = EvalConfig(video_max_steps=3, frame_every=1)
    info = make_perception_video(fresh_model(arch), "Breakout", cfg, frames_dir=tmp_path, env=FakeRawEnv(3))
    assert info["pngs"] == 3
    img = cv2.imread(str(tmp_path / "step_000000.png"))
    assert img.shape == (*VIDEO_SIZE, 3)
    if arch == "nature_cnn":
        # The "no attention (nature_cnn)" label is drawn in white into the (otherwise red-free) input panel.
        assert (img[210:230, :, 2] > 200).any()  # BGR: channel 2 is red
    else:
        assert (img[210:230, :, 2] == 0).all()


def test_bad_video_requests():
    cfg = EvalConfig()
    with pytest.raises(VideoError, match="nothing to write"):
        make_perception_video(fresh_model("sparse_fls"), "Breakout", cfg, env=FakeRawEnv())
    with pytest.raises(VideoError, match=r"must end in \.mp4"):
        make_perception_video(fresh_model("sparse_fls"), "Breakout", cfg, video="x.avi", env=FakeRawEnv())


@pytest.mark.parametrize("game", ["Breakout", "BreakoutInfinite"])
def test_real_env_video_through_the_cli(tmp_path, game):
    video, frames, out = tmp_path / "v.mp4", tmp_path / "frames", tmp_path / "eval"
    res = CliRunner().invoke(
        app,
        ["evaluate", "--arch", "sparse_fls_each", "--game", game, "--episodes", "1", "--num-envs", "1",
         "--max-episode-steps", "30", "--video", str(video), "--frames", str(frames), "--frame-every", "4",
         "--video-max-steps", "20", "--device", "cpu", "--quiet", "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    info = json.loads((out / "eval.json").read_text())["video"]
    # A 30-step cap ends the game after 30 agent steps (hidden skips included); the video stops at 20.
    assert info["steps"] == 20 and info["video"] == str(video)
    assert read_video_info(video) == {"frames": 20, "height": VIDEO_SIZE[0], "width": VIDEO_SIZE[1]}
    assert info["pngs"] == 5 and len(list(frames.glob("step_*.png"))) == 5
    top = cv2.imread(str(frames / "step_000000.png"))[:210]
    assert top.std() > 5  # a real game screen, not a blank frame
