"""The MTF-matched Gaussian PSF, padding, blur, decimation, noise and :func:`degrade` (see :mod:`sr_core.degradation`)."""

from __future__ import annotations

import math
from typing import Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from sr_core.bands import mtf as _band_mtf
from sr_core.bands import normalize_band_names

__all__ = ["PADDING_MODES", "KERNELS", "mtf_to_sigma", "sigma_to_mtf", "default_psf_size", "gaussian_psf_1d", "gaussian_psf", "pad", "blur", "decimate", "degrade", "Degradation"]

PADDING_MODES = ("reflect", "replicate", "circular")
#: Decimation kernels known to :func:`random_degrade`.
KERNELS = ("gaussian", "area", "bicubic_aa", "gaussian_box", "lanczos")

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
