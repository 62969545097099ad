"""SSIM map and loss (sr_core.losses.ssim): closed forms, independent references, gradcheck, masks, module == function."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sr_core.losses as L
from tests.sr_core.losses.images import pixel_mask, rand

# --------------------------------------------------------------------------------------------- SSIM


def _ssim_bruteforce(x, y, data_range, ws, sigma):
    """Independent reference: explicit loop over every valid window of every band (numpy, float64)."""
    t = np.arange(ws) - (ws - 1) / 2
    g = np.exp(-(t**2) / (2 * sigma**2))
    w2 = np.outer(g, g)
    w2 /= w2.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    n, c, h, w = x.shape
    out = np.zeros((n, c, h - ws + 1, w - ws + 1))
    for i in range(n):
        for k in range(c):
            for r in range(h - ws + 1):
                for q in range(w - ws + 1):
                    a, b = x[i, k, r : r + ws, q : q + ws], y[i, k, r : r + ws, q : q + ws]
                    ma, mb = (w2 * a).sum(), (w2 * b).sum()
                    va, vb = (w2 * (a - ma) ** 2).sum(), (w2 * (b - mb) ** 2).sum()
                    cov = (w2 * (a - ma) * (b - mb)).sum()
                    out[i, k, r, q] = ((2 * ma * mb + c1) * (2 * cov + c2)) / (
                        (ma**2 + mb**2 + c1) * (va + vb + c2)
                    )
    return out


def test_ssim_identical_is_one_and_loss_zero(gen):
    x = rand(gen, 2, 3, 16, 16, dtype=torch.float64)
    smap = L.ssim_map(x, x, 1.0)
    assert smap.shape == (2, 3, 6, 6)
    torch.testing.assert_close(smap, torch.ones_like(smap))
    torch.testing.assert_close(
        L.ssim_loss(x, x, data_range=1.0, reduction="none"), torch.zeros(2, 3, dtype=torch.float64)
    )


def test_ssim_constant_images_closed_form():
    a, b, dr = 0.3, 0.7, 1.0
    x = torch.full((1, 1, 12, 12), a, dtype=torch.float64)
    y = torch.full((1, 1, 12, 12), b, dtype=torch.float64)
    c1 = (0.01 * dr) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)  # zero variances: the structure factor is 1
    torch.testing.assert_close(L.ssim_map(x, y, dr), torch.full((1, 1, 2, 2), expected, dtype=torch.float64))
    torch.testing.assert_close(
        L.ssim_loss(x, y, data_range=dr), torch.tensor(1 - expected, dtype=torch.float64)
    )


def test_ssim_map_matches_bruteforce(gen):
    x = rand(gen, 1, 2, 13, 12, dtype=torch.float64)
    y = (x + 0.2 * rand(gen, 1, 2, 13, 12, dtype=torch.float64)) * 1.5
    got = L.ssim_map(x, y, 2.0, window_size=7, sigma=1.2)
    np.testing.assert_allclose(
        got.numpy(), _ssim_bruteforce(x.numpy(), y.numpy(), 2.0, 7, 1.2), rtol=1e-10, atol=1e-12
    )


def test_ssim_loss_agrees_with_metrics(gen):
    metrics = pytest.importorskip("sr_core.metrics")
    x = rand(gen, 2, 2, 20, 20, dtype=torch.float64)
    y = x + 0.1 * rand(gen, 2, 2, 20, 20, dtype=torch.float64)
    mask = torch.ones(2, 1, 20, 20, dtype=torch.bool)
    mask[0, :, 2:5, 3:9] = False
    ours = 1 - L.ssim_loss(x, y, data_range=1.0, mask=mask, reduction="none")
    theirs = metrics.ssim(x, y, data_range=1.0, mask=mask)
    torch.testing.assert_close(ours, theirs.to(ours.dtype))
    torch.testing.assert_close(L.ssim_map(x, y, 1.0), metrics.ssim_map(x, y, data_range=1.0).to(x.dtype))


def test_ssim_mask_excludes_windows(gen):
    x = rand(gen, 1, 2, 16, 16, dtype=torch.float64)
    y = rand(gen, 1, 2, 16, 16, dtype=torch.float64)
    mask = torch.ones(1, 1, 16, 16, dtype=torch.bool)
    mask[..., :4, :] = False
    # a map pixel counts only if its whole 5x5 window is valid: map rows 4.. of the valid-mode map
    full = L.ssim_map(x, y, 1.0, window_size=5)
    expected = (1 - full[..., 4:, :]).mean(dim=(-2, -1))
    got = L.ssim_loss(x, y, data_range=1.0, mask=mask, window_size=5, reduction="none")
    torch.testing.assert_close(got, expected)
    y2 = y.clone()
    y2[..., :4, :] = float("nan")
    torch.testing.assert_close(
        L.ssim_loss(x, y2, data_range=1.0, mask=mask, window_size=5, reduction="none"), got
    )
    none_valid = torch.zeros_like(mask)
    assert L.ssim_loss(x, y, data_range=1.0, mask=none_valid).item() == 0.0


def test_gradcheck_ssim(gen):
    x = rand(gen, 1, 2, 8, 8, dtype=torch.float64).requires_grad_(True)
    y = rand(gen, 1, 2, 8, 8, dtype=torch.float64)
    mask = torch.ones(1, 1, 8, 8, dtype=torch.bool)
    mask[..., 0, 0] = False
    assert torch.autograd.gradcheck(
        lambda a: L.ssim_loss(a, y, data_range=1.0, mask=mask, window_size=5, sigma=1.0, reduction="none"),
        (x,),
    )


def test_ssim_module_and_errors(gen):
    x, y = rand(gen, 2, 2, 12, 12), rand(gen, 2, 2, 12, 12)
    mask = pixel_mask(gen, 2, 12, 12, p=0.95)
    torch.testing.assert_close(
        L.SSIMLoss(data_range=1.0, window_size=7, reduction="none")(x, y, mask),
        L.ssim_loss(x, y, data_range=1.0, window_size=7, mask=mask, reduction="none"),
    )
    with pytest.raises(ValueError, match="data_range"):
        L.ssim_loss(x, y, data_range=0)
    with pytest.raises(ValueError, match="window_size"):
        L.ssim_map(x, y, 1.0, window_size=13)
    with pytest.raises(ValueError, match="odd"):
        L.ssim_map(x, y, 1.0, window_size=4)


def test_ssim_per_band_data_range_dtype_and_masked_map(gen):
    x = rand(gen, 1, 2, 12, 12, dtype=torch.float64)
    y = x + 0.2 * rand(gen, 1, 2, 12, 12, dtype=torch.float64)
    both = L.ssim_map(x, y, torch.tensor([1.0, 3.0]))
    for c, dr in enumerate((1.0, 3.0)):
        torch.testing.assert_close(both[:, c : c + 1], L.ssim_map(x[:, c : c + 1], y[:, c : c + 1], dr))
    f32 = L.ssim_map(x.float(), y.float(), [1.0, 3.0])
    assert f32.dtype == torch.float32
    torch.testing.assert_close(f32, both.float(), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="data_range has 3"):
        L.ssim_map(x, y, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="data_range"):
        L.ssim_map(x, y, [1.0, -2.0])
    # masked map: zero-filled inputs, a map pixel is valid iff its whole window is
    mask = torch.ones(1, 1, 12, 12, dtype=torch.bool)
    mask[..., 5, 7] = False
    y_bad = y.clone()
    y_bad[..., 5, 7] = float("nan")
    smap, valid = L.masked_ssim_map(x, y_bad, 1.0, mask=mask, window_size=5)
    want_valid = torch.ones(1, 2, 8, 8, dtype=torch.bool)
    want_valid[..., 1:6, 3:8] = False  # windows with top-left (i, j), i in 1..5, j in 3..7, hold (5, 7)
    assert torch.equal(valid, want_valid)
    full = L.ssim_map(x, y, 1.0, window_size=5)
    torch.testing.assert_close(smap[valid], full[valid])
    assert L.masked_ssim_map(x, y, 1.0, window_size=5)[1] is None
