"""Perception videos in the layout of the paper's Figure 4, for looking at what an agent attends to.

Each video frame stacks two panels:
  top     the raw 210x160 RGB frame with the saliency (``render_frame``) drawn in white, alpha-blended in
          proportion to the saliency min-max normalised per frame (an untrained or diffuse map is nearly
          constant; scaling by the maximum alone would paint the whole screen white);
  bottom  the network's newest 84x84 input frame, upscaled to 160x160 (nearest), in the blue channel, with
          the 84x84 saliency (``render_84``, same normalisation) in the green channel, as in the paper.
Models without attention (nature_cnn) get the plain panels with "no attention (<arch>)" written on them.

The video comes from its own short single-env rollout (the vector env used for the score does not expose
raw RGB frames): the first episode played from env seed ``cfg.seed`` (the seed of evaluation env 0), with
the same sampled-action policy, cut at ``cfg.video_max_steps`` agent steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch

from fls.atomic import atomic_path
from fls.envs.single import make_single_env
from fls.evaluation.protocol import ActionSampler, check_action_set
from fls.frames import FRAME_COLS, FRAME_ROWS, FRAME_SHAPE, OBS_SIZE
from fls.models.saliency import render_84, render_frame

PANEL_H = FRAME_COLS  # the 84x84 input is shown 160x160
VIDEO_SIZE = (FRAME_ROWS + PANEL_H, FRAME_COLS)  # (rows, cols) of a composed frame
WHITE_ALPHA = 0.85  # opacity of the white overlay where the normalised saliency is 1
FPS = 15  # agent steps per second of video (60 Hz emulator / frame skip 4)


class VideoError(ValueError):
    pass


def normalise(saliency: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1] (non-finite values count as 0); a constant map gives zeros (nothing drawn)."""
    s = np.nan_to_num(np.asarray(saliency, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if not s.size:
        return s
    lo, hi = float(s.min()), float(s.max())
    return (s - lo) / (hi - lo) if hi - lo > 1e-12 * max(1.0, abs(hi)) else np.zeros_like(s)


def compose_frame(
    rgb: np.ndarray,
    obs_frame: np.ndarray,
    saliency_frame: np.ndarray | None,
    saliency_84: np.ndarray | None,
    *,
    label: str | None = None,
) -> np.ndarray:
    """One Figure-4 video frame, (370, 160, 3) uint8 in RGB order; ``None`` saliency = no attention."""
    if rgb.shape != (*FRAME_SHAPE, 3):
        raise VideoError(f"raw frame must be ({FRAME_ROWS}, {FRAME_COLS}, 3), got {rgb.shape}")
    if obs_frame.shape != (OBS_SIZE, OBS_SIZE):
        raise VideoError(f"input frame must be ({OBS_SIZE}, {OBS_SIZE}), got {obs_frame.shape}")
    top = rgb.astype(np.float32)
    if saliency_frame is not None:
        a = (WHITE_ALPHA * normalise(saliency_frame))[..., None]
        top = top * (1.0 - a) + 255.0 * a
    bottom = np.zeros((OBS_SIZE, OBS_SIZE, 3), dtype=np.float32)
    bottom[..., 2] = obs_frame  # blue channel (RGB order)
    if saliency_84 is not None:
        bottom[..., 1] = 255.0 * normalise(saliency_84)
    bottom = cv2.resize(bottom, (FRAME_COLS, PANEL_H), interpolation=cv2.INTER_NEAREST)
    out = np.clip(np.concatenate([top, bottom], axis=0), 0, 255).astype(np.uint8)
    if label:
        cv2.putText(out, label, (3, FRAME_ROWS + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (255, 255, 255), 1, cv2.LINE_AA)
    return out


class RawFrameEnv(Protocol):
    """A single env that also yields the raw RGB frame the agent saw last (see ``fls.envs``)."""

    def reset(self) -> tuple[np.ndarray, np.ndarray]:  # obs (4, 84, 84) uint8, rgb (210, 160, 3) uint8
        ...

    def step(self, action: int) -> tuple[np.ndarray, np.ndarray, float, bool]:  # obs, rgb, reward, game over
        ...

    def close(self) -> None:
        ...


@dataclass
class Rollout:
    frames: list[np.ndarray]  # composed (370, 160, 3) RGB frames
    steps: int
    score: float
    game_over: bool


def record_rollout(
    model: torch.nn.Module,
    env: RawFrameEnv,
    sampler: Callable[[torch.Tensor], np.ndarray],
    device: torch.device,
    max_steps: int,
) -> Rollout:
    """Play one episode (at most ``max_steps`` agent steps), composing a video frame per step.

    Frame t shows the input the agent acted on at step t and the saliency of that decision.
    """
    spec = model.spec
    label = None if spec.has_attention else f"no attention ({spec.id})"
    obs, rgb = env.reset()
    frames: list[np.ndarray] = []
    score, game_over, steps = 0.0, False, 0
    with torch.inference_mode():
        while steps < max_steps and not game_over:
            out = model(torch.from_numpy(np.ascontiguousarray(obs))[None].to(device))
            if spec.has_attention:
                att = out.attention.float()
                s_frame = render_frame(att, spec)[0].cpu().numpy()
                s_84 = render_84(att, spec)[0].cpu().numpy()
            else:
                s_frame = s_84 = None
            frames.append(compose_frame(rgb, obs[-1], s_frame, s_84, label=label))
            action = int(sampler(out.logits)[0])
            obs, rgb, reward, game_over = env.step(action)
            score += float(reward)
            steps += 1
    return Rollout(frames=frames, steps=steps, score=score, game_over=game_over)


def perception_rollout(
    model: torch.nn.Module,
    game: str,
    *,
    seed: int,
    max_steps: int,
    max_episode_steps: int,
    deterministic: bool = False,
    device: torch.device | str = "cpu",
    env: RawFrameEnv | None = None,
) -> Rollout:
    """The first game from env seed ``seed``, played by ``model`` for at most ``max_steps`` agent steps.

    Shared by the evaluation's videos and the report's Figure 4 panels, so both draw the same frames.
    ``env`` defaults to the whole-game single env of ``game`` (``open_video_env``); tests pass a fake.
    """
    check_action_set(model.num_actions, game)
    dev = torch.device(device)
    model = model.to(dev).eval()
    own = env is None
    if env is None:
        env = open_video_env(game, seed, max_episode_steps)
    try:
        # A generator of its own, so that making a video never changes the evaluation's action samples.
        return record_rollout(model, env, ActionSampler(seed, deterministic), dev, max_steps)
    finally:
        if own:
            env.close()


def write_mp4(frames: list[np.ndarray], path: str | Path, fps: int = FPS) -> Path:
    """Write RGB frames as an mp4 (codec mp4v, which opencv-python-headless can encode), atomically."""
    if not frames:
        raise VideoError(f"{path}: no frames to write")
    h, w = frames[0].shape[:2]
    target = Path(path)
    if target.suffix.lower() != ".mp4":
        raise VideoError(f"{path}: video path must end in .mp4")
    with atomic_path(target) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
        if not writer.isOpened():
            raise VideoError(f"{path}: OpenCV could not open an mp4v video writer")
        try:
            for f in frames:
                writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
    return target


def write_pngs(frames: list[np.ndarray], out_dir: str | Path, every: int) -> list[Path]:
    """Save frames 0, k, 2k, ... as ``step_<t>.png`` (zero-padded step index), each atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for t in range(0, len(frames), every):
        p = out / f"step_{t:06d}.png"
        with atomic_path(p) as tmp:
            if not cv2.imwrite(str(tmp), cv2.cvtColor(frames[t], cv2.COLOR_RGB2BGR)):
                raise VideoError(f"{p}: OpenCV could not write the PNG")
        written.append(p)
    return written


def read_video_info(path: str | Path) -> dict[str, Any]:
    """Frame count and size of a video as OpenCV decodes it (counts decoded frames, not the header)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoError(f"{path}: OpenCV cannot open this video")
    n, shape = 0, None
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            n += 1
            shape = frame.shape
    finally:
        cap.release()
    return {"frames": n, "height": shape[0] if shape else None, "width": shape[1] if shape else None}


def make_perception_video(
    model: torch.nn.Module,
    game: str,
    cfg: Any,
    *,
    video: str | Path | None = None,
    frames_dir: str | Path | None = None,
    device: torch.device | str = "cpu",
    env: RawFrameEnv | None = None,
) -> dict[str, Any]:
    """Record the rollout described in the module docstring; write the mp4 and/or PNGs; return a summary."""
    if video is None and frames_dir is None:
        raise VideoError("nothing to write: give a video path and/or a frames directory")
    if video is not None and Path(video).suffix.lower() != ".mp4":
        raise VideoError(f"{video}: video path must end in .mp4")
    roll = perception_rollout(
        model, game, seed=cfg.seed, max_steps=cfg.video_max_steps, max_episode_steps=cfg.max_episode_steps_for(game),
        deterministic=cfg.deterministic, device=device, env=env,
    )
    info: dict[str, Any] = {
        "seed": cfg.seed,
        "steps": roll.steps,
        "score": roll.score,
        "game_over": roll.game_over,
        "frame_size": list(VIDEO_SIZE),
        "fps": FPS,
    }
    if video is not None:
        info["video"] = str(write_mp4(roll.frames, video))
    if frames_dir is not None:
        info["frames_dir"] = str(frames_dir)
        info["frame_every"] = cfg.frame_every
        info["pngs"] = len(write_pngs(roll.frames, frames_dir, cfg.frame_every))
    return info


class SingleEnvAdapter:
    """``fls.envs.single.AtariSingleEnv`` seen through ``RawFrameEnv`` (its ``render()`` is the raw screen)."""

    def __init__(self, env: Any) -> None:
        self.env = env

    def reset(self) -> tuple[np.ndarray, np.ndarray]:
        obs, _ = self.env.reset()
        return obs, self.env.render()

    def step(self, action: int) -> tuple[np.ndarray, np.ndarray, float, bool]:
        obs, reward, _terminated, _truncated, info = self.env.step(action)
        return obs, self.env.render(), float(reward), "episode" in info  # the whole game ended

    def close(self) -> None:
        self.env.close()


def open_video_env(game: str, seed: int, max_episode_steps: int) -> SingleEnvAdapter:
    """Whole-game single env (BreakoutInfinite too) with the evaluation's resets, seeded like eval env 0."""
    return SingleEnvAdapter(make_single_env(game, seed=seed, episodic_life=True, max_episode_steps=max_episode_steps))
