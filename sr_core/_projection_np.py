"""Numpy half of :mod:`sr_core.projection`: the filters and the projection without torch.

The inference path (ONNX engine, the UDF on a back-end) must not import torch: the model card's post-processing
(:class:`sr_core.models.Predictor`) uses these functions. The Gaussian PSF is built exactly as
:func:`sr_core.degradation.gaussian_psf_1d` does (tested against it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ProjectionFilters",
    "consistency_projection_numpy",
    "project_coarse_bands",
    "projection_filters",
    "replicated_phase",
]


def _mtf_to_sigma(m: float, ratio: int) -> float:
    return ratio * math.sqrt(-2.0 * math.log(m)) / math.pi


def _psf_size(sigma: float, ratio: int) -> int:
    k = max(ratio, 2 * math.ceil(3.0 * sigma) + 1)
    return k + 1 if k % 2 != ratio % 2 else k


def _kernel(sigma: float, size: int) -> np.ndarray:
    t = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    w = np.exp(-0.5 * (t / sigma) ** 2)
    return w / w.sum()


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
    if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
        raise ValueError(f"ratio must be a positive integer, got {ratio!r}")
    values = [float(m) for m in mtf]
    if not values or any(not 0 < m < 1 for m in values):
        raise ValueError(f"mtf must give one value in the open interval (0, 1) per band, got {list(mtf)!r}")
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not (lam >= 0 and math.isfinite(lam)):
        raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
    if isinstance(taps, bool) or not isinstance(taps, int) or taps < 1:
        raise ValueError(f"taps must be an integer >= 1, got {taps!r}")
    sigmas = [_mtf_to_sigma(m, ratio) for m in values]
    k = max(_psf_size(s, ratio) for s in sigmas)
    psf = np.stack([_kernel(s, k) for s in sigmas])
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


# ----------------------------------------------------------------------------------------------- projection


def _pad_edge(a: np.ndarray, axis: int, before: int, after: int) -> np.ndarray:
    widths = [(0, 0)] * a.ndim
    widths[axis] = (before, after)
    return np.pad(a, widths, mode="edge")


def _correlate(a: np.ndarray, w: np.ndarray, axis: int, stride: int = 1) -> np.ndarray:
    """``out[m] = sum_t a[stride * m + t] * w[..., t]`` along ``axis`` (valid part); ``w`` ``(C, k)`` per channel 1."""
    k = w.shape[-1]
    n = (a.shape[axis] - k) // stride + 1
    shape = [1] * a.ndim
    shape[1] = w.shape[0]
    out = None
    tmp = None
    for t in range(k):
        sl = [slice(None)] * a.ndim
        sl[axis] = slice(t, t + stride * (n - 1) + 1, stride)
        if out is None:
            out = a[tuple(sl)] * w[:, t].reshape(shape)
            tmp = np.empty_like(out)
        else:
            np.multiply(a[tuple(sl)], w[:, t].reshape(shape), out=tmp)
            out += tmp
    return out


def _transpose_upsample(r: np.ndarray, w: np.ndarray, axis: int, ratio: int, start: int, n: int) -> np.ndarray:
    """Adjoint of the strided correlation: ``out[ratio * m + t] += r[m] * w[t]``, cropped to ``[start, start + n)``."""
    m = r.shape[axis]
    k = w.shape[-1]
    shape = list(r.shape)
    shape[axis] = ratio * (m - 1) + k
    out = np.zeros(shape, dtype=r.dtype)
    wshape = [1] * r.ndim
    wshape[1] = w.shape[0]
    tmp = np.empty_like(r)
    for t in range(k):
        sl = [slice(None)] * r.ndim
        sl[axis] = slice(t, t + ratio * (m - 1) + 1, ratio)
        np.multiply(r, w[:, t].reshape(wshape), out=tmp)
        out[tuple(sl)] += tmp
    sl = [slice(None)] * r.ndim
    sl[axis] = slice(start, start + n)
    return out[tuple(sl)]


def consistency_projection_numpy(sr: np.ndarray, lr: np.ndarray, filters: ProjectionFilters) -> np.ndarray:
    """:func:`consistency_projection` in numpy (float32 or float64 ``(N, C, r*H, r*W)`` / ``(N, C, H, W)``)."""
    ratio = filters.ratio
    c, k = filters.psf.shape
    sr = np.asarray(sr)
    lr = np.asarray(lr, dtype=sr.dtype)
    if sr.ndim != 4 or lr.ndim != 4 or sr.shape[1] != c or lr.shape[1] != c:
        raise ValueError(f"sr {sr.shape} and lr {lr.shape} must be (N, {c}, H, W) for these filters")
    if sr.shape[-2:] != (ratio * lr.shape[-2], ratio * lr.shape[-1]) or sr.shape[0] != lr.shape[0]:
        raise ValueError(f"sr {sr.shape} must be lr {lr.shape} upsampled by {ratio}")
    psf = filters.psf.astype(sr.dtype)
    inv = filters.inverse.astype(sr.dtype)
    taps = filters.taps
    before, after, off = (k - 1) // 2, k - 1 - (k - 1) // 2, (ratio - 1) // 2
    d = sr
    for axis in (2, 3):
        sl = [slice(None)] * 4
        sl[axis] = slice(off, None)
        d = _correlate(_pad_edge(d, axis, before, after)[tuple(sl)], psf, axis, ratio)
    r = lr - d
    for axis in (2, 3):
        r = _correlate(_pad_edge(r, axis, taps, taps), inv, axis)
    for axis in (2, 3):
        r = _transpose_upsample(r, psf, axis, ratio, before - off, sr.shape[axis])
    return sr + r


def replicated_phase(a: np.ndarray, factor: int, axis: int, *, tolerance: float = 0.02) -> int | None:
    """Phase of ``factor``-fold nearest replication of ``a`` along ``axis``: the phase whose blocks hold the fewest
    differing neighbour pairs, if at most ``tolerance`` of the pairs inside its blocks differ (filled nodata holes
    break a few blocks) and no other phase does as well; else None (not replicated, or ambiguous: constant data)."""
    from .cube import replication_mismatches  # the differing pairs inside the blocks of each phase

    axis = axis % a.ndim
    n = a.shape[axis]
    if n < 2 * factor:
        return None
    bad = replication_mismatches(np.ascontiguousarray(a), factor, axis)
    residue = np.arange(1, n) % factor
    pairs = np.bincount(residue, minlength=factor) * (a.size // n)  # neighbour pairs (i-1, i) by i mod factor
    frac = [bad[p] / max(int(pairs.sum() - pairs[p]), 1) for p in range(factor)]
    best = int(np.argmin(frac))
    others = [f for p, f in enumerate(frac) if p != best]
    if frac[best] <= tolerance and all(f > 2 * frac[best] + 1e-12 and f > tolerance for f in others):
        return best
    return None


def project_coarse_bands(
    sr: np.ndarray,
    x: np.ndarray,
    *,
    channels: list[int],
    factor: int,
    scale: int,
    filters: ProjectionFilters,
    in_channels: list[int] | None = None,
    inplace: bool = False,
) -> np.ndarray:
    """Project the output ``channels`` of ``sr`` ``(N, C, s*H, s*W)`` onto the native values of coarse bands that
    arrive ``factor``-fold nearest-replicated in the model input ``x`` ``(N, C_in, H, W)`` (20 m bands on the 10 m
    grid: ``factor`` 2; ``filters`` for the ratio ``factor * scale``). The replication phase is found per sample
    from the data (:func:`replicated_phase`); whole native blocks are projected, partial blocks at the edges and
    samples without a clear phase are left as they are. ``in_channels``: the same bands' indices in ``x`` (default
    ``channels``). Returns a new array, or ``sr`` itself modified with ``inplace=True`` (a writable array)."""
    out = sr if (inplace and isinstance(sr, np.ndarray) and sr.flags.writeable) else np.array(sr, copy=True)
    src = list(channels) if in_channels is None else list(in_channels)
    ch: list[int] | slice = list(channels)
    if ch == list(range(ch[0], ch[0] + len(ch))):
        ch = slice(ch[0], ch[0] + len(ch))  # a view instead of a fancy-index copy
    ratio = factor * scale
    if filters.ratio != ratio:
        raise ValueError(f"filters are for ratio {filters.ratio}, need factor * scale = {ratio}")
    for i in range(x.shape[0]):
        xs = x[i, src]
        py, px = replicated_phase(xs, factor, -2), replicated_phase(xs, factor, -1)
        if py is None or px is None:
            continue
        nb, mb = (x.shape[-2] - py) // factor, (x.shape[-1] - px) // factor
        if nb < 1 or mb < 1:
            continue
        native = xs[:, py : py + factor * nb : factor, px : px + factor * mb : factor]
        r0, c0 = scale * py, scale * px
        sub = out[i, ch, r0 : r0 + ratio * nb, c0 : c0 + ratio * mb]
        out[i, ch, r0 : r0 + ratio * nb, c0 : c0 + ratio * mb] = consistency_projection_numpy(
            sub[None], native[None], filters)[0]
    return out
