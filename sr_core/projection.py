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
:func:`projection_filters`). Borders are handled by edge replication, like the networks' padding: the effect of
the border stays within :attr:`ConsistencyProjection.radius` input pixels, the margin the tiler adds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConsistencyProjection", "ProjectionFilters", "consistency_projection", "projection_filters"]


@dataclass(frozen=True)
class ProjectionFilters:
    """1-D filters of the projection for ``C`` bands: ``psf`` ``(C, k)`` (HR taps, the PSF of ``degrade``),
    ``inverse`` ``(C, 2 * taps + 1)`` (LR taps of ``(D D^T + lam)^{-1}`` per axis), ``ratio``, ``lam`` and
    ``truncation`` = max over bands of the energy of the inverse filter outside the kept taps (relative)."""

    psf: np.ndarray
    inverse: np.ndarray
    ratio: int
    lam: float
    truncation: float

    @property
    def k(self) -> int:
        return int(self.psf.shape[1])

    @property
    def taps(self) -> int:
        return (int(self.inverse.shape[1]) - 1) // 2

    @property
    def radius(self) -> int:
        """LR pixels around an output pixel's own LR pixel that the correction term reads (``lr`` and ``sr``)."""
        return _correction_radius(self.k, self.ratio, self.taps)


def _correction_radius(k: int, ratio: int, taps: int) -> int:
    """Exact reach, in LR pixels, of ``D^T K (lr - D sr)`` (index arithmetic of the three filters)."""
    before, off = (k - 1) // 2, (ratio - 1) // 2
    reach = 0
    for phase in range(ratio):  # HR pixel j = ratio * 0 + phase, inside LR pixel 0
        j = phase
        # D^T: residual samples m with 0 <= j + before - off - ratio * m < k
        ms = [m for m in range(-k, k + 1) if 0 <= j + before - off - ratio * m < k]
        for m in ms:
            for m2 in range(m - taps, m + taps + 1):
                reach = max(reach, abs(m2))  # lr[m2] itself
                # D sr at m2 reads HR pixels ratio * m2 + off + t - before, t in [0, k)
                for t in range(k):
                    i = ratio * m2 + off + t - before
                    reach = max(reach, abs(i // ratio))
    return reach


def projection_filters(mtf: Sequence[float], ratio: int, *, lam: float = 0.1, taps: int = 6) -> ProjectionFilters:
    """The filters of the regularised projection for bands whose PSF has MTF ``mtf`` at the LR Nyquist frequency.

    ``mtf``: one value in (0, 1) per band; ``ratio``: 2, 3 or 4; ``lam`` > 0 (0 = exact projection, allowed but
    ill-conditioned); ``taps`` >= 1 (the inverse filter has ``2 * taps + 1`` LR taps per axis).
    """
    from .degradation import _check_ratio, _kernel_1d, default_psf_size, mtf_to_sigma

    ratio = _check_ratio(ratio)
    values = [float(m) for m in mtf]
    if not values or any(not 0 < m < 1 for m in values):
        raise ValueError(f"mtf must give one value in the open interval (0, 1) per band, got {list(mtf)!r}")
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not (lam >= 0 and math.isfinite(lam)):
        raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
    if isinstance(taps, bool) or not isinstance(taps, int) or taps < 1:
        raise ValueError(f"taps must be an integer >= 1, got {taps!r}")
    sigmas = [float(mtf_to_sigma(m, ratio)) for m in values]
    k = max(default_psf_size(s, ratio) for s in sigmas)
    psf = np.stack([_kernel_1d(torch.tensor(s, dtype=torch.float64), k, torch.float64).numpy() for s in sigmas])
    n = 1024
    inverse, worst = [], 0.0
    for h in psf:
        ac = np.correlate(h, h, "full")  # lag l = index - (k - 1); D D^T keeps the lags that are multiples of ratio
        g = np.zeros(n)
        for idx, v in enumerate(ac):
            lag = idx - (k - 1)
            if lag % ratio == 0:
                g[(lag // ratio) % n] += v
        spectrum = np.fft.fft(g).real
        if lam == 0 and spectrum.min() <= 1e-12:
            raise ValueError("the exact projection (lam=0) is singular for this PSF: use lam > 0")
        full = np.fft.ifft(1.0 / (spectrum + lam)).real
        kept = np.array([full[t % n] for t in range(-taps, taps + 1)])
        worst = max(worst, float(1.0 - (kept**2).sum() / (full**2).sum()))
        inverse.append(kept)
    return ProjectionFilters(psf=psf, inverse=np.stack(inverse), ratio=ratio, lam=float(lam), truncation=worst)


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
