"""Wald evaluation under a family of degradation operators, two scorings for the 20 m bands, the worst case over
the family, and a peer model side by side (``s2sr evaluate --family`` / ``--peer``).

Per scene, per operator of the family (:data:`sr_core.evaluation.FAMILY`, names of
:data:`sr_core.evaluation.wald.DEGRADATIONS`), the Wald input is made once (10 m bands degraded by 2 to 20 m, 20 m
bands by 2 to 40 m and replicated, :func:`~sr_core.datasets.patches.wald_scene_input`) and every model runs on
that same input. Per model and band:

* 10 m bands (scoring ``direct``): the output on the 10 m grid against the original bands;
* 20 m bands: their output sits on the 10 m grid where no truth exists; it is brought to the 20 m truth grid by
  two scorings, each reported: ``physical`` (:func:`sr_core.degradation.physical_step`: the step from a 10 m to a
  20 m system of the same MTF, a Gaussian with ``sigma^2 = sigma_20^2 - sigma_10^2``, then decimation) and
  ``block`` (:func:`sr_core.degradation.area_downsample`: the 2 x 2 mean, the same optics with larger detectors).
  A model must beat bicubic under both.

A scale-1 model (the 20 m bands sharpened onto the 10 m grid, e.g. ``s2sr-10m-10band``) outputs its 20 m bands on
the 20 m truth grid of the Wald input already: they are scored ``direct`` against the truth, over bicubic x2 of the
40 m bands; its 10 m bands are the input's and are not scored. Beside it, the ``physical`` / ``block`` scorings of
an x2 model are the same product made by that model and a step down to 10 m.

Baseline: bicubic interpolation of the same degraded bands straight to the output grid (10 m bands x2 from 20 m,
20 m bands x4 from 40 m), scored through the same scoring (``psnr_bicubic``, ``gain_db = psnr - psnr_bicubic``).
``psnr_bicubic_native`` / ``gain_db_native``: 20 m bands only, bicubic x2 of the 40 m bands straight onto the 20 m
truth grid (no scoring operator; the same number for both scorings).

The worst case (:func:`worst_case`): per model, scene, band and scoring, the lowest gain over the operators and the
operator that gave it; :func:`summarize_family` adds, per model, band group and scoring, the mean gain under each
operator, under the matched (training) operator, under the worst operator, and the lowest single gain.

Borders and nodata as in :mod:`sr_core.evaluation.core` (``border`` 10 m pixels left out, nodata dilated by
:func:`~sr_core.evaluation.core.nodata_radius`). Everything in float64 reflectance, ``data_range = 1``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sr_core.bands import BANDS_10M, BANDS_20M, MODEL_BANDS_10
from sr_core.datasets.patches import SceneTensors, wald_scene_input
from sr_core.degradation import area_downsample, physical_step
from sr_core.evaluation import FAMILY, MATCHED_DEGRADATION
from sr_core.evaluation.common import predict_tiled
from sr_core.evaluation.core import (
    _check_run,
    _dilate,
    _metadata,
    _model_info,
    _nodata10,
    _resolve_predictor,
    _scored_scene,
    _valid_on,
    nodata_radius,
)
from sr_core.evaluation.report import _GROUPS, _nanmean, _nanmin
from sr_core.evaluation.wald import DEGRADATIONS
from sr_core.metrics import psnr

__all__ = ["SCORINGS", "evaluate_family", "score_20m", "summarize_family", "worst_case"]

#: How the 20 m bands' output on the 10 m grid is brought to their 20 m truth grid.
SCORINGS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "physical": lambda x: physical_step(x, 2, bands=list(BANDS_20M)),
    "block": lambda x: area_downsample(x, 2),
}

_ROUND = 6


def score_20m(out20: torch.Tensor, scoring: str) -> torch.Tensor:
    """The 20 m bands ``(N, 6, 2h, 2w)`` of an output on the 10 m grid, brought to the 20 m grid by ``scoring``."""
    if scoring not in SCORINGS:
        raise ValueError(f"unknown scoring {scoring!r}; choose from {sorted(SCORINGS)}")
    return SCORINGS[scoring](out20)


def _predict(model: Any, x: torch.Tensor, tile: int) -> torch.Tensor:
    if getattr(model, "tiles_itself", False):
        y = torch.as_tensor(np.asarray(model(x.numpy().astype(np.float32)), dtype=np.float32))
        if not bool(torch.isfinite(y).all()):
            raise ValueError(f"model {getattr(model, 'name', '?')} produced non-finite values on a finite input")
        return y
    return predict_tiled(model, x, tile)


def _psnr_rows(out: torch.Tensor, hr: torch.Tensor, m: torch.Tensor) -> np.ndarray:
    hr_f = torch.where(m.expand_as(hr), hr, torch.zeros_like(hr))
    return psnr(out, hr_f, data_range=1.0, mask=m)[0].numpy()


def _scene_rows(
    models: Mapping[str, Any], scene: SceneTensors, dname: str, *, tile: int, border: int, radius: int,
    keep: dict | None = None,
) -> list[dict]:
    bad10 = _dilate(_nodata10(scene.hr10, scene.hr20), radius)
    batch = wald_scene_input(scene, degrade_fn=DEGRADATIONS[dname])
    x = torch.nan_to_num(batch.lr, nan=0.0, posinf=0.0, neginf=0.0)
    lr10 = x[:, : len(BANDS_10M)].double()
    lr40 = torch.nan_to_num(batch.lr40.double())
    hr10, hr20 = batch.hr10.double(), batch.hr20.double()
    m10, m20 = _valid_on(bad10, 1, border), _valid_on(bad10, 2, border)
    bic10 = F.interpolate(lr10, scale_factor=2, mode="bicubic", align_corners=False)
    bic20 = F.interpolate(lr40, scale_factor=4, mode="bicubic", align_corners=False)
    nat20 = F.interpolate(lr40, scale_factor=2, mode="bicubic", align_corners=False)
    p_bic10 = _psnr_rows(bic10, hr10, m10)
    p_nat20 = _psnr_rows(nat20, hr20, m20)
    p_bic20 = {s: _psnr_rows(score_20m(bic20, s), hr20, m20) for s in SCORINGS}
    rows: list[dict] = []
    base = {"scene": scene.id, "level": scene.level, "degradation": dname}
    for name, model in models.items():
        ten_m_alone = tuple(model.bands) == tuple(BANDS_10M)  # its input: the first bands of MODEL_BANDS_10
        out = _predict(model, x[:, : len(BANDS_10M)] if ten_m_alone else x, tile).double()
        if int(model.scale) == 1:  # the 20 m bands on their truth grid: scored directly, 10 m bands not scored
            p20 = _psnr_rows(out[:, len(BANDS_10M):], hr20, m20)
            for k, band in enumerate(BANDS_20M):
                rows.append({**base, "model": name, "band": band, "group": "20m", "scoring": "direct",
                             "psnr": float(p20[k]), "psnr_bicubic": float(p_nat20[k]),
                             "gain_db": float(p20[k] - p_nat20[k]),
                             "psnr_bicubic_native": float(p_nat20[k]), "gain_db_native": float(p20[k] - p_nat20[k])})
            continue
        if keep is not None:
            keep[name] = (lr10, out[:, : len(BANDS_10M)], hr10, bic10)
        p10 = _psnr_rows(out[:, : len(BANDS_10M)], hr10, m10)
        for k, band in enumerate(BANDS_10M):
            rows.append({**base, "model": name, "band": band, "group": "10m", "scoring": "direct",
                         "psnr": float(p10[k]), "psnr_bicubic": float(p_bic10[k]),
                         "gain_db": float(p10[k] - p_bic10[k]), "psnr_bicubic_native": None,
                         "gain_db_native": None})
        if ten_m_alone:
            continue
        out20 = out[:, len(BANDS_10M):]
        for scoring in SCORINGS:
            p20 = _psnr_rows(score_20m(out20, scoring), hr20, m20)
            for k, band in enumerate(BANDS_20M):
                rows.append({**base, "model": name, "band": band, "group": "20m", "scoring": scoring,
                             "psnr": float(p20[k]), "psnr_bicubic": float(p_bic20[scoring][k]),
                             "gain_db": float(p20[k] - p_bic20[scoring][k]),
                             "psnr_bicubic_native": float(p_nat20[k]), "gain_db_native": float(p20[k] - p_nat20[k])})
    return rows


def worst_case(rows: Sequence[dict]) -> list[dict]:
    """Per model, scene, band and scoring: the lowest ``gain_db`` over the operators in ``rows`` (``min_gain_db``),
    the operator that gave it (``degradation``), the number of operators (``operators``) and how many of them
    leave the band below bicubic (``below_bicubic``). NaN gains (no valid pixel) are left out."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["scene"], r["band"], r["scoring"]), []).append(r)
    out = []
    for (model, scene, band, scoring), rs in groups.items():
        finite = [r for r in rs if r["gain_db"] is not None and np.isfinite(r["gain_db"])]
        w = min(finite, key=lambda r: r["gain_db"]) if finite else None
        out.append({
            "model": model, "scene": scene, "band": band, "group": "10m" if band in BANDS_10M else "20m",
            "scoring": scoring, "min_gain_db": None if w is None else float(w["gain_db"]),
            "degradation": None if w is None else w["degradation"], "operators": len(rs),
            "below_bicubic": sum(1 for r in finite if r["gain_db"] < 0),
        })
    return out


def summarize_family(rows: Sequence[dict], matched: str = MATCHED_DEGRADATION) -> dict:
    """Per model, band group and scoring: ``mean_gain_db`` per operator (over scenes and bands), ``matched_mean_
    gain_db`` (the training operator ``matched``), ``worst_operator`` / ``worst_operator_mean_gain_db`` (the
    operator with the lowest mean), ``min_gain_db`` and where (the lowest single band/scene/operator gain),
    ``below_bicubic`` (how many band/scene/operator gains are below 0 out of ``count``)."""
    out: dict = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        out[model] = {}
        for group, names in _GROUPS:
            for scoring in dict.fromkeys(r["scoring"] for r in rows if r["band"] in names):
                rs = [r for r in rows if r["model"] == model and r["band"] in names and r["scoring"] == scoring]
                if not rs:
                    continue
                per_op = {d: _nanmean(r["gain_db"] for r in rs if r["degradation"] == d)
                          for d in dict.fromkeys(r["degradation"] for r in rs)}
                finite_ops = {d: v for d, v in per_op.items() if np.isfinite(v)}
                wop = min(finite_ops, key=finite_ops.get) if finite_ops else None
                finite = [r for r in rs if np.isfinite(r["gain_db"])]
                low = min(finite, key=lambda r: r["gain_db"]) if finite else None
                out[model][f"{group}/{scoring}"] = {
                    "mean_gain_db": per_op,
                    "matched_mean_gain_db": per_op.get(matched),
                    "worst_operator": wop,
                    "worst_operator_mean_gain_db": None if wop is None else finite_ops[wop],
                    "min_gain_db": _nanmin(r["gain_db"] for r in rs),
                    "min_at": None if low is None else {k: low[k] for k in ("scene", "band", "degradation")},
                    "mean_gain_db_native": (_nanmean(r["gain_db_native"] for r in rs)
                                            if group == "20m" else None),
                    "below_bicubic": sum(1 for r in finite if r["gain_db"] < 0),
                    "count": len(rs),
                }
    return out


def evaluate_family(
    model: Any,
    scenes: Sequence[Any],
    *,
    peer: Any = None,
    compare: Sequence[Any] = (),
    root: str | Path | None = None,
    degradations: Sequence[str] = FAMILY,
    engine: str = "onnx",
    crop: int | None = None,
    border: int = 8,
    tile: int = 256,
    threads: int | None = None,
    scene_sets: Mapping[str, Sequence[str]] | None = None,
    notes: Sequence[str] = (),
    opensr_test: Callable[[dict], dict] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Score ``model`` (and the ``peer``, a Predictor-like callable such as
    :class:`~sr_core.evaluation.peer.OnnxPeer`) and the models of ``compare`` (names, folders or predictors, role
    ``"compare"``) on ``scenes`` under every operator of ``degradations``, the 20 m
    bands under both scorings (module docstring). ``model``, ``scenes``, ``root``, ``engine``, ``crop``, ``border``,
    ``tile``, ``threads`` as in :func:`sr_core.evaluation.core.evaluate_model`. ``scene_sets``: named scene lists
    recorded in the result (the report and selection sets); ``notes``: lines the report prints.
    ``opensr_test(triplets)``: called once with, per model name and scene, the 10 m bands' ``(lr, sr, hr, bicubic)``
    numpy arrays of the matched operator; its dict is stored under ``"opensr_test"``.

    Returns a JSON-ready dict: ``models`` (name -> info), ``settings``, ``scenes``, ``scene_sets``, ``notes``,
    ``rows`` (per model, scene, operator, band, scoring), ``worst_case`` (:func:`worst_case`), ``summary``
    (:func:`summarize_family`), ``opensr_test``, ``metadata``.
    """
    t0 = time.perf_counter()
    degradations, border, tile = _check_run(engine, scenes, degradations, crop, border, tile)
    if not degradations:
        raise ValueError("degradations: give at least one operator")
    pred = _resolve_predictor(model, engine, threads, ten_m_alone=True, sharpen=True)
    info = _model_info(pred)
    models: dict[str, Any] = {info["name"]: pred}
    infos = {info["name"]: {**info, "role": "model"}}
    for other in compare:
        op = _resolve_predictor(other, engine, threads, ten_m_alone=True, sharpen=True)
        oi = _model_info(op)
        label = oi["name"]
        if label in models and oi.get("version") and oi["version"] != infos[label].get("version"):
            label = f"{label} {oi['version']}"  # another version of a model in the run: named with its version
        if label in models:
            raise ValueError(f"compare: model {label!r} is already in the run")
        models[label] = op
        infos[label] = {**oi, "name": label, "role": "compare"}
    if peer is not None:
        for attr in ("scale", "margin", "bands", "out_bands"):
            if not hasattr(peer, attr):
                raise ValueError(f"peer must be a Predictor-like callable with .{attr}, got {type(peer).__name__}")
        if tuple(peer.bands) != MODEL_BANDS_10 or tuple(peer.out_bands) != MODEL_BANDS_10 or int(peer.scale) != 2:
            raise ValueError("peer must take and return the 10 bands of MODEL_BANDS_10 at scale 2")
        pname = str(getattr(peer, "name", "peer"))
        if pname in models:
            pname = f"{pname} (peer)"
        models[pname] = peer
        infos[pname] = {"name": pname, "role": "peer", "engine": getattr(peer, "engine", None),
                        "margin": int(peer.margin), "path": str(getattr(peer, "path", "")) or None,
                        "convention": repr(getattr(peer, "convention", None))}
    radius = nodata_radius(max(int(m.margin) for m in models.values()))
    say = progress or (lambda msg: None)
    matched = MATCHED_DEGRADATION if MATCHED_DEGRADATION in degradations else degradations[0]
    rows: list[dict] = []
    ids: list[str] = []
    triplets: dict[str, dict[str, tuple]] = {n: {} for n in models}
    for item in scenes:
        scene = _scored_scene(item, root, crop=crop, border=border)
        ids.append(scene.id)
        for dname in degradations:
            say(f"{scene.id}: {dname} ({', '.join(models)})")
            keep: dict | None = {} if (opensr_test is not None and dname == matched) else None
            rows += _scene_rows(models, scene, dname, tile=tile, border=border, radius=radius, keep=keep)
            if keep:
                b = border
                for n, (lr, sr, hr, bic) in keep.items():
                    c1, c2 = slice(b // 2, lr.shape[-2] - b // 2), slice(b // 2, lr.shape[-1] - b // 2)
                    h1, h2 = slice(b, hr.shape[-2] - b), slice(b, hr.shape[-1] - b)
                    triplets[n][scene.id] = tuple(
                        t[0][..., r1, r2].numpy().astype(np.float32)
                        for t, (r1, r2) in ((lr, (c1, c2)), (sr, (h1, h2)), (hr, (h1, h2)), (bic, (h1, h2)))
                    )
    osr = None
    if opensr_test is not None:
        say("opensr-test metrics")
        osr = opensr_test(triplets)
    return {
        "models": infos,
        "settings": {
            "degradations": list(degradations),
            "matched_degradation": matched,
            "scorings": {"10m": ["direct"], "20m": (["direct"] if any(int(m.scale) == 1 for m in models.values())
                                                    else []) + list(SCORINGS)},
            "crop": crop,
            "border": border,
            "tile": tile,
            "nodata_radius": radius,
            "data_range": 1.0,
            "root": None if root is None else str(root),
        },
        "scenes": ids,
        "scene_sets": {k: [str(s) for s in v] for k, v in (scene_sets or {}).items()},
        "notes": [str(n) for n in notes],
        "rows": rows,
        "worst_case": worst_case(rows),
        "summary": summarize_family(rows, matched),
        "opensr_test": osr,
        "metadata": _metadata(time.perf_counter() - t0),
    }
