"""Test images for the metrics tests: uniform noise, smooth periodic fields, exact Fourier shifts (float64)."""

from __future__ import annotations

import math

import torch

F64 = torch.float64


def rand_images(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=gen, dtype=F64)


def smooth_field(gen: torch.Generator, n: int, c: int, h: int, w: int, sigma: float) -> torch.Tensor:
    """Periodic smooth random field (white noise times a Gaussian transfer function)."""
    x = torch.randn(n, c, h, w, generator=gen, dtype=F64)
    fy = torch.fft.fftfreq(h, dtype=F64)[:, None]
    fx = torch.fft.fftfreq(w, dtype=F64)[None, :]
    g = torch.exp(-2 * math.pi**2 * sigma**2 * (fy**2 + fx**2))
    return torch.fft.ifft2(torch.fft.fft2(x) * g).real


def fourier_shift(x: torch.Tensor, dy: float, dx: float) -> torch.Tensor:
    """x translated by (+dy, +dx): out(y, x) = x(y - dy, x - dx), circularly."""
    h, w = x.shape[-2:]
    fy = torch.fft.fftfreq(h, dtype=F64)[:, None]
    fx = torch.fft.fftfreq(w, dtype=F64)[None, :]
    return torch.fft.ifft2(torch.fft.fft2(x) * torch.exp(-2j * math.pi * (fy * dy + fx * dx))).real
