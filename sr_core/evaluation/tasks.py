"""Task-based assessment of super-resolution (``s2sr evaluate --tasks``).

Wald protocol on whole validation scenes: the real 10 m bands are the reference ("HR"); the model input is the
scene degraded by 2 with the sensor MTF (:func:`sr_core.datasets.patches.wald_scene_input`), so every output lies
on the real 10 m grid, the scale the task networks were trained at. For each task network the masks
(``sigmoid(logit) >= 0.5``) are computed on

- ``lr``: the degraded 10 m bands, nearest-upsampled x2 (each 20 m pixel as 2 x 2 pixels),
- ``bicubic``: the same, bicubic-upsampled x2 (:func:`sr_core.archs._common.bicubic_upsample`),
- every SR model (its 10 m-band outputs),
- ``hr``: the real 10 m bands,

and scored per task against the automatic masks of the real image (:func:`sr_core.tasks.labels.auto_labels`):
Dice, IoU, precision, recall (pixel level) and, for built-up, instance F1 at IoU 0.25 (connected components,
:func:`sr_core.metrics.instance_f1`); ``dice_vs_task_hr`` is the Dice against the task network's own mask on
HR (what the task-driven training loss targets). Pixels within ``border`` of the edge and invalid pixels are
left out. Image quality of each SR model on the same pairs: cPSNR / cSSIM (10 m bands, ``data_range=1``,
:func:`sr_core.metrics.cpsnr`), reflectance consistency L1 ``|degrade(sr) - lr|`` (10 m bands).

OSM (scenes with ``osm_landuse_water.gpkg`` in their folder): the same Wald masks against the OSM polygons
rasterised at 10 m, and a full-resolution check: the task network on the real 10 m image (vs OSM at 10 m) and
on the x2 outputs of bicubic and of each SR model applied to the real 10 m input (vs OSM at 5 m).

Expected order per task (mean Dice over scenes): ``lr < bicubic <= sr <= hr`` -- reported per model, not
enforced.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sr_core.archs import get_arch
from sr_core.archs._common import bicubic_upsample
from sr_core.bands import BANDS_10M, MODEL_BANDS_10
from sr_core.datasets.patches import Region, load_scene_tensors, make_wald_input, parse_scene_spec, wald_scene_input
from sr_core.evaluation.common import crop_border, predict_tiled
from sr_core.evaluation.report import write_report_files
from sr_core.io import read_scene
from sr_core.metrics import cpsnr, cssim, dice, instance_f1, iou, precision, recall, reflectance_consistency
from sr_core.models import load_predictor
from sr_core.models.network import SRModel
from sr_core.tasks.labels import TASK_NAMES, auto_labels, rasterize_osm, valid_mask
from sr_core.tasks.nets import load_task_net, predict_probs

__all__ = [
    "assess_tasks",
    "load_sr_model",
    "render_tasks_markdown",
    "render_variants_table",
    "run_task_assessment",
    "segmentation_scores",
]

OSM_FILE = "osm_landuse_water.gpkg"


def segmentation_scores(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, *,
                        instances: bool = False) -> dict[str, float]:
    """Dice, IoU, precision, recall of bool masks ``(H, W)`` over ``valid`` (+ instance F1 at IoU 0.25), and the
    pixel counts ``tp``, ``fp``, ``fn`` (for pooling over scenes)."""
    pv, tv = pred & valid, target & valid
    out = {
        "tp": int((pv & tv).sum()),
        "fp": int((pv & ~tv).sum()),
        "fn": int((~pv & tv).sum()),
        "dice": float(dice(pred, target, mask=valid)),
        "iou": float(iou(pred, target, mask=valid)),
        "precision": float(precision(pred, target, mask=valid)),
        "recall": float(recall(pred, target, mask=valid)),
    }
    if instances:
        out["instance_f1_iou0.25"] = float(instance_f1(pred & valid, target & valid, iou_threshold=0.25))
    return out


# ----------------------------------------------------------------------------------------------- SR models


class _TorchSR:
    """Predictor-like wrapper of an :class:`sr_core.models.network.SRModel` (torch, numpy in/out)."""

    def __init__(self, model: nn.Module, name: str) -> None:
        self.model = model.eval()
        self.name = name
        self.scale = int(model.scale)
        self.receptive_field = int(model.receptive_field)
        self.margin = self.receptive_field // 2
        self.bands = self.out_bands = tuple(MODEL_BANDS_10)

    @torch.no_grad()
    def __call__(self, lr: np.ndarray) -> np.ndarray:
        return self.model(torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32))).numpy()


def load_sr_model(spec: str | Path, *, engine: str = "torch"):
    """An SR predictor from a shipped model name / package folder (:func:`sr_core.models.load_predictor`) or a
    training checkpoint file (``runs/<run>/best.pt``, network + normalisation of :class:`Trainer`)."""
    p = Path(spec)
    if p.is_file() and p.suffix == ".pt":
        st = torch.load(p, map_location="cpu", weights_only=False)
        if not {"arch", "arch_kwargs", "model", "mean", "std"} <= set(st):
            raise ValueError(f"{p}: not a training checkpoint (needs arch, arch_kwargs, model, mean, std)")
        net = get_arch(st["arch"], **st["arch_kwargs"])
        m = SRModel(net, st["mean"], st["std"], list(range(len(st["mean"]))))
        m.load_state_dict(st["model"])
        return _TorchSR(m, str(p))
    return load_predictor(spec, engine=engine)


def _sr(pred: Any, lr: torch.Tensor, tile: int = 256) -> torch.Tensor:
    return predict_tiled(pred, lr.float(), tile)


# ----------------------------------------------------------------------------------------------- assessment


def _scene_osm(root: Path, spec: Any, shape10: tuple[int, int]) -> tuple[Any, tuple] | None:
    """(10 m transform of the region, crs) if the scene folder has an OSM file."""
    scene_id = spec.scene if isinstance(spec, Region) else str(spec)
    folder = root / scene_id
    if not (folder / OSM_FILE).is_file():
        return None
    sc = read_scene(folder)
    a, b, c, d, e, f = sc.transform[:6]
    y0, x0 = (spec.y0, spec.x0) if isinstance(spec, Region) else (0, 0)
    return folder / OSM_FILE, (a, b, c + x0 * a, d, e, f + y0 * e), sc.crs


def _masks(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return predict_probs(net, x.float())[0] >= 0.5


def _quality(scene_id: str, model: str, sr10: torch.Tensor, hr10: torch.Tensor, lr10: torch.Tensor,
             border: int) -> dict[str, Any]:
    """Image quality of one model's 10 m bands on one scene: cPSNR / cSSIM against ``hr10`` (``border`` left out)
    and the reflectance consistency L1 to the model input ``lr10``."""
    s, h = crop_border(sr10, border).double(), crop_border(hr10, border).double()
    return {
        "scene": scene_id,
        "model": model,
        "cpsnr": float(cpsnr(s, h, data_range=1.0).mean()),
        "cssim": float(cssim(s, h, data_range=1.0).mean()),
        "consistency_l1": float(reflectance_consistency(sr10.double(), lr10.double(), ratio=2,
                                                        bands=list(BANDS_10M)).mean()),
    }


def assess_tasks(
    models: Mapping[str, Any],
    task_nets: Mapping[str, str | Path],
    scenes: Sequence[Any],
    *,
    root: str | Path = "../shared/data/s2",
    border: int = 8,
    full_resolution_osm: bool = True,
    instance_f1: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the assessment (see the module docstring). ``models``: display name -> SR model spec (see
    :func:`load_sr_model`) or predictor; ``task_nets``: display name -> task network path / shipped name;
    ``scenes``: scene ids, ``ID[y0:y1,x0:x1]`` strings or region dicts. ``instance_f1=False`` skips the
    object matching (its dense IoU matrix grows with the square of the number of objects: slow on large scenes
    with thousands of built-up blobs). Returns a JSON-able dict."""
    log = progress or (lambda s: None)
    if isinstance(border, bool) or not isinstance(border, int) or border < 0:
        raise ValueError(f"border must be an int >= 0, got {border!r}")
    if not models:
        raise ValueError("models must name at least one SR model")
    if not task_nets:
        raise ValueError("task_nets must name at least one task network")
    root = Path(root)
    t0 = time.time()
    preds = {k: (load_sr_model(v) if isinstance(v, (str, Path)) else v) for k, v in models.items()}
    nets = {}
    for k, v in task_nets.items():
        net, names = load_task_net(v)
        if list(names) != list(TASK_NAMES):
            raise ValueError(f"task network {k}: tasks {names}, expected {list(TASK_NAMES)}")
        nets[k] = net
    rows: list[dict] = []
    quality: list[dict] = []
    for item in scenes:
        spec = parse_scene_spec(item)
        st = load_scene_tensors(root, spec)
        log(f"scene {st.id}")
        batch = wald_scene_input(st)
        lr10 = batch.lr10
        images = {
            "lr": lr10.repeat_interleave(2, -2).repeat_interleave(2, -1),
            "bicubic": bicubic_upsample(lr10, 2).clamp_min(0),
        }
        for name, pred in preds.items():
            images[name] = _sr(pred, batch.lr)[:, :4]
            quality.append(_quality(st.id, name, images[name], st.hr10[None], lr10, border))
        quality.append(_quality(st.id, "bicubic", images["bicubic"], st.hr10[None], lr10, border))
        images["hr"] = st.hr10[None]
        labels = crop_border(auto_labels(st.hr10, st.hr20), border)
        valid = crop_border(valid_mask(st.hr10, st.hr20), border)
        osm = None
        osm_info = _scene_osm(root, spec, st.shape10)
        if osm_info is not None:
            path, tr, crs = osm_info
            o = rasterize_osm(path, transform=tr, shape10=st.shape10, resolution=10, crs=crs)
            osm = torch.stack([crop_border(torch.from_numpy(o[t]), border) for t in TASK_NAMES])
        for tname, net in nets.items():
            masks = {k: crop_border(_masks(net, v), border) for k, v in images.items()}
            for src, m in masks.items():
                for k, task in enumerate(TASK_NAMES):
                    base = {"scene": st.id, "task_net": tname, "input": src, "task": task}
                    sc = segmentation_scores(m[k], labels[k], valid, instances=instance_f1 and task == "builtup")
                    sc["dice_vs_task_hr"] = float(segmentation_scores(m[k], masks["hr"][k], valid)["dice"])
                    rows.append({**base, "reference": "auto", **sc})
                    if osm is not None:
                        rows.append({**base, "reference": "osm_10m",
                                     **segmentation_scores(m[k], osm[k], valid, instances=instance_f1 and task == "builtup")})
        if osm_info is not None and full_resolution_osm:
            rows += _full_res_osm(st, osm_info, preds, nets, border, log, instance_f1)
    result = {
        "protocol": "Wald x2 (MTF degradation) on the validation scenes; task masks sigmoid >= 0.5 on the 10 m "
        "bands; references: automatic masks of the real 10 m image (auto) and OSM polygons (osm_10m, osm_5m)",
        "models": {k: (str(v) if isinstance(v, (str, Path)) else type(v).__name__) for k, v in models.items()},
        "task_nets": {k: str(v) for k, v in task_nets.items()},
        "tasks": list(TASK_NAMES),
        "border": border,
        "rows": rows,
        "quality": quality,
        "runtime_s": round(time.time() - t0, 1),
    }
    result["summary"] = summarize_tasks(result)
    return result


def _full_res_osm(st, osm_info, preds, nets, border, log, instance_f1: bool = True) -> list[dict]:
    """Real inputs: task net on the real 10 m image (vs OSM 10 m) and on x2 outputs (vs OSM 5 m)."""
    log(f"scene {st.id}: full-resolution OSM check")
    path, tr, crs = osm_info
    o5 = rasterize_osm(path, transform=tr, shape10=st.shape10, resolution=5, crs=crs)
    o10 = rasterize_osm(path, transform=tr, shape10=st.shape10, resolution=10, crs=crs)
    x = make_wald_input(st.hr10[None], st.hr20[None])
    v10 = valid_mask(st.hr10, st.hr20)
    v5 = v10.repeat_interleave(2, -2).repeat_interleave(2, -1)
    ups = {"bicubic": bicubic_upsample(st.hr10[None], 2).clamp_min(0)}
    for name, pred in preds.items():
        ups[name] = _sr(pred, x)[:, :4]
    rows = []
    for tname, net in nets.items():
        m10 = crop_border(_masks(net, st.hr10[None]), border)
        for k, task in enumerate(TASK_NAMES):
            rows.append({"scene": st.id, "task_net": tname, "input": "hr", "task": task, "reference": "osm_10m_real",
                         **segmentation_scores(m10[k], crop_border(torch.from_numpy(o10[task]), border),
                                               crop_border(v10, border), instances=instance_f1 and task == "builtup")})
        for src, img in ups.items():
            m5 = crop_border(_masks(net, img), 2 * border)
            for k, task in enumerate(TASK_NAMES):
                rows.append({"scene": st.id, "task_net": tname, "input": src, "task": task, "reference": "osm_5m",
                             **segmentation_scores(m5[k], crop_border(torch.from_numpy(o5[task]), 2 * border),
                                                   crop_border(v5, 2 * border), instances=instance_f1 and task == "builtup")})
    return rows


def _mean(v: Sequence[float]) -> float:
    v = [x for x in v if x is not None and not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


def summarize_tasks(result: Mapping[str, Any]) -> dict[str, Any]:
    """Dice per (reference, task net, input, task) pooled over scenes (``2 TP / (2 TP + FP + FN)`` of the summed
    pixel counts: a class absent from a scene does not count as 0 or NaN), built-up instance F1 (mean over
    scenes with objects), mean task Dice (mean over the tasks), quality per model (means over scenes) and the
    order checks ``lr < bicubic <= sr <= hr`` on the auto-label Dice (None where a Dice is undefined)."""
    rows = result["rows"]
    out: dict[str, Any] = {"dice": {}, "order": {}, "quality": {}, "mean_task_dice": {}}
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["reference"], r["task_net"], r["input"], r["task"]), []).append(r)
    for (ref, tn, src, task), rs in sorted(groups.items()):
        tp, fp, fn = (sum(r[k] for r in rs) for k in ("tp", "fp", "fn"))
        d = out["dice"].setdefault(ref, {}).setdefault(tn, {}).setdefault(src, {})
        d[task] = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else math.nan
        if task == "builtup":
            d["builtup_instance_f1"] = _mean([r.get("instance_f1_iou0.25", math.nan) for r in rs])
    for ref, by_tn in out["dice"].items():
        for tn, by_src in by_tn.items():
            for src, d in by_src.items():
                out["mean_task_dice"].setdefault(ref, {}).setdefault(tn, {})[src] = _mean([d[t] for t in TASK_NAMES if t in d])
    models = list(result["models"])
    auto = out["dice"].get("auto", {})
    for tn, by_src in auto.items():
        for m in models:
            chk: dict[str, Any] = {}
            for task in TASK_NAMES:
                try:
                    lr, bic, sr, hr = (by_src[s][task] for s in ("lr", "bicubic", m, "hr"))
                except KeyError:
                    continue
                if any(math.isnan(v) for v in (lr, bic, sr, hr)):
                    chk[task] = None
                    continue
                chk[task] = {"lr<bicubic": lr < bic, "bicubic<=sr": bic <= sr, "sr<=hr": sr <= hr}
            out["order"].setdefault(tn, {})[m] = chk
    for m in dict.fromkeys(q["model"] for q in result["quality"]):
        qs = [q for q in result["quality"] if q["model"] == m]
        out["quality"][m] = {k: _mean([q[k] for q in qs]) for k in ("cpsnr", "cssim", "consistency_l1")}
    return out


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def render_tasks_markdown(result: Mapping[str, Any]) -> str:
    """Markdown report of :func:`assess_tasks`."""
    s = result["summary"]
    lines = ["# Task-based assessment", "", result["protocol"], "",
             (f"Scenes: {', '.join(sorted({r['scene'] for r in result['rows']}))}. Border {result['border']} px. "
              f"Runtime {result['runtime_s']} s."), "", "## Image quality (Wald, 10 m bands, means over scenes)", "",
             "| model | cPSNR (dB) | cSSIM | consistency L1 |", "|---|---|---|---|"]
    for m, q in s["quality"].items():
        lines.append(f"| {m} | {_fmt(q['cpsnr'], 2)} | {_fmt(q['cssim'], 4)} | {_fmt(q['consistency_l1'], 5)} |")
    for ref, by_tn in s["dice"].items():
        lines += ["", f"## Dice vs {ref} (pixels pooled over scenes; instance F1: mean over scenes)", ""]
        for tn, by_src in by_tn.items():
            lines += [f"Task network `{tn}`:", "", "| input | " + " | ".join(TASK_NAMES) + " | built-up inst. F1 | mean |",
                      "|---|" + "---|" * (len(TASK_NAMES) + 2)]
            for src, d in by_src.items():
                lines.append(f"| {src} | " + " | ".join(_fmt(d.get(t)) for t in TASK_NAMES)
                             + f" | {_fmt(d.get('builtup_instance_f1'))} | {_fmt(s['mean_task_dice'][ref][tn][src])} |")
            lines.append("")
    lines += ["## Expected order lr < bicubic <= SR <= hr (Dice vs auto labels)", ""]
    for tn, by_m in s["order"].items():
        for m, chk in by_m.items():
            parts = [f"{t}: " + ("n/a" if c is None else ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in c.items()))
                     for t, c in chk.items()]
            lines.append(f"- `{tn}` / `{m}`: " + "; ".join(parts))
    return "\n".join(lines) + "\n"


def render_variants_table(result: Mapping[str, Any], *, baseline: str, reference: str = "auto") -> str:
    """Markdown table, one row per SR model (training variant): cPSNR, cSSIM, consistency L1, Dice per task and
    mean task Dice for every task network, and the differences to ``baseline`` (mean Dice, cPSNR)."""
    s = result["summary"]
    models = [m for m in result["models"]]
    tns = list(s["dice"].get(reference, {}))
    head = ["variant", "cPSNR (dB)", "cSSIM", "consistency L1"]
    for tn in tns:
        head += [f"{tn} {t}" for t in TASK_NAMES] + [f"{tn} mean", f"{tn} d mean"]
    head += ["d cPSNR (dB)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    base_q = s["quality"].get(baseline, {})
    for m in ["bicubic", *models]:
        q = s["quality"].get(m, {})
        cells = [m, _fmt(q.get("cpsnr"), 2), _fmt(q.get("cssim"), 4), _fmt(q.get("consistency_l1"), 5)]
        for tn in tns:
            d = s["dice"][reference][tn].get(m, {})
            mean = s["mean_task_dice"][reference][tn].get(m, math.nan)
            base = s["mean_task_dice"][reference][tn].get(baseline, math.nan)
            cells += [_fmt(d.get(t)) for t in TASK_NAMES] + [_fmt(mean), f"{mean - base:+.3f}"]
        cells.append(f"{q.get('cpsnr', math.nan) - base_q.get('cpsnr', math.nan):+.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_task_assessment(models: Mapping[str, Any], task_nets: Mapping[str, Any], scenes: Sequence[Any],
                        out_dir: str | Path, *, name: str = "tasks", **kwargs: Any) -> tuple[dict, Path, Path]:
    """:func:`assess_tasks`, then write ``out_dir/<name>.json`` and ``out_dir/<name>.md``."""
    res = assess_tasks(models, task_nets, scenes, **kwargs)
    jp, mp = write_report_files(out_dir, name, json.dumps(res, indent=1, default=str), render_tasks_markdown(res))
    return res, jp, mp
