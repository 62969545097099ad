"""Sensor-like degradation (MTF-matched Gaussian PSF + decimation + noise) and the Wald protocol.

Layout and grids
----------------
Tensors are ``(N, C, H, W)`` float32/float64; every function is differentiable in the HR input.
The *ratio* ``r`` is the HR/LR pixel-size ratio (a positive integer). Pixel-centre coordinates are
used throughout: HR pixel ``m`` has its centre at coordinate ``m``.

**Grid convention** (the geo-referencing rule of the whole project): LR pixel ``(i, j)`` covers the
HR pixels ``[r*i, r*i + r) x [r*j, r*j + r)``; its centre sits at HR coordinate ``r*i + (r - 1) / 2``.
The LR and HR grids therefore share the same outer bounds (no half-pixel offset of the corners).
For even ``r`` the LR centre falls *between* two HR pixels; for odd ``r`` on an HR pixel.

PSF, blur and decimation
------------------------
The point spread function is a separable Gaussian whose modulation transfer function at the LR
Nyquist frequency ``1 / (2 r)`` cycles per HR pixel equals the band's MTF:
``exp(-2 pi^2 sigma^2 / (2 r)^2) = MTF``, i.e. ``sigma = r * sqrt(-2 ln MTF) / pi`` (HR pixels).
The discrete kernel samples the Gaussian at the HR pixel centres *relative to an LR pixel centre*:
taps at offsets ``t - (k - 1) / 2`` for ``t = 0 .. k - 1``, normalised to sum 1. Its size ``k`` has
the parity of ``r`` (even ``r``: even ``k``, centre between two taps). Hence::

    degrade(hr)[i, j] = sum_{m, n} psf(m - c_i) psf(n - c_j) hr[m, n],   c_i = r*i + (r - 1) / 2,

exactly the PSF integrated at the LR pixel centres, with no interpolation. :func:`blur` returns the
blurred image on the HR grid *in the phase that* :func:`decimate` *samples*: output sample ``m`` is
centred at HR coordinate ``m`` for odd kernels and at ``m + 1/2`` for even kernels (a half-pixel
shift down/right). :func:`decimate` keeps the samples ``(r - 1) // 2 :: r``, so
``decimate(blur(x))`` is the formula above; :func:`degrade` computes the same thing with a strided
convolution.

Borders are padded per ``padding`` (``"reflect"``: mirror without repeating the edge sample,
``"replicate"``, ``"circular"``), for any kernel size relative to the image. All three keep a
constant image constant. Nodata: a NaN in the HR input propagates to every LR pixel whose kernel
support (the ``k x k`` window of the longest per-band kernel) contains it: nodata stays nodata.

Wald protocol
-------------
:func:`wald_pairs` degrades a real scene by ``factor`` so that the originals become the targets; see
its docstring and :func:`model_input_10band` for the exact input and target of each band group
(docs/decisions/2026-11-22-model-input-contract.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from sr_core.bands import BANDS_10M, BANDS_20M, mtf as _band_mtf, normalize_band_names

__all__ = [
    "PADDING_MODES",
    "KERNELS",
    "mtf_to_sigma",
    "sigma_to_mtf",
    "default_psf_size",
    "gaussian_psf_1d",
    "gaussian_psf",
    "pad",
    "blur",
    "decimate",
    "degrade",
    "Degradation",
    "area_downsample",
    "bicubic_antialias_downsample",
    "subpixel_shift",
    "random_degrade",
    "kernel_mtf",
    "gaussian_box_sigma",
    "gaussian_box_degrade",
    "lanczos_kernel_1d",
    "lanczos_downsample",
    "shifted_degrade",
    "physical_step_sigma",
    "physical_step",
    "WaldPair",
    "wald_crop_size",
    "wald_pairs",
    "model_input_10band",
]

PADDING_MODES = ("reflect", "replicate", "circular")
#: Decimation kernels known to :func:`random_degrade`.
KERNELS = ("gaussian", "area", "bicubic_aa")

Number = Union[int, float]
PerBand = Union[Number, Sequence[Number], torch.Tensor]


# --------------------------------------------------------------------------- argument checks


def _check_ratio(ratio: int) -> int:
    if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
        raise ValueError(f"ratio must be a positive integer, got {ratio!r}")
    return ratio


def _check_padding(padding: str) -> str:
    if padding not in PADDING_MODES:
        raise ValueError(f"padding must be one of {PADDING_MODES}, got {padding!r}")
    return padding


def _check_image(x: torch.Tensor, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must be a 4-D tensor (N, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be floating point (float32/float64), got {x.dtype}")


def _check_multiple(x: torch.Tensor, ratio: int, name: str = "x") -> None:
    h, w = x.shape[-2:]
    if h % ratio or w % ratio:
        raise ValueError(
            f"{name} spatial size {h}x{w} is not a multiple of ratio {ratio}: "
            f"crop H and W to multiples of {ratio}"
        )


def _per_band(value: PerBand, name: str, channels: int | None) -> torch.Tensor:
    """A float64 tensor of shape (C,) (or (1,) for a scalar, broadcast later); keeps autograd."""
    if isinstance(value, torch.Tensor):
        t = value.to(torch.float64)
        if t.ndim > 1:
            raise ValueError(
                f"{name} must be a scalar or a 1-D per-band sequence, got shape {tuple(t.shape)}"
            )
        t = t.reshape(-1)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        t = torch.tensor([float(value)], dtype=torch.float64)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise ValueError(f"{name} must contain numbers, got {value!r}")
        t = torch.tensor([float(v) for v in value], dtype=torch.float64)
    else:
        raise ValueError(f"{name} must be a number, a sequence of numbers or a tensor, got {value!r}")
    if t.numel() == 0:
        raise ValueError(f"{name} is empty")
    if channels is not None and t.numel() not in (1, channels):
        raise ValueError(f"{name} has {t.numel()} values but the image has {channels} bands (C)")
    return t


# --------------------------------------------------------------------------- PSF


def mtf_to_sigma(mtf: float | torch.Tensor, ratio: float) -> float | torch.Tensor:
    """Std (HR pixels) of the Gaussian PSF whose MTF at the LR Nyquist frequency is ``mtf``.

    ``sigma = ratio * sqrt(-2 ln mtf) / pi``; ``mtf`` must lie in the open interval (0, 1) and
    ``ratio`` (HR/LR pixel-size ratio) be > 0. A tensor ``mtf`` gives a tensor (differentiable).
    """
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio > 0:
        raise ValueError(f"ratio must be a number > 0, got {ratio!r}")
    if isinstance(mtf, torch.Tensor):
        if not bool(((mtf > 0) & (mtf < 1)).all()):
            raise ValueError(f"mtf must lie in the open interval (0, 1), got {mtf.tolist()!r}")
        return ratio * torch.sqrt(-2.0 * torch.log(mtf)) / math.pi
    if isinstance(mtf, bool) or not isinstance(mtf, (int, float)) or not 0 < mtf < 1:
        raise ValueError(f"mtf must be a number in the open interval (0, 1), got {mtf!r}")
    return ratio * math.sqrt(-2.0 * math.log(mtf)) / math.pi


def sigma_to_mtf(sigma: float | torch.Tensor, ratio: float) -> float | torch.Tensor:
    """Inverse of :func:`mtf_to_sigma`: ``exp(-pi^2 sigma^2 / (2 ratio^2))``."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio > 0:
        raise ValueError(f"ratio must be a number > 0, got {ratio!r}")
    if isinstance(sigma, torch.Tensor):
        return torch.exp(-(math.pi**2) * sigma**2 / (2.0 * ratio**2))
    return math.exp(-(math.pi**2) * float(sigma) ** 2 / (2.0 * ratio**2))


def default_psf_size(sigma: float, ratio: int) -> int:
    """Smallest kernel size with the parity of ``ratio`` covering +-3 sigma and at least ``ratio`` taps."""
    _check_ratio(ratio)
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    k = max(ratio, 2 * math.ceil(3.0 * float(sigma)) + 1)
    if k % 2 != ratio % 2:
        k += 1
    return k


def _check_size(size: int, ratio: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if size % 2 != ratio % 2:
        raise ValueError(
            f"size {size} must have the parity of ratio {ratio} (kernel centred on the LR pixel centre)"
        )
    return size


def _sigma_scalar(sigma: float | torch.Tensor) -> torch.Tensor:
    if isinstance(sigma, torch.Tensor):
        if sigma.numel() != 1:
            raise ValueError(f"sigma must be a scalar, got shape {tuple(sigma.shape)}")
        s = sigma.reshape(())
    elif isinstance(sigma, (int, float)) and not isinstance(sigma, bool):
        s = torch.tensor(float(sigma), dtype=torch.float64)
    else:
        raise ValueError(f"sigma must be a number or a scalar tensor, got {sigma!r}")
    if not bool(s.detach() > 0) or not bool(torch.isfinite(s.detach())):
        raise ValueError(f"sigma must be a finite number > 0, got {float(s.detach())!r}")
    return s


def _kernel_1d(sigma: torch.Tensor, size: int, dtype: torch.dtype) -> torch.Tensor:
    offsets = torch.arange(size, dtype=torch.float64, device=sigma.device) - (size - 1) / 2.0
    w = torch.exp(-0.5 * (offsets / sigma.to(torch.float64)) ** 2)
    return (w / w.sum()).to(dtype)


def gaussian_psf_1d(
    sigma: float | torch.Tensor, ratio: int, size: int | None = None, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """1-D Gaussian PSF ``(k,)`` sampled at offsets ``t - (k - 1) / 2`` from an LR pixel centre; sums to 1.

    ``k`` has the parity of ``ratio`` (default :func:`default_psf_size`); see the module docstring.
    """
    _check_ratio(ratio)
    s = _sigma_scalar(sigma)
    k = default_psf_size(float(s.detach()), ratio) if size is None else _check_size(size, ratio)
    return _kernel_1d(s, k, dtype)


def gaussian_psf(
    sigma: float | torch.Tensor, ratio: int, size: int | None = None, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """2-D separable Gaussian PSF ``(k, k)`` = outer product of :func:`gaussian_psf_1d`; sums to 1.

    Centred on the centre of the ``ratio x ratio`` HR block of an LR pixel: tap ``(a, b)`` weighs the
    HR pixel at offset ``(a - (k - 1) / 2, b - (k - 1) / 2)`` from the LR pixel centre.
    """
    g = gaussian_psf_1d(sigma, ratio, size, dtype)
    return torch.outer(g, g)


def _band_kernels(sigmas: torch.Tensor, ratio: int, size: int | None) -> torch.Tensor:
    """Per-band 1-D kernels ``(C, k)`` float64, zero-padded to the longest (same parity: still centred)."""
    if not bool(torch.isfinite(sigmas.detach()).all()) or not bool((sigmas.detach() > 0).all()):
        raise ValueError(f"sigma must be finite and > 0 for every band, got {sigmas.detach().tolist()!r}")
    if size is None:
        k = max(default_psf_size(float(s), ratio) for s in sigmas.detach().tolist())
    else:
        k = _check_size(size, ratio)
    return torch.stack([_kernel_1d(s, k, torch.float64) for s in sigmas.unbind(0)])


# --------------------------------------------------------------------------- padding and filtering


def _pad_index(idx: torch.Tensor, length: int, mode: str) -> torch.Tensor:
    """Map (possibly out-of-range) indices into ``[0, length)`` following ``mode``; any pad width works."""
    if mode == "replicate":
        return idx.clamp(0, length - 1)
    if mode == "circular":
        return torch.remainder(idx, length)
    if length == 1:
        return torch.zeros_like(idx)
    period = 2 * (length - 1)
    i = torch.remainder(idx, period)
    return torch.where(i >= length, period - i, i)


def _pad_dim(x: torch.Tensor, dim: int, before: int, after: int, mode: str) -> torch.Tensor:
    length = x.shape[dim]
    idx = torch.arange(-before, length + after, device=x.device)
    return x.index_select(dim, _pad_index(idx, length, mode))


def pad(x: torch.Tensor, before: int, after: int, padding: str = "reflect") -> torch.Tensor:
    """Pad both spatial dims of ``(N, C, H, W)`` by ``before``/``after`` pixels (any width, even > H or W)."""
    _check_image(x)
    _check_padding(padding)
    for name, v in (("before", before), ("after", after)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
    return _pad_dim(_pad_dim(x, -2, before, after, padding), -1, before, after, padding)


def _filter(x: torch.Tensor, kernels: torch.Tensor, ratio: int, stride: int, padding: str) -> torch.Tensor:
    """Separable depthwise filter with ``kernels`` ``(C or 1, k)``, sampled from ``(r-1)//2`` by ``stride``.

    Output sample ``m`` uses input samples ``stride*m + off + t - before``, ``before = (k - 1) // 2``,
    i.e. it is centred at ``stride*m + off`` (odd k) or ``stride*m + off + 1/2`` (even k).
    """
    n, c, h, w = x.shape
    k = kernels.shape[-1]
    ker = kernels.to(dtype=x.dtype, device=x.device)
    if ker.shape[0] == 1:
        ker = ker.expand(c, k)
    before, after = (k - 1) // 2, k - 1 - (k - 1) // 2
    off = (ratio - 1) // 2 if stride > 1 else 0
    y = _pad_dim(x, -2, before, after, padding)[:, :, off:, :]
    y = F.conv2d(y, ker.reshape(c, 1, k, 1), stride=(stride, 1), groups=c)
    y = _pad_dim(y, -1, before, after, padding)[:, :, :, off:]
    return F.conv2d(y, ker.reshape(c, 1, 1, k), stride=(1, stride), groups=c)


def _sigmas_for(x: torch.Tensor, sigma: PerBand) -> torch.Tensor:
    s = _per_band(sigma, "sigma", x.shape[1])
    return s.to(x.device) if isinstance(sigma, torch.Tensor) else s


def blur(x: torch.Tensor, sigma: PerBand, ratio: int, padding: str = "reflect") -> torch.Tensor:
    """Per-band separable Gaussian blur on the HR grid, in the phase sampled by :func:`decimate`.

    ``sigma`` (HR pixels, > 0): a number, a per-band sequence or a tensor ``(C,)`` (may require grad).
    Kernels have the parity of ``ratio``; for even ``ratio`` output sample ``m`` is centred at HR
    coordinate ``m + 1/2`` (not zero-phase on its own: meant to be followed by :func:`decimate`).
    """
    _check_image(x)
    ratio = _check_ratio(ratio)
    _check_padding(padding)
    return _filter(x, _band_kernels(_sigmas_for(x, sigma), ratio, None), ratio, 1, padding)


def decimate(x: torch.Tensor, ratio: int) -> torch.Tensor:
    """Keep the samples ``(ratio - 1) // 2 :: ratio`` of a :func:`blur` output: the LR pixel centres.

    ``H`` and ``W`` must be multiples of ``ratio`` (``ValueError`` otherwise).
    """
    _check_image(x)
    ratio = _check_ratio(ratio)
    _check_multiple(x, ratio)
    off = (ratio - 1) // 2
    return x[:, :, off::ratio, off::ratio]


def _noise_std(noise_std: PerBand, channels: int) -> torch.Tensor:
    std = _per_band(noise_std, "noise_std", channels).detach()
    if not bool(torch.isfinite(std).all()) or bool((std < 0).any()):
        raise ValueError(f"noise_std must be finite and >= 0, got {std.tolist()!r}")
    return std


def _add_noise(lr: torch.Tensor, std: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    if not isinstance(generator, torch.Generator):
        raise ValueError(
            "noise_std is set: pass a torch.Generator as generator= (random functions never seed themselves)"
        )
    noise = torch.randn(lr.shape, generator=generator, dtype=lr.dtype, device=generator.device).to(lr.device)
    return lr + noise * std.to(dtype=lr.dtype, device=lr.device).reshape(1, -1, 1, 1)


def _resolve_sigmas(
    channels: int | None,
    ratio: int,
    bands: Sequence[str] | None,
    mtf: PerBand | None,
    sigma: PerBand | None,
) -> torch.Tensor:
    given = [n for n, v in (("bands", bands), ("mtf", mtf), ("sigma", sigma)) if v is not None]
    if len(given) != 1:
        raise ValueError(
            "give exactly one of bands=, mtf= or sigma= to set the PSF, got "
            + (", ".join(given) if given else "none")
        )
    if bands is not None:
        if isinstance(bands, str):
            bands = (bands,)
        names = normalize_band_names(bands)
        if channels is not None and len(names) != channels:
            raise ValueError(
                f"bands has {len(names)} names ({', '.join(names)}) but the image has {channels} bands (C)"
            )
        mtf = [_band_mtf(b) for b in names]
    if mtf is not None:
        m = _per_band(mtf, "mtf", channels)
        if not bool(((m.detach() > 0) & (m.detach() < 1)).all()):
            raise ValueError(
                f"mtf must lie in the open interval (0, 1) for every band, got {m.detach().tolist()!r}"
            )
        return mtf_to_sigma(m, ratio)  # type: ignore[return-value]
    return _per_band(sigma, "sigma", channels)  # type: ignore[arg-type]


def degrade(
    hr: torch.Tensor,
    ratio: int,
    *,
    bands: Sequence[str] | None = None,
    mtf: PerBand | None = None,
    sigma: PerBand | None = None,
    noise_std: PerBand | None = None,
    generator: torch.Generator | None = None,
    padding: str = "reflect",
) -> torch.Tensor:
    """Simulate the LR acquisition of ``hr`` ``(N, C, H, W)``: Gaussian PSF, decimation by ``ratio``, noise.

    The PSF of each band comes from exactly one of ``bands`` (Sentinel-2 names, MTF from
    :mod:`sr_core.bands`), ``mtf`` (MTF at the LR Nyquist frequency, number or one per band) or
    ``sigma`` (Gaussian std in HR pixels, number or one per band). ``noise_std`` (number or one per
    band, in the units of ``hr``) adds white Gaussian noise drawn from ``generator`` (required then).
    Returns ``lr`` ``(N, C, H / ratio, W / ratio)``; ``H``, ``W`` must be multiples of ``ratio``.
    Equals ``decimate(blur(hr, sigma, ratio, padding), ratio)`` (+ noise).
    """
    _check_image(hr, "hr")
    ratio = _check_ratio(ratio)
    _check_padding(padding)
    _check_multiple(hr, ratio, "hr")
    sigmas = _resolve_sigmas(hr.shape[1], ratio, bands, mtf, sigma)
    std = None if noise_std is None else _noise_std(noise_std, hr.shape[1])
    kernels = _band_kernels(sigmas.to(hr.device), ratio, None)
    return _degrade_with_kernels(hr, kernels, ratio, padding, std, generator)


def _degrade_with_kernels(
    hr: torch.Tensor,
    kernels: torch.Tensor,
    ratio: int,
    padding: str,
    std: torch.Tensor | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    if std is not None and not isinstance(generator, torch.Generator):
        raise ValueError(
            "noise_std is set: pass a torch.Generator as generator= (random functions never seed themselves)"
        )
    lr = _filter(hr, kernels, ratio, ratio, padding)
    return lr if std is None else _add_noise(lr, std, generator)


class Degradation(nn.Module):
    """``nn.Module`` wrapper of :func:`degrade`; the per-band 1-D kernels are a buffer ``kernels`` ``(C, k)``.

    A scalar ``mtf``/``sigma`` gives one kernel ``(1, k)`` applied to every band.
    ``forward(hr, generator=None)`` equals ``degrade(hr, ratio, ...)`` with the same arguments.
    """

    kernels: torch.Tensor
    sigma: torch.Tensor
    noise_std: torch.Tensor | None

    def __init__(
        self,
        ratio: int,
        bands: Sequence[str] | None = None,
        mtf: PerBand | None = None,
        sigma: PerBand | None = None,
        *,
        noise_std: PerBand | None = None,
        padding: str = "reflect",
    ) -> None:
        super().__init__()
        self.ratio = _check_ratio(ratio)
        self.padding = _check_padding(padding)
        sig = _resolve_sigmas(None, self.ratio, bands, mtf, sigma).detach()
        self.channels = None if sig.numel() == 1 and bands is None else sig.numel()
        self.register_buffer("sigma", sig.clone())
        self.register_buffer("kernels", _band_kernels(sig, self.ratio, None))
        self.register_buffer("noise_std", None if noise_std is None else _noise_std(noise_std, self.channels))

    def forward(self, hr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_image(hr, "hr")
        _check_multiple(hr, self.ratio, "hr")
        c = hr.shape[1]
        if self.kernels.shape[0] not in (1, c):
            raise ValueError(
                f"this Degradation has {self.kernels.shape[0]} band kernels but hr has {c} bands (C)"
            )
        if self.noise_std is not None and self.noise_std.numel() not in (1, c):
            raise ValueError(f"noise_std has {self.noise_std.numel()} values but hr has {c} bands (C)")
        return _degrade_with_kernels(hr, self.kernels, self.ratio, self.padding, self.noise_std, generator)

    def extra_repr(self) -> str:
        c, k = self.kernels.shape
        return f"ratio={self.ratio}, bands={c}, kernel_size={k}, padding={self.padding!r}"


# --------------------------------------------------------------------------- alternative kernels


def area_downsample(x: torch.Tensor, ratio: int) -> torch.Tensor:
    """Mean over each ``ratio x ratio`` HR block (the LR pixel footprint); H, W multiples of ``ratio``."""
    _check_image(x)
    ratio = _check_ratio(ratio)
    _check_multiple(x, ratio)
    return F.avg_pool2d(x, ratio, stride=ratio)


def bicubic_antialias_downsample(x: torch.Tensor, ratio: int) -> torch.Tensor:
    """``F.interpolate(mode="bicubic", antialias=True, align_corners=False)`` by ``1 / ratio``.

    With ``align_corners=False`` LR centre ``i`` maps to HR coordinate ``r*i + (r-1)/2``: same grid
    convention as :func:`degrade`. ``H``, ``W`` must be multiples of ``ratio``.
    """
    _check_image(x)
    ratio = _check_ratio(ratio)
    _check_multiple(x, ratio)
    h, w = x.shape[-2:]
    size = (h // ratio, w // ratio)
    return F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)


def _shift_dim(x: torch.Tensor, dim: int, shift: float, padding: str) -> torch.Tensor:
    n = math.floor(shift)
    f = shift - n
    length = x.shape[dim]
    m = torch.arange(length, device=x.device)
    a = x.index_select(dim, _pad_index(m - n, length, padding))
    if f == 0.0:
        return a
    b = x.index_select(dim, _pad_index(m - n - 1, length, padding))
    return (1.0 - f) * a + f * b


def subpixel_shift(x: torch.Tensor, dy: float, dx: float, padding: str = "reflect") -> torch.Tensor:
    """Translate the content of ``x`` by ``(dy, dx)`` pixels (positive = down/right), linear interpolation.

    ``out[m, n] = x(m - dy, n - dx)`` (separable linear interpolation; samples outside the image follow
    ``padding``). Integer shifts are exact; a constant stays constant; a linear ramp stays exact in the
    interior.
    """
    _check_image(x)
    _check_padding(padding)
    for name, v in (("dy", dy), ("dx", dx)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    return _shift_dim(_shift_dim(x, -2, float(dy), padding), -1, float(dx), padding)


def _uniform(generator: torch.Generator, low: float, high: float, n: int = 1) -> list[float]:
    u = torch.rand(n, generator=generator, dtype=torch.float64, device=generator.device).cpu()
    return [low + (high - low) * float(v) for v in u]


def random_degrade(
    hr: torch.Tensor,
    ratio: int,
    *,
    generator: torch.Generator,
    bands: Sequence[str] | None = None,
    mtf: PerBand | None = None,
    mtf_jitter: float = 0.2,
    kernels: Sequence[str] = KERNELS,
    max_phase: float = 0.5,
    noise_std_range: tuple[float, float] = (0.0, 0.01),
    padding: str = "reflect",
) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Degrade each sample with randomly drawn parameters (training for robustness to unseen degradations).

    Per sample, everything drawn from ``generator`` in this order: the kernel (uniform among
    ``kernels``: ``"gaussian"`` = :func:`degrade` PSF, ``"area"`` = :func:`area_downsample`,
    ``"bicubic_aa"`` = :func:`bicubic_antialias_downsample`); for ``"gaussian"`` the per-band MTF
    ``base * (1 + u)``, ``u ~ U(-mtf_jitter, mtf_jitter)``, clipped to [0.02, 0.98] (base from ``bands``
    or ``mtf``, required when ``"gaussian"`` is in ``kernels``); a sub-pixel phase ``(dy, dx) ~
    U(-max_phase, max_phase)`` LR pixels applied to the HR image by :func:`subpixel_shift` (``ratio * dy``
    HR pixels) before decimation; a noise std ``~ U(noise_std_range)`` (all bands) and the noise.
    Returns ``(lr, params)``: ``params[i]`` is a dict with keys ``kernel``, ``mtf`` (list or None),
    ``sigma`` (list or None), ``phase`` ((dy, dx) LR pixels), ``noise_std``. Same generator state ->
    same output.
    """
    _check_image(hr, "hr")
    ratio = _check_ratio(ratio)
    _check_padding(padding)
    _check_multiple(hr, ratio, "hr")
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if isinstance(kernels, str):
        kernels = (kernels,)
    kernels = tuple(kernels)
    if not kernels or any(k not in KERNELS for k in kernels):
        raise ValueError(f"kernels must be a non-empty subset of {KERNELS}, got {kernels!r}")
    if isinstance(mtf_jitter, bool) or not isinstance(mtf_jitter, (int, float)) or not 0 <= mtf_jitter < 1:
        raise ValueError(f"mtf_jitter (relative) must be in [0, 1), got {mtf_jitter!r}")
    if isinstance(max_phase, bool) or not isinstance(max_phase, (int, float)) or not 0 <= max_phase <= 1:
        raise ValueError(f"max_phase (LR pixels) must be in [0, 1], got {max_phase!r}")
    try:
        lo, hi = (float(v) for v in noise_std_range)
    except (TypeError, ValueError):
        raise ValueError(f"noise_std_range must be a pair (low, high), got {noise_std_range!r}") from None
    if not (0 <= lo <= hi and math.isfinite(hi)):
        raise ValueError(f"noise_std_range must satisfy 0 <= low <= high, got {noise_std_range!r}")
    c = hr.shape[1]
    base: torch.Tensor | None = None
    if "gaussian" in kernels:
        if (bands is None) == (mtf is None):
            raise ValueError(
                "the 'gaussian' kernel needs exactly one of bands= or mtf= (the base MTF per band)"
            )
        if bands is not None:
            names = normalize_band_names((bands,) if isinstance(bands, str) else bands)
            if len(names) != c:
                raise ValueError(
                    f"bands has {len(names)} names ({', '.join(names)}) but hr has {c} bands (C)"
                )
            base = torch.tensor([_band_mtf(b) for b in names], dtype=torch.float64)
        else:
            base = _per_band(mtf, "mtf", c).detach().cpu().expand(c).clone()  # type: ignore[arg-type]
        if not bool(((base > 0) & (base < 1)).all()):
            raise ValueError(
                f"mtf must lie in the open interval (0, 1) for every band, got {base.tolist()!r}"
            )
    outs: list[torch.Tensor] = []
    params: list[dict[str, Any]] = []
    for i in range(hr.shape[0]):
        x = hr[i : i + 1]
        kernel = kernels[int(torch.randint(len(kernels), (1,), generator=generator, device=generator.device))]
        p: dict[str, Any] = {"kernel": kernel, "mtf": None, "sigma": None}
        if kernel == "gaussian":
            assert base is not None
            u = torch.tensor(_uniform(generator, -mtf_jitter, mtf_jitter, c), dtype=torch.float64)
            m = (base * (1.0 + u)).clamp(0.02, 0.98)
            s = mtf_to_sigma(m, ratio)
            p["mtf"], p["sigma"] = m.tolist(), s.tolist()  # type: ignore[union-attr]
        dy, dx = _uniform(generator, -max_phase, max_phase, 2)
        p["phase"] = (dy, dx)
        if dy or dx:
            x = subpixel_shift(x, ratio * dy, ratio * dx, padding)
        if kernel == "gaussian":
            ker = _band_kernels(s.to(x.device), ratio, None)  # type: ignore[union-attr]
            y = _filter(x, ker, ratio, ratio, padding)
        elif kernel == "area":
            y = area_downsample(x, ratio)
        else:
            y = bicubic_antialias_downsample(x, ratio)
        std = _uniform(generator, lo, hi)[0]
        p["noise_std"] = std
        outs.append(_add_noise(y, torch.tensor([std], dtype=torch.float64), generator))
        params.append(p)
    return torch.cat(outs, 0), params


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


# --------------------------------------------------------------------------- Wald protocol


@dataclass(frozen=True)
class WaldPair:
    """A Wald-protocol training pair; iterating yields ``(lr10, lr20, hr10, hr20)`` (4-way unpacking works).

    ``hr10`` ``(N, 4, H, W)`` and ``hr20`` ``(N, 6, H/2, W/2)`` are the (cropped) originals; ``lr10``
    ``(N, 4, H/f, W/f)`` and ``lr20`` ``(N, 6, H/(2f), W/(2f))`` their degradations by ``factor`` f.
    ``crop`` = ``(H, W)``: the kept top-left window of the input 10 m grid (rows/cols ``0:H``, ``0:W``;
    20 m grid ``0:H/2``, ``0:W/2``), so the geo-referencing origin is unchanged.
    """

    lr10: torch.Tensor
    lr20: torch.Tensor
    hr10: torch.Tensor
    hr20: torch.Tensor
    crop: tuple[int, int]
    factor: int = 2

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.lr10, self.lr20, self.hr10, self.hr20))

    @property
    def model_input(self) -> torch.Tensor:
        """:func:`model_input_10band` of the degraded bands: ``(N, 10, H/f, W/f)`` (degraded 10 m grid)."""
        return model_input_10band(self.lr10, self.lr20)


def wald_crop_size(height: int, width: int, factor: int = 2) -> tuple[int, int]:
    """Largest ``(H, W)`` <= ``(height, width)`` that are multiples of ``2 * factor`` (10 m grid)."""
    factor = _check_ratio(factor)
    q = 2 * factor
    h, w = height - height % q, width - width % q
    if h == 0 or w == 0:
        raise ValueError(
            f"10 m grid {height}x{width} is smaller than 2*factor = {q} pixels: nothing left after cropping"
        )
    return h, w


def wald_pairs(
    bands10: torch.Tensor,
    bands20: torch.Tensor,
    factor: int = 2,
    *,
    bands10_names: Sequence[str] = BANDS_10M,
    bands20_names: Sequence[str] = BANDS_20M,
    degrade_fn: Callable[..., torch.Tensor] | None = None,
) -> WaldPair:
    """Wald-protocol pair from a real scene: degrade every band by ``factor``, keep the originals as targets.

    ``bands10`` ``(N, C10, H, W)`` (10 m bands, ``bands10_names`` order) and ``bands20``
    ``(N, C20, H/2, W/2)`` on nested grids (``bands20`` exactly half the size). Both are first cropped
    to the top-left window whose 10 m size is the largest multiple of ``2 * factor``
    (:func:`wald_crop_size`; ``WaldPair.crop``), so the 20 m grid divides by ``factor`` too and the
    geo-referencing origin is unchanged. Then ``hr10``/``hr20`` are the crops,
    ``lr10 = degrade_fn(hr10, factor, bands=bands10_names)`` (20 m for factor 2) and
    ``lr20 = degrade_fn(hr20, factor, bands=bands20_names)`` (40 m). ``degrade_fn`` defaults to
    :func:`degrade`: each band's own MTF at the new Nyquist frequency (the usual Wald assumption of
    scale invariance). Inputs/targets of the 10-band model: :func:`model_input_10band`.
    """
    _check_image(bands10, "bands10")
    _check_image(bands20, "bands20")
    factor = _check_ratio(factor)
    n10, n20 = normalize_band_names(bands10_names), normalize_band_names(bands20_names)
    if bands10.shape[1] != len(n10):
        raise ValueError(
            f"bands10 has {bands10.shape[1]} bands but bands10_names has {len(n10)}: {', '.join(n10)}"
        )
    if bands20.shape[1] != len(n20):
        raise ValueError(
            f"bands20 has {bands20.shape[1]} bands but bands20_names has {len(n20)}: {', '.join(n20)}"
        )
    if bands10.shape[0] != bands20.shape[0]:
        raise ValueError(
            f"batch sizes differ: bands10 has N={bands10.shape[0]}, bands20 has N={bands20.shape[0]}"
        )
    h, w = bands10.shape[-2:]
    if tuple(bands20.shape[-2:]) != (h // 2, w // 2) or h % 2 or w % 2:
        raise ValueError(
            f"the 20 m grid {tuple(bands20.shape[-2:])} does not nest in the 10 m grid {(h, w)}: "
            "expected exactly half the 10 m size"
        )
    hc, wc = wald_crop_size(h, w, factor)
    hr10 = bands10[:, :, :hc, :wc]
    hr20 = bands20[:, :, : hc // 2, : wc // 2]
    fn = degrade if degrade_fn is None else degrade_fn
    lr10 = fn(hr10, factor, bands=n10)
    lr20 = fn(hr20, factor, bands=n20)
    return WaldPair(lr10=lr10, lr20=lr20, hr10=hr10, hr20=hr20, crop=(hc, wc), factor=factor)


def _check_nested(b10: torch.Tensor, b20: torch.Tensor) -> None:
    _check_image(b10, "b10")
    _check_image(b20, "b20")
    if b10.shape[0] != b20.shape[0]:
        raise ValueError(f"batch sizes differ: b10 has N={b10.shape[0]}, b20 has N={b20.shape[0]}")
    h, w = b10.shape[-2:]
    if (2 * b20.shape[-2], 2 * b20.shape[-1]) != (h, w):
        raise ValueError(f"b20 grid {tuple(b20.shape[-2:])} must be exactly half of the b10 grid {(h, w)}")


def model_input_10band(b10: torch.Tensor, b20: torch.Tensor) -> torch.Tensor:
    """Input of the 10-band x2 model: ``cat(b10, nearest_x2(b20))``, ``(N, C10 + C20, H, W)`` on the b10 grid.

    ``b10`` ``(N, 4, H, W)`` in ``BANDS_10M`` order and ``b20`` ``(N, 6, H/2, W/2)`` in ``BANDS_20M``
    order give ``MODEL_BANDS_10`` order. The 20 m bands are replicated into 2 x 2 blocks, exactly what an
    openEO back-end (``load_collection`` / ``resample_spatial(method="near")``) and
    :meth:`sr_core.io.Scene.to_dataarray` deliver: the project's model input contract
    (docs/decisions/2026-11-22-model-input-contract.md). The outer bounds of the two grids are identical.

    Wald pair for this model (factor 2): input ``model_input_10band(lr10, lr20)`` on the degraded 10 m-band
    grid (20 m spacing; 10 m bands at 20 m resolution, 20 m bands at 40 m resolution); the model outputs on
    the 10 m grid. Targets per band group:

    * 10 m bands: ``hr10`` on the output grid, exact.
    * 20 m bands: their x2 target (40 m -> 20 m resolution) is ``hr20`` itself, on the model's *input* grid.
      The output's 20 m bands are mapped back onto that grid with :func:`degrade` by 2 (the sensor's own
      operator) and compared with ``hr20`` (used by the training losses and the Wald evaluation).
    """
    _check_nested(b10, b20)
    return torch.cat([b10, b20.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)], dim=1)
