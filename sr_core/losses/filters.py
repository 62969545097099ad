"""Gaussian filtering used by the SSIM loss and the high-pass input of the GAN discriminator.

Layout ``(N, C, H, W)``; every band is filtered independently with the same separable, normalised
(sums to 1) Gaussian whose taps sit at integer offsets from the centre pixel (odd kernel size, so the
output stays on the input pixel grid).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sr_core.checks import check_int
from sr_core.degradation import gaussian_psf_1d
from sr_core.losses._utils import check_image, check_positive

__all__ = ["HighPass", "gaussian_blur", "gaussian_kernel1d", "highpass"]

_PADDINGS = ("reflect", "replicate", "circular", "zeros", "valid")


def gaussian_kernel1d(
    window_size: int, sigma: float, *, dtype: torch.dtype = torch.float64, device=None
) -> torch.Tensor:
    """Normalised 1-D Gaussian of odd length ``window_size`` and std ``sigma`` (pixels), centred on the middle tap.

    The same taps as the sensor PSF of :func:`sr_core.degradation.gaussian_psf_1d` for ``ratio=1``.
    """
    check_int("window_size", window_size, 1)
    if window_size % 2 == 0:
        raise ValueError(f"window_size must be odd (centred window), got {window_size}")
    sigma = check_positive("sigma", sigma)
    return gaussian_psf_1d(sigma, 1, window_size).to(dtype=dtype, device=device)


def separable_filter(x: torch.Tensor, kernel1d: torch.Tensor) -> torch.Tensor:
    """Depthwise 'valid' correlation of every band of ``x`` with ``kernel1d`` along H then W."""
    c = x.shape[1]
    k = kernel1d.to(dtype=x.dtype, device=x.device)
    kh = k.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    kw = k.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    return F.conv2d(F.conv2d(x, kh, groups=c), kw, groups=c)


def gaussian_blur(
    x: torch.Tensor, sigma: float, *, window_size: int | None = None, padding: str = "reflect"
) -> torch.Tensor:
    """Per-band Gaussian blur of ``x`` (N, C, H, W) with std ``sigma`` pixels.

    ``window_size`` defaults to the odd size covering +-3 sigma. ``padding``: "reflect" (default; needs
    H, W > window_size // 2), "replicate", "circular", "zeros", or "valid" (no padding: output smaller by
    ``window_size - 1``). Differentiable.
    """
    check_image("x", x)
    sigma = check_positive("sigma", sigma)
    if window_size is None:
        window_size = 2 * math.ceil(3.0 * sigma) + 1
    k = gaussian_kernel1d(window_size, sigma, dtype=x.dtype, device=x.device)
    if padding not in _PADDINGS:
        raise ValueError(f"padding must be one of {_PADDINGS}, got {padding!r}")
    p = window_size // 2
    if padding != "valid" and p > 0:
        h, w = x.shape[-2:]
        if padding == "reflect" and (h <= p or w <= p):
            raise ValueError(
                f"reflect padding of {p} needs an image larger than {p} px, got {h}x{w}; use padding='replicate'"
            )
        mode = "constant" if padding == "zeros" else padding
        x = F.pad(x, (p, p, p, p), mode=mode)
    return separable_filter(x, k)


def highpass(
    x: torch.Tensor, sigma: float = 1.0, *, window_size: int | None = None, padding: str = "reflect"
) -> torch.Tensor:
    """High-pass residual ``x - gaussian_blur(x, sigma)``: removes the low frequencies (a constant -> 0;
    a linear ramp -> 0 away from the borders; a sinusoid of frequency ``f`` cycles/px is scaled by about
    ``1 - exp(-2 pi^2 sigma^2 f^2)``). ``padding`` must keep the size (not "valid")."""
    if padding == "valid":
        raise ValueError("highpass needs a size-preserving padding, got padding='valid'")
    return x - gaussian_blur(x, sigma, window_size=window_size, padding=padding)


class HighPass(nn.Module):
    """``nn.Module`` wrapper of :func:`highpass`."""

    def __init__(
        self, sigma: float = 1.0, *, window_size: int | None = None, padding: str = "reflect"
    ) -> None:
        super().__init__()
        self.sigma = check_positive("sigma", sigma)
        self.window_size = window_size
        if padding not in _PADDINGS or padding == "valid":
            raise ValueError(f"padding must be one of {_PADDINGS[:-1]}, got {padding!r}")
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return highpass(x, self.sigma, window_size=self.window_size, padding=self.padding)
