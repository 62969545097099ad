r"""Full-resolution robustness of super-resolution models: what a Wald PSNR cannot show.

Three checks, each model beside the others and the peer in one run, on the real (not degraded) input:

1. **Negative reflectance from non-negative input.** Per model, scene and band: ``n_negative``, the output pixels
   below 0 among the ``n_eligible`` ones whose input neighbourhood (3 x 3 pixels of every input band on its native
   grid, see below) is all >= 0, and ``min_dn``, the lowest output value (DN = reflectance x 10000).
2. **Overshoot at edges.** Per model, scene and band: ``|SR - clip(SR, local min, local max)|`` in DN, where
   local min / max are those of the 3 x 3 neighbourhood, on the band's native grid, of the input pixel holding the
   output pixel (10 m bands: the 10 m grid; 20 m bands: their native 20 m values, i.e. 3 x 3 pixels of the 20 m
   grid); reported as its 99th and 99.9th percentiles and its maximum (``p99_dn``, ``p99_9_dn``, ``max_dn``).
   Baseline rows ``bicubic xS``: every band bicubically upsampled from its native grid onto the output grid of a
   scale-S model (10 m bands x S, 20 m bands x 2S; the x1 of a 10 m band is the band itself), through the same
   two checks.
3. **Flat fields.** Constant 48 x 48 px scenes with the spectra of :data:`FLAT_SPECTRA` (water, vegetation, bare
   soil, snow, cloud): per model, surface and band, ``max |output - constant|`` in DN, which passes when it is at
   most ``max(2 DN, 0.5 % of the constant)`` (:func:`flat_tolerance_dn`).

The input is the model contract's (docs/decisions/2026-11-22-model-input-contract.md): the real 10 m bands and the
real 20 m bands nearest-replicated onto the 10 m grid (:func:`sr_core.degradation.model_input_10band`), in
reflectance; each model gets the bands of its card. Scenes are read as ``s2sr evaluate`` reads them (sizes cut to
multiples of 4 px, ``--crop`` a central crop); by default the report scenes
(:data:`sr_core.evaluation.REPORT_SCENES`). Nodata (a 10 m pixel with a non-finite band, or all bands 0) is
filled with the nearest valid pixel as the production path fills it, and its output pixels are left out;
``--border`` 10 m pixels at the scene edges can be left out too (default 0: a model's scene edges count).
Inference is the production one: seamless tiles with the model's margin (:func:`sr_core.tiling.tiled_apply`);
the peer runs its own tiling on the whole input.

    python -m benchmarks.robustness                                       # shipped models, peer, report scenes
    python -m benchmarks.robustness --model s2sr-x2-10band --no-peer --scenes ID --crop 128 --threads 1
    python -m benchmarks.robustness --model path/to/package --peer path/to/peer.onnx --out DIR

Writes ``<out>/robustness.json`` (every row, summaries, settings, run metadata) and ``<out>/robustness.md``
(default ``benchmarks/results/robustness``). Exit status 2 when the scene root (``--root``, default
``../shared/data/s2``) is absent or an argument is wrong.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from sr_core.bands import BANDS_10M, BANDS_20M, MODEL_BANDS_10
from sr_core.models import DEFAULT_MODEL, SHARPEN_MODEL

__all__ = [
    "DN",
    "FLAT_SPECTRA",
    "bicubic_native",
    "flat_field_row",
    "flat_tolerance_dn",
    "local_bounds",
    "main",
    "native_factor",
    "negative_stats",
    "overshoot",
    "overshoot_stats",
    "render_markdown",
    "run_robustness",
    "summarize",
]

#: DN per unit reflectance.
DN = 10000.0

#: Flat-field spectra (DN = reflectance x 10000) in the band order of MODEL_BANDS_10 (B02 B03 B04 B08 B05 B06 B07
#: B8A B11 B12): typical top-of-atmosphere values of each surface.
FLAT_SPECTRA: dict[str, tuple[int, ...]] = {
    "water": (700, 550, 350, 170, 300, 200, 180, 170, 80, 60),
    "vegetation": (300, 600, 300, 3500, 900, 2500, 3200, 3600, 1800, 800),
    "bare soil": (1200, 1500, 1900, 2500, 2100, 2300, 2400, 2600, 3200, 2800),
    "snow": (9000, 8800, 8600, 8000, 8500, 8300, 8200, 7800, 1200, 900),
    "cloud": (6500, 6300, 6200, 6400, 6300, 6300, 6300, 6300, 4500, 3500),
}
#: Side of the flat-field scenes (input pixels).
FLAT_SIZE = 48
#: Flat-field tolerance: max(FLAT_ABS_TOL_DN, FLAT_REL_TOL x the constant).
FLAT_ABS_TOL_DN = 2.0
FLAT_REL_TOL = 0.005
#: Percentiles of the overshoot reported per scene and band.
PERCENTILES = (99.0, 99.9)

DEFAULT_MODELS = (DEFAULT_MODEL, SHARPEN_MODEL)
DEFAULT_PEER = "../shared/peers/evoland_carn_light/carn_light.onnx"
DEFAULT_ROOT = "../shared/data/s2"
DEFAULT_OUT = "benchmarks/results/robustness"
SCHEMA = 1

_ROUND = 3


# ------------------------------------------------------------------------------------------------ pure functions


def native_factor(band: str) -> int:
    """Pixels of the 10 m grid per native pixel side of ``band``: 1 for the 10 m bands, 2 for the 20 m bands."""
    if band in BANDS_10M:
        return 1
    if band in BANDS_20M:
        return 2
    raise ValueError(f"band {band!r}: not one of the 10 m bands {list(BANDS_10M)} or 20 m bands {list(BANDS_20M)}")


def _check_band(band: Any, native: int, scale: int) -> np.ndarray:
    if isinstance(native, bool) or not isinstance(native, (int, np.integer)) or native < 1:
        raise ValueError(f"native must be an integer >= 1, got {native!r}")
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale!r}")
    a = np.asarray(band, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < native or a.shape[1] < native:
        raise ValueError(f"band must be a 2-D (H, W) array of at least {native} x {native} px, got shape {a.shape}")
    if a.shape[0] % native or a.shape[1] % native:
        raise ValueError(f"band of shape {a.shape}: H and W must be multiples of native={native}")
    return a


def _blocks(a: np.ndarray, native: int) -> np.ndarray:
    h, w = a.shape
    return a.reshape(h // native, native, w // native, native)


def local_bounds(band: Any, native: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)``, each ``(scale H, scale W)``: the min and max of the 3 x 3 neighbourhood, on the native grid,
    of the input pixel holding each output pixel.

    ``band`` ``(H, W)`` is one band on the model's input grid whose native pixels are ``native x native`` blocks
    (1 for a 10 m band, 2 for a replicated 20 m band); the native grid holds each block's min (for ``lo``) and
    max (for ``hi``), so a block that is not constant still bounds every value in it. Neighbourhoods at the edges
    are those of the edge-replicated grid; ``lo`` and ``hi`` are nearest-upsampled by ``native x scale``.
    """
    a = _check_band(band, native, scale)
    b = _blocks(a, native)
    lo = ndimage.minimum_filter(b.min(axis=(1, 3)), size=3, mode="nearest")
    hi = ndimage.maximum_filter(b.max(axis=(1, 3)), size=3, mode="nearest")
    f = int(native) * int(scale)
    return np.repeat(np.repeat(lo, f, 0), f, 1), np.repeat(np.repeat(hi, f, 0), f, 1)


def overshoot(y: Any, lo: Any, hi: Any) -> np.ndarray:
    """``|y - clip(y, lo, hi)|``: how far each value of ``y`` lies outside ``[lo, hi]`` (0 inside), float64."""
    y, lo, hi = (np.asarray(v, dtype=np.float64) for v in (y, lo, hi))
    if not y.shape == lo.shape == hi.shape:
        raise ValueError(f"y, lo and hi must have one shape, got {y.shape}, {lo.shape}, {hi.shape}")
    if np.any(lo > hi):
        raise ValueError("lo must not exceed hi")
    return np.maximum(np.maximum(y - hi, lo - y), 0.0)


def _mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    m = np.ones(shape, dtype=bool) if mask is None else np.asarray(mask)
    if m.dtype != bool or m.shape != shape:
        raise ValueError(f"mask must be a bool array of shape {shape}, got {m.dtype} {m.shape}")
    return m


def overshoot_stats(ov: Any, mask: Any = None, *, percentiles: Sequence[float] = PERCENTILES) -> dict:
    """The overshoot ``ov`` (reflectance) over the ``mask``ed pixels, in DN: ``p<q>_dn`` for each percentile ``q``
    (``99.9`` -> ``p99_9_dn``; linear interpolation), ``max_dn``, ``mean_dn`` and ``n_px``; NaN without pixels."""
    ov = np.asarray(ov, dtype=np.float64)
    v = ov[_mask(mask, ov.shape)] * DN
    out = {}
    for q in percentiles:
        if not 0 <= q <= 100:
            raise ValueError(f"percentiles must lie in [0, 100], got {q!r}")
        out[f"p{q:g}_dn".replace(".", "_")] = float(np.percentile(v, q)) if v.size else float("nan")
    out["max_dn"] = float(v.max()) if v.size else float("nan")
    out["mean_dn"] = float(v.mean()) if v.size else float("nan")
    out["n_px"] = int(v.size)
    return out


def negative_stats(y: Any, lo_inputs: Any, mask: Any = None) -> dict:
    """Negative output from non-negative input: ``n_eligible``, the ``mask``ed pixels whose input neighbourhood is
    all >= 0 (``lo_inputs >= 0``: the lowest local minimum over the input bands, :func:`local_bounds`), the
    ``n_negative`` ones among them with ``y < 0``, and ``min_dn``, the lowest masked output value in DN (NaN without
    pixels)."""
    y = np.asarray(y, dtype=np.float64)
    lo = np.asarray(lo_inputs, dtype=np.float64)
    if y.shape != lo.shape:
        raise ValueError(f"y and lo_inputs must have one shape, got {y.shape} and {lo.shape}")
    m = _mask(mask, y.shape)
    eligible = m & (lo >= 0)
    return {
        "n_px": int(m.sum()),
        "n_eligible": int(eligible.sum()),
        "n_negative": int((eligible & (y < 0)).sum()),
        "min_dn": float(y[m].min() * DN) if m.any() else float("nan"),
    }


def bicubic_native(band: Any, native: int, scale: int) -> np.ndarray:
    """Bicubic upsampling of ``band`` ``(H, W)`` from its native grid (``native x native`` blocks of the input
    grid, their mean) onto the output grid of a scale-``scale`` model, ``(scale H, scale W)`` float64
    (:func:`sr_core.archs._common.bicubic_upsample`: a = -0.75, half-pixel centres, edge replication; a factor of
    1 returns the native grid itself)."""
    import torch

    from sr_core.archs._common import bicubic_upsample

    a = _check_band(band, native, scale)
    coarse = _blocks(a, native).mean(axis=(1, 3))
    f = int(native) * int(scale)
    if f == 1:
        return coarse
    return bicubic_upsample(torch.from_numpy(coarse)[None, None], f)[0, 0].numpy()


def flat_tolerance_dn(constant_dn: float) -> float:
    """The flat-field tolerance of a band whose constant is ``constant_dn``: ``max(2 DN, 0.5 % of it)``."""
    c = float(constant_dn)
    if not np.isfinite(c):
        raise ValueError(f"constant_dn must be finite, got {constant_dn!r}")
    return max(FLAT_ABS_TOL_DN, FLAT_REL_TOL * abs(c))


def flat_field_row(out_dn: Any, constant_dn: float) -> dict:
    """One band of a flat field: ``max_abs_err_dn`` = ``max |out_dn - constant_dn|``, ``tolerance_dn``
    (:func:`flat_tolerance_dn`), ``within`` (error <= tolerance; False on a non-finite output)."""
    y = np.asarray(out_dn, dtype=np.float64)
    if y.size == 0:
        raise ValueError("out_dn is empty")
    tol = flat_tolerance_dn(constant_dn)
    err = float(np.max(np.abs(y - float(constant_dn)))) if np.isfinite(y).all() else float("inf")
    return {"constant_dn": float(constant_dn), "max_abs_err_dn": err, "tolerance_dn": tol, "within": err <= tol}


# ------------------------------------------------------------------------------------------------ summaries


def consistency_row(out: Any, native: Any, band: str, ratio: int, border: int = 4) -> dict:
    """Reflectance consistency and shift of one output band against its native band (both ``(H, W)``, reflectance):
    ``degrade(out, ratio)`` with the band's MTF Gaussian (:func:`sr_core.degradation.degrade`) against ``native``,
    ``border`` native pixels left out: ``consistency_l1`` (mean absolute difference, reflectance) and ``shift_px``
    (phase-correlation shift, :func:`sr_core.metrics.phase_correlation_shift`, in native pixels)."""
    import torch

    from sr_core.degradation import degrade
    from sr_core.metrics import phase_correlation_shift

    y = torch.as_tensor(np.asarray(out, dtype=np.float64))[None, None]
    n = torch.as_tensor(np.asarray(native, dtype=np.float64))[None, None]
    d = degrade(y, ratio, bands=[band])
    if d.shape != n.shape:
        raise ValueError(f"band {band}: degraded output {tuple(d.shape)} does not match its native grid {tuple(n.shape)}")
    b = (slice(border, -border), slice(border, -border)) if border else (slice(None), slice(None))
    d, n = d[..., b[0], b[1]], n[..., b[0], b[1]]
    shift = phase_correlation_shift(d, n)[0, 0]
    return {"consistency_l1": float((d - n).abs().mean()), "shift_px": float(torch.linalg.vector_norm(shift))}


def _worst(rows: Sequence[dict], key: str) -> dict | None:
    rows = [r for r in rows if np.isfinite(r[key])]
    return max(rows, key=lambda r: r[key]) if rows else None


def summarize(result: Mapping) -> dict:
    """Per model (and baseline): the negative-output total and lowest output, the worst overshoot (p99.9) over
    scenes and bands, the worst flat-field band (the largest error relative to its tolerance) and the pass count."""
    out: dict[str, dict] = {}
    names = list(result["models"]) + list(result.get("baselines", {}))
    for name in names:
        neg = [r for r in result["negative"] if r["model"] == name]
        ovs = [r for r in result["overshoot"] if r["model"] == name]
        flat = [r for r in result["flat"] if r["model"] == name]
        s: dict[str, Any] = {}
        if neg:
            mins = [r["min_dn"] for r in neg if np.isfinite(r["min_dn"])]
            s["negative"] = {
                "n_negative": sum(r["n_negative"] for r in neg),
                "n_eligible": sum(r["n_eligible"] for r in neg),
                "min_dn": min(mins) if mins else float("nan"),
            }
        if ovs:
            w = _worst(ovs, "p99_9_dn")
            m = _worst(ovs, "max_dn")
            s["overshoot"] = {
                "worst_p99_9_dn": w["p99_9_dn"] if w else float("nan"),
                "worst_p99_9_band": w["band"] if w else None,
                "worst_p99_9_scene": w["scene"] if w else None,
                "max_dn": m["max_dn"] if m else float("nan"),
                "max_band": m["band"] if m else None,
            }
        if flat:
            w = max(flat, key=lambda r: r["max_abs_err_dn"] / r["tolerance_dn"])
            s["flat"] = {
                "worst_err_dn": w["max_abs_err_dn"],
                "worst_err_over_tolerance": w["max_abs_err_dn"] / w["tolerance_dn"],
                "worst_band": w["band"],
                "worst_surface": w["surface"],
                "worst_tolerance_dn": w["tolerance_dn"],
                "n_within": sum(bool(r["within"]) for r in flat),
                "n": len(flat),
            }
        cons = [r for r in result.get("consistency", []) if r["model"] == name]
        if cons:
            w = _worst(cons, "consistency_l1")
            ws = _worst(cons, "shift_px")
            s["consistency"] = {
                "mean_l1": float(np.mean([r["consistency_l1"] for r in cons])),
                "worst_l1": w["consistency_l1"] if w else float("nan"),
                "worst_l1_band": w["band"] if w else None,
                "max_shift_px": ws["shift_px"] if ws else float("nan"),
            }
        out[name] = s
    return out


# ------------------------------------------------------------------------------------------------ runs


def _apply(pred: Any, x: np.ndarray, tile: int) -> np.ndarray:
    """``pred`` on ``x`` ``(1, C, H, W)``: the peer on the whole input (it tiles itself), else seamless tiles with
    the model's margin; ``ValueError`` on a non-finite output."""
    if getattr(pred, "tiles_itself", False):
        y = pred(x)
    else:
        from sr_core.tiling import tiled_apply

        y = tiled_apply(pred, x, scale=int(pred.scale), tile=tile, margin=int(pred.margin))
    y = np.asarray(y, dtype=np.float64)
    s = int(pred.scale)
    want = (1, len(pred.out_bands), s * x.shape[-2], s * x.shape[-1])
    if y.shape != want:
        raise ValueError(f"model {getattr(pred, 'name', '?')}: output shape {y.shape}, expected {want}")
    if not np.isfinite(y).all():
        raise ValueError(f"model {getattr(pred, 'name', '?')} produced non-finite values on a finite input")
    return y


def _check_model(name: str, pred: Any) -> None:
    for attr in ("scale", "margin", "bands", "out_bands"):
        if not hasattr(pred, attr):
            raise ValueError(f"model {name}: a Predictor-like callable with .{attr} is needed")
    bad = [b for b in [*pred.bands, *pred.out_bands] if b not in MODEL_BANDS_10]
    if bad:
        raise ValueError(f"model {name}: bands {bad} are not among {list(MODEL_BANDS_10)}")
    missing = [b for b in pred.out_bands if b not in pred.bands]
    if missing:
        raise ValueError(f"model {name}: output bands {missing} are not among its input bands")


def _flat_rows(name: str, pred: Any, tile: int) -> list[dict]:
    idx = [MODEL_BANDS_10.index(b) for b in pred.bands]
    rows = []
    for surface, spectrum in FLAT_SPECTRA.items():
        dn = np.asarray(spectrum, dtype=np.float64)
        x = np.broadcast_to((dn[idx] / DN)[None, :, None, None], (1, len(idx), FLAT_SIZE, FLAT_SIZE))
        y = _apply(pred, np.ascontiguousarray(x, dtype=np.float32), tile)[0] * DN
        for j, band in enumerate(pred.out_bands):
            row = flat_field_row(y[j], dn[MODEL_BANDS_10.index(band)])
            rows.append({"model": name, "surface": surface, "band": band, **row})
    return rows


def _scene_input(scene: Any, border: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, valid)``: the model input ``(1, 10, H, W)`` float32 with nodata filled by the nearest valid pixel, and
    the 10 m pixels scored ``(H, W)`` (valid, not within ``border`` px of the scene edge)."""
    from sr_core.degradation import model_input_10band
    from sr_core.nodata import fill_nodata, valid_mask

    x = model_input_10band(scene.hr10[None], scene.hr20[None]).numpy().astype(np.float32)
    valid = valid_mask(x[0]) & ~(x[0] == 0).all(axis=0)
    if not valid.any():
        raise ValueError(f"scene {scene.id}: no valid pixel")
    x, _ = fill_nodata(x, valid[None])
    scored = valid.copy()
    if border:
        scored[:border] = scored[-border:] = False
        scored[:, :border] = scored[:, -border:] = False
    return np.ascontiguousarray(x, dtype=np.float32), scored


def _scene_rows(name: str, y: np.ndarray, out_bands: Sequence[str], in_bands: Sequence[str], x: np.ndarray,
                scored: np.ndarray, scale: int, scene_id: str, bounds: dict) -> tuple[list[dict], list[dict]]:
    def lb(band: str) -> tuple[np.ndarray, np.ndarray]:
        key = (band, scale)
        if key not in bounds:
            bounds[key] = local_bounds(x[0, MODEL_BANDS_10.index(band)], native_factor(band), scale)
        return bounds[key]

    mask = np.repeat(np.repeat(scored, scale, 0), scale, 1)
    lo_in = np.minimum.reduce([lb(b)[0] for b in in_bands])
    neg, ovs = [], []
    for j, band in enumerate(out_bands):
        lo, hi = lb(band)
        base = {"model": name, "scene": scene_id, "band": band}
        neg.append({**base, **negative_stats(y[j], lo_in, mask)})
        ovs.append({**base, "native_px_per_output_px": native_factor(band) * scale,
                    **overshoot_stats(overshoot(y[j], lo, hi), mask)})
    return neg, ovs


def _model_info(name: str, pred: Any, role: str) -> dict:
    card = getattr(pred, "card", None)
    return {
        "name": name,
        "role": role,
        "package": getattr(card, "name", None),
        "version": getattr(card, "version", None),
        "arch": getattr(card, "arch", None),
        "scale": int(pred.scale),
        "margin": int(pred.margin),
        "bands": list(pred.bands),
        "out_bands": list(pred.out_bands),
        "engine": getattr(pred, "engine", None),
        "sha256": dict(getattr(card, "sha256", {}) or {}),
        "path": str(getattr(pred, "path", "")) or None,
    }


def run_robustness(
    models: Mapping[str, Any],
    scenes: Sequence[Any],
    *,
    root: str | Path | None = None,
    peer: Any = None,
    crop: int | None = None,
    border: int = 0,
    tile: int = 256,
    log: Any = None,
) -> dict:
    """The three checks of every model of ``models`` (label -> Predictor-like callable) and the ``peer`` (a
    Predictor-like callable such as :class:`sr_core.evaluation.peer.OnnxPeer`, or None) on ``scenes`` (ids,
    ``"ID[y0:y1,x0:x1]"`` windows, Regions or :class:`sr_core.datasets.patches.SceneTensors`) under ``root``, with
    the bicubic baselines; a JSON-ready dict (``metadata`` without the command line)."""
    from sr_core.checks import check_int
    from sr_core.evaluation.core import _metadata, _scored_scene

    t0 = time.perf_counter()
    say = log or (lambda message: None)
    if not models and peer is None:
        raise ValueError("give at least one model or a peer")
    if isinstance(scenes, (str, bytes)) or not isinstance(scenes, Sequence) or not scenes:
        raise ValueError(f"scenes must be a non-empty sequence of scenes, got {scenes!r}")
    border = check_int("border", border, 0)
    tile = check_int("tile", tile, 8)
    if crop is not None:
        check_int("crop", crop, 16)
    preds: dict[str, Any] = {}
    infos: dict[str, dict] = {}
    for name, pred in models.items():
        _check_model(name, pred)
        preds[name] = pred
        infos[name] = _model_info(name, pred, "model")
    if peer is not None:
        name = f"{getattr(peer, 'name', 'peer')} (peer)"
        _check_model(name, peer)
        preds[name] = peer
        infos[name] = _model_info(name, peer, "peer")
    scales = sorted({int(p.scale) for p in preds.values()})
    baselines = {f"bicubic x{s}": {"role": "baseline", "scale": s, "bands": list(MODEL_BANDS_10)} for s in scales}

    negative: list[dict] = []
    overshoots: list[dict] = []
    consistency: list[dict] = []
    scene_ids = []
    for item in scenes:
        scene = _scored_scene(item, root, crop=crop, border=border)
        scene_ids.append(scene.id)
        x, scored = _scene_input(scene, border)
        bounds: dict = {}
        for s in scales:
            say(f"{scene.id}: bicubic x{s}")
            y = np.stack([bicubic_native(x[0, k], native_factor(b), s) for k, b in enumerate(MODEL_BANDS_10)])
            n, o = _scene_rows(f"bicubic x{s}", y, MODEL_BANDS_10, MODEL_BANDS_10, x, scored, s, scene.id, bounds)
            negative += n
            overshoots += o
        for name, pred in preds.items():
            say(f"{scene.id}: {name}")
            idx = [MODEL_BANDS_10.index(b) for b in pred.bands]
            y = _apply(pred, np.ascontiguousarray(x[:, idx]), tile)[0]
            n, o = _scene_rows(name, y, pred.out_bands, pred.bands, x, scored, int(pred.scale), scene.id, bounds)
            negative += n
            overshoots += o
            for j, band in enumerate(pred.out_bands):
                ratio = native_factor(band) * int(pred.scale)
                if ratio == 1:  # a band the model copies from the input
                    continue
                k = MODEL_BANDS_10.index(band)
                native = (scene.hr10[k] if k < 4 else scene.hr20[k - 4]).numpy()
                consistency.append({"model": name, "scene": scene.id, "band": band, "ratio": ratio,
                                    **consistency_row(y[j], native, band, ratio)})
    flat: list[dict] = []
    for name, pred in preds.items():
        say(f"flat fields: {name}")
        flat += _flat_rows(name, pred, tile)

    result = {
        "benchmark": "robustness",
        "schema": SCHEMA,
        "models": infos,
        "baselines": baselines,
        "scenes": scene_ids,
        "settings": {
            "root": None if root is None else str(root),
            "crop": crop,
            "border": border,
            "tile": tile,
            "dn_per_reflectance": DN,
            "neighbourhood": "3 x 3 pixels of each band's native grid (10 m bands: 10 m; 20 m bands: 20 m)",
            "overshoot_percentiles": list(PERCENTILES),
            "flat_size_px": FLAT_SIZE,
            "flat_tolerance": f"max({FLAT_ABS_TOL_DN:g} DN, {100 * FLAT_REL_TOL:g} % of the constant)",
            "flat_spectra_dn": {k: dict(zip(MODEL_BANDS_10, v)) for k, v in FLAT_SPECTRA.items()},
        },
        "negative": [_rounded(r) for r in negative],
        "overshoot": [_rounded(r) for r in overshoots],
        "flat": [_rounded(r) for r in flat],
        "consistency": [{**r, "consistency_l1": round(r["consistency_l1"], 6), "shift_px": round(r["shift_px"], 4)}
                        for r in consistency],
    }
    result["summary"] = summarize(result)
    result["metadata"] = _metadata(time.perf_counter() - t0)
    return result


def _rounded(row: dict) -> dict:
    return {k: round(v, _ROUND) if isinstance(v, float) and np.isfinite(v) else v for k, v in row.items()}


# ------------------------------------------------------------------------------------------------ report


def _num(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    v = float(v)
    if not np.isfinite(v):
        return "n/a" if np.isnan(v) else ("inf" if v > 0 else "-inf")
    return f"{v:.{digits}f}"


def _band_table(rows: Sequence[dict], key: str, cell: Any) -> list[str]:
    bands = [b for b in MODEL_BANDS_10 if any(r["band"] == b for r in rows)]
    groups: dict[tuple, dict] = {}
    for r in rows:
        groups.setdefault((r["model"], r[key]), {})[r["band"]] = r
    lines = [f"| model | {key} | " + " | ".join(bands) + " |", "|---|---|" + "---:|" * len(bands)]
    for (model, k), by_band in groups.items():
        cells = [cell(by_band[b]) if b in by_band else "-" for b in bands]
        lines.append(f"| {model} | {k} | " + " | ".join(cells) + " |")
    return lines


def render_markdown(result: Mapping) -> str:
    """The Markdown report of a :func:`run_robustness` result: settings, the summary per model, then the detail
    per scene (or surface) and band of each check."""
    meta = result.get("metadata", {})
    st = result["settings"]
    git = meta.get("git") or {}
    lines = [
        "# Robustness at full resolution",
        "",
        f"Date {meta.get('date_utc', '?')}, commit {git.get('commit', '?')}"
        + (" (uncommitted changes)" if git.get("dirty") else "")
        + f", machine {(meta.get('machine') or {}).get('platform', '?')}, runtime {meta.get('runtime_s', '?')} s.",
        "",
        f"Command: `{meta.get('command', '?')}`",
        "",
        f"Scenes ({len(result['scenes'])}, root `{st['root']}`, crop {st['crop']}, border {st['border']} px): "
        + ", ".join(f"`{s}`" for s in result["scenes"]),
        "",
        ("Input: the real 10 m and 20 m bands (20 m bands nearest-replicated onto the 10 m grid), no degradation. "
        "Neighbourhood of an output pixel: the 3 x 3 pixels, on each band's native grid, around the input pixel "
        "holding it. *Negative*: output < 0 where every input band's neighbourhood is >= 0. *Overshoot*: "
        "|SR - clip(SR, local min, local max)| in DN (reflectance x 10000). *Flat*: max |output - constant| on "
        f"{st['flat_size_px']} x {st['flat_size_px']} px constant scenes, tolerance {st['flat_tolerance']}. "
        "`bicubic xS`: every band bicubic from its native grid onto the output grid of a scale-S model."),
        "",
        "## Models",
        "",
        "| model | role | package | version | scale | margin | engine |",
        "|---|---|---|---|---:|---:|---|",
    ]
    for name, info in result["models"].items():
        lines.append(
            f"| {name} | {info['role']} | {info.get('package') or info.get('path') or '-'} | "
            f"{info.get('version') or '-'} | {info['scale']} | {info['margin']} | {info.get('engine') or '-'} |"
        )
    prov = {k: v.get("scenes_used_in_training") for k, v in result["models"].items() if v.get("scenes_used_in_training")}
    if prov:
        lines += ["", "Scenes among a model's training or selection scenes: "
                  + "; ".join(f"{k}: {', '.join(v)}" for k, v in prov.items())]
    lines += [
        "",
        "## Summary",
        "",
        ("| model | negative px / eligible | min output DN | overshoot p99.9 worst DN (band, scene) | overshoot max DN "
         "(band) | flat worst err DN (band, surface; tol) | flat within tol |"),
        "|---|---:|---:|---|---|---|---:|",
    ]
    for name, s in result["summary"].items():
        n, o, f = s.get("negative"), s.get("overshoot"), s.get("flat")
        lines.append(
            "| " + " | ".join([
                name,
                f"{n['n_negative']} / {n['n_eligible']}" if n else "-",
                _num(n["min_dn"]) if n else "-",
                f"{_num(o['worst_p99_9_dn'])} ({o['worst_p99_9_band']}, {o['worst_p99_9_scene']})" if o else "-",
                f"{_num(o['max_dn'])} ({o['max_band']})" if o else "-",
                f"{_num(f['worst_err_dn'], 2)} ({f['worst_band']}, {f['worst_surface']}; "
                f"{_num(f['worst_tolerance_dn'])})"
                if f else "-",
                f"{f['n_within']} / {f['n']}" if f else "-",
            ]) + " |"
        )
    lines += ["", "Flat worst: the band and surface of the largest error relative to its tolerance."]
    cons = {k: v["consistency"] for k, v in result["summary"].items() if v.get("consistency")}
    if cons:
        lines += ["", "## Reflectance consistency and shift (real input, full resolution)", "",
                  "`degrade(SR)` with the band's MTF Gaussian onto the band's native grid against the native band "
                  "(reflectance L1; phase-correlation shift in native pixels); bands a model copies are left out.", "",
                  "| model | mean L1 | worst L1 (band) | max shift px |", "|---|---:|---|---:|"]
        for k, c in cons.items():
            lines.append(f"| {k} | {c['mean_l1']:.5f} | {c['worst_l1']:.5f} ({c['worst_l1_band']}) | "
                         f"{c['max_shift_px']:.3f} |")
    lines += ["", "## Negative output per scene and band", "", "Cells: negative px / lowest output DN.", ""]
    lines += _band_table(result["negative"], "scene", lambda r: f"{r['n_negative']} / {_num(r['min_dn'])}")
    lines += ["", "## Overshoot per scene and band", "", "Cells: p99.9 / max, DN.", ""]
    lines += _band_table(result["overshoot"], "scene", lambda r: f"{_num(r['p99_9_dn'])} / {_num(r['max_dn'])}")
    lines += ["", "## Flat fields per surface and band", "",
              "Cells: max |output - constant| DN; **FAIL** beyond the tolerance (shown after `>`).", ""]
    lines += _band_table(
        result["flat"], "surface",
        lambda r: _num(r["max_abs_err_dn"], 2) if r["within"]
        else f"**FAIL** {_num(r['max_abs_err_dn'], 2)} > {_num(r['tolerance_dn'])}",
    )
    return "\n".join(lines) + "\n"


def _jsonable(v: Any) -> Any:
    """``v`` with every non-finite float as None (JSON has no NaN)."""
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def write_report(result: Mapping, out: str | Path) -> tuple[Path, Path]:
    """Write ``<out>/robustness.json`` and ``<out>/robustness.md``; returns both paths."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    jp, mp = folder / "robustness.json", folder / "robustness.md"
    jp.write_text(json.dumps(_jsonable(result), indent=2, allow_nan=False) + "\n")
    mp.write_text(render_markdown(result))
    return jp, mp


# ------------------------------------------------------------------------------------------------ command line


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.robustness",
        description="Full-resolution robustness checks (negative output, overshoot at edges, flat fields) of "
        "super-resolution models beside a peer and bicubic.",
    )
    ap.add_argument("--model", action="append", metavar="NAME",
                    help=f"model package name or folder, repeatable (default: {', '.join(DEFAULT_MODELS)})")
    ap.add_argument("--peer", default=DEFAULT_PEER, metavar="PATH",
                    help=f"the peer's ONNX file (default {DEFAULT_PEER})")
    ap.add_argument("--no-peer", action="store_true", help="run without the peer")
    ap.add_argument("--root", default=DEFAULT_ROOT, help=f"folder of the scene folders (default {DEFAULT_ROOT})")
    ap.add_argument("--scenes", nargs="+", metavar="SCENE",
                    help="scene ids or ID[y0:y1,x0:x1] windows under --root (default: the report scenes)")
    ap.add_argument("--crop", type=int, default=None, help="central crop, at most N px (10 m) per side")
    ap.add_argument("--border", type=int, default=0, help="10 m px left out at each scene edge (default 0)")
    ap.add_argument("--tile", type=int, default=256, help="tile core in input px (default 256)")
    ap.add_argument("--threads", type=int, default=1, help="engine threads (default 1)")
    ap.add_argument("--engine", choices=("onnx", "torch"), default="onnx", help="engine of our models (default onnx)")
    ap.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Run the checks from the command line; 0 on success, 2 on missing data or a wrong argument."""
    args = _parser().parse_args(argv)
    if not Path(args.root).is_dir():
        print(f"robustness: error: scene root {args.root} is not a folder: the checks need the shared scenes "
              "(give --root)", file=sys.stderr)
        return 2
    try:
        from sr_core.datasets.patches import parse_scene_spec
        from sr_core.evaluation import REPORT_SCENES
        from sr_core.evaluation.run import scene_provenance
        from sr_core.models import load_predictor

        scenes = [parse_scene_spec(s) for s in (args.scenes or REPORT_SCENES)]
        models: dict[str, Any] = {}
        for ref in args.model or DEFAULT_MODELS:
            pred = load_predictor(ref, engine=args.engine, threads=args.threads)
            name = getattr(pred.card, "name", None) or str(ref)
            models[name if name not in models else f"{name} ({ref})"] = pred
        peer = None
        if not args.no_peer:
            from sr_core.evaluation.peer import load_peer

            try:
                peer = load_peer(args.peer, threads=args.threads, tile=args.tile)
            except FileNotFoundError as e:
                raise FileNotFoundError(f"{e} (give --peer PATH, or --no-peer)") from None
        result = run_robustness(models, scenes, root=args.root, peer=peer, crop=args.crop, border=args.border,
                                tile=args.tile, log=lambda m: print(m, file=sys.stderr))
    except (ValueError, OSError) as e:
        print(f"robustness: error: {e}", file=sys.stderr)
        return 2
    for name, pred in models.items():
        result["models"][name]["scenes_used_in_training"] = scene_provenance(pred, scenes)["used"]
    result["settings"]["threads"] = args.threads
    result["settings"]["engine"] = args.engine
    result["metadata"]["command"] = shlex.join(
        ["python", "-m", "benchmarks.robustness", *(sys.argv[1:] if argv is None else argv)])
    jp, mp = write_report(result, args.out)
    for name, s in result["summary"].items():
        n, o, f = s.get("negative"), s.get("overshoot"), s.get("flat")
        parts = [f"negative {n['n_negative']}/{n['n_eligible']} (min {_num(n['min_dn'])} DN)"]
        parts.append(f"overshoot p99.9 worst {_num(o['worst_p99_9_dn'])} DN ({o['worst_p99_9_band']})")
        if f:
            parts.append(f"flat {f['n_within']}/{f['n']} within (worst {_num(f['worst_err_dn'], 2)} DN "
                         f"{f['worst_band']} {f['worst_surface']})")
        print(f"{name}: " + "; ".join(parts))
    print(f"wrote {jp} and {mp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
