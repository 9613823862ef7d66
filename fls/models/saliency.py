"""Attention grid -> saliency map, the paper's way: paint every unit's receptive field with its attention.

A transposed convolution with a kernel of ones (receptive field r, stride s, padding p from
``ArchSpec.render``) adds h[i, j] to the r x r input window of unit (i, j) at (i*s - p, j*s - p); the sum is
clamped at 0. This sits between bilinear upscaling of h (ignores receptive fields) and input Jacobians
(very noisy). Maps are not normalised here: metrics standardise them, and videos choose their own scale.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from fls.frames import FRAME_SHAPE, OBS_SIZE
from fls.models.blocks import ones_transpose
from fls.models.registry import ArchSpec, get_arch


def _as_batch(attention: torch.Tensor | np.ndarray, spec: ArchSpec) -> tuple[torch.Tensor, bool, bool]:
    is_numpy = isinstance(attention, np.ndarray)
    t = torch.from_numpy(np.asarray(attention, dtype=np.float32)) if is_numpy else attention.float()
    single = t.dim() == 2
    if single:
        t = t.unsqueeze(0)
    if t.dim() != 3 or tuple(t.shape[1:]) != tuple(spec.attention_grid):
        h, w = spec.attention_grid
        raise ValueError(
            f"{spec.id}: attention must have shape (B, {h}, {w}) or ({h}, {w}), got {tuple(attention.shape)}"
        )
    return t, is_numpy, single


def _out(t: torch.Tensor, is_numpy: bool, single: bool) -> torch.Tensor | np.ndarray:
    if single:
        t = t[0]
    return t.detach().cpu().numpy() if is_numpy else t


def render_84(attention: torch.Tensor | np.ndarray, spec: ArchSpec | str) -> torch.Tensor | np.ndarray:
    """(B, h, w) attention -> (B, 84, 84) saliency on the network input, float32, >= 0.

    Accepts a torch tensor (result stays on its device, differentiable) or a numpy array (returns numpy);
    a single (h, w) map gives a single (84, 84) map.
    """
    spec = get_arch(spec)
    t, is_numpy, single = _as_batch(attention, spec)
    r = spec.render
    out = ones_transpose(t, r.receptive_field, r.stride, r.padding).clamp(min=0)
    if tuple(out.shape[1:]) != (OBS_SIZE, OBS_SIZE):  # a RenderSpec inconsistent with its grid
        raise ValueError(f"{spec.id}: render {r} maps the {spec.attention_grid} grid to {tuple(out.shape[1:])}, not 84x84")
    return _out(out, is_numpy, single)


def render_frame(
    attention: torch.Tensor | np.ndarray, spec: ArchSpec | str, size: tuple[int, int] = FRAME_SHAPE
) -> torch.Tensor | np.ndarray:
    """(B, h, w) attention -> (B, 210, 160) saliency on the raw frame: ``render_84`` then bilinear upscaling.

    Bilinear with ``align_corners=False`` (pixel centres aligned, edges clamped), the convention of OpenCV's
    and skimage's resize; the authors used ``skimage.transform.resize``, which differs only in reflecting
    instead of clamping in the outermost half pixel. Upscaling keeps values >= 0.
    """
    spec = get_arch(spec)
    t, is_numpy, single = _as_batch(attention, spec)
    m84 = render_84(t, spec)
    out = F.interpolate(m84.unsqueeze(1), size=tuple(size), mode="bilinear", align_corners=False).squeeze(1)
    return _out(out, is_numpy, single)
