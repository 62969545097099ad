"""Quality evaluation of a 10-band x2 model package: reduced-resolution (Wald) and full-resolution checks.

:func:`evaluate_model` runs a model (a package name/folder, or a :class:`~sr_core.models.Predictor`) on whole
scenes with seamless tiled inference (edge replication, tiling margin = the card's margin) and returns a
JSON-ready dict; :func:`render_markdown` turns it into a Markdown report, :func:`run_evaluation` writes
``quality_<model>.json`` / ``.md`` and the figures (``s2sr evaluate``, ``benchmarks/quality.py``).

Model contract (docs/decisions/2026-11-22-model-input-contract.md): reflectance, the 10 bands of
``MODEL_BANDS_10`` on one grid with the 20 m bands nearest-replicated (2 x 2 blocks), output the same 10 bands
at x2. All metrics are computed in float64 on reflectance (``data_range = 1``).

Reduced resolution (Wald protocol), per scene, per degradation operator (``DEGRADATIONS`` of
:mod:`sr_core.evaluation.wald`: ``mtf_gaussian`` = the training operator, ``mtf_bicubic_aa`` = a different blur
and decimation the model never saw), per band:

* input: the 10 m bands degraded by 2 (to 20 m) and the 20 m bands degraded by 2 (to 40 m) and replicated;
* 10 m bands are scored against the originals on the 10 m grid; 20 m bands on the 20 m grid after mapping the
  SR output back with the MTF degradation by 2 (the sensor's operator, as in training);
* ``psnr_sr``, ``ssim_sr``; ``psnr_bicubic``/``ssim_bicubic``: bicubic x2 of the *same model input* scored
  through the same pipeline (an untrained residual-over-bicubic network scores exactly this: gain 0 dB);
  ``gain_db = psnr_sr - psnr_bicubic``. ``psnr_bicubic_native``/``gain_db_native``: the baseline of
  :func:`sr_core.evaluation.wald.wald_evaluate` (20 m bands: bicubic x2 of the 40 m data straight onto the
  20 m grid; a stronger baseline than the replicated-input pipeline); equal to the above for 10 m bands;
* per band group (10 m on the 10 m grid, 20 m on the 20 m grid): SAM (degrees) and ERGAS (ratio 2).

Full resolution, on the real (not degraded) input at 10 m, SR at 5 m, per band:

* reflectance consistency: mean ``|degrade(sr, r) - native|`` with the band's MTF Gaussian, ``r = 2`` for the
  10 m bands (5 m -> 10 m) and ``r = 4`` for the 20 m bands (5 m -> 20 m, against the native 20 m data), the
  same for bicubic x2 of the input as a reference;
* spectral consistency per group: mean spectral angle between ``degrade(sr)`` and the native bands;
* spatial shift: phase correlation (:func:`sr_core.metrics.phase_correlation_shift`, Hann window) of
  ``degrade(sr)`` against the native band, ``dy``/``dx`` (positive = SR content further down/right) in pixels
  of the 10 m input grid (20 m bands: measured on the 20 m grid, times 2);
* power spectrum: radially averaged power (:func:`sr_core.metrics.radial_power_spectrum`, mean removed) of
  SR and of bicubic on the 5 m grid; ``hf_ratio`` = SR / bicubic power summed over the frequencies above
  ``hf_cutoff`` (default 0.25 cycles per 5 m pixel = the Nyquist frequency of the 10 m input).

Borders and nodata: ``border`` 10 m pixels (scaled to every grid: ``border / 2`` on 20 m grids, ``2 border`` on
the 5 m grid) are left out of every score. A 10 m pixel is nodata when any band is non-finite or all bands are 0;
nodata is filled with 0 for inference and every scored pixel within ``nodata_radius(margin)`` 10 m pixels of it is
left out (masks for the pixel metrics; the Fourier metrics fill it with the band mean of the valid pixels).
Bands without any valid pixel give NaN (``null`` in JSON).
"""

from __future__ import annotations

import importlib
from typing import Any

#: The training operator and an unseen second blur + decimation (robustness check).
DEFAULT_DEGRADATIONS = ("mtf_gaussian", "mtf_bicubic_aa")

# Public names and their submodules, imported on first use (``s2sr --help`` must not import torch).
_LAZY = {
    "evaluate_model": "core",
    "run_evaluation": "core",
    "parse_scene_spec": "core",
    "nodata_radius": "core",
    "render_markdown": "report",
    "write_report": "report",
    "plot_triptych": "figures",
    "plot_power_spectra": "figures",
    "plot_histograms": "figures",
}

__all__ = [  # noqa: RUF022 - grouped by submodule
    "DEFAULT_DEGRADATIONS",
    "evaluate_model",
    "run_evaluation",
    "parse_scene_spec",
    "nodata_radius",
    "render_markdown",
    "write_report",
    "plot_triptych",
    "plot_power_spectra",
    "plot_histograms",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
