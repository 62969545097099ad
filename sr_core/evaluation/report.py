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

__all__ = ["render_markdown", "write_report", "write_report_files"]

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
