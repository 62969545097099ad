"""Gaussian blur and high-pass filters (sr_core.losses.filters): closed forms, independent references, gradcheck, masks, module == function."""

from __future__ import annotations

import math

import pytest
import torch

import sr_core.losses as L
from sr_core.losses.filters import gaussian_kernel1d


def test_highpass_removes_low_frequencies():
    x = torch.full((1, 2, 20, 20), 3.7, dtype=torch.float64)
    for pad in ("reflect", "replicate", "circular"):
        torch.testing.assert_close(L.highpass(x, 1.0, padding=pad), torch.zeros_like(x), atol=1e-12, rtol=0)
    yy, xx = torch.meshgrid(
        torch.arange(24.0, dtype=torch.float64), torch.arange(24.0, dtype=torch.float64), indexing="ij"
    )
    ramp = (0.3 * yy - 0.2 * xx)[None, None]
    torch.testing.assert_close(
        L.highpass(ramp, 1.2)[..., 4:-4, 4:-4],
        torch.zeros(1, 1, 16, 16, dtype=torch.float64),
        atol=1e-12,
        rtol=0,
    )
    # Nyquist checkerboard: exact discrete response 1 - H(pi)^2, H(pi) = sum_k g_k (-1)^k
    sigma = 1.0
    g = gaussian_kernel1d(7, sigma)
    h_pi = (g * torch.tensor([(-1.0) ** k for k in range(7)], dtype=torch.float64)).sum()
    checker = ((-1.0) ** (yy + xx))[None, None]
    torch.testing.assert_close(
        L.highpass(checker, sigma)[..., 4:-4, 4:-4], (1 - h_pi**2) * checker[..., 4:-4, 4:-4]
    )
    # a slow sinusoid (1/24 cycles per pixel, periodic on the 24 px image) is scaled by exactly
    # 1 - H(2 pi f) = 1 - sum_k g_k cos(2 pi f (k - 3)) ~ 1 - exp(-2 pi^2 sigma^2 f^2) (continuous Gaussian)
    f = 1 / 24
    slow = torch.sin(2 * math.pi * f * xx)[None, None]
    taps = torch.arange(7, dtype=torch.float64) - 3
    gain = 1 - (g * torch.cos(2 * math.pi * f * taps)).sum()
    torch.testing.assert_close(L.highpass(slow, sigma, padding="circular"), gain * slow, atol=1e-12, rtol=0)
    assert gain.item() == pytest.approx(1 - math.exp(-2 * math.pi**2 * sigma**2 * f**2), abs=2e-3)
    assert gain < 0.04 and (1 - h_pi**2) > 0.99
    torch.testing.assert_close(L.HighPass(1.0)(checker), L.highpass(checker, 1.0))
    with pytest.raises(ValueError, match="sigma"):
        L.highpass(x, 0.0)
