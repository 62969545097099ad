"""JSON and Markdown reports of an evaluation result, and the writing of a report's two files (numpy only)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sr_core.bands import BANDS_10M, BANDS_20M, MODEL_BANDS_10

__all__ = ["render_family_markdown", "render_markdown", "write_family_report", "write_report", "write_report_files"]

_GROUPS = (("10m", BANDS_10M), ("20m", BANDS_20M))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "scene"


def _nanmean(v: Iterable[float]) -> float:
    a = np.asarray([x for x in v if x is not None], dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else math.nan


def _nanmin(v: Iterable[float]) -> float:
    a = np.asarray([x for x in v if x is not None], dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.min()) if a.size else math.nan


def _nanmax(v: Iterable[float]) -> float:
    a = np.asarray([x for x in v if x is not None], dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.max()) if a.size else math.nan


# ------------------------------------------------------------------------------------------------- reports


def _clean(obj: Any) -> Any:
    """JSON-safe copy: non-finite floats become None (nodata stays null), numpy scalars become Python ones."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, float):
        text = f"{v:.{nd}f}"
        return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.000"
    return str(v)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def render_markdown(result: dict) -> str:
    """The Markdown report of an :func:`evaluate_model` result (figure links relative to the report)."""
    m, st, md = result["model"], result["settings"], result.get("metadata", {})
    git = md.get("git", {})
    lines = [
        f"# Quality report: `{m['name']}`" + (f" (version {m['version']})" if m.get("version") else ""),
        "",
        f"- engine: {m.get('engine')}, receptive field {m.get('receptive_field')} px, tiling margin {m['margin']} px",
        f"- scenes: {', '.join(result['scenes'])}",
        (
            f"- settings: degradations {', '.join(st['degradations'])}; crop {st['crop']}; border {st['border']} px "
            f"(10 m grid); HF cutoff {st['hf_cutoff']} cycles / 5 m px"
        ),
        f"- date (UTC): {md.get('date_utc')}; git commit {git.get('commit')}"
        + (" (uncommitted changes)" if git.get("dirty") else ""),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in md.get("versions", {}).items() if v),
        (
            f"- machine: {md.get('machine', {}).get('platform')}, {md.get('machine', {}).get('cpu_count')} CPUs; "
            f"runtime {md.get('runtime_s')} s"
        ),
        "",
        (
            "Reflectance, data range 1. Wald protocol: input degraded by 2, originals as targets; 10 m bands scored on"
            " the 10 m grid, 20 m bands on the 20 m grid after the MTF degradation by 2 of the output. `gain` is over"
            " bicubic x2 of the same model input through the same scoring (an untrained residual network scores 0);"
            " `gain native` is over bicubic x2 of the 40 m data straight onto the 20 m grid (20 m bands; the"
            " stronger baseline, as in training validation). Full resolution: the real input; consistency = mean"
            " |degrade(SR) - native band| (x2 for 10 m, x4 for 20 m bands); shift in 10 m pixels by phase"
            " correlation; HF ratio = SR / bicubic power above the cutoff."
        ),
        "",
        "## Summary",
        "",
    ]
    rows = []
    for dname, groups in result["summary"].get("wald", {}).items():
        for g, s in groups.items():
            rows.append(
                [
                    dname,
                    g,
                    _fmt(s["mean_gain_db"], 3),
                    _fmt(s["min_gain_db"], 3),
                    _fmt(s["mean_gain_db_native"], 3),
                    _fmt(s["mean_ssim_sr"], 4),
                    _fmt(s["mean_ssim_bicubic"], 4),
                    _fmt(s["mean_sam_sr"], 3),
                    _fmt(s["mean_sam_bicubic"], 3),
                    _fmt(s["mean_ergas_sr"], 3),
                    _fmt(s["mean_ergas_bicubic"], 3),
                ]
            )
    lines += _table(
        [
            "degradation",
            "bands",
            "mean gain dB",
            "min gain dB",
            "mean gain native dB",
            "SSIM SR",
            "SSIM bicubic",
            "SAM SR",
            "SAM bicubic",
            "ERGAS SR",
            "ERGAS bicubic",
        ],
        rows,
    )
    fr = result["summary"].get("full_resolution", {})
    if fr:
        lines += ["", "Full resolution:", ""]
        lines += _table(
            [
                "bands",
                "consistency L1 SR",
                "consistency L1 bicubic",
                "max shift px",
                "mean HF ratio",
                "SAM SR",
                "SAM bicubic",
            ],
            [
                [
                    g,
                    _fmt(s["mean_consistency_l1_sr"], 5),
                    _fmt(s["mean_consistency_l1_bicubic"], 5),
                    _fmt(s["max_shift_px"], 3),
                    _fmt(s["mean_hf_ratio"], 3),
                    _fmt(s["mean_sam_sr"], 3),
                    _fmt(s["mean_sam_bicubic"], 3),
                ]
                for g, s in fr.items()
            ],
        )
    # per-band means over scenes
    if result["wald"]:
        lines += ["", "## Wald protocol: mean PSNR gain per band (dB, over scenes)", ""]
        dnames = st["degradations"]
        rows = []
        for band in MODEL_BANDS_10:
            r = [band]
            for d in dnames:
                sel = [x for x in result["wald"] if x["band"] == band and x["degradation"] == d]
                r += [
                    _fmt(_nanmean(x["gain_db"] for x in sel), 3),
                    _fmt(_nanmean(x["gain_db_native"] for x in sel), 3),
                ]
            rows.append(r)
        header = ["band"] + [h for d in dnames for h in (f"gain {d}", f"gain native {d}")]
        lines += _table(header, rows)
        for d in dnames:
            lines += ["", f"### Per scene and band: {d}", ""]
            lines += _table(
                [
                    "scene",
                    "band",
                    "PSNR SR",
                    "PSNR bicubic",
                    "gain dB",
                    "PSNR bicubic native",
                    "gain native dB",
                    "SSIM SR",
                    "SSIM bicubic",
                ],
                [
                    [
                        x["scene"],
                        x["band"],
                        _fmt(x["psnr_sr"]),
                        _fmt(x["psnr_bicubic"]),
                        _fmt(x["gain_db"], 3),
                        _fmt(x["psnr_bicubic_native"]),
                        _fmt(x["gain_db_native"], 3),
                        _fmt(x["ssim_sr"], 4),
                        _fmt(x["ssim_bicubic"], 4),
                    ]
                    for x in result["wald"]
                    if x["degradation"] == d
                ],
            )
        lines += ["", "### Spectral fidelity per band group (SAM in degrees, ERGAS ratio 2)", ""]
        lines += _table(
            ["scene", "degradation", "bands", "SAM SR", "SAM bicubic", "ERGAS SR", "ERGAS bicubic"],
            [
                [
                    x["scene"],
                    x["degradation"],
                    x["group"],
                    _fmt(x["sam_sr"], 3),
                    _fmt(x["sam_bicubic"], 3),
                    _fmt(x["ergas_sr"], 3),
                    _fmt(x["ergas_bicubic"], 3),
                ]
                for x in result["wald_spectral"]
            ],
        )
    if result["full_resolution"]:
        lines += ["", "## Full resolution (real input)", ""]
        lines += _table(
            [
                "scene",
                "band",
                "consistency L1 SR",
                "consistency L1 bicubic",
                "shift dy px",
                "shift dx px",
                "shift px",
                "HF ratio",
            ],
            [
                [
                    x["scene"],
                    x["band"],
                    _fmt(x["consistency_l1_sr"], 5),
                    _fmt(x["consistency_l1_bicubic"], 5),
                    _fmt(x["shift_dy_px"], 3),
                    _fmt(x["shift_dx_px"], 3),
                    _fmt(x["shift_px"], 3),
                    _fmt(x["hf_ratio"], 3),
                ]
                for x in result["full_resolution"]
            ],
        )
        lines += ["", "Spectral consistency (SAM of the degraded SR against the native bands, degrees):", ""]
        lines += _table(
            ["scene", "bands", "SAM SR", "SAM bicubic"],
            [
                [x["scene"], x["group"], _fmt(x["sam_sr"], 3), _fmt(x["sam_bicubic"], 3)]
                for x in result["full_resolution_spectral"]
            ],
        )
    if result.get("figures"):
        lines += ["", "## Figures", ""]
        for sid, figs in result["figures"].items():
            lines += [f"### {sid}", ""]
            lines += [f"![{_slug(sid)} {kind}]({path})" for kind, path in figs.items()]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_report(result: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``out_dir/quality_<model>.json`` and ``.md``; returns both paths."""
    return write_report_files(out_dir, f"quality_{_slug(result['model']['name'])}",
                              json.dumps(_clean(result), indent=2, allow_nan=False) + "\n", render_markdown(result))


def write_report_files(out_dir: str | Path, stem: str, json_text: str, markdown: str) -> tuple[Path, Path]:
    """Write ``out_dir/<stem>.json`` and ``out_dir/<stem>.md`` (creating ``out_dir``); returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jp, mp = out / f"{stem}.json", out / f"{stem}.md"
    jp.write_text(json_text)
    mp.write_text(markdown)
    return jp, mp


# ------------------------------------------------------------------------------------------------- family report


def _sorted_models(result: dict) -> list[str]:
    return sorted(result["models"], key=lambda n: (result["models"][n].get("role") != "model", n))


def render_family_markdown(result: dict) -> str:
    """The Markdown report of a :func:`sr_core.evaluation.family.evaluate_family` result."""
    st, md = result["settings"], result.get("metadata", {})
    git = md.get("git", {})
    models = _sorted_models(result)
    ours = models[0]
    info = result["models"][ours]
    peers = [m for m in models if result["models"][m].get("role") == "peer"]
    title = f"# Operator family report: `{ours}`" + (f" (version {info['version']})" if info.get("version") else "")
    if peers:
        title += " beside " + ", ".join(f"`{p}` (peer)" for p in peers)
    lines = [title, ""]
    for k, v in result.get("scene_sets", {}).items():
        lines.append(f"- {k} scenes: {', '.join(v) if v else 'none'}")
    lines += [f"- note: {n}" for n in result.get("notes", [])]
    lines += [
        f"- scored scenes: {', '.join(result['scenes'])}",
        f"- operators: {', '.join(st['degradations'])} (matched = the training operator: {st['matched_degradation']})",
        f"- scorings of the 20 m bands: {', '.join(st['scorings']['20m'])}; border {st['border']} px (10 m grid); "
        f"crop {st['crop']}",
        f"- date (UTC): {md.get('date_utc')}; git commit {git.get('commit')}"
        + (" (uncommitted changes)" if git.get("dirty") else ""),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in md.get("versions", {}).items() if v),
        f"- machine: {md.get('machine', {}).get('platform')}, {md.get('machine', {}).get('cpu_count')} CPUs, "
        f"{md.get('machine', {}).get('torch_threads')} torch threads; runtime {md.get('runtime_s')} s",
    ]
    for p in peers:
        lines.append(f"- peer `{p}`: {result['models'][p].get('path')} ({result['models'][p].get('engine')})")
    lines += [
        "",
        "Wald protocol x2 on reflectance (data range 1): every model gets the same degraded input per operator. Gains"
        " in dB over bicubic of the same degraded bands (10 m bands x2, 20 m bands x4 to the output grid) scored"
        " through the same scoring. 10 m bands: the output against the original bands. 20 m bands: the output on the"
        " 10 m grid is brought to the 20 m truth grid by the physical step (Gaussian, sigma^2 = sigma_20^2 -"
        " sigma_10^2, then decimation) or by the 2 x 2 block mean; both are reported, and a model must beat bicubic"
        " under both. `native`: over bicubic x2 of the 40 m bands straight onto the 20 m grid. `20m/direct`: a"
        " scale-1 model's 20 m bands sharpened onto the grid of the 10 m bands, scored directly against the 20 m"
        " truth over that native bicubic (its 10 m bands are the input's and are not scored).",
        "",
        "## Summary (dB over bicubic)",
        "",
    ]
    rows = []
    keys = list(dict.fromkeys(k for m in models for k in result["summary"].get(m, {})))
    for key in keys:
        for m in models:
            s = result["summary"].get(m, {}).get(key)
            if s is None:
                continue
            at = s.get("min_at") or {}
            rows.append([
                key, f"`{m}`", _fmt(s["matched_mean_gain_db"], 2),
                f"{_fmt(s['worst_operator_mean_gain_db'], 2)} ({s['worst_operator']})",
                f"{_fmt(s['min_gain_db'], 2)} ({at.get('band')}, {at.get('degradation')}, {at.get('scene')})",
                f"{s['below_bicubic']} / {s['count']}",
                _fmt(s.get("mean_gain_db_native"), 2) if s.get("mean_gain_db_native") is not None else "",
            ])
    lines += _table(
        ["bands / scoring", "model", "matched mean", "worst operator: mean", "lowest single gain (where)",
         "below bicubic (band x scene x operator)", "mean over native bicubic"],
        rows,
    )
    lines += ["", "## Mean gain per operator (dB over bicubic, mean over scenes and bands)", ""]
    ops = st["degradations"]
    lines += _table(
        ["bands / scoring", "model", *ops],
        [[key, f"`{m}`", *(_fmt(result["summary"][m][key]["mean_gain_db"].get(d), 2) for d in ops)]
         for key in keys for m in models if key in result["summary"].get(m, {})],
    )
    lines += ["", "## Worst case per scene and band (lowest gain over the family, and its operator)", ""]
    wc = {(r["model"], r["scene"], r["band"], r["scoring"]): r for r in result["worst_case"]}
    combos = list(dict.fromkeys((r["scene"], r["band"], r["scoring"]) for r in result["worst_case"]))
    lines += _table(
        ["scene", "band", "scoring", *(f"`{m}`" for m in models)],
        [[sc, b, scoring, *(
            f"{_fmt(wc[(m, sc, b, scoring)]['min_gain_db'], 2)} ({wc[(m, sc, b, scoring)]['degradation']})"
            if (m, sc, b, scoring) in wc else "" for m in models)]
         for sc, b, scoring in combos],
    )
    osr = result.get("opensr_test")
    if osr:
        lines += ["", "## opensr-test (10 m bands, matched operator)", ""]
        if "skipped" in osr:
            lines.append(f"Skipped: {osr['skipped']}")
        else:
            names = ("reflectance", "spectral", "spatial", "synthesis", "im_metric", "om_metric", "ha_metric")
            lines.append(f"opensr-test {osr.get('version')} ({osr.get('environment')}), mean over scenes:")
            lines.append("")
            lines += _table(
                ["model", "reflectance L1", "spectral (deg)", "spatial (px)", "synthesis", "improvement",
                 "omission", "hallucination"],
                [[f"`{m}`", *(_fmt(v.get(k), 4) for k in names)] for m, v in osr["mean"].items()],
            )
            lines += ["", "Per scene:", ""]
            lines += _table(
                ["model", "scene", "improvement", "omission", "hallucination", "reflectance L1", "spectral (deg)"],
                [[f"`{m}`", sc, *(_fmt(v.get(k), 4) for k in ("im_metric", "om_metric", "ha_metric", "reflectance",
                                                                  "spectral"))]
                 for m, per in osr["per_scene"].items() for sc, v in per.items()],
            )
    lines += ["", "## Per scene, operator and band (PSNR dB)", ""]
    by = {(r["model"], r["scene"], r["degradation"], r["band"], r["scoring"]): r for r in result["rows"]}
    combos = list(dict.fromkeys((r["scene"], r["degradation"], r["band"], r["scoring"]) for r in result["rows"]))
    body = []
    for sc, d, b, scoring in combos:
        first = next(by[(m, sc, d, b, scoring)] for m in models if (m, sc, d, b, scoring) in by)
        cells = [sc, d, b, scoring, _fmt(first["psnr_bicubic"], 2)]
        for m in models:
            r = by.get((m, sc, d, b, scoring))
            cells += [_fmt(r["psnr"], 2), _fmt(r["gain_db"], 2)] if r else ["", ""]
        body.append(cells)
    lines += _table(
        ["scene", "operator", "band", "scoring", "PSNR bicubic", *(h for m in models for h in (f"`{m}`", "gain"))],
        body,
    )
    return "\n".join(lines).rstrip() + "\n"


def write_family_report(result: dict, out_dir: str | Path, stem: str | None = None) -> tuple[Path, Path]:
    """Write ``out_dir/quality_<model>_family.json`` and ``.md`` (or ``<stem>.json/.md``); returns both paths."""
    ours = _sorted_models(result)[0]
    return write_report_files(out_dir, stem or f"quality_{_slug(ours)}_family",
                              json.dumps(_clean(result), indent=2, allow_nan=False) + "\n",
                              render_family_markdown(result))
