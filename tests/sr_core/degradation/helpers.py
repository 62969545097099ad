"""Shared constants and closed forms of the degradation tests."""

from __future__ import annotations

import math

import torch

from sr_core.bands import BANDS_10M, BANDS_20M
from sr_core.bands import mtf as band_mtf

RATIOS = (2, 3, 4, 6)


PADDINGS = ("reflect", "replicate", "circular")


S2_MTFS = sorted({band_mtf(b) for b in BANDS_10M + BANDS_20M})


def keys_cubic(t: float, a: float = -0.75) -> float:
    """Keys' cubic convolution kernel."""
    t = abs(t)
    if t <= 1:
        return (a + 2) * t**3 - (a + 3) * t**2 + 1
    if t < 2:
        return a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a
    return 0.0


def lr_centre(i: int | torch.Tensor, r: int):
    """HR pixel-centre coordinate of the centre of LR pixel i (the project's grid convention)."""
    return r * i + (r - 1) / 2


def _nyquist_cosine(channels: int, ratio: int, size: int = 96, axis: int = -1) -> torch.Tensor:
    """cos(2 pi f (m - c)) at the LR Nyquist f = 1 / (2 ratio), phased so that the LR pixel centres c_i = ratio i +
    (ratio - 1) / 2 see +-1: any kernel centred on the LR centres returns (-1)^i times its transfer at f."""
    m = torch.arange(size, dtype=torch.float64)
    v = torch.cos(2 * math.pi * (m - (ratio - 1) / 2) / (2 * ratio))
    img = v[None, :].expand(size, size) if axis == -1 else v[:, None].expand(size, size)
    return img.expand(1, channels, size, size).clone()


def _transfer(lr: torch.Tensor, axis: int = -1, edge: int = 8) -> torch.Tensor:
    """Per band, the amplitude of the (-1)^i pattern of an LR image in its interior (away from the padding)."""
    n = lr.shape[axis]
    sign = (-1.0) ** torch.arange(n, dtype=torch.float64)
    s = sign[None, :] if axis == -1 else sign[:, None]
    inner = (lr[0] * s)[:, edge:-edge, edge:-edge]
    return inner.mean((-2, -1))
