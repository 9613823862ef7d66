"""Model-free saliency baselines: what a metric gives without looking at the screen at all.

- ``uniform``: a constant map. NSS and shuffled AUC are undefined for it (a constant map has no spread to
  standardise or rank); that NaN is the honest result, not something to replace with 0 or 0.5. KL is
  defined: it measures how far the blurred fixations are from uniform.
- ``center_bias``: an isotropic-in-relative-units Gaussian centred on the frame, standard deviation
  ``sigma_frac`` of the height (rows) and of the width (columns). Human gaze is biased toward the centre,
  so plain AUC/NSS reward it; shuffled AUC is designed to score it near chance (0.5).
"""

from __future__ import annotations

import numpy as np

from fls.frames import FRAME_SHAPE


def uniform_map(shape: tuple[int, int] = FRAME_SHAPE) -> np.ndarray:
    return np.ones(shape, dtype=np.float64)


def center_bias_map(shape: tuple[int, int] = FRAME_SHAPE, sigma_frac: float = 0.25) -> np.ndarray:
    """Gaussian peak 1 at the centre of the pixel grid; std ``sigma_frac * H`` in rows, ``sigma_frac * W`` in columns."""
    if sigma_frac <= 0:
        raise ValueError(f"center_bias: sigma_frac must be > 0, got {sigma_frac}")
    h, w = shape
    y = (np.arange(h) - (h - 1) / 2.0) / (sigma_frac * h)
    x = (np.arange(w) - (w - 1) / 2.0) / (sigma_frac * w)
    return np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2))


def reference_map(method: str, shape: tuple[int, int] = FRAME_SHAPE, *, sigma_frac: float = 0.25) -> np.ndarray:
    if method == "uniform":
        return uniform_map(shape)
    if method == "center_bias":
        return center_bias_map(shape, sigma_frac)
    raise ValueError(f"unknown reference map '{method}' (expected 'uniform' or 'center_bias')")
