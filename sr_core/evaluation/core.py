"""Quality evaluation of a 10-band x2 model package on whole scenes: reduced-resolution (Wald) and
full-resolution checks.

:func:`evaluate_model` runs a model (a package name/folder, or a :class:`~sr_core.models.Predictor`) on whole
scenes with seamless tiled inference (edge replication, tiling margin = the card's margin) and returns a
JSON-ready dict; :func:`~sr_core.evaluation.report.render_markdown` turns it into a Markdown report;
:func:`run_evaluation` writes ``quality_<model>.json`` / ``.md`` and the figures (``s2sr evaluate``,
``benchmarks/quality.py``).

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

import datetime as _dt
import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import sr_core
from sr_core.archs._common import bicubic_upsample
from sr_core.bands import BANDS_10M, BANDS_20M, MODEL_BANDS_10
from sr_core.checks import check_int
from sr_core.datasets.patches import SceneTensors, crop_window, load_scene_tensors, parse_scene_spec, wald_scene_input
from sr_core.degradation import degrade, model_input_10band
from sr_core.evaluation import DEFAULT_DEGRADATIONS
from sr_core.evaluation.common import crop_border, predict_tiled
from sr_core.evaluation.figures import plot_histograms, plot_power_spectra, plot_triptych
from sr_core.evaluation.report import _GROUPS, _nanmax, _nanmean, _nanmin, _slug, write_report
from sr_core.evaluation.wald import DEGRADATIONS
from sr_core.io import Scene
from sr_core.metrics import (
    ergas,
    phase_correlation_shift,
    psnr,
    radial_power_spectrum,
    reflectance_consistency,
    sam,
    spectral_consistency,
    ssim,
)
from sr_core.models import load_predictor

__all__ = ["evaluate_model", "nodata_radius", "run_evaluation"]


# ------------------------------------------------------------------------------------------------- scenes


def _load_scene(item: Any, root: str | Path | None) -> SceneTensors:
    if isinstance(item, SceneTensors):
        h10, h20 = item.hr10, item.hr20
        if (
            h10.ndim != 3
            or h10.shape[0] != 4
            or h20.ndim != 3
            or h20.shape[0] != 6
            or (2 * h20.shape[1], 2 * h20.shape[2]) != tuple(h10.shape[1:])
        ):
            raise ValueError(
                f"scene {item.id}: needs hr10 (4, H, W) and hr20 (6, H/2, W/2), got {tuple(h10.shape)} and "
                f"{tuple(h20.shape)}"
            )
        return SceneTensors(item.id, item.level, h10.float(), h20.float())
    if isinstance(item, Scene):
        h, w = item.shape
        h, w = h - h % 4, w - w % 4
        return SceneTensors(
            item.id,
            str(item.product_level),
            torch.from_numpy(np.ascontiguousarray(item.bands10[:, :h, :w], dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(item.bands20[:, : h // 2, : w // 2], dtype=np.float32)),
        )
    spec = parse_scene_spec(item)
    if root is None:
        raise ValueError(f"scene {item!r}: give root= (the folder holding the scene folders)")
    if not Path(root).is_dir():
        raise FileNotFoundError(f"scene root {root} is not a folder")
    return load_scene_tensors(root, spec)


def _crop_scene(s: SceneTensors, crop: int | None) -> SceneTensors:
    """Central crop to at most ``crop`` 10 m pixels per side, multiples of 4 (as ``wald_evaluate``)."""
    h, w = s.hr10.shape[-2:]
    y0, y1, x0, x1 = crop_window(h, w, crop)
    ch, cw = y1 - y0, x1 - x0
    if ch < 16 or cw < 16:
        raise ValueError(f"scene {s.id}: {h}x{w} px (crop={crop}) leaves less than 16 x 16 px to evaluate")
    if (ch, cw, y0, x0) == (h, w, 0, 0):
        return s
    sid = s.id if crop is None else f"{s.id}(crop{crop})"
    return SceneTensors(
        sid,
        s.level,
        s.hr10[:, y0 : y0 + ch, x0 : x0 + cw].contiguous(),
        s.hr20[:, y0 // 2 : (y0 + ch) // 2, x0 // 2 : (x0 + cw) // 2].contiguous(),
    )


def _check_run(
    engine: str, scenes: Sequence[Any], degradations: Sequence[str], crop: int | None, border: int, tile: int
) -> tuple[tuple[str, ...], int, int]:
    """The arguments every evaluation run shares, checked: returns ``(degradations, border, tile)``."""
    if engine not in ("onnx", "torch"):
        raise ValueError(f"engine must be 'onnx' or 'torch', got {engine!r}")
    if isinstance(scenes, (str, bytes)) or not isinstance(scenes, Sequence) or len(scenes) == 0:
        raise ValueError(f"scenes must be a non-empty sequence of scenes, got {scenes!r}")
    degradations = tuple(degradations)
    unknown = [d for d in degradations if d not in DEGRADATIONS]
    if unknown:
        raise ValueError(f"degradations: unknown {unknown}; choose from {sorted(DEGRADATIONS)}")
    if crop is not None:
        check_int("crop", crop, 16)
    border = check_int("border", border, 0)
    if border % 2:
        raise ValueError(f"border must be even (10 m pixels; half of it on the 20 m grids), got {border}")
    return degradations, border, check_int("tile", tile, 8)


def _scored_scene(item: Any, root: str | Path | None, *, crop: int | None, border: int) -> SceneTensors:
    """A scene loaded and cropped for scoring; refused when it is too small for ``border`` (at least
    ``2 * border + 32`` px per side at 10 m)."""
    scene = _crop_scene(_load_scene(item, root), crop)
    if min(scene.hr10.shape[-2:]) < 2 * border + 32:
        raise ValueError(
            f"scene {scene.id}: {tuple(scene.hr10.shape[-2:])} px at 10 m is too small for border={border} "
            f"(needs at least 2 * border + 32 = {2 * border + 32} px per side)"
        )
    return scene


# ------------------------------------------------------------------------------------------------- model


def _resolve_predictor(model: Any, engine: str, threads: int | None, *, ten_m_alone: bool = False,
                       sharpen: bool = False):
    """The Predictor of ``model``: a 10-band x2 model, or (``ten_m_alone``) also an x2 model of the 10 m bands, or
    (``sharpen``) also a 10-band scale-1 model (the 20 m bands sharpened onto the 10 m grid)."""
    if isinstance(model, (str, os.PathLike)):
        pred = load_predictor(model, engine=engine, threads=threads)
    else:
        pred = model
    for attr in ("scale", "margin", "bands", "out_bands"):
        if not hasattr(pred, attr):
            raise ValueError(
                f"model must be a package name/folder or a Predictor-like callable with .{attr}; "
                f"got {type(model).__name__}"
            )
    if not callable(pred):
        raise TypeError(f"model {type(model).__name__} is not callable")
    if ten_m_alone and tuple(pred.bands) == tuple(pred.out_bands) == BANDS_10M and int(pred.scale) == 2:
        return pred
    if sharpen and tuple(pred.bands) == tuple(pred.out_bands) == MODEL_BANDS_10 and int(pred.scale) == 1:
        return pred
    if tuple(pred.bands) != MODEL_BANDS_10 or tuple(pred.out_bands) != MODEL_BANDS_10 or int(pred.scale) != 2:
        raise ValueError(
            f"evaluation needs a 10-band x2 model (bands and out_bands {list(MODEL_BANDS_10)}, scale 2), got bands "
            f"{list(pred.bands)}, out_bands {list(pred.out_bands)}, scale {pred.scale}"
        )
    return pred


def _model_info(pred: Any) -> dict:
    card = getattr(pred, "card", None)
    info = {
        "name": getattr(card, "name", None) or getattr(pred, "name", None) or "model",
        "version": getattr(card, "version", None),
        "arch": getattr(card, "arch", None),
        "arch_kwargs": getattr(card, "arch_kwargs", None),
        "receptive_field": getattr(pred, "receptive_field", None),
        "margin": int(pred.margin),
        "engine": getattr(pred, "engine", None),
        "sha256": dict(getattr(card, "sha256", {}) or {}),
    }
    return info


# ------------------------------------------------------------------------------------------------- masks


def nodata_radius(margin: int) -> int:
    """Radius (10 m pixels) around nodata whose scores are left out: the network's reach on the 20 m Wald input
    (``2 * (margin + 2)``, bicubic base included) plus the widest degradation kernels (32)."""
    return 2 * (check_int("margin", margin, 0) + 2) + 32


def _nodata10(hr10: torch.Tensor, hr20: torch.Tensor) -> torch.Tensor:
    """Nodata on the 10 m grid (H, W): any band non-finite, or every band 0."""
    b20 = hr20.repeat_interleave(2, -2).repeat_interleave(2, -1)
    allb = torch.cat([hr10, b20])
    return ~torch.isfinite(allb).all(0) | (allb == 0).all(0)


def _dilate(bad: torch.Tensor, radius: int) -> torch.Tensor:
    if not bool(bad.any()):
        return bad
    x = bad.to(torch.float32)[None, None]
    return F.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius)[0, 0] > 0


def _valid_on(bad10: torch.Tensor, factor: float, border10: int) -> torch.Tensor:
    """Valid mask (h, w) on a grid of pixel size ``factor`` x 10 m (0.5, 1, 2): not nodata, not in the border."""
    if factor == 1:
        bad = bad10
    elif factor > 1:
        k = int(factor)
        bad = F.max_pool2d(bad10.to(torch.float32)[None, None], k, stride=k)[0, 0] > 0
    else:
        k = round(1 / factor)
        bad = bad10.repeat_interleave(k, 0).repeat_interleave(k, 1)
    b = round(border10 / factor)
    valid = ~bad
    if b:
        valid = valid.clone()
        valid[:b] = False
        valid[-b:] = False
        valid[:, :b] = False
        valid[:, -b:] = False
    return valid


def _fill(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Replace invalid pixels of (N, C, h, w) by the band mean over the valid ones (for the Fourier metrics);
    all zeros when no pixel is valid (the caller reports NaN then)."""
    if bool(valid.all()):
        return x
    if not bool(valid.any()):
        return torch.zeros_like(x)
    v = valid.expand_as(x)
    mean = torch.where(v, x, torch.zeros_like(x)).sum((-2, -1), keepdim=True) / v.sum((-2, -1), keepdim=True)
    return torch.where(v, x, mean)


def _f(v: Any) -> float:
    return float(v)


# ------------------------------------------------------------------------------------------------- Wald


def _wald_scene(pred: Any, scene: SceneTensors, dname: str, *, tile: int, border: int, radius: int):
    if dname not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {dname!r}; choose from {sorted(DEGRADATIONS)}")
    bad10 = _dilate(_nodata10(scene.hr10, scene.hr20), radius)
    batch = wald_scene_input(scene, degrade_fn=DEGRADATIONS[dname])
    x = torch.nan_to_num(batch.lr, nan=0.0, posinf=0.0, neginf=0.0)
    sr = predict_tiled(pred, x, tile).double()
    bic = bicubic_upsample(x.double(), 2)
    nat20 = F.interpolate(
        torch.nan_to_num(batch.lr40.double()), scale_factor=2, mode="bicubic", align_corners=False
    )
    sr20 = degrade(sr[:, 4:], 2, bands=list(BANDS_20M))
    bic20 = degrade(bic[:, 4:], 2, bands=list(BANDS_20M))
    hr10, hr20 = batch.hr10.double(), batch.hr20.double()
    m10 = _valid_on(bad10, 1, border)
    m20 = _valid_on(bad10, 2, border)
    rows, spec_rows = [], []
    for names, s, b, nb, hr, m in (
        (BANDS_10M, sr[:, :4], bic[:, :4], bic[:, :4], hr10, m10),
        (BANDS_20M, sr20, bic20, nat20, hr20, m20),
    ):
        hr_f = torch.where(m.expand_as(hr), hr, torch.zeros_like(hr))
        p_s = psnr(s, hr_f, data_range=1.0, mask=m)[0]
        p_b = psnr(b, hr_f, data_range=1.0, mask=m)[0]
        p_n = psnr(nb, hr_f, data_range=1.0, mask=m)[0]
        s_s = ssim(s, hr_f, data_range=1.0, mask=m)[0]
        s_b = ssim(b, hr_f, data_range=1.0, mask=m)[0]
        for k, band in enumerate(names):
            rows.append(
                {
                    "scene": scene.id,
                    "level": scene.level,
                    "degradation": dname,
                    "band": band,
                    "psnr_sr": _f(p_s[k]),
                    "psnr_bicubic": _f(p_b[k]),
                    "gain_db": _f(p_s[k] - p_b[k]),
                    "psnr_bicubic_native": _f(p_n[k]),
                    "gain_db_native": _f(p_s[k] - p_n[k]),
                    "ssim_sr": _f(s_s[k]),
                    "ssim_bicubic": _f(s_b[k]),
                    "ssim_gain": _f(s_s[k] - s_b[k]),
                }
            )
        group = "10m" if names is BANDS_10M else "20m"
        spec_rows.append(
            {
                "scene": scene.id,
                "level": scene.level,
                "degradation": dname,
                "group": group,
                "sam_sr": _f(sam(s, hr_f, mask=m)[0]),
                "sam_bicubic": _f(sam(b, hr_f, mask=m)[0]),
                "ergas_sr": _f(ergas(s, hr_f, ratio=2, mask=m)[0]),
                "ergas_bicubic": _f(ergas(b, hr_f, ratio=2, mask=m)[0]),
            }
        )
    return rows, spec_rows


# ------------------------------------------------------------------------------------------------- full res


@dataclass
class _FullRes:
    rows: list
    spec_rows: list
    x: torch.Tensor  # (1, 10, H, W) model input
    sr: torch.Tensor  # (1, 10, 2H, 2W)
    bic: torch.Tensor
    freqs: np.ndarray
    p_sr: np.ndarray  # (10, K)
    p_bic: np.ndarray
    p_in: np.ndarray  # (10, K_in) power of the input bands on their native grids
    f_in: list  # per band: frequencies of p_in in cycles per 5 m pixel


def _full_res_scene(
    pred: Any, scene: SceneTensors, *, tile: int, border: int, radius: int, hf_cutoff: float
) -> _FullRes:
    bad10 = _dilate(_nodata10(scene.hr10, scene.hr20), radius)
    hr10, hr20 = scene.hr10[None].double(), scene.hr20[None].double()
    x = torch.nan_to_num(
        model_input_10band(scene.hr10[None], scene.hr20[None]), nan=0.0, posinf=0.0, neginf=0.0
    )
    sr = predict_tiled(pred, x, tile).double()
    bic = bicubic_upsample(x.double(), 2)
    hr10 = torch.nan_to_num(hr10)
    hr20 = torch.nan_to_num(hr20)
    m10 = _valid_on(bad10, 1, border)
    m20 = _valid_on(bad10, 2, border)
    m5 = _valid_on(bad10, 0.5, border)
    rows, spec_rows = [], []
    per_group = {}
    for group, names, ratio, native, m, sl in (
        ("10m", BANDS_10M, 2, hr10, m10, slice(0, 4)),
        ("20m", BANDS_20M, 4, hr20, m20, slice(4, 10)),
    ):
        kw = {"ratio": ratio, "bands": list(names), "mask": m}
        c_sr = reflectance_consistency(sr[:, sl], native, **kw)[0]
        c_bic = reflectance_consistency(bic[:, sl], native, **kw)[0]
        spec_rows.append(
            {
                "scene": scene.id,
                "level": scene.level,
                "group": group,
                "sam_sr": _f(spectral_consistency(sr[:, sl], native, **kw)[0]),
                "sam_bicubic": _f(spectral_consistency(bic[:, sl], native, **kw)[0]),
            }
        )
        b = round(border / (ratio / 2))  # border in pixels of this band group's native grid
        mc = crop_border(m, b)
        d_sr = _fill(crop_border(degrade(sr[:, sl], ratio, bands=list(names)), b), mc)
        d_bic = _fill(crop_border(degrade(bic[:, sl], ratio, bands=list(names)), b), mc)
        nat = _fill(crop_border(native, b), mc)
        px = ratio / 2  # one pixel of this grid in 10 m pixels
        if bool(mc.any()):
            sh_sr = phase_correlation_shift(d_sr, nat)[0] * px
            sh_bic = phase_correlation_shift(d_bic, nat)[0] * px
        else:  # no valid pixel: nodata stays nodata
            sh_sr = sh_bic = torch.full((len(names), 2), float("nan"), dtype=torch.float64)
        per_group[group] = (names, c_sr, c_bic, sh_sr, sh_bic)
    b5 = 2 * border
    mc5 = crop_border(m5, b5)
    freqs, p_sr = radial_power_spectrum(_fill(crop_border(sr, b5), mc5), subtract_mean=True)
    _, p_bic = radial_power_spectrum(_fill(crop_border(bic, b5), mc5), subtract_mean=True)
    hf = freqs > hf_cutoff
    e_sr = p_sr[0][:, hf].sum(-1)
    e_bic = p_bic[0][:, hf].sum(-1)
    if not bool(mc5.any()):  # no valid pixel: nodata stays nodata
        e_sr = e_bic = torch.full_like(e_sr, float("nan"))
    hf_ratio = e_sr / e_bic
    # input spectra on the native grids, for the figures (frequencies converted to cycles per 5 m pixel)
    p_in, f_in = [], []
    for native, m, f, ratio in ((hr10, m10, 1, 2), (hr20, m20, 2, 4)):
        b = round(border / f)
        fr, p = radial_power_spectrum(_fill(crop_border(native, b), crop_border(m, b)), subtract_mean=True)
        for c in range(native.shape[1]):
            p_in.append((p[0, c] * ratio**2).numpy())  # x ratio**2: same content, ratio**2 more pixels
            f_in.append((fr / ratio).numpy())
    k = 0
    for group, (names, c_sr, c_bic, sh_sr, sh_bic) in per_group.items():
        for j, band in enumerate(names):
            rows.append(
                {
                    "scene": scene.id,
                    "level": scene.level,
                    "band": band,
                    "consistency_l1_sr": _f(c_sr[j]),
                    "consistency_l1_bicubic": _f(c_bic[j]),
                    "shift_dy_px": _f(sh_sr[j, 0]),
                    "shift_dx_px": _f(sh_sr[j, 1]),
                    "shift_px": _f(torch.linalg.vector_norm(sh_sr[j])),
                    "shift_px_bicubic": _f(torch.linalg.vector_norm(sh_bic[j])),
                    "hf_energy_sr": _f(e_sr[k]),
                    "hf_energy_bicubic": _f(e_bic[k]),
                    "hf_ratio": _f(hf_ratio[k]),
                }
            )
            k += 1
    return _FullRes(rows, spec_rows, x, sr, bic, freqs.numpy(), p_sr[0].numpy(), p_bic[0].numpy(), p_in, f_in)


# ------------------------------------------------------------------------------------------------- summary


def _summarize(wald: list, wald_spec: list, full: list, full_spec: list) -> dict:
    out: dict = {"wald": {}, "full_resolution": {}}
    for dname in dict.fromkeys(r["degradation"] for r in wald):
        out["wald"][dname] = {}
        for group, names in _GROUPS:
            rs = [r for r in wald if r["degradation"] == dname and r["band"] in names]
            ss = [r for r in wald_spec if r["degradation"] == dname and r["group"] == group]
            out["wald"][dname][group] = {
                "mean_gain_db": _nanmean(r["gain_db"] for r in rs),
                "min_gain_db": _nanmin(r["gain_db"] for r in rs),
                "mean_gain_db_native": _nanmean(r["gain_db_native"] for r in rs),
                "min_gain_db_native": _nanmin(r["gain_db_native"] for r in rs),
                "mean_ssim_sr": _nanmean(r["ssim_sr"] for r in rs),
                "mean_ssim_bicubic": _nanmean(r["ssim_bicubic"] for r in rs),
                "mean_sam_sr": _nanmean(r["sam_sr"] for r in ss),
                "mean_sam_bicubic": _nanmean(r["sam_bicubic"] for r in ss),
                "mean_ergas_sr": _nanmean(r["ergas_sr"] for r in ss),
                "mean_ergas_bicubic": _nanmean(r["ergas_bicubic"] for r in ss),
            }
    for group, names in _GROUPS:
        rs = [r for r in full if r["band"] in names]
        ss = [r for r in full_spec if r["group"] == group]
        if not rs:
            continue
        out["full_resolution"][group] = {
            "mean_consistency_l1_sr": _nanmean(r["consistency_l1_sr"] for r in rs),
            "mean_consistency_l1_bicubic": _nanmean(r["consistency_l1_bicubic"] for r in rs),
            "max_shift_px": _nanmax(r["shift_px"] for r in rs),
            "mean_hf_ratio": _nanmean(r["hf_ratio"] for r in rs),
            "mean_sam_sr": _nanmean(r["sam_sr"] for r in ss),
            "mean_sam_bicubic": _nanmean(r["sam_bicubic"] for r in ss),
        }
    return out


# ------------------------------------------------------------------------------------------------- metadata


def _git_info(start: Path) -> dict:
    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(
                ["git", "--no-optional-locks", *args],
                cwd=start,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def _metadata(runtime_s: float) -> dict:
    versions = {
        "sr_core": sr_core.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    for mod in ("onnxruntime", "scipy", "matplotlib"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - optional packages
            versions[mod] = None
    return {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "git": _git_info(Path(__file__).resolve().parent),
        "versions": versions,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
        },
        "runtime_s": round(runtime_s, 2),
    }


# ------------------------------------------------------------------------------------------------- main API


def evaluate_model(
    model: Any,
    scenes: Sequence[Any],
    *,
    root: str | Path | None = None,
    degradations: Sequence[str] = DEFAULT_DEGRADATIONS,
    engine: str = "onnx",
    crop: int | None = None,
    border: int = 8,
    tile: int = 256,
    threads: int | None = None,
    hf_cutoff: float = 0.25,
    full_resolution: bool = True,
    figures_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Evaluate a 10-band x2 model on whole scenes (every metric: the module docstring).

    ``model``: a package name or folder (loaded with :func:`~sr_core.models.load_predictor` for ``engine``
    ``"onnx"`` or ``"torch"``, ``threads`` ORT/torch threads) or a Predictor-like callable (numpy
    ``(N, 10, h, w)`` float32 reflectance -> ``(N, 10, 2h, 2w)``) with attributes ``scale``, ``margin``,
    ``bands``, ``out_bands`` (and optionally ``card``, ``engine``, ``receptive_field``).
    ``scenes``: ids or ``"ID[y0:y1,x0:x1]"`` / dicts / ``Region`` under ``root``, or loaded
    ``SceneTensors`` / :class:`~sr_core.io.Scene` objects. ``degradations``: names of
    :data:`sr_core.evaluation.wald.DEGRADATIONS` (empty: full-resolution checks only). ``crop``: central crop
    of at most ``crop`` 10 m pixels per side (multiples of 4); ``border``: 10 m pixels left out at each edge
    (even; scenes need ``2 * border + 32`` px per side); ``tile``: LR tile size of the tiled inference;
    ``hf_cutoff``: in cycles per 5 m pixel, in (0, 0.5). ``figures_dir``: write the triptych / power spectra /
    histogram figures of each scene there (paths recorded under ``"figures"``, relative to ``figures_dir``'s
    parent). ``progress(message)`` is called once per scene step.

    Returns a JSON-ready dict: ``model``, ``settings``, ``scenes``, ``wald`` (per scene/degradation/band),
    ``wald_spectral`` (per scene/degradation/group), ``full_resolution`` (per scene/band),
    ``full_resolution_spectral`` (per scene/group), ``summary``, ``figures``, ``metadata``.
    """
    t0 = time.perf_counter()
    degradations, border, tile = _check_run(engine, scenes, degradations, crop, border, tile)
    if isinstance(hf_cutoff, bool) or not isinstance(hf_cutoff, (int, float)) or not 0 < hf_cutoff < 0.5:
        raise ValueError(f"hf_cutoff must be a number in (0, 0.5) cycles per 5 m pixel, got {hf_cutoff!r}")
    pred = _resolve_predictor(model, engine, threads)
    info = _model_info(pred)
    radius = nodata_radius(int(pred.margin))
    say = progress or (lambda msg: None)

    wald, wald_spec, full, full_spec, figures, ids = [], [], [], [], {}, []
    for item in scenes:
        scene = _scored_scene(item, root, crop=crop, border=border)
        ids.append(scene.id)
        for dname in degradations:
            say(f"{scene.id}: Wald protocol, {dname}")
            r, s = _wald_scene(pred, scene, dname, tile=tile, border=border, radius=radius)
            wald += r
            wald_spec += s
        if full_resolution:
            say(f"{scene.id}: full resolution")
            fr = _full_res_scene(
                pred, scene, tile=tile, border=border, radius=radius, hf_cutoff=float(hf_cutoff)
            )
            full += fr.rows
            full_spec += fr.spec_rows
            if figures_dir is not None:
                figures[scene.id] = _scene_figures(
                    fr, scene, Path(figures_dir), info["name"], float(hf_cutoff)
                )
    return {
        "model": info,
        "settings": {
            "degradations": list(degradations),
            "crop": crop,
            "border": border,
            "tile": tile,
            "hf_cutoff": float(hf_cutoff),
            "nodata_radius": radius,
            "data_range": 1.0,
            "ergas_ratio": 2,
            "root": None if root is None else str(root),
        },
        "scenes": ids,
        "wald": wald,
        "wald_spectral": wald_spec,
        "full_resolution": full,
        "full_resolution_spectral": full_spec,
        "summary": _summarize(wald, wald_spec, full, full_spec),
        "figures": figures,
        "metadata": _metadata(time.perf_counter() - t0),
    }


def _scene_figures(fr: _FullRes, scene: SceneTensors, figures_dir: Path, model_name: str, hf_cutoff: float) -> dict:
    stem = f"{_slug(model_name)}_{_slug(scene.id)}"
    base = figures_dir.parent
    title = f"{model_name} - {scene.id}"
    x, sr, bic = fr.x[0].numpy(), fr.sr[0].numpy(), fr.bic[0].numpy()
    t = plot_triptych(x, bic, sr, figures_dir / f"{stem}_triptych.png", title=title)
    p = plot_power_spectra(
        fr.freqs,
        fr.p_sr,
        fr.p_bic,
        figures_dir / f"{stem}_spectra.png",
        p_input=fr.p_in,
        f_input=fr.f_in,
        hf_cutoff=hf_cutoff,
        title=f"{title}: radially averaged power",
    )
    inputs = [scene.hr10[c].numpy() for c in range(4)] + [scene.hr20[c].numpy() for c in range(6)]
    h = plot_histograms(sr, inputs, figures_dir / f"{stem}_histograms.png", title=f"{title}: reflectance")

    def rel(q: Path) -> str:
        try:
            return q.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            return q.as_posix()

    return {"triptych": rel(t), "power_spectra": rel(p), "histograms": rel(h)}


def run_evaluation(
    model: Any,
    scenes: Sequence[Any],
    out_dir: str | Path = "benchmarks/results",
    *,
    figures: bool = True,
    **kwargs: Any,
) -> tuple[dict, Path, Path]:
    """:func:`evaluate_model` with figures under ``out_dir/figures`` and the report written by
    :func:`write_report`; returns ``(result, json_path, md_path)``."""
    out = Path(out_dir)
    res = evaluate_model(model, scenes, figures_dir=out / "figures" if figures else None, **kwargs)
    jp, mp = write_report(res, out)
    return res, jp, mp
