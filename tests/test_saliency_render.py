"""Saliency rendering against a brute-force 'paint each receptive field' reference."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from fls.models import ARCHS, render_84, render_frame

# One architecture per grid kind of docs/models.md, "Saliency maps".
GRID_KINDS = {"sparse_fls": ((7, 7), 36, 8, 0), "sparse_fls_first": ((20, 20), 8, 4, 0), "dense_fls_pool": ((84, 84), 13, 1, 6)}


def paint_reference(h: np.ndarray, r: int, s: int, p: int, size: int = 84) -> np.ndarray:
    """Add h[i, j] to the r x r window at (i*s - p, j*s - p), clipped to the image, then clamp at 0."""
    out = np.zeros((size, size), dtype=np.float64)
    for i in range(h.shape[0]):
        for j in range(h.shape[1]):
            y0, x0 = i * s - p, j * s - p
            out[max(y0, 0) : max(min(y0 + r, size), 0), max(x0, 0) : max(min(x0 + r, size), 0)] += h[i, j]
    return np.maximum(out, 0)


@pytest.mark.parametrize("arch", list(GRID_KINDS))
def test_render_spec_matches_spec_md(arch):
    grid, r, s, p = GRID_KINDS[arch]
    spec = ARCHS[arch]
    assert spec.attention_grid == grid
    assert (spec.render.receptive_field, spec.render.stride, spec.render.padding) == (r, s, p)


@pytest.mark.parametrize("arch", list(GRID_KINDS))
def test_render_84_equals_painting_receptive_fields(arch):
    grid, r, s, p = GRID_KINDS[arch]
    rng = np.random.default_rng(0)
    h = rng.normal(size=(3, *grid)).astype(np.float32)  # negative values exercise the clamp
    got = render_84(torch.from_numpy(h), ARCHS[arch])
    assert isinstance(got, torch.Tensor) and got.shape == (3, 84, 84) and got.dtype == torch.float32
    for b in range(3):
        np.testing.assert_allclose(got[b].numpy(), paint_reference(h[b], r, s, p), rtol=1e-5, atol=1e-4)
    assert (got >= 0).all()
    assert (got == 0).any()  # the clamp actually bit somewhere for these random maps


def test_render_of_one_hot_cell_is_its_receptive_field():
    h = torch.zeros(1, 7, 7)
    h[0, 2, 5] = 1.0
    m = render_84(h, "sparse_fls")[0]
    ys, xs = torch.nonzero(m, as_tuple=True)
    assert (ys.min().item(), ys.max().item(), xs.min().item(), xs.max().item()) == (16, 16 + 35, 40, 40 + 35)
    assert m.sum().item() == 36 * 36


def test_numpy_in_numpy_out_and_single_map():
    h = np.random.default_rng(1).random((20, 20))
    out = render_84(h, "sparse_fls_each")
    assert isinstance(out, np.ndarray) and out.shape == (84, 84)
    np.testing.assert_allclose(out, paint_reference(h, 8, 4, 0), rtol=1e-5, atol=1e-5)
    frame = render_frame(h, "sparse_fls_each")
    assert isinstance(frame, np.ndarray) and frame.shape == (210, 160)


@pytest.mark.parametrize("arch", list(GRID_KINDS))
def test_render_frame_is_bilinear_upscale_of_render_84(arch):
    grid = GRID_KINDS[arch][0]
    h = torch.rand(2, *grid)
    frame = render_frame(h, arch)
    assert frame.shape == (2, 210, 160)
    m84 = render_84(h, arch).numpy()
    for b in range(2):
        # OpenCV's INTER_LINEAR uses the same half-pixel-centre convention as align_corners=False.
        expected = cv2.resize(m84[b], (160, 210), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_allclose(frame[b].numpy(), expected, rtol=1e-4, atol=1e-3)
    assert (frame >= 0).all()


def test_custom_frame_size():
    assert render_frame(torch.rand(1, 7, 7), "daqn", size=(100, 50)).shape == (1, 100, 50)


def test_wrong_grid_is_a_clear_error():
    with pytest.raises(ValueError, match=r"sparse_fls: attention must have shape \(B, 7, 7\)"):
        render_84(torch.rand(2, 20, 20), "sparse_fls")


def test_every_arch_renders_its_own_attention_to_84():
    for spec in ARCHS.values():
        assert render_84(torch.rand(1, *spec.attention_grid), spec).shape == (1, 84, 84), spec.id
