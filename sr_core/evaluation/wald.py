"""Reduced-resolution (Wald) evaluation of a model on whole scenes: per band, SR and bicubic against the originals."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from sr_core.bands import BANDS_10M, BANDS_20M, mtf
from sr_core.datasets.patches import SceneTensors, WaldBatch, crop_window, wald_scene_input
from sr_core.degradation import (
    bicubic_antialias_downsample,
    blur,
    degrade,
    gaussian_box_degrade,
    lanczos_downsample,
    mtf_to_sigma,
    shifted_degrade,
)
from sr_core.metrics import psnr

__all__ = ["DEGRADATIONS", "NOISE_SEED", "NOISE_STDS", "SHIFT_20M", "summarize", "wald_evaluate"]


def _mtf_gaussian(hr: torch.Tensor, ratio: int, bands: Sequence[str]) -> torch.Tensor:
    return degrade(hr, ratio, bands=list(bands))


def _mtf_then_bicubic_aa(hr: torch.Tensor, ratio: int, bands: Sequence[str]) -> torch.Tensor:
    """A second, different operator: the MTF Gaussian at half strength followed by a bicubic anti-aliased resize.

    The blur is zero-phase (odd kernel, ``blur(..., ratio=1)``): the decimation alone sets the sampling
    phase (block centres, like :func:`~sr_core.degradation.degrade`), so the two operators differ in their
    kernels and not by a systematic sub-pixel shift.
    """
    sig = [0.5 * float(mtf_to_sigma(mtf(b), ratio)) for b in bands]
    return bicubic_antialias_downsample(blur(hr, sig, 1), ratio)


#: Misregistration of the 20 m group against the 10 m group in ``mtf_shift20``: (dy, dx) in pixels of the degraded
#: 20 m-band grid (the Wald input), positive = down/right; 0.25 px along each axis, Sentinel-2's inter-band
#: registration error at the scale of the simulation.
SHIFT_20M = (0.25, 0.25)
#: Noise levels (reflectance std, white Gaussian on the degraded bands) of ``mtf_noise002`` / ``mtf_noise005``.
NOISE_STDS = {"mtf_noise002": 0.002, "mtf_noise005": 0.005}
#: Base seed of their noise; each band group draws from ``NOISE_SEED + crc32(band names)`` (same noise every run).
NOISE_SEED = 20261206


def _mtf_box(hr: torch.Tensor, ratio: int, bands: Sequence[str]) -> torch.Tensor:
    """A Gaussian chosen so that, times the pixel box, it has the band's MTF at Nyquist; then the block mean."""
    return gaussian_box_degrade(hr, ratio, bands=list(bands))


def _mtf_then_lanczos3(hr: torch.Tensor, ratio: int, bands: Sequence[str]) -> torch.Tensor:
    """A kernel with negative lobes: the MTF Gaussian at half strength (zero-phase), then a Lanczos-3 resize."""
    sig = [0.5 * float(mtf_to_sigma(mtf(b), ratio)) for b in bands]
    return lanczos_downsample(blur(hr, sig, 1), ratio, 3)


def _mtf_shift20(hr: torch.Tensor, ratio: int, bands: Sequence[str]) -> torch.Tensor:
    """The training operator, the 20 m bands moved by :data:`SHIFT_20M` against the 10 m bands."""
    if set(bands) <= set(BANDS_20M):
        return shifted_degrade(hr, ratio, SHIFT_20M, bands=list(bands))
    return degrade(hr, ratio, bands=list(bands))


def _noise_seed(bands: Sequence[str]) -> int:
    return NOISE_SEED + zlib.crc32(",".join(bands).encode())


def _mtf_noise(std: float) -> Callable[[torch.Tensor, int, Sequence[str]], torch.Tensor]:
    def op(hr: torch.Tensor, ratio: int, bands: Sequence[str]) -> torch.Tensor:
        gen = torch.Generator().manual_seed(_noise_seed(bands))
        return degrade(hr, ratio, bands=list(bands), noise_std=std, generator=gen)

    op.__doc__ = f"The training operator plus white Gaussian noise of std {std} reflectance (seeded per band group)."
    return op


#: Named degradation operators for the evaluation: the training operator (``mtf_gaussian``) and operators the
#: models never saw (docs/decisions/2026-12-06-evaluation-operator-family.md).
DEGRADATIONS: dict[str, Callable[[torch.Tensor, int, Sequence[str]], torch.Tensor]] = {
    "mtf_gaussian": _mtf_gaussian,
    "mtf_bicubic_aa": _mtf_then_bicubic_aa,
    "mtf_box": _mtf_box,
    "mtf_lanczos3": _mtf_then_lanczos3,
    "mtf_shift20": _mtf_shift20,
    **{name: _mtf_noise(std) for name, std in NOISE_STDS.items()},
}


def _psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> np.ndarray:
    return np.asarray(psnr(a.double(), b.double(), data_range=data_range)).reshape(-1)


def sr_for_batch(model_fn: Callable[[torch.Tensor], torch.Tensor], batch: WaldBatch, margin: int = 0) -> torch.Tensor:
    """Run ``model_fn`` on a Wald input with edge-replicated margin (the project's border rule)."""
    x = batch.lr
    if margin:
        x = F.pad(x, (margin,) * 4, mode="replicate")
    with torch.no_grad():
        sr = model_fn(x)
    if margin:
        s = sr.shape[-1] // x.shape[-1]
        sr = sr[..., s * margin : sr.shape[-2] - s * margin, s * margin : sr.shape[-1] - s * margin]
    return sr


def wald_evaluate(
    model_fn: Callable[[torch.Tensor], torch.Tensor],
    scenes: Sequence[SceneTensors],
    *,
    degradations: Sequence[str] = ("mtf_gaussian",),
    margin: int = 0,
    crop: int | None = None,
    border: int = 4,
    task: str = "x2_10band",
) -> list[dict]:
    """Per scene, per degradation, per band: PSNR of SR and of bicubic against the original, and the gain.

    10 m bands are scored on the output grid (x2 of the input). 20 m bands are scored on the input grid: the SR
    output of those bands is mapped back with the MTF degradation by 2 (the sensor's own operator), bicubic is the
    x2 interpolation of the 40 m input. A scale-1 model (task ``"sharpen_20m"``) outputs the 20 m bands on that
    grid already: only they are scored, directly. ``border`` pixels (of each scored grid) are left out of the score.
    """
    rows: list[dict] = []
    for scene in scenes:
        if crop is not None:
            y0, y1, x0, x1 = crop_window(*scene.shape10, crop)
            scene = SceneTensors(scene.id, scene.level, scene.hr10[:, y0:y1, x0:x1],
                                 scene.hr20[:, y0 // 2 : y1 // 2, x0 // 2 : x1 // 2])
        for dname in degradations:
            fn = DEGRADATIONS[dname]
            batch = wald_scene_input(scene, degrade_fn=fn, task=task)
            sr = sr_for_batch(model_fn, batch, margin)
            if batch.hr20 is None:  # tasks x2_rgbn / x4_rgbn
                r = batch.hr10.shape[-1] // batch.lr10.shape[-1]
                b10 = F.interpolate(batch.lr10, scale_factor=r, mode="bicubic", align_corners=False)
                c4 = (..., slice(r * border, -r * border), slice(r * border, -r * border))
                groups = [(BANDS_10M, _psnr(sr[c4], batch.hr10[c4]), _psnr(b10[c4], batch.hr10[c4]))]
            else:
                b20 = F.interpolate(batch.lr40, scale_factor=2, mode="bicubic", align_corners=False)
                crop1 = (..., slice(border, -border), slice(border, -border))
                if sr.shape[-1] == batch.hr20.shape[-1]:  # task sharpen_20m: the 20 m bands on their truth grid
                    groups = [(BANDS_20M, _psnr(sr[:, 4:][crop1], batch.hr20[crop1]),
                               _psnr(b20[crop1], batch.hr20[crop1]))]
                else:
                    b10 = F.interpolate(batch.lr10, scale_factor=2, mode="bicubic", align_corners=False)
                    sr20 = degrade(sr[:, 4:], 2, bands=list(BANDS_20M))
                    crop2 = (..., slice(2 * border, -2 * border), slice(2 * border, -2 * border))
                    groups = [
                        (BANDS_10M, _psnr(sr[:, :4][crop2], batch.hr10[crop2]), _psnr(b10[crop2], batch.hr10[crop2])),
                        (BANDS_20M, _psnr(sr20[crop1], batch.hr20[crop1]), _psnr(b20[crop1], batch.hr20[crop1])),
                    ]
            for names, psr, pbi in groups:
                for k, b in enumerate(names):
                    rows.append({
                        "scene": scene.id, "level": scene.level, "degradation": dname, "band": b,
                        "psnr_sr": float(psr[k]), "psnr_bicubic": float(pbi[k]), "gain_db": float(psr[k] - pbi[k]),
                    })
    return rows


def summarize(rows: Sequence[dict]) -> dict:
    """Mean / min gain per band group and degradation."""
    out: dict = {}
    for dname in sorted({r["degradation"] for r in rows}):
        for group, names in (("10m", BANDS_10M), ("20m", BANDS_20M)):
            g = [r["gain_db"] for r in rows if r["degradation"] == dname and r["band"] in names]
            if g:
                out[f"{dname}/{group}/mean_gain_db"] = float(np.mean(g))
                out[f"{dname}/{group}/min_gain_db"] = float(np.min(g))
    return out
