"""Post-hoc saliency of any policy network, to compare built-in attention against the usual alternatives.

- Perturbation saliency (Greydanus et al. 2017, "Visualizing and Understanding Atari Agents"): blur the
  input inside a Gaussian mask (peak 1, std ``sigma`` px) centred on every point of a grid with ``stride``
  px, and score the point by ``0.5 * ||logits(x) - logits(x')||^2``; ``x' = x * (1 - M) + blur(x) * M`` with
  the blurred copy a Gaussian blur of std ``blur_sigma``. Greydanus used sigma 5, stride 5, blur 3 on 80x80
  single frames; here the mask applies to all 4 stacked 84x84 frames. The score grid (17x17 at stride 5)
  is upscaled bilinearly to 84x84, as Greydanus resized his score array.
- Gradient saliency (Simonyan et al. 2013): ``|d max_a logits_a / d x|`` summed over the 4 stacked frames.

Both return non-negative ``(B, 84, 84)`` maps; ``to_frame`` upscales them to 210x160 exactly like
``fls.models.saliency.render_frame`` does for attention.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from fls.frames import FRAME_SHAPE, OBS_SIZE


def _gaussian_kernel1d(sigma: float, device: torch.device) -> torch.Tensor:
    radius = max(1, int(math.floor(4.0 * sigma + 0.5)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-(x**2) / (2.0 * sigma * sigma))
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` float images, radius 4 sigma, reflect-101 boundary.

    (Greydanus used ``scipy.ndimage.gaussian_filter``, whose 'reflect' repeats the edge pixel; torch pads
    without repeating it. The difference is confined to a blur-radius band at the edges of the perturbation.)
    """
    k = _gaussian_kernel1d(sigma, x.device)
    r = (len(k) - 1) // 2
    b, c, h, w = x.shape
    y = x.reshape(b * c, 1, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate" if r >= w else "reflect"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate" if r >= h else "reflect"), k.view(1, 1, -1, 1))
    return y.reshape(b, c, h, w)


def perturbation_masks(
    sigma: float = 5.0, stride: int = 5, size: int = OBS_SIZE, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """``(G, G, size, size)`` Gaussian masks (peak 1) centred on the grid points ``0, stride, 2*stride, ...``."""
    centres = torch.arange(0, size, stride, dtype=torch.float32, device=device)
    pix = torch.arange(size, dtype=torch.float32, device=device)
    d = (pix[None, :] - centres[:, None]) ** 2  # (G, size)
    m = torch.exp(-(d[:, None, :, None] + d[None, :, None, :]) / (2.0 * sigma * sigma))
    return m


@torch.no_grad()
def perturbation_saliency(
    model: torch.nn.Module,
    obs: torch.Tensor,
    *,
    sigma: float = 5.0,
    stride: int = 5,
    blur_sigma: float = 3.0,
    chunk: int = 512,
) -> torch.Tensor:
    """``(B, 84, 84)`` Greydanus perturbation saliency of uint8 (or 0..255 float) inputs ``(B, 4, 84, 84)``."""
    x = obs.float()
    b = x.shape[0]
    masks = perturbation_masks(sigma, stride, x.shape[-1], x.device)
    g = masks.shape[0]
    masks = masks.reshape(g * g, 1, x.shape[-2], x.shape[-1])
    base = model(x).logits
    blurred = gaussian_blur(x, blur_sigma)
    scores = torch.empty(b, g * g, device=x.device)
    per = max(1, chunk // max(1, b))  # masks per forward pass, so a pass holds about ``chunk`` inputs
    for m0 in range(0, g * g, per):
        m = masks[m0 : m0 + per]  # (M, 1, H, W)
        pert = x[:, None] * (1 - m[None]) + blurred[:, None] * m[None]  # (B, M, 4, H, W)
        logits = model(pert.reshape(-1, *x.shape[1:])).logits.reshape(b, len(m), -1)
        scores[:, m0 : m0 + len(m)] = 0.5 * ((logits - base[:, None]) ** 2).sum(-1)
    grid = scores.reshape(b, 1, g, g)
    return F.interpolate(grid, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)[:, 0].clamp(min=0)


def gradient_saliency(model: torch.nn.Module, obs: torch.Tensor) -> torch.Tensor:
    """``(B, 84, 84)``: |gradient of the top logit w.r.t. the input|, summed over the 4 stacked frames."""
    with torch.enable_grad():
        x = obs.detach().float().requires_grad_(True)
        logits = model(x).logits
        top = logits.max(dim=1).values.sum()  # inputs are independent: one backward serves the batch
        (grad,) = torch.autograd.grad(top, x)
    return grad.abs().sum(dim=1)


def to_frame(maps84: torch.Tensor, size: tuple[int, int] = FRAME_SHAPE) -> torch.Tensor:
    """``(B, 84, 84)`` -> ``(B, 210, 160)`` bilinear (``align_corners=False``), like ``render_frame``."""
    return F.interpolate(maps84[:, None].float(), size=tuple(size), mode="bilinear", align_corners=False)[:, 0]


def posthoc_frame_maps(method: str, model: torch.nn.Module, obs: torch.Tensor, **kw: float) -> np.ndarray:
    """``(B, 210, 160)`` float64 post-hoc saliency (``method``: 'perturbation' or 'gradient')."""
    if method == "perturbation":
        m84 = perturbation_saliency(model, obs, **kw)  # type: ignore[arg-type]
    elif method == "gradient":
        m84 = gradient_saliency(model, obs)
    else:
        raise ValueError(f"unknown post-hoc saliency method '{method}' (expected 'perturbation' or 'gradient')")
    return to_frame(m84).double().cpu().numpy()
