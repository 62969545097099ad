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

from sr_core.degradation.kernels import (
    area_downsample,
    bicubic_antialias_downsample,
    random_degrade,
    subpixel_shift,
)
from sr_core.degradation.operators import (
    gaussian_box_degrade,
    gaussian_box_sigma,
    kernel_mtf,
    lanczos_downsample,
    lanczos_kernel_1d,
    physical_step,
    physical_step_sigma,
    shifted_degrade,
)
from sr_core.degradation.psf import (
    KERNELS,
    PADDING_MODES,
    Degradation,
    blur,
    decimate,
    default_psf_size,
    degrade,
    gaussian_psf,
    gaussian_psf_1d,
    mtf_to_sigma,
    pad,
    sigma_to_mtf,
)
from sr_core.degradation.wald import WaldPair, model_input_10band, wald_crop_size, wald_pairs

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
