"""Fidelity to a reference: MSE / MAE / RMSE, PSNR, SSIM, the PROBA-V clear metrics (cMSE, cPSNR, cSSIM),
SAM and ERGAS."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from sr_core.checks import check_int
from sr_core.losses._utils import check_positive
from sr_core.losses.shift import shift_search
from sr_core.losses.ssim import check_ssim_args, masked_ssim_map
from sr_core.losses.ssim import ssim_map as _ssim_map
from sr_core.metrics._common import (
    _F64,
    ArrayLike,
    DataRange,
    _data_range,
    _image,
    _image_pair,
    _mask,
    _masked_mean,
    _pixel_mask,
)


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
