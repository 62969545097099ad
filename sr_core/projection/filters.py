"""Numpy half of :mod:`sr_core.projection.layer`: the filters and the projection without torch.

The inference path (ONNX engine, the UDF on a back-end) must not import torch: the model card's post-processing
(:class:`sr_core.models.Predictor`) uses these functions. The Gaussian PSF is built exactly as
:func:`sr_core.degradation.gaussian_psf_1d` does (tested against it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sr_core.grid import replicated_phase

__all__ = [
    "ProjectionFilters",
    "consistency_projection_numpy",
    "project_coarse_bands",
    "projection_filters",
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


def consistency_projection_numpy(sr: np.ndarray, lr: np.ndarray, filters: ProjectionFilters) -> np.ndarray:
    """:func:`sr_core.projection.layer.consistency_projection` in numpy (float32 or float64
    ``(N, C, r*H, r*W)`` / ``(N, C, H, W)``)."""
    sr = np.asarray(sr)
    return sr + _projection_correction(sr, lr, filters)


def _projection_correction(sr: np.ndarray, lr: np.ndarray, filters: ProjectionFilters) -> np.ndarray:
    """The correction ``D^T K (lr - D sr)`` that :func:`consistency_projection_numpy` adds to ``sr`` (same shape).

    ``D`` (PSF, edge padding, stride ``ratio``) and its adjoint ``D^T`` (cropped) are separable: per axis and
    band a banded matrix (:func:`_axis_operator`), applied as small matrix products over row (column) blocks
    that only read the band, in the order where the arrays are small: ``D`` along y then x, ``D^T`` along x
    then y. ``K`` (the short inverse filter, LR) runs as edge-padded correlations. The order of the sums
    differs from the filter-by-filter definition only by rounding."""
    ratio = filters.ratio
    c, k = filters.psf.shape
    lr = np.asarray(lr, dtype=sr.dtype)
    if sr.ndim != 4 or lr.ndim != 4 or sr.shape[1] != c or lr.shape[1] != c:
        raise ValueError(f"sr {sr.shape} and lr {lr.shape} must be (N, {c}, H, W) for these filters")
    if sr.shape[-2:] != (ratio * lr.shape[-2], ratio * lr.shape[-1]) or sr.shape[0] != lr.shape[0]:
        raise ValueError(f"sr {sr.shape} must be lr {lr.shape} upsampled by {ratio}")
    n, _, h, w = sr.shape
    hm, wm = lr.shape[-2:]
    dy, dty = _axis_operator(filters, h, sr.dtype)
    dx, dtx = _axis_operator(filters, w, sr.dtype)
    d1 = _apply_rows(dy, sr, np.empty((n, c, hm, w), sr.dtype))  # D along y
    r = lr - _apply_cols(dx, d1, np.empty((n, c, hm, wm), sr.dtype))  # D along x
    inv = filters.inverse.astype(sr.dtype)
    taps = filters.taps
    for axis in (2, 3):
        r = _correlate(_pad_edge(r, axis, taps, taps), inv, axis)
    r = _apply_cols(dtx, r, np.empty((n, c, hm, w), sr.dtype))  # D^T along x
    return _apply_rows(dty, r, np.empty((n, c, h, w), sr.dtype))  # D^T along y


# (id(filters), n, dtype) -> (filters, D, D^T); the filters are kept so that their id stays theirs
_OPERATORS: dict[tuple, tuple] = {}


def _axis_operator(filters: ProjectionFilters, n: int, dtype: np.dtype) -> tuple[list, list]:
    """``D`` (``(C, n // ratio, n)``: ``(D a)[m] = sum_t psf[t] a[clamp(ratio m + off - before + t)]``, the
    edge-padded strided correlation) and ``D^T`` (``(C, n, n // ratio)``: ``(D^T r)[j] = sum psf[t] r[m]`` over
    ``ratio m + t = j + before - off``, the cropped adjoint) along an axis of ``n`` HR pixels, each as a list
    of row blocks ``(p0, p1, q0, q1, A[:, p0:p1, q0:q1])`` covering every non-zero (cached per filters)."""
    key = (id(filters), int(n), np.dtype(dtype).str)
    hit = _OPERATORS.get(key)
    if hit is not None and hit[0] is filters:
        return hit[1], hit[2]
    ratio = filters.ratio
    psf = filters.psf
    c, k = psf.shape
    before, off = (k - 1) // 2, (ratio - 1) // 2
    m = n // ratio
    rows = np.arange(m)
    d = np.zeros((c, m, n))
    dt = np.zeros((c, n, m))
    for t in range(k):
        np.add.at(d, (slice(None), rows, np.clip(ratio * rows + off - before + t, 0, n - 1)), psf[:, t : t + 1])
        j = ratio * rows + t - (before - off)
        ok = (j >= 0) & (j < n)
        dt[:, j[ok], rows[ok]] += psf[:, t : t + 1]
    ops = (_row_blocks(d.astype(dtype)), _row_blocks(dt.astype(dtype)))
    if len(_OPERATORS) >= 64:
        _OPERATORS.clear()
    _OPERATORS[key] = (filters,) + ops
    return ops


def _row_blocks(a: np.ndarray) -> list[tuple[int, int, int, int, np.ndarray]]:
    """Split the banded ``a`` ``(C, P, Q)`` into row blocks with the column range of their non-zeros (any band):
    about twice the band width of columns per block (work within 2x of the band, few matrix products)."""
    _, p, q = a.shape
    nz = (a != 0).any(axis=0)
    lo = np.where(nz.any(axis=1), nz.argmax(axis=1), q)
    hi = np.where(nz.any(axis=1), q - nz[:, ::-1].argmax(axis=1), 0)
    width = int(np.max(hi - lo)) if (hi > lo).any() else 1
    step = max(1, -(-width * p // q))
    blocks = []
    for p0 in range(0, p, step):
        p1 = min(p0 + step, p)
        q0, q1 = int(lo[p0:p1].min()), int(hi[p0:p1].max())
        if q1 > q0:
            blocks.append((p0, p1, q0, q1, np.ascontiguousarray(a[:, p0:p1, q0:q1])))
        else:
            blocks.append((p0, p1, 0, 0, None))
    return blocks


def _apply_rows(blocks: list, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[:, c] = A_c @ x[:, c]`` (along axis 2) from the row blocks of ``A``."""
    for p0, p1, q0, q1, a in blocks:
        if a is None:
            out[:, :, p0:p1] = 0
            continue
        for c in range(x.shape[1]):
            np.matmul(a[c], x[:, c, q0:q1], out=out[:, c, p0:p1])
    return out


def _apply_cols(blocks: list, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[:, c] = x[:, c] @ A_c^T`` (along axis 3) from the row blocks of ``A``."""
    for p0, p1, q0, q1, a in blocks:
        if a is None:
            out[..., p0:p1] = 0
            continue
        for c in range(x.shape[1]):
            np.matmul(x[:, c, :, q0:q1], a[c].T, out=out[:, c, :, p0:p1])
    return out


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
    from the data (:func:`sr_core.grid.replicated_phase`); whole native blocks are projected, partial blocks at
    the edges and samples without a clear phase are left as they are. ``in_channels``: the same bands' indices in
    ``x`` (default ``channels``). Returns a new array, or ``sr`` itself modified with ``inplace=True`` (a writable
    array)."""
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
        corr = _projection_correction(sub[None], native[None], filters)[0]
        if isinstance(ch, slice):
            sub += corr  # a view of out: in place, no projected copy
        else:
            out[i, ch, r0 : r0 + ratio * nb, c0 : c0 + ratio * mb] = sub + corr
    return out
