"""The evaluation's operator family: Gaussian x pixel box, Lanczos-3, misregistered band groups, the physical 10 -> 20 m step."""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from sr_core.bands import mtf as _band_mtf
from sr_core.bands import normalize_band_names
from sr_core.degradation.psf import (
    PerBand,
    _check_image,
    _check_multiple,
    _check_padding,
    _check_ratio,
    _filter,
    _kernel_1d,
    _pad_dim,
    _per_band,
    default_psf_size,
    degrade,
    mtf_to_sigma,
)

__all__ = ["kernel_mtf", "gaussian_box_sigma", "gaussian_box_degrade", "lanczos_kernel_1d", "lanczos_downsample", "shifted_degrade", "physical_step_sigma", "physical_step"]

# --------------------------------------------------------------------------- evaluation operators
#
# Further blur + decimation operators of the evaluation (sr_core.evaluation.wald.DEGRADATIONS), none of them used
# in training, and the two operators that bring a fine-grid output onto a coarser truth grid for scoring. Every one
# keeps the grid convention of the module docstring (its kernel centred on the LR pixel centre) and keeps a
# constant image constant (kernels sum to 1).


def kernel_mtf(kernel: torch.Tensor, freq: float) -> float:
    """Modulation transfer of a 1-D kernel ``(k,)`` centred at ``(k - 1) / 2`` at ``freq`` cycles per HR pixel:
    ``|sum_t w_t exp(-2 pi i freq (t - (k - 1) / 2))|`` (a symmetric kernel: ``sum_t w_t cos(...)``)."""
    if not isinstance(kernel, torch.Tensor) or kernel.ndim != 1 or kernel.numel() == 0:
        raise ValueError(f"kernel must be a non-empty 1-D tensor, got {kernel!r}")
    w = kernel.detach().to(torch.float64).cpu()
    d = torch.arange(w.numel(), dtype=torch.float64) - (w.numel() - 1) / 2.0
    ph = 2.0 * math.pi * float(freq) * d
    return float(torch.hypot((w * torch.cos(ph)).sum(), (w * torch.sin(ph)).sum()))


def _centre_pad(kernels: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack 1-D kernels of one parity, zero-padded symmetrically to the longest: ``(C, k)`` (still centred)."""
    k = max(int(w.numel()) for w in kernels)
    return torch.stack([F.pad(w, ((k - w.numel()) // 2, (k - w.numel()) // 2)) for w in kernels])


def _mtf_per_band(channels: int | None, bands: Sequence[str] | None, mtf: PerBand | None) -> list[float]:
    if (bands is None) == (mtf is None):
        raise ValueError("give exactly one of bands= or mtf= (the MTF at Nyquist of each band)")
    if bands is not None:
        names = normalize_band_names((bands,) if isinstance(bands, str) else bands)
        if channels is not None and len(names) != channels:
            raise ValueError(
                f"bands has {len(names)} names ({', '.join(names)}) but the image has {channels} bands (C)"
            )
        values = [_band_mtf(b) for b in names]
    else:
        values = _per_band(mtf, "mtf", channels).detach().tolist()  # type: ignore[arg-type]
    if not all(0 < v < 1 for v in values):
        raise ValueError(f"mtf must lie in the open interval (0, 1) for every band, got {values!r}")
    if channels is not None and len(values) == 1:
        values = values * channels
    return values


def _gaussian_box_kernel_1d(sigma: float, ratio: int) -> torch.Tensor:
    """Zero-phase Gaussian (odd, :func:`default_psf_size` for ratio 1) convolved with the ``ratio``-tap box."""
    g = _kernel_1d(torch.tensor(float(sigma), dtype=torch.float64), default_psf_size(float(sigma), 1), torch.float64)
    box = torch.full((ratio,), 1.0 / ratio, dtype=torch.float64)
    return F.conv1d(g.reshape(1, 1, -1), box.reshape(1, 1, -1), padding=ratio - 1).reshape(-1)


def gaussian_box_sigma(mtf: float, ratio: int) -> float:
    """Std (HR pixels) of the Gaussian that, followed by the ``ratio x ratio`` block mean, gives MTF ``mtf`` at the
    LR Nyquist frequency ``1 / (2 ratio)``: the discrete chain of :func:`gaussian_box_degrade` (the block mean
    alone transmits ``1 / (ratio sin(pi / (2 ratio)))`` there, 0.707 for ratio 2; ``mtf`` must be below it)."""
    ratio = _check_ratio(ratio)
    if isinstance(mtf, bool) or not isinstance(mtf, (int, float)) or not 0 < mtf < 1:
        raise ValueError(f"mtf must be a number in the open interval (0, 1), got {mtf!r}")
    f = 1.0 / (2 * ratio)
    box = 1.0 / (ratio * math.sin(math.pi / (2 * ratio)))
    if not mtf < box - 1e-6:
        raise ValueError(f"mtf {mtf} at Nyquist is not reachable: the {ratio}x{ratio} block mean alone gives {box:.4f}")
    lo, hi = 1e-3, 20.0 * ratio
    for _ in range(80):  # bisection: the transfer decreases with sigma
        mid = 0.5 * (lo + hi)
        if kernel_mtf(_gaussian_box_kernel_1d(mid, ratio), f) > mtf:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def gaussian_box_degrade(
    hr: torch.Tensor,
    ratio: int,
    *,
    bands: Sequence[str] | None = None,
    mtf: PerBand | None = None,
    padding: str = "reflect",
) -> torch.Tensor:
    """A zero-phase Gaussian then the ``ratio x ratio`` block mean (detector footprint), the Gaussian chosen per band
    (:func:`gaussian_box_sigma`) so that the whole chain has the band's MTF at the LR Nyquist frequency (exactly one
    of ``bands`` / ``mtf``). Same band MTF as :func:`degrade`, another PSF shape (a box in the PSF)."""
    _check_image(hr, "hr")
    ratio = _check_ratio(ratio)
    _check_padding(padding)
    _check_multiple(hr, ratio, "hr")
    m = _mtf_per_band(hr.shape[1], bands, mtf)
    ker = _centre_pad([_gaussian_box_kernel_1d(gaussian_box_sigma(v, ratio), ratio) for v in m])
    return _filter(hr, ker, ratio, ratio, padding)


def lanczos_kernel_1d(ratio: int, a: int = 3, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Lanczos-``a`` (windowed sinc) decimation kernel by ``ratio``: ``L(d / ratio)``, ``L(x) = sinc(x) sinc(x / a)``
    for ``|x| < a``, at the HR offsets ``d`` from the LR pixel centre (parity of ``ratio``), normalised to sum 1.
    It has negative lobes (``1 < |x| < 2``): an operator with ringing, unlike every Gaussian or box."""
    ratio = _check_ratio(ratio)
    if isinstance(a, bool) or not isinstance(a, int) or a < 1:
        raise ValueError(f"a (lobes) must be a positive integer, got {a!r}")
    k = 2 * a * ratio if ratio % 2 == 0 else 2 * a * ratio - 1
    x = (torch.arange(k, dtype=torch.float64) - (k - 1) / 2.0) / ratio
    w = torch.sinc(x) * torch.sinc(x / a)
    return (w / w.sum()).to(dtype)


def lanczos_downsample(x: torch.Tensor, ratio: int, a: int = 3, padding: str = "reflect") -> torch.Tensor:
    """Lanczos-``a`` resize by ``1 / ratio`` (:func:`lanczos_kernel_1d`, separable, the grid convention of
    :func:`degrade`); ``H``, ``W`` multiples of ``ratio``."""
    _check_image(x)
    ratio = _check_ratio(ratio)
    _check_padding(padding)
    _check_multiple(x, ratio)
    return _filter(x, lanczos_kernel_1d(ratio, a)[None], ratio, ratio, padding)


def _filter_yx(x: torch.Tensor, ky: torch.Tensor, kx: torch.Tensor, ratio: int, padding: str) -> torch.Tensor:
    """:func:`_filter` (stride ``ratio``) with the kernels ``ky`` down the rows and ``kx`` along the columns."""
    c = x.shape[1]
    off = (ratio - 1) // 2
    y = x
    for dim, ker in ((-2, ky), (-1, kx)):
        k = ker.shape[-1]
        w = ker.to(dtype=x.dtype, device=x.device)
        w = w.expand(c, k) if w.shape[0] == 1 else w
        y = _pad_dim(y, dim, (k - 1) // 2, k - 1 - (k - 1) // 2, padding)
        y = y[:, :, off:, :] if dim == -2 else y[:, :, :, off:]
        shape, stride = ((c, 1, k, 1), (ratio, 1)) if dim == -2 else ((c, 1, 1, k), (1, ratio))
        y = F.conv2d(y, w.reshape(shape), stride=stride, groups=c)
    return y


def _shifted_kernels(sigmas: Sequence[float], ratio: int, shift_hr: float) -> torch.Tensor:
    """Per-band Gaussian kernels ``(C, k)`` sampled at ``d + shift_hr`` (``d``: offsets from the LR centre)."""
    pad_taps = 2 * math.ceil(abs(shift_hr))
    k = max(default_psf_size(s, ratio) for s in sigmas) + pad_taps
    d = torch.arange(k, dtype=torch.float64) - (k - 1) / 2.0 + shift_hr
    out = []
    for s in sigmas:
        w = torch.exp(-0.5 * (d / s) ** 2)
        out.append(w / w.sum())
    return torch.stack(out)


def shifted_degrade(
    hr: torch.Tensor,
    ratio: int,
    shift: tuple[float, float],
    *,
    bands: Sequence[str] | None = None,
    mtf: PerBand | None = None,
    padding: str = "reflect",
) -> torch.Tensor:
    """:func:`degrade` whose output content is moved by ``shift = (dy, dx)`` LR pixels (positive = down/right): the
    band's Gaussian PSF (exactly one of ``bands`` / ``mtf``) sampled ``ratio * dy`` / ``ratio * dx`` HR pixels off
    the LR pixel centres. No interpolation: the output is the PSF integrated at the shifted centres (a band-to-band
    registration error, with no extra blur). ``shift = (0, 0)`` equals :func:`degrade` up to the kernel length."""
    _check_image(hr, "hr")
    ratio = _check_ratio(ratio)
    _check_padding(padding)
    _check_multiple(hr, ratio, "hr")
    try:
        dy, dx = (float(v) for v in shift)
    except (TypeError, ValueError):
        raise ValueError(f"shift must be a pair (dy, dx) of LR pixels, got {shift!r}") from None
    if not (math.isfinite(dy) and math.isfinite(dx)):
        raise ValueError(f"shift must be finite, got {shift!r}")
    sig = [float(mtf_to_sigma(v, ratio)) for v in _mtf_per_band(hr.shape[1], bands, mtf)]
    ky = _shifted_kernels(sig, ratio, ratio * dy)
    kx = _shifted_kernels(sig, ratio, ratio * dx)
    return _filter_yx(hr, ky, kx, ratio, padding)


def physical_step_sigma(mtf: float, ratio: int) -> float:
    """Std (fine pixels) of the Gaussian that takes a system of pixel 1 to one of pixel ``ratio`` with the same MTF at
    Nyquist: ``sqrt(sigma_ratio^2 - sigma_1^2) = mtf_to_sigma(mtf, 1) sqrt(ratio^2 - 1)`` (``ratio >= 2``)."""
    ratio = _check_ratio(ratio)
    if ratio < 2:
        raise ValueError(f"ratio must be >= 2 for a step to a coarser grid, got {ratio}")
    return float(mtf_to_sigma(mtf, 1)) * math.sqrt(ratio * ratio - 1)


def physical_step(
    x: torch.Tensor,
    ratio: int,
    *,
    bands: Sequence[str] | None = None,
    mtf: PerBand | None = None,
    padding: str = "reflect",
) -> torch.Tensor:
    """Bring an image of a fine system (pixel 1, the band's MTF at its Nyquist) to a coarse one (pixel ``ratio``, the
    same MTF at its Nyquist): the Gaussian of :func:`physical_step_sigma`, then decimation (:func:`degrade` with
    that ``sigma``). A scoring operator: a perfect fine image of the band maps exactly onto the coarse image the
    sensor takes (the Gaussians' variances add). Compare :func:`area_downsample` (same optics, larger detectors)."""
    _check_image(x)
    ratio = _check_ratio(ratio)
    sig = [physical_step_sigma(v, ratio) for v in _mtf_per_band(x.shape[1], bands, mtf)]
    return degrade(x, ratio, sigma=sig, padding=padding)
