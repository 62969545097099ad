"""Image-quality metrics for Sentinel-2 super-resolution, computed in float64.

Modules, by family (every public name is re-exported here: ``from sr_core.metrics import psnr``):

* :mod:`~sr_core.metrics.fidelity`: MSE / MAE / RMSE, PSNR, SSIM, the PROBA-V clear metrics (cMSE, cPSNR,
  cSSIM), SAM, ERGAS;
* :mod:`~sr_core.metrics.consistency`: consistency with the low-resolution input (reflectance, spectral);
* :mod:`~sr_core.metrics.spatial`: sub-pixel shift by phase correlation, radially averaged power spectrum;
* :mod:`~sr_core.metrics.correctness`: improvement / omission / hallucination (opensr-test);
* :mod:`~sr_core.metrics.segmentation`: Dice, IoU, precision, recall, instance matching and F1 of masks;
* :mod:`~sr_core.metrics.averaging`: averages of per-band results over bands or images.

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

from sr_core.metrics.averaging import band_mean, image_mean
from sr_core.metrics.consistency import reflectance_consistency, spectral_consistency
from sr_core.metrics.correctness import (
    EXCLUDED,
    HALLUCINATION,
    IMPROVEMENT,
    OMISSION,
    CorrectnessFractions,
    correctness_classes,
    hallucination_omission_improvement,
)
from sr_core.metrics.fidelity import (
    cmse,
    cpsnr,
    cssim,
    ergas,
    mae,
    mse,
    psnr,
    rmse,
    sam,
    sam_map,
    ssim,
    ssim_map,
)
from sr_core.metrics.segmentation import dice, instance_f1, instance_matches, iou, precision, recall
from sr_core.metrics.spatial import phase_correlation_shift, radial_power_spectrum, spatial_misalignment

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
