"""Image-quality metrics for Sentinel-2 super-resolution, computed in float64.

Conventions shared by every function here:

* Images are ``(N, C, H, W)`` arrays: ``torch.Tensor`` or ``numpy.ndarray`` (both accepted). They are cast to
  float64 (on the input tensor's device; nothing is moved) and every result is a **torch float64 tensor**.
* Results are **per band**, shape ``(N, C)``, unless the metric is spectral by nature (SAM, ERGAS,
  spectral consistency: ``(N,)``). :func:`band_mean` / :func:`image_mean` average them (NaN-aware).
* ``data_range`` (the span of valid values: 1.0 for reflectance in [0, 1], 10000 for L2A digital numbers) is a
  required keyword wherever it matters; a float, or one value per band.
* ``mask``: boolean, ``True`` = valid. Shapes ``(H, W)``, ``(N, H, W)`` or anything broadcastable to
  ``(N, C, H, W)``. Masked-out pixels never enter a result, even if they hold NaN. A band without any valid
  pixel gives NaN (nodata stays nodata). Non-finite values *inside* the valid mask propagate (they are bugs,
  not nodata).
* Pixel coordinates: row ``y`` (down), column ``x`` (right), pixel centres at integer coordinates.

Definitions follow the published papers (Wang et al. 2004 for SSIM; Maertens et al. 2019 for the PROBA-V
cPSNR/cSSIM; Wald 2000 for ERGAS; Aybar et al. 2024, opensr-test, for the consistency and correctness scores;
Guizar-Sicairos et al. 2008 for the upsampled-DFT phase correlation); the code is written from those
definitions.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence, Union

import numpy as np
import torch

from sr_core.losses._utils import apply_mask, check_int, check_positive, expand_mask
from sr_core.losses.shift import shift_search
from sr_core.losses.ssim import check_ssim_args, masked_ssim_map
from sr_core.losses.ssim import ssim_map as _ssim_map

__all__ = [
    "mse",
    "mae",
    "rmse",
    "psnr",
    "ssim",
    "ssim_map",
    "cmse",
    "cpsnr",
    "cssim",
    "sam",
    "sam_map",
    "ergas",
    "reflectance_consistency",
    "spectral_consistency",
    "phase_correlation_shift",
    "spatial_misalignment",
    "radial_power_spectrum",
    "CorrectnessFractions",
    "correctness_classes",
    "hallucination_omission_improvement",
    "IMPROVEMENT",
    "OMISSION",
    "HALLUCINATION",
    "EXCLUDED",
    "dice",
    "iou",
    "precision",
    "recall",
    "instance_matches",
    "instance_f1",
    "band_mean",
    "image_mean",
]

ArrayLike = Union[torch.Tensor, np.ndarray]
DataRange = Union[float, Sequence[float], torch.Tensor, np.ndarray]

_F64 = torch.float64

# ------------------------------------------------------------------------------------------------------------
# input checks
# ------------------------------------------------------------------------------------------------------------


def _as_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        t = torch.from_numpy(np.array(x, copy=True))
    elif isinstance(x, torch.Tensor):
        t = x
    else:
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
    return t


def _image(x: ArrayLike, name: str) -> torch.Tensor:
    t = _as_tensor(x, name)
    if t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
    if t.ndim != 4:
        raise ValueError(f"{name} must be a 4-D (N, C, H, W) array, got shape {tuple(t.shape)}")
    return t.to(_F64)


def _image_pair(a: ArrayLike, b: ArrayLike, name_a: str, name_b: str) -> tuple[torch.Tensor, torch.Tensor]:
    ta, tb = _image(a, name_a), _image(b, name_b)
    if ta.shape != tb.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {tuple(ta.shape)} and {tuple(tb.shape)}"
        )
    return ta, tb.to(ta.device)


def _mask(
    mask: ArrayLike | None, shape: torch.Size, device: torch.device, name: str = "mask"
) -> torch.Tensor | None:
    """Boolean validity mask expanded to ``shape`` (N, C, H, W); ``None`` stays ``None``."""
    if mask is None:
        return None
    m = _as_tensor(mask, name)
    if m.dtype != torch.bool:
        raise ValueError(f"{name} must be a boolean array (True = valid), got dtype {m.dtype}")
    if m.ndim not in (2, 3, 4):
        raise ValueError(
            f"{name} must have shape (H, W), (N, H, W) or (N, C, H, W) (broadcastable), got {tuple(m.shape)}"
        )
    return expand_mask(m.to(device), shape, name)  # (N, H, W) is read as (N, 1, H, W)


def _pixel_mask(mask: ArrayLike | None, shape: torch.Size, device: torch.device) -> torch.Tensor | None:
    """Per-pixel mask (N, H, W) for spectral metrics: a pixel is valid when it is valid in every band."""
    if mask is None:
        return None
    m = _as_tensor(mask, "mask")
    if m.dtype == torch.bool and m.ndim == 4:
        if m.shape[1] == 1:
            m = m[:, 0]
        else:
            if m.shape[1] != shape[1]:
                raise ValueError(f"mask has {m.shape[1]} bands, images have {shape[1]}")
            m = m.all(dim=1)
    n, _, h, w = shape
    full = _mask(m, torch.Size((n, 1, h, w)), device)
    return None if full is None else full[:, 0]


def _data_range(data_range: DataRange, channels: int, device: torch.device) -> torch.Tensor:
    """``data_range`` as a (1, C) float64 tensor; positive and finite."""
    if isinstance(data_range, bool):
        raise ValueError(f"data_range must be a positive number or one per band, got {data_range!r}")
    if isinstance(data_range, (int, float)):
        dr = torch.full((channels,), float(data_range), dtype=_F64)
    else:
        dr = _as_tensor(data_range, "data_range") if not isinstance(data_range, (list, tuple)) else None
        if dr is None:
            dr = torch.tensor([float(v) for v in data_range], dtype=_F64)
        dr = dr.to(_F64).reshape(-1)
        if dr.numel() == 1:
            dr = dr.expand(channels)
        if dr.numel() != channels:
            raise ValueError(f"data_range has {dr.numel()} values but the images have {channels} bands")
    if not bool(torch.all(torch.isfinite(dr) & (dr > 0))):
        raise ValueError(f"data_range must be positive and finite, got {dr.tolist()}")
    return dr.to(device)[None, :]


def _masked_mean(x: torch.Tensor, m: torch.Tensor | None, dims: tuple[int, ...] = (-2, -1)) -> torch.Tensor:
    """Mean over ``dims`` of the valid entries; NaN where there is none."""
    if m is None:
        return x.mean(dim=dims)
    return apply_mask(x, m).sum(dim=dims) / m.sum(dim=dims).to(x.dtype)


# ------------------------------------------------------------------------------------------------------------
# pixel metrics
# ------------------------------------------------------------------------------------------------------------


def mse(sr: ArrayLike, hr: ArrayLike, *, mask: ArrayLike | None = None) -> torch.Tensor:
    """Mean squared error per band over valid pixels, ``(N, C)``."""
    s, h = _image_pair(sr, hr, "sr", "hr")
    return _masked_mean((s - h) ** 2, _mask(mask, s.shape, s.device))


def mae(sr: ArrayLike, hr: ArrayLike, *, mask: ArrayLike | None = None) -> torch.Tensor:
    """Mean absolute error per band over valid pixels, ``(N, C)``."""
    s, h = _image_pair(sr, hr, "sr", "hr")
    return _masked_mean((s - h).abs(), _mask(mask, s.shape, s.device))


def rmse(sr: ArrayLike, hr: ArrayLike, *, mask: ArrayLike | None = None) -> torch.Tensor:
    """Root mean squared error per band over valid pixels, ``(N, C)``."""
    return mse(sr, hr, mask=mask).sqrt()


def psnr(
    sr: ArrayLike, hr: ArrayLike, *, data_range: DataRange, mask: ArrayLike | None = None
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per band: ``10 log10(data_range**2 / MSE)``, ``(N, C)``.

    Identical bands give ``+inf``; bands without valid pixels give NaN.
    """
    s, h = _image_pair(sr, hr, "sr", "hr")
    dr = _data_range(data_range, s.shape[1], s.device)
    err = _masked_mean((s - h) ** 2, _mask(mask, s.shape, s.device))
    return 10.0 * torch.log10(dr**2 / err)


# ------------------------------------------------------------------------------------------------------------
# SSIM (Wang et al. 2004)
# ------------------------------------------------------------------------------------------------------------


def ssim_map(
    sr: ArrayLike,
    hr: ArrayLike,
    *,
    data_range: DataRange,
    win_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Local SSIM (Wang et al. 2004) with a Gaussian window, ``(N, C, H - win_size + 1, W - win_size + 1)``.

    Map pixel ``(i, j)`` is the SSIM of the window whose top-left pixel is ``(i, j)`` (no padding: only
    windows entirely inside the image). Local means, variances and covariance are Gaussian-weighted (weights
    sum to 1, biased estimators); ``C1 = (k1 * data_range)**2``, ``C2 = (k2 * data_range)**2``. Computed in
    float64 by :func:`sr_core.losses.ssim_map` (the project's one SSIM implementation).
    """
    s, h = _image_pair(sr, hr, "sr", "hr")
    check_ssim_args(win_size, sigma, k1, k2, s.shape[-2], s.shape[-1], window_name="win_size")
    dr = _data_range(data_range, s.shape[1], s.device)[0]
    return _ssim_map(s, h, dr, win_size, sigma, k1=k1, k2=k2)


def ssim(
    sr: ArrayLike,
    hr: ArrayLike,
    *,
    data_range: DataRange,
    mask: ArrayLike | None = None,
    win_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Mean SSIM per band, ``(N, C)``: the mean of :func:`ssim_map` over the valid windows.

    With a ``mask``, a window counts only if all its ``win_size x win_size`` pixels are valid (so nodata never
    contaminates local statistics); a band with no such window gives NaN.
    """
    s, h = _image_pair(sr, hr, "sr", "hr")
    check_ssim_args(win_size, sigma, k1, k2, s.shape[-2], s.shape[-1], window_name="win_size")
    dr = _data_range(data_range, s.shape[1], s.device)[0]
    m = _mask(mask, s.shape, s.device)
    out, ok = masked_ssim_map(s, h, dr, mask=m, window_size=win_size, sigma=sigma, k1=k1, k2=k2)
    return _masked_mean(out, ok)


# ------------------------------------------------------------------------------------------------------------
# PROBA-V clear metrics (Maertens et al. 2019): brightness-bias corrected, best integer shift
# ------------------------------------------------------------------------------------------------------------


def _clear_search(
    s: torch.Tensor,
    h: torch.Tensor,
    score: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor],
    key: Callable[[torch.Tensor], torch.Tensor],
    mask: ArrayLike | None,
    border: int,
    max_shift: int | None,
    joint: bool,
    return_shift: bool,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """:func:`sr_core.losses.shift.shift_search` on float64 images; lower ``key(score)`` wins."""
    m = _mask(mask, s.shape, s.device)
    best = shift_search(s, h, score, mask=m, border=border, max_shift=max_shift, joint=joint, key=key)
    return (best.values, best.shifts) if return_shift else best.values


def cmse(
    sr: ArrayLike,
    hr: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    border: int = 3,
    max_shift: int | None = None,
    joint: bool = True,
    return_shift: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """PROBA-V clear MSE per band, ``(N, C)``: brightness-bias corrected MSE at the best integer shift.

    ``sr`` is cropped by ``border`` pixels on each side; for every shift ``(dy, dx)`` with
    ``|dy|, |dx| <= max_shift`` (default ``border``; at most ``border``) the same-size crop of ``hr`` is taken
    so that sr pixel ``(i, j)`` faces hr pixel ``(i - dy, j - dx)`` (the shift is the translation of sr
    relative to hr, same sign as :func:`phase_correlation_shift` ``(sr, hr)``). ``mask`` flags valid (clear)
    **hr** pixels and moves with the hr crop. Per band: ``bias = mean(hr_crop - sr_crop)``,
    ``cMSE = mean((hr_crop - sr_crop - bias)**2)`` over valid pixels. The search is
    :func:`sr_core.losses.shift.shift_search` (shared with ``cl1_loss`` / ``cmse_loss``), run in float64.

    Shift choice: per image (never across images). ``joint=True`` (default): one shift per image for all
    bands, the one minimising the mean over bands of ``log(cMSE)`` (i.e. maximising the band-mean cPSNR,
    independent of ``data_range``); ``joint=False``: each band picks its own shift (the single-band PROBA-V
    rule). Ties go to the smallest shift. ``return_shift=True`` also returns the chosen shifts, int64
    ``(N, C, 2)`` as ``(dy, dx)``.
    """
    s, h = _image_pair(sr, hr, "sr", "hr")

    def score(sc: torch.Tensor, t: torch.Tensor, mc: torch.Tensor | None) -> torch.Tensor:
        return _masked_mean((t - sc) ** 2, mc)

    # A tiny floor (relative to the hr power) keeps log(0) finite, so that with joint=True a shift that is
    # exact in two bands beats one exact in a single band instead of tying at +inf.
    power = torch.nan_to_num(h, nan=0.0, posinf=0.0, neginf=0.0).square().mean(dim=(-2, -1))
    floor = (1e-20 * power + torch.finfo(_F64).tiny)[..., None]
    return _clear_search(
        s, h, score, lambda v: torch.log(v + floor), mask, border, max_shift, joint, return_shift
    )


def cpsnr(
    sr: ArrayLike,
    hr: ArrayLike,
    *,
    data_range: DataRange,
    mask: ArrayLike | None = None,
    border: int = 3,
    max_shift: int | None = None,
    joint: bool = True,
    return_shift: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """PROBA-V clear PSNR per band in dB, ``(N, C)``: ``10 log10(data_range**2 / cMSE)`` (see :func:`cmse`).

    No cap: cMSE = 0 gives ``+inf``. A pure brightness offset gives cMSE = 0 up to the float64 rounding of
    ``hr - sr`` (about 1e-32 relative to the signal power), i.e. a cPSNR of roughly 300 dB, ``+inf`` when
    exact.
    """
    s = _image(sr, "sr")
    dr = _data_range(data_range, s.shape[1], s.device)
    values, shifts = cmse(
        sr, hr, mask=mask, border=border, max_shift=max_shift, joint=joint, return_shift=True
    )
    out = 10.0 * torch.log10(dr**2 / values)
    return (out, shifts) if return_shift else out


def cssim(
    sr: ArrayLike,
    hr: ArrayLike,
    *,
    data_range: DataRange,
    mask: ArrayLike | None = None,
    border: int = 3,
    max_shift: int | None = None,
    joint: bool = True,
    return_shift: bool = False,
    win_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Clear SSIM per band, ``(N, C)``: :func:`ssim` of the brightness-bias corrected sr crop against the hr
    crop, maximised over the integer shifts exactly as in :func:`cmse` (joint: highest band-mean SSIM per
    image)."""
    s, h = _image_pair(sr, hr, "sr", "hr")
    dr = _data_range(data_range, s.shape[1], s.device)[0]
    b = check_int("border", border, 0)
    check_ssim_args(win_size, sigma, k1, k2, s.shape[-2] - 2 * b, s.shape[-1] - 2 * b, window_name="win_size")

    def score(sc: torch.Tensor, t: torch.Tensor, mc: torch.Tensor | None) -> torch.Tensor:
        out, ok = masked_ssim_map(sc, t, dr, mask=mc, window_size=win_size, sigma=sigma, k1=k1, k2=k2)
        return _masked_mean(out, ok)

    return _clear_search(s, h, score, torch.neg, mask, border, max_shift, joint, return_shift)  # highest wins


# ------------------------------------------------------------------------------------------------------------
# spectral metrics
# ------------------------------------------------------------------------------------------------------------


def sam_map(sr: ArrayLike, hr: ArrayLike) -> torch.Tensor:
    """Per-pixel spectral angle in degrees between the C-band spectra of ``sr`` and ``hr``, ``(N, H, W)``.

    Computed as ``2 atan2(|u - v|, |u + v|)`` with ``u, v`` the unit spectra (exact 0 for identical spectra,
    90 for orthogonal ones). Undefined (NaN) where either spectrum is the zero vector.
    """
    s, h = _image_pair(sr, hr, "sr", "hr")
    ns = torch.linalg.vector_norm(s, dim=1, keepdim=True)
    nh = torch.linalg.vector_norm(h, dim=1, keepdim=True)
    undefined = ((ns == 0) | (nh == 0))[:, 0]
    u = s / torch.where(ns == 0, torch.ones_like(ns), ns)
    v = h / torch.where(nh == 0, torch.ones_like(nh), nh)
    ang = 2.0 * torch.atan2(torch.linalg.vector_norm(u - v, dim=1), torch.linalg.vector_norm(u + v, dim=1))
    return torch.where(undefined, torch.full_like(ang, math.nan), torch.rad2deg(ang))


def sam(sr: ArrayLike, hr: ArrayLike, *, mask: ArrayLike | None = None) -> torch.Tensor:
    """Mean spectral angle (degrees) per image, ``(N,)``, over valid pixels where the angle is defined.

    A pixel is valid when valid in every band (a ``(N, C, H, W)`` mask is reduced with ``all`` over bands).
    Pixels with a zero spectrum (angle undefined) are left out.
    """
    s, h = _image_pair(sr, hr, "sr", "hr")
    ang = sam_map(s, h)
    ok = ~torch.isnan(ang) | torch.isnan(s).any(dim=1) | torch.isnan(h).any(dim=1)  # NaN input propagates
    pm = _pixel_mask(mask, s.shape, s.device)
    ok = ok if pm is None else ok & pm
    return _masked_mean(ang, ok)


def ergas(sr: ArrayLike, hr: ArrayLike, *, ratio: float, mask: ArrayLike | None = None) -> torch.Tensor:
    """ERGAS (Wald 2000) per image, ``(N,)``: ``100 / ratio * sqrt(mean_k (RMSE_k / mean(hr_k))**2)``.

    ``ratio`` is the resolution ratio of the super-resolution, LR pixel size over HR pixel size (2 for 20 m ->
    10 m, 6 for 60 m -> 10 m), so ``100 / ratio`` is Wald's ``100 h / l``. Means over valid pixels; 0 for
    identical images. A band whose hr mean is 0 makes the result inf/NaN.
    """
    s, h = _image_pair(sr, hr, "sr", "hr")
    r = check_positive("ratio", ratio)
    m = _mask(mask, s.shape, s.device)
    rel = _masked_mean((s - h) ** 2, m) / _masked_mean(h, m) ** 2
    return 100.0 / r * rel.mean(dim=1).sqrt()


# ------------------------------------------------------------------------------------------------------------
# consistency with the LR input (opensr-test)
# ------------------------------------------------------------------------------------------------------------


def _degraded(
    sr: torch.Tensor,
    ratio: float,
    bands: Sequence[str] | None,
    mtf: Sequence[float] | None,
    sigma: Sequence[float] | float | None,
    degrade_fn: Callable[[torch.Tensor], torch.Tensor] | None,
) -> torch.Tensor:
    if degrade_fn is not None:
        if bands is not None or mtf is not None or sigma is not None:
            raise ValueError("give either degrade_fn or bands/mtf/sigma, not both")
        return degrade_fn(sr).to(_F64)
    from sr_core.degradation import degrade  # lazy: the degradation module is optional for most metrics

    return degrade(sr, ratio, bands=bands, mtf=mtf, sigma=sigma).to(_F64)


def _lr_like(d: torch.Tensor, lr: torch.Tensor) -> None:
    if d.shape != lr.shape:
        raise ValueError(
            f"degraded sr has shape {tuple(d.shape)} but lr has {tuple(lr.shape)}: "
            "check ratio and the sr size"
        )


def reflectance_consistency(
    sr: ArrayLike,
    lr: ArrayLike,
    *,
    ratio: int,
    bands: Sequence[str] | None = None,
    mtf: Sequence[float] | None = None,
    sigma: Sequence[float] | float | None = None,
    mask: ArrayLike | None = None,
    degrade_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Per-band mean ``|degrade(sr) - lr|`` over valid LR pixels, ``(N, C)`` (data units).

    ``degrade`` is :func:`sr_core.degradation.degrade` (MTF-matched Gaussian PSF + decimation by ``ratio``)
    with exactly one of ``bands`` / ``mtf`` / ``sigma``; or pass your own ``degrade_fn(sr) -> lr-shaped``.
    ``mask`` is on the LR grid.
    """
    s, lo = _image(sr, "sr"), _image(lr, "lr")
    lo = lo.to(s.device)
    d = _degraded(s, ratio, bands, mtf, sigma, degrade_fn)
    _lr_like(d, lo)
    return mae(d, lo, mask=mask)


def spectral_consistency(
    sr: ArrayLike,
    lr: ArrayLike,
    *,
    ratio: int,
    bands: Sequence[str] | None = None,
    mtf: Sequence[float] | None = None,
    sigma: Sequence[float] | float | None = None,
    mask: ArrayLike | None = None,
    degrade_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Mean spectral angle (degrees) between ``degrade(sr)`` and ``lr``, ``(N,)`` (see
    :func:`reflectance_consistency` for the degradation arguments, :func:`sam` for the angle)."""
    s, lo = _image(sr, "sr"), _image(lr, "lr")
    lo = lo.to(s.device)
    d = _degraded(s, ratio, bands, mtf, sigma, degrade_fn)
    _lr_like(d, lo)
    return sam(d, lo, mask=mask)


# ------------------------------------------------------------------------------------------------------------
# spatial alignment and frequency content
# ------------------------------------------------------------------------------------------------------------


def _hann2d(h: int, w: int, device: torch.device) -> torch.Tensor:
    def win(n: int) -> torch.Tensor:
        if n == 1:
            return torch.ones(1, dtype=_F64, device=device)
        return torch.hann_window(n, periodic=False, dtype=_F64, device=device)

    return win(h)[:, None] * win(w)[None, :]


_PC_FLOOR = 1e-3  # whitening floor of the cross-power spectrum, relative to its maximum


def phase_correlation_shift(
    a: ArrayLike, b: ArrayLike, *, upsample: int = 100, window: str | None = "hann"
) -> torch.Tensor:
    """Sub-pixel translation of ``a`` relative to ``b`` per band by phase correlation.

    Returns ``(N, C, 2)``: ``(dy, dx)`` per band.

    Sign convention: ``a(y, x) ~= b(y - dy, x - dx)``, i.e. positive ``dy`` / ``dx`` means the content of
    ``a`` sits further down / right than in ``b``. Shifts are in pixels, in ``(-H/2, H/2]`` x ``(-W/2, W/2]``
    (circular).

    Method: with ``window="hann"`` (default) each band's mean is removed and a 2-D Hann window applied (scenes
    are not periodic; ``window=None`` for exactly circular shifts). Cross-power spectrum ``X = A conj(B)``,
    whitened with a floor, ``X / (|X| + 1e-3 max|X|)`` (pure phase normalisation lets near-empty frequencies
    of smooth images dominate), Nyquist row/column of even sizes dropped (a real image carries no phase
    there); integer peak of its inverse FFT, then refinement on a grid of step ``1 / upsample`` pixel over +-1
    pixel around it by evaluating the band-limited correlation with a matrix-multiply DFT (Guizar-Sicairos et
    al. 2008). Accuracy: half the grid step (0.005 px by default) for a circular translation with
    ``window=None``; for non-periodic scenes with texture typically a few hundredths of a pixel (tested: 0.05
    px on 64 x 64 crops). Inputs must be finite (fill nodata first).
    """
    ta, tb = _image_pair(a, b, "a", "b")
    up = check_int("upsample", upsample, 1)
    if window not in (None, "hann"):
        raise ValueError(f"window must be None or 'hann', got {window!r}")
    if not (bool(torch.isfinite(ta).all()) and bool(torch.isfinite(tb).all())):
        raise ValueError("phase_correlation_shift needs finite inputs: fill nodata (NaN/inf) first")
    n, c, h, w = ta.shape
    if window == "hann":
        win = _hann2d(h, w, ta.device)
        ta = (ta - ta.mean(dim=(-2, -1), keepdim=True)) * win
        tb = (tb - tb.mean(dim=(-2, -1), keepdim=True)) * win
    cross = torch.fft.fft2(ta) * torch.fft.fft2(tb).conj()
    mag = cross.abs()
    floor = mag.amax(dim=(-2, -1), keepdim=True) * _PC_FLOOR
    r = cross / torch.where(floor > 0, mag + floor, torch.ones_like(mag))
    if h % 2 == 0:
        r[..., h // 2, :] = 0
    if w % 2 == 0:
        r[..., :, w // 2] = 0
    corr = torch.fft.ifft2(r).real.reshape(n, c, h * w)
    idx = corr.argmax(dim=-1)
    py = (idx // w).to(_F64)
    px = (idx % w).to(_F64)
    py = torch.where(py > h // 2, py - h, py)
    px = torch.where(px > w // 2, px - w, px)
    if up > 1:
        fy = torch.fft.fftfreq(h, dtype=_F64, device=ta.device)
        fx = torch.fft.fftfreq(w, dtype=_F64, device=ta.device)
        offs = (torch.arange(2 * up + 1, dtype=_F64, device=ta.device) - up) / up
        ys = py[..., None] + offs  # (N, C, M)
        xs = px[..., None] + offs
        ey = torch.exp(2j * math.pi * ys[..., :, None] * fy)  # (N, C, M, H)
        ex = torch.exp(2j * math.pi * fx[:, None] * xs[..., None, :])  # (N, C, W, M)
        local = (ey @ r @ ex).real.reshape(n, c, -1)
        k = local.argmax(dim=-1)
        m = offs.numel()
        py = ys.gather(-1, (k // m)[..., None])[..., 0]
        px = xs.gather(-1, (k % m)[..., None])[..., 0]
    return torch.stack([py, px], dim=-1)


def spatial_misalignment(
    sr: ArrayLike, reference: ArrayLike, *, upsample: int = 100, window: str | None = "hann"
) -> torch.Tensor:
    """Magnitude in pixels of the translation between ``sr`` and ``reference`` (HR image or LR upsampled to
    the sr grid) per band, ``(N, C)``: ``hypot(dy, dx)`` of :func:`phase_correlation_shift`
    ``(sr, reference)``. Default Hann window (scenes are not periodic)."""
    d = phase_correlation_shift(sr, reference, upsample=upsample, window=window)
    return torch.linalg.vector_norm(d, dim=-1)


def radial_power_spectrum(x: ArrayLike, *, subtract_mean: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Radially averaged power spectrum per band: ``(freqs (K,), power (N, C, K))``.

    ``power`` is ``|FFT2(x)|**2 / (H W)`` averaged over the frequencies ``f = sqrt(fy**2 + fx**2)``
    (cycles/pixel) that round to bin ``k``: bin ``k`` holds ``|f * n - k| <= 1/2`` with ``n = min(H, W)``, for
    ``k = 0 .. n // 2`` (``freqs = k / n``, up to Nyquist 0.5; corner frequencies above Nyquist are dropped).
    With this normalisation white noise of variance ``s**2`` has power ``s**2`` in every bin and a sinusoid of
    amplitude ``a`` peaks in the bin of its frequency. ``subtract_mean`` removes each band's mean first
    (empties the DC bin).
    """
    t = _image(x, "x")
    if not bool(torch.isfinite(t).all()):
        raise ValueError("radial_power_spectrum needs finite inputs: fill nodata (NaN/inf) first")
    n_, c, h, w = t.shape
    if subtract_mean:
        t = t - t.mean(dim=(-2, -1), keepdim=True)
    p = torch.fft.fft2(t).abs() ** 2 / (h * w)
    fy = torch.fft.fftfreq(h, dtype=_F64, device=t.device)
    fx = torch.fft.fftfreq(w, dtype=_F64, device=t.device)
    n = min(h, w)
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) * n
    k = torch.floor(radius + 0.5).to(torch.int64).reshape(-1)
    nb = n // 2 + 1
    keep = k < nb
    k = k[keep]
    flat = p.reshape(n_ * c, h * w)[:, keep]
    sums = torch.zeros(n_ * c, nb, dtype=_F64, device=t.device).index_add_(1, k, flat)
    counts = torch.bincount(k, minlength=nb).to(_F64)
    power = (sums / counts).reshape(n_, c, nb)
    freqs = torch.arange(nb, dtype=_F64, device=t.device) / n
    return freqs, power


# ------------------------------------------------------------------------------------------------------------
# correctness: improvement / omission / hallucination (opensr-test)
# ------------------------------------------------------------------------------------------------------------

IMPROVEMENT, OMISSION, HALLUCINATION, EXCLUDED = 0, 1, 2, -1


class CorrectnessFractions(NamedTuple):
    """Fractions of valid pixels per class, each ``(N, C)``; they sum to 1 where a band has valid pixels."""

    hallucination: torch.Tensor
    omission: torch.Tensor
    improvement: torch.Tensor


def correctness_classes(
    sr: ArrayLike,
    lr_upsampled: ArrayLike,
    hr: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    min_reference_distance: float = 0.0,
    im_lambda: float = 0.8,
    om_lambda: float = 0.8,
    ha_lambda: float = 0.4,
) -> torch.Tensor:
    """Per-pixel, per-band class (int64 ``(N, C, H, W)``): :data:`IMPROVEMENT` (0), :data:`OMISSION` (1),
    :data:`HALLUCINATION` (2), or :data:`EXCLUDED` (-1), following the opensr-test correctness scores.

    Rule (distances are absolute differences per pixel and band; harmonise sr to hr beforehand if wanted):

    * ``d_ref = |lr_up - hr|``; pixels with ``d_ref <= min_reference_distance`` (nothing to super-resolve: the
      relative distances are undefined) or masked out are EXCLUDED;
    * relative distances ``d_im = |sr - hr| / d_ref`` (to the target) and ``d_om = |sr - lr_up| / d_ref`` (to
      the LR interpolation); with ``H = d_im + d_om - 1``:
      ``improvement = d_im + d_om (1 - exp(-im_lambda H))``,
      ``omission = d_om + d_im (1 - exp(-om_lambda H))``,
      ``hallucination = exp(-ha_lambda d_im d_om)``;
    * the class is the smallest score (ties: improvement, then omission). So sr == hr is an improvement, sr ==
      lr_up an omission, and sr far from both (``d_im d_om`` large) a hallucination. The lambdas are the
      opensr-test defaults. Non-finite values on pixels that are not masked out raise ``ValueError``.
    """
    s, lo = _image_pair(sr, lr_upsampled, "sr", "lr_upsampled")
    _, h = _image_pair(s, hr, "sr", "hr")
    check_positive("min_reference_distance", min_reference_distance, allow_zero=True)
    lam_im = check_positive("im_lambda", im_lambda)
    lam_om = check_positive("om_lambda", om_lambda)
    lam_ha = check_positive("ha_lambda", ha_lambda)
    m = _mask(mask, s.shape, s.device)
    d_ref = (lo - h).abs()
    valid = d_ref > min_reference_distance
    if m is not None:
        valid = valid & m
    finite = torch.isfinite(s) & torch.isfinite(lo) & torch.isfinite(h)
    if bool((~finite if m is None else ~finite & m).any()):
        raise ValueError("sr, lr_upsampled and hr must be finite on valid pixels: mask nodata out")
    ref = torch.where(valid, d_ref, torch.ones_like(d_ref))
    d_im = (s - h).abs() / ref
    d_om = (s - lo).abs() / ref
    big_h = d_im + d_om - 1.0
    improvement = d_im + d_om * (1.0 - torch.exp(-lam_im * big_h))
    omission = d_om + d_im * (1.0 - torch.exp(-lam_om * big_h))
    hallucination = torch.exp(-lam_ha * d_im * d_om)
    cls = torch.stack([improvement, omission, hallucination]).argmin(dim=0)
    return torch.where(valid, cls, torch.full_like(cls, EXCLUDED))


def hallucination_omission_improvement(
    sr: ArrayLike,
    lr_upsampled: ArrayLike,
    hr: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    min_reference_distance: float = 0.0,
    im_lambda: float = 0.8,
    om_lambda: float = 0.8,
    ha_lambda: float = 0.4,
) -> CorrectnessFractions:
    """Fractions of hallucination / omission / improvement pixels per band (each ``(N, C)``, summing to 1 over
    the non-excluded pixels; NaN for a band without any). Classification rule: :func:`correctness_classes`."""
    cls = correctness_classes(
        sr,
        lr_upsampled,
        hr,
        mask=mask,
        min_reference_distance=min_reference_distance,
        im_lambda=im_lambda,
        om_lambda=om_lambda,
        ha_lambda=ha_lambda,
    )
    total = (cls != EXCLUDED).sum(dim=(-2, -1)).to(_F64)
    frac = [(cls == k).sum(dim=(-2, -1)).to(_F64) / total for k in (HALLUCINATION, OMISSION, IMPROVEMENT)]
    return CorrectnessFractions(*frac)


# ------------------------------------------------------------------------------------------------------------
# segmentation metrics on boolean masks
# ------------------------------------------------------------------------------------------------------------


def _bool_masks(pred: ArrayLike, target: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    p, t = _as_tensor(pred, "pred"), _as_tensor(target, "target")
    for name, v in (("pred", p), ("target", t)):
        if v.dtype != torch.bool:
            raise ValueError(f"{name} must be a boolean mask, got dtype {v.dtype}")
        if v.ndim < 2:
            raise ValueError(f"{name} must have at least 2 dims (..., H, W), got shape {tuple(v.shape)}")
    if p.shape != t.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(p.shape)} and {tuple(t.shape)}"
        )
    return p, t.to(p.device)


def _confusion(
    pred: ArrayLike, target: ArrayLike, mask: ArrayLike | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    p, t = _bool_masks(pred, target)
    if mask is not None:
        m = _as_tensor(mask, "mask")
        if m.dtype != torch.bool:
            raise ValueError(f"mask must be a boolean array (True = valid), got dtype {m.dtype}")
        try:
            m = m.to(p.device).expand(p.shape)
        except RuntimeError:
            msg = f"mask of shape {tuple(m.shape)} does not broadcast to {tuple(p.shape)}"
            raise ValueError(msg) from None
        p, t = p & m, t & m
    dims = (-2, -1)
    tp = (p & t).sum(dim=dims).to(_F64)
    fp = (p & ~t).sum(dim=dims).to(_F64)
    fn = (~p & t).sum(dim=dims).to(_F64)
    return tp, fp, fn


def _ratio(num: torch.Tensor, den: torch.Tensor, empty: float) -> torch.Tensor:
    safe = torch.where(den > 0, den, torch.ones_like(den))
    return torch.where(den > 0, num / safe, torch.full_like(den, empty))


def dice(
    pred: ArrayLike, target: ArrayLike, *, mask: ArrayLike | None = None, empty: float = math.nan
) -> torch.Tensor:
    """Dice coefficient ``2 TP / (2 TP + FP + FN)`` over the last two dims (shape ``pred.shape[:-2]``).

    ``pred``/``target``: boolean masks ``(..., H, W)``; ``mask``: valid pixels (broadcastable). ``empty`` is
    returned where the ratio is 0/0 (both masks empty).
    """
    tp, fp, fn = _confusion(pred, target, mask)
    return _ratio(2 * tp, 2 * tp + fp + fn, empty)


def iou(
    pred: ArrayLike, target: ArrayLike, *, mask: ArrayLike | None = None, empty: float = math.nan
) -> torch.Tensor:
    """Intersection over union (Jaccard) ``TP / (TP + FP + FN)``; conventions as :func:`dice`."""
    tp, fp, fn = _confusion(pred, target, mask)
    return _ratio(tp, tp + fp + fn, empty)


def precision(
    pred: ArrayLike, target: ArrayLike, *, mask: ArrayLike | None = None, empty: float = math.nan
) -> torch.Tensor:
    """``TP / (TP + FP)``; ``empty`` when nothing is predicted; conventions as :func:`dice`."""
    tp, fp, _ = _confusion(pred, target, mask)
    return _ratio(tp, tp + fp, empty)


def recall(
    pred: ArrayLike, target: ArrayLike, *, mask: ArrayLike | None = None, empty: float = math.nan
) -> torch.Tensor:
    """``TP / (TP + FN)``; ``empty`` when the target is empty; conventions as :func:`dice`."""
    tp, _, fn = _confusion(pred, target, mask)
    return _ratio(tp, tp + fn, empty)


def _match_one(
    p: np.ndarray, t: np.ndarray, iou_threshold: float, structure: np.ndarray
) -> tuple[int, int, int]:
    """TP, FP, FN of one pair of masks. Only overlapping object pairs with IoU >= threshold can match; the
    eligible pairs split into connected groups (objects that overlap each other) and the Hungarian assignment is
    solved per group, which equals the assignment over the whole (sparse) IoU matrix but stays linear in the
    number of objects (a dense matrix of thousands of built-up blobs was the bottleneck)."""
    from scipy import ndimage
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    lp, n_p = ndimage.label(p, structure=structure)
    lt, n_t = ndimage.label(t, structure=structure)
    if n_p == 0 or n_t == 0:
        return 0, n_p, n_t
    both = (lp > 0) & (lt > 0)
    pairs, inter = np.unique(lp[both].astype(np.int64) * (n_t + 1) + lt[both], return_counts=True)
    pi, ti = pairs // (n_t + 1) - 1, pairs % (n_t + 1) - 1
    area_p = np.bincount(lp.ravel(), minlength=n_p + 1)[1:].astype(np.float64)
    area_t = np.bincount(lt.ravel(), minlength=n_t + 1)[1:].astype(np.float64)
    ious = inter / (area_p[pi] + area_t[ti] - inter)
    keep = ious >= iou_threshold
    pi, ti, ious = pi[keep], ti[keep], ious[keep]
    if pi.size == 0:
        return 0, n_p, n_t
    # bipartite graph on nodes [pred objects | target objects]; one assignment per connected group
    graph = coo_matrix((np.ones(pi.size), (pi, n_p + ti)), shape=(n_p + n_t, n_p + n_t))
    _, comp = connected_components(graph, directed=False)
    group = comp[pi]
    order = np.argsort(group, kind="stable")
    pi, ti, ious, group = pi[order], ti[order], ious[order], group[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], group.size]
    tp = 0
    for a, b in zip(starts, ends):
        if b - a == 1:
            tp += 1
            continue
        rp, rt = np.unique(pi[a:b], return_inverse=True)[1], np.unique(ti[a:b], return_inverse=True)[1]
        m = np.zeros((int(rp.max()) + 1, int(rt.max()) + 1))
        m[rp, rt] = ious[a:b]
        rows, cols = linear_sum_assignment(m, maximize=True)
        tp += int(np.count_nonzero(m[rows, cols] > 0))
    return tp, n_p - tp, n_t - tp


def instance_matches(
    pred: ArrayLike, target: ArrayLike, *, iou_threshold: float = 0.25, connectivity: int = 8
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Object-level matching of two boolean masks ``(..., H, W)``: int64 ``(TP, FP, FN)`` of shape ``[...]``.

    Objects are connected components (``scipy.ndimage.label``; ``connectivity`` 8 (default: diagonal
    neighbours join) or 4). Predicted and target objects are paired one-to-one by the Hungarian algorithm
    maximising the summed IoU over pairs with ``IoU >= iou_threshold``; matched pairs are TP, unmatched
    predictions FP, unmatched targets FN.
    """
    p, t = _bool_masks(pred, target)
    thr = iou_threshold
    if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not 0 < thr <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold!r}")
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    if connectivity == 8:
        structure = np.ones((3, 3), dtype=bool)
    else:
        structure = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)
    lead = p.shape[:-2]
    pn = p.detach().cpu().numpy().reshape(-1, *p.shape[-2:])
    tn = t.detach().cpu().numpy().reshape(-1, *t.shape[-2:])
    counts = np.array([_match_one(a, b, float(thr), structure) for a, b in zip(pn, tn)], dtype=np.int64)
    counts = counts.reshape(*lead, 3)
    out = torch.from_numpy(counts).to(p.device)
    return out[..., 0], out[..., 1], out[..., 2]


def instance_f1(
    pred: ArrayLike,
    target: ArrayLike,
    *,
    iou_threshold: float = 0.25,
    connectivity: int = 8,
    empty: float = math.nan,
) -> torch.Tensor:
    """Object-level F1 ``2 TP / (2 TP + FP + FN)`` (float64, shape ``pred.shape[:-2]``) from
    :func:`instance_matches`; ``empty`` where both masks hold no object."""
    tp, fp, fn = instance_matches(pred, target, iou_threshold=iou_threshold, connectivity=connectivity)
    tp, fp, fn = tp.to(_F64), fp.to(_F64), fn.to(_F64)
    return _ratio(2 * tp, 2 * tp + fp + fn, empty)


# ------------------------------------------------------------------------------------------------------------
# averaging helpers
# ------------------------------------------------------------------------------------------------------------


def _values(values: ArrayLike) -> torch.Tensor:
    v = _as_tensor(values, "values").to(_F64)
    if v.ndim != 2:
        raise ValueError(f"values must be per-band results of shape (N, C), got {tuple(v.shape)}")
    return v


def band_mean(values: ArrayLike, *, weights: Sequence[float] | ArrayLike | None = None) -> torch.Tensor:
    """Average of per-band results ``(N, C)`` over bands -> ``(N,)``, skipping NaN bands (NaN if all are NaN).

    ``weights`` (C,) non-negative: weighted mean. Note the mean of PSNRs (dB) is not the PSNR of the mean MSE.
    """
    v = _values(values)
    if weights is None:
        return torch.nanmean(v, dim=1)
    w = weights if isinstance(weights, torch.Tensor) else torch.from_numpy(np.asarray(weights, np.float64))
    w = w.to(dtype=_F64, device=v.device).reshape(-1)
    if w.numel() != v.shape[1] or not bool(torch.all(torch.isfinite(w) & (w >= 0))):
        raise ValueError(f"weights must be {v.shape[1]} non-negative finite numbers, got {w.tolist()}")
    ok = ~torch.isnan(v)
    ww = torch.where(ok, w.expand_as(v), torch.zeros_like(v))
    return torch.where(ok, v, torch.zeros_like(v)).mul(ww).sum(dim=1) / ww.sum(dim=1)


def image_mean(values: ArrayLike) -> torch.Tensor:
    """Average of per-band results ``(N, C)`` over images -> ``(C,)``, skipping NaN entries."""
    return torch.nanmean(_values(values), dim=0)
