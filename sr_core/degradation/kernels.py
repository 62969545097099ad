"""Other decimation kernels (area, bicubic-antialias), sub-pixel shifts and randomised training degradations."""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from sr_core.bands import mtf as _band_mtf
from sr_core.bands import normalize_band_names
from sr_core.degradation.psf import (
    KERNELS,
    PerBand,
    _add_noise,
    _band_kernels,
    _check_image,
    _check_multiple,
    _check_padding,
    _check_ratio,
    _filter,
    _pad_index,
    _per_band,
    blur,
    mtf_to_sigma,
)
from sr_core.degradation.operators import _centre_pad, _gaussian_box_kernel_1d, gaussian_box_sigma, lanczos_kernel_1d

__all__ = ["area_downsample", "bicubic_antialias_downsample", "subpixel_shift", "random_degrade"]

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
    ``"bicubic_aa"`` = :func:`bicubic_antialias_downsample`, ``"gaussian_box"`` = a Gaussian times the pixel
    box with the drawn MTF (:func:`~sr_core.degradation.operators.gaussian_box_degrade`, MTF capped at 0.65),
    ``"lanczos"`` = a zero-phase Gaussian of ``f`` times the drawn MTF's sigma, ``f ~ U(0.3, 0.7)``, then a
    Lanczos-``a`` resize, ``a`` 2 or 3 (negative lobes, :func:`~sr_core.degradation.operators.lanczos_downsample`));
    for every kernel but ``"area"`` and ``"bicubic_aa"`` the per-band MTF
    ``base * (1 + u)``, ``u ~ U(-mtf_jitter, mtf_jitter)``, clipped to [0.02, 0.98] (base from ``bands``
    or ``mtf``, required for those kernels), then for ``"lanczos"`` ``f`` and ``a``; a sub-pixel phase ``(dy, dx) ~
    U(-max_phase, max_phase)`` LR pixels applied to the HR image by :func:`subpixel_shift` (``ratio * dy``
    HR pixels) before decimation; a noise std ``~ U(noise_std_range)`` (all bands) and the noise.
    Returns ``(lr, params)``: ``params[i]`` is a dict with keys ``kernel``, ``mtf`` (list or None),
    ``sigma`` (list or None: the Gaussian's std in HR pixels, before the box / the Lanczos resize),
    ``phase`` ((dy, dx) LR pixels), ``noise_std``, and for ``"lanczos"`` ``lobes`` (``a``). Same generator state ->
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
    mtf_kernels = sorted(set(kernels) & {"gaussian", "gaussian_box", "lanczos"})
    if mtf_kernels:
        if (bands is None) == (mtf is None):
            raise ValueError(
                f"the kernels {mtf_kernels} need exactly one of bands= or mtf= (the base MTF per band)"
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
        if kernel in ("gaussian", "gaussian_box", "lanczos"):
            assert base is not None
            u = torch.tensor(_uniform(generator, -mtf_jitter, mtf_jitter, c), dtype=torch.float64)
            m = (base * (1.0 + u)).clamp(0.02, 0.98)
            if kernel == "gaussian_box":
                m = m.clamp(max=0.65)
                s = torch.tensor([gaussian_box_sigma(float(v), ratio) for v in m], dtype=torch.float64)
            else:
                s = mtf_to_sigma(m, ratio)
            if kernel == "lanczos":
                s = s * _uniform(generator, 0.3, 0.7)[0]
                p["lobes"] = 2 + int(torch.randint(2, (1,), generator=generator, device=generator.device))
            p["mtf"], p["sigma"] = m.tolist(), s.tolist()  # type: ignore[union-attr]
        dy, dx = _uniform(generator, -max_phase, max_phase, 2)
        p["phase"] = (dy, dx)
        if dy or dx:
            x = subpixel_shift(x, ratio * dy, ratio * dx, padding)
        if kernel == "gaussian":
            ker = _band_kernels(s.to(x.device), ratio, None)  # type: ignore[union-attr]
            y = _filter(x, ker, ratio, ratio, padding)
        elif kernel == "gaussian_box":
            ker = _centre_pad([_gaussian_box_kernel_1d(float(v), ratio) for v in s]).to(x.device)
            y = _filter(x, ker, ratio, ratio, padding)
        elif kernel == "lanczos":
            xb = blur(x, [float(v) for v in s], 1, padding)
            y = _filter(xb, lanczos_kernel_1d(ratio, p["lobes"])[None].to(x.device), ratio, ratio, padding)
        elif kernel == "area":
            y = area_downsample(x, ratio)
        else:
            y = bicubic_antialias_downsample(x, ratio)
        std = _uniform(generator, lo, hi)[0]
        p["noise_std"] = std
        outs.append(_add_noise(y, torch.tensor([std], dtype=torch.float64), generator))
        params.append(p)
    return torch.cat(outs, 0), params
