"""Consistency projection: pull a super-resolved image towards ``degrade(sr) == lr`` (a "hard constraint").

The acquisition model of :func:`sr_core.degradation.degrade` is linear, ``D = decimate(blur(., psf))``, and
separable per band. The minimum-norm correction of ``sr`` that makes ``D sr = lr`` is the orthogonal projection
``sr + D^T (D D^T)^{-1} (lr - D sr)``; on the Wald protocol (where ``lr = D hr`` exactly) it can only move
``sr`` closer to ``hr``. Real data never follow our assumed MTF exactly and ``(D D^T)^{-1}`` amplifies the
frequencies near Nyquist (where the MTF is small) by up to ~15x, so the exact projection overfits the assumed
operator: with a blur it was not built for it falls below bicubic. We therefore regularise the inverse, per
axis (the operator is separable, and so stays the filter):

    sr + D^T [(G_y + lam I)^{-1} (x) (G_x + lam I)^{-1}] (lr - D sr)

with ``G_axis`` = the 1-D ``D D^T`` on the LR grid (``G_axis(0) = 1 / ratio``). One step leaves the fraction
``1 - G_y G_x / ((G_y + lam)(G_x + lam))`` of the residual at each frequency: with ``lam = 0.1`` and ``ratio = 2``
about 30 % of the mean (DC) residual and most of the residual near Nyquist, where the assumed MTF is least
trustworthy. ``lam = 0`` is the exact orthogonal projection.

Everything here is a fixed linear filter built from the band MTFs: ``D`` is the Gaussian PSF of
:func:`~sr_core.degradation.degrade` (same kernel, same sampling phase), ``D^T`` its exact adjoint away from
the image border (a transposed strided convolution), and ``(D D^T + lam I)^{-1}`` a separable FIR filter of
``2 * taps + 1`` LR taps per axis computed by FFT (its truncation error is reported by
:func:`~sr_core.projection.filters.projection_filters`). Borders are handled by edge replication, like the
networks' padding: the effect of the border stays within :attr:`ConsistencyProjection.radius` input pixels, the
margin the tiler adds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sr_core.projection.filters import projection_filters

__all__ = ["ConsistencyProjection", "consistency_projection"]


def _sep_conv(x: torch.Tensor, w: torch.Tensor, stride: int = 1) -> torch.Tensor:
    c, k = w.shape
    x = F.conv2d(x, w.reshape(c, 1, k, 1), stride=(stride, 1), groups=c)
    return F.conv2d(x, w.reshape(c, 1, 1, k), stride=(1, stride), groups=c)


def _apply(sr: torch.Tensor, lr: torch.Tensor, psf: torch.Tensor, inverse: torch.Tensor, ratio: int) -> torch.Tensor:
    c, k = psf.shape
    taps = (inverse.shape[1] - 1) // 2
    before, after, off = (k - 1) // 2, k - 1 - (k - 1) // 2, (ratio - 1) // 2
    # D sr: the PSF of degrade() sampled at the LR pixel centres (edge-replicated border)
    d = _sep_conv(F.pad(sr, (before, after, before, after), mode="replicate")[..., off:, off:], psf, ratio)
    r = lr - d
    r = _sep_conv(F.pad(r, (taps, taps, taps, taps), mode="replicate"), inverse)
    # D^T: transposed strided convolution, cropped onto the HR grid
    ct = F.conv_transpose2d(r, psf.reshape(c, 1, k, 1), stride=(ratio, 1), groups=c)
    ct = F.conv_transpose2d(ct, psf.reshape(c, 1, 1, k), stride=(1, ratio), groups=c)
    s = before - off
    return sr + ct[..., s : s + sr.shape[-2], s : s + sr.shape[-1]]


def _check_pair(sr: torch.Tensor, lr: torch.Tensor, ratio: int, channels: int) -> None:
    if sr.ndim != 4 or lr.ndim != 4:
        raise ValueError(f"sr and lr must be (N, C, H, W), got shapes {tuple(sr.shape)} and {tuple(lr.shape)}")
    if sr.shape[1] != channels or lr.shape[1] != channels:
        raise ValueError(f"sr has {sr.shape[1]} and lr {lr.shape[1]} bands (C); the filters are for {channels}")
    if sr.shape[0] != lr.shape[0] or sr.shape[-2] != ratio * lr.shape[-2] or sr.shape[-1] != ratio * lr.shape[-1]:
        raise ValueError(f"sr {tuple(sr.shape)} must be lr {tuple(lr.shape)} upsampled by {ratio} (N, H, W)")


def consistency_projection(
    sr: torch.Tensor, lr: torch.Tensor, *, mtf: Sequence[float], ratio: int, lam: float = 0.1, taps: int = 6
) -> torch.Tensor:
    """``sr + D^T (D D^T + lam)^{-1} (lr - D sr)`` with ``D`` = :func:`~sr_core.degradation.degrade` (MTF ``mtf``).

    ``sr`` ``(N, C, r*H, r*W)``, ``lr`` ``(N, C, H, W)``, one MTF per band. Differentiable in ``sr`` and ``lr``.
    """
    f = projection_filters(mtf, ratio, lam=lam, taps=taps)
    _check_pair(sr, lr, f.ratio, f.psf.shape[0])
    psf = torch.as_tensor(f.psf, dtype=sr.dtype, device=sr.device)
    inv = torch.as_tensor(f.inverse, dtype=sr.dtype, device=sr.device)
    return _apply(sr, lr, psf, inv, f.ratio)


class ConsistencyProjection(nn.Module):
    """:func:`consistency_projection` with fixed filters (buffers, exported to ONNX as plain convolutions).

    ``channels``: which channels of ``sr``/``lr`` are projected (others pass through unchanged), one MTF each.
    """

    def __init__(self, mtf: Sequence[float], *, ratio: int, lam: float = 0.1, taps: int = 6,
                 channels: Sequence[int] | None = None) -> None:
        super().__init__()
        f = projection_filters(mtf, ratio, lam=lam, taps=taps)
        self.ratio, self.lam, self.taps = f.ratio, f.lam, f.taps
        self.channels = list(range(len(f.psf))) if channels is None else [int(c) for c in channels]
        if len(self.channels) != len(f.psf) or len(set(self.channels)) != len(self.channels):
            raise ValueError(f"channels {self.channels} must name {len(f.psf)} distinct channels, one per MTF")
        self.radius = f.radius
        self.truncation = f.truncation
        self.register_buffer("psf", torch.as_tensor(f.psf, dtype=torch.float32), persistent=False)
        self.register_buffer("inverse", torch.as_tensor(f.inverse, dtype=torch.float32), persistent=False)

    def forward(self, sr: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        idx = self.channels
        contiguous = idx == list(range(idx[0], idx[0] + len(idx)))
        if contiguous:
            a, b = idx[0], idx[0] + len(idx)
            s, lo = sr[:, a:b], lr[:, a:b]
        else:
            s, lo = sr[:, idx], lr[:, idx]
        _check_pair(s, lo, self.ratio, len(idx))
        p = _apply(s, lo, self.psf.to(sr.dtype), self.inverse.to(sr.dtype), self.ratio)
        if contiguous and a == 0 and b == sr.shape[1]:
            return p
        if contiguous:
            return torch.cat([sr[:, :a], p, sr[:, b:]], 1)
        out = sr.clone()
        out[:, idx] = p
        return out


