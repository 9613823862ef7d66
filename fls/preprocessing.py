"""The frame preprocessing shared by training, evaluation and Atari-HEAD replay (docs/environments.md, "Preprocessing: what one observation is").

Per agent step (a skip of 4 raw frames): pixel-wise max of the grayscale versions of the last two raw
frames, resized to 84x84 with area interpolation; the network input stacks the last 4 such frames.
Grayscale is OpenCV's RGB2GRAY, which equals ALE's own grayscale on these games, so these pure
functions reproduce the C++ vector env byte for byte and can be applied to recorded RGB frames.
"""

from __future__ import annotations

import cv2
import numpy as np

from fls.frames import OBS_SIZE, STACK


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """(210, 160, 3) uint8 RGB -> (210, 160) uint8."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got shape {rgb.shape} dtype {rgb.dtype}")
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def resize84(gray: np.ndarray) -> np.ndarray:
    """(210, 160) uint8 -> (84, 84) uint8 with area interpolation."""
    return cv2.resize(gray, (OBS_SIZE, OBS_SIZE), interpolation=cv2.INTER_AREA)


def process_pair(rgb_a: np.ndarray, rgb_b: np.ndarray) -> np.ndarray:
    """One processed frame from the last two raw frames of a skip (max over grayscale, then resize)."""
    return resize84(np.maximum(to_gray(rgb_a), to_gray(rgb_b)))


def stack_inputs(processed: np.ndarray) -> np.ndarray:
    """(T, 84, 84) processed frames -> (T, 4, 84, 84) network inputs, input k = frames k-3..k.

    Before the 4th frame the missing slots are zeros, as in a frame stack that starts from a reset
    with zero-filled history.
    """
    t = processed.shape[0]
    out = np.zeros((t, STACK, OBS_SIZE, OBS_SIZE), dtype=np.uint8)
    for j in range(STACK):
        shift = STACK - 1 - j  # slot j holds frame k - shift
        if shift < t:
            out[shift:, j] = processed[: t - shift]
    return out
