"""The project's targets checked against the measurements, and the Markdown report of a results dict."""

from __future__ import annotations

from typing import Any

from benchmarks.throughput.timing import format_duration

__all__ = [
    "EVOLAND_FULL_TILE_S",
    "TARGET_FULL_TILE_S",
    "TARGET_OVERHEAD",
    "TARGET_RSS_BYTES",
    "evaluate_targets",
    "markdown_report",
]

#: Target: a full tile (10 bands, x2) on ONE CPU core in at most 30 minutes.
TARGET_FULL_TILE_S = 30 * 60.0
#: EVOLAND's published figure for the same job: 5 hours.
EVOLAND_FULL_TILE_S = 5 * 3600.0
#: Target: the whole path (UDF + emulator + I/O) at most 15 % slower than the bare forward pass.
TARGET_OVERHEAD = 0.15
#: Target: peak resident memory at most 2 GB (10**9 bytes) whatever the scene size.
TARGET_RSS_BYTES = 2 * 10**9


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The three targets against the measurements: full tile on one CPU core <= 30 min (best engine and
    tile at threads=1, per model), whole-path overhead <= 15 %, peak RSS <= 2 GB extrapolated to a full
    tile (and at every measured size)."""
    out: list[dict[str, Any]] = []
    one_core: dict[str, dict] = {}
    for r in results.get("forward", []):
        if r.get("device") == "cpu" and r.get("threads") == 1 and "full_tile_s" in r:
            cur = one_core.get(r["model"])
            if cur is None or r["full_tile_s"] < cur["full_tile_s"]:
                one_core[r["model"]] = r
    for name, r in one_core.items():
        out.append({
            "target": "full tile (10980 x 10980, x2) on one CPU core <= 30 min", "model": name,
            "value": r["full_tile_s"], "unit": "s", "limit": TARGET_FULL_TILE_S, "pass": r["full_tile_s"] <= TARGET_FULL_TILE_S,
            "detail": f"{r['engine']} tile {r['tile']}: {r['full_tile_s'] / 60:.1f} min "
                      f"({EVOLAND_FULL_TILE_S / r['full_tile_s']:.1f}x faster than EVOLAND's 5 h)",
        })
    for r in results.get("overhead", []):
        if "overhead" in r:
            out.append({
                "target": ("whole path (UDF + emulator + I/O) overhead <= 15 %" if r.get("path") == "udf-emulator"
                           else "whole path (s2sr superres) overhead <= 15 %"), "model": r["model"],
                "value": r["overhead"], "unit": "fraction", "limit": TARGET_OVERHEAD,
                "pass": r["overhead"] <= TARGET_OVERHEAD,
                "detail": _overhead_detail(r),
            })
    rss = results.get("rss")
    if rss and rss.get("points"):
        ok = [p for p in rss["points"] if p["rc"] == 0 and p["peak_rss_bytes"]]
        worst = max((p["peak_rss_bytes"] for p in ok), default=None)
        value = rss.get("full_tile_bytes", worst)
        if value is not None:
            out.append({
                "target": "peak RSS <= 2 GB whatever the scene size", "model": results.get("rss_model"),
                "value": value, "unit": "bytes", "limit": TARGET_RSS_BYTES,
                "pass": bool(value <= TARGET_RSS_BYTES and (worst or 0) <= TARGET_RSS_BYTES),
                "detail": f"{rss['path']}: " + ", ".join(f"{p['scene_px']} px -> {p['peak_rss_bytes'] / 1e6:.0f} MB" for p in ok)
                          + (f"; extrapolated to a full tile {value / 1e6:.0f} MB" if "full_tile_bytes" in rss
                             else "; measured sizes only (too small to extrapolate)"),
            })
    return out


def _fmt_diff(r: dict[str, Any]) -> str:
    if r.get("reference"):
        return "reference"
    d = r.get("max_abs_diff")
    return "" if d is None else f"{d:.1e}"


def _overhead_detail(r: dict[str, Any]) -> str:
    """One line on a whole-path result for the targets table."""
    workers = int(r.get("workers", 1) or 1)
    if workers > 1:
        alt = r.get("bare_alternatives") or {}
        unit = "chunk" if r.get("path") == "udf-emulator" else "tile"
        return (f"{r['engine']} {workers} {unit} workers x {r['threads']} engine thread(s) scene {r['scene_px']} px: "
                f"{100 * r['overhead']:.1f} % over the faster bare pass on {r.get('cores', workers)} cores "
                f"(tiles on {workers} workers {alt.get('workers_s', {}).get('median', float('nan')):.2f} s, "
                f"intra-op {alt.get('intra_op_threads', '?')} threads "
                f"{alt.get('intra_op_s', {}).get('median', float('nan')):.2f} s)")
    text = f"{r['engine']} threads={r['threads']} scene {r['scene_px']} px: {100 * r['overhead']:.1f} %"
    if r.get("breakdown"):
        text += " = " + " + ".join(f"{k.replace('_', ' ')} {100 * v:.1f} %" for k, v in r["breakdown"].items())
    if r.get("overhead_vs_engine") is not None and r.get("postprocess_share") is not None:
        text += (f" (bare = the model as shipped, post-processing {100 * r['postprocess_share']:.1f} % "
                 f"of it; over the engine alone: {100 * r['overhead_vs_engine']:.1f} %)")
    return text


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def _fmt_s(st: dict[str, float], scale: float = 1.0, unit: str = "s") -> str:
    return f"{st['median'] * scale:.3g} {unit} [{st['q1'] * scale:.3g}-{st['q3'] * scale:.3g}]"


def markdown_report(results: dict[str, Any]) -> str:
    """The Markdown summary of a results dict (``throughput.md`` beside the JSON)."""
    m, env = results["machine"], results["environment"]
    cpu = m["cpu"]
    L = [
        f"# Throughput ({results['created_utc'][:10]}, {env['hostname']})",
        "",
        f"CPU: {cpu['model']}, {cpu['usable_cpus']} usable CPUs ({cpu['physical_cores']} physical cores), "
        f"{cpu['ghz'] or float('nan'):.2f} GHz ({cpu['ghz_source']}), flags {', '.join(cpu['flags'])}. "
        f"GPU: {m['gpu']['name'] if m.get('gpu') else 'none'}. "
        f"torch {env['versions'].get('torch')}, onnxruntime {env['versions'].get('onnxruntime')}, "
        f"Python {env['python']}; commit `{(env.get('git_commit') or 'unknown')[:12]}`"
        + (" (dirty tree)" if env.get("git_dirty") else "") + ".",
        "",
        f"Timing: median [IQR] of {results['settings']['repeats']} runs after {results['settings']['warmup']} "
        "warm-up runs." + ("" if results.get("reportable") else " **Not reportable: fewer than 5 runs (--quick or --repeats).**"),
        f"Peak = cores x GHz x FLOP/cycle; {cpu['flops_per_cycle_basis']}. FLOPs = convolutions of the ONNX graph.",
        ("Full tile = 10980 x 10980 px at 10 m, all model bands, x2, tiled with the model's margin "
         "(tiles = ceil(10980 / (tile - 2 margin))^2)."),
        "",
        "## Targets",
        "",
        "| target | model | measured | pass |",
        "|---|---|---|---|",
    ]
    for t in results.get("targets", []):
        L.append(f"| {t['target']} | {t.get('model') or ''} | {t['detail']} | {'yes' if t['pass'] else '**no**'} |")
    L += [
        "",
        "## Bare forward pass",
        "",
        "| model | engine | device | prec. | threads | tile | batch | s / tile | out MP/s | full tile | GFLOP/s | % peak | peak RSS | max abs diff |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results.get("forward", []):
        if "seconds" not in r:
            L.append(f"| {r['model']} | {r['engine']} | {r['device']} | {r['precision']} | {r['threads']} | "
                     f"{r.get('tile', '')} | {r.get('batch', '')} | skipped: {r.get('skipped', '')} ||||||")
            continue
        st = {k: v / r["batch"] for k, v in r["seconds"].items() if k != "n"}
        mem = f"{r['peak_gpu_bytes'] / 1e6:.0f} MB GPU" if r.get("peak_gpu_bytes") else f"{r['peak_rss_bytes'] / 1e6:.0f} MB"
        L.append(
            f"| {r['model']} | {r['engine']} | {r['device']} | {r['precision']} | {r['threads'] or '-'} | {r['tile']} | "
            f"{r['batch']} | {_fmt_s(st)} | {r['out_mp_per_s']:.2f} | {format_duration(r['full_tile_s'])} | "
            f"{r.get('gflops', float('nan')):.1f} | {r.get('pct_peak', float('nan')):.0f} | {mem} | "
            f"{_fmt_diff(r)} |"
        )
    comp = results.get("compile") or []
    if comp:
        L += ["", "## torch.compile", "", "| model | device | prec. | threads | tile | compile time | speed-up vs eager | helps |",
              "|---|---|---|---|---|---|---|---|"]
        for c in comp:
            L.append(f"| {c['model']} | {c['device']} | {c['precision']} | {c['threads'] or '-'} | {c['tile']} | "
                     f"{c['compile_s']:.1f} s | {c.get('speedup', float('nan')):.2f}x | {'yes' if c.get('helps') else 'no'} |")
    if results.get("overhead"):
        L += ["", "## Whole path vs bare forward pass", "",
              ("Bare forward = the model as shipped (`sr_core.models.Predictor`: the engine plus the card's "
               "post-processing, e.g. the 20 m-band projection) on tiles of the same core with the model's margin; "
               "*post-proc.* is its post-processing share. Overhead = whole / bare - 1, split into parts given as "
               "% of the bare time (medians, so they add up only approximately). *extra forward*: engine time "
               "inside the path minus the bare engine time (the apply_neighborhood overlap rounded up to 16 px, "
               "NaN-padded border chunks, tile alignment); *extra post*: the same for the post-processing; "
               "*read*: the time the emulator waits for its next window (read on a reader thread while the "
               "previous chunk runs); *UDF glue*: the UDF minus its engine and post-processing "
               "calls; *emulator*: the rest of the emulator; *write*: the GeoTIFF; *I/O + glue*: all but the "
               "engine and post-processing (`s2sr superres`, which overlaps reading and writing with the forward "
               "in threads). *vs engine*: whole / bare engine time - 1 (the post-processing counted as "
               "overhead). *workers x threads*: 1 x N runs one chunk at a time with N engine threads against the "
               "bare pass with N threads; W x 1 runs W chunks at a time on worker threads (as a back-end's "
               "executors do), 1 engine thread each, against the faster of two bare passes on the same W cores "
               "(the tiles on W threads, 1 engine thread each; the tiles one after the other with W engine "
               "threads); its breakdown is not given (its timers add up thread time)."), ""]
        emu = [r for r in results["overhead"] if r.get("path") == "udf-emulator" and "overhead" in r]
        sup = [r for r in results["overhead"] if r.get("path") == "superres" and "overhead" in r]
        bad = [r for r in results["overhead"] if "overhead" not in r]
        if emu:
            keys = ("extra_forward", "extra_post", "read", "udf_glue", "emulator", "write")
            L += ["| path | model | engine | workers x threads | scene (10 m px) | chunk size/overlap | whole | bare forward | post-proc. | overhead | extra forward | extra post | read | UDF glue | emulator | write | vs engine | peak RSS |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for r in emu:
                an = r["apply_neighborhood"]
                L.append(f"| UDF + emulator ({r['emulator_input']} input) | {r['model']} | {r['engine']} | "
                         f"{r.get('workers', 1)} x {r['threads']} | "
                         f"{r['scene_px']} ({r['mode']}) | {an['size']}/{an['overlap']} | "
                         f"{_fmt_s(r['whole_s'])} | {_fmt_s(r['bare_s'])} | {_pct(r.get('postprocess_share'))} | "
                         f"**{100 * r['overhead']:.1f} %** | "
                         + " | ".join(_pct(r["breakdown"].get(k)) for k in keys)
                         + f" | {_pct(r.get('overhead_vs_engine'))} | {r['peak_rss_bytes'] / 1e6:.0f} MB |")
            L.append("")
        if sup:
            keys = ("extra_forward", "extra_post", "io_glue")
            L += ["| path | model | engine | workers x threads | scene (10 m px) | tile | whole | bare forward | post-proc. | overhead | extra forward | extra post | I/O + glue | vs engine | peak RSS |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for r in sup:
                L.append(f"| s2sr superres | {r['model']} | {r['engine']} | {r.get('workers', 1)} x {r['threads']} | "
                         f"{r['scene_px']} | {r['bare_tile_core']} | "
                         f"{_fmt_s(r['whole_s'])} | {_fmt_s(r['bare_s'])} | {_pct(r.get('postprocess_share'))} | "
                         f"**{100 * r['overhead']:.1f} %** | "
                         + " | ".join(_pct(r["breakdown"].get(k)) for k in keys)
                         + f" | {_pct(r.get('overhead_vs_engine'))} | {r['peak_rss_bytes'] / 1e6:.0f} MB |")
            L.append("")
        for r in bad:
            L.append(f"- {r.get('path', '')} {r.get('model', '')} {r.get('engine', '')} threads={r.get('threads', '')}: "
                     f"failed: {r.get('error', '')}")
    rss = results.get("rss")
    if rss:
        L += ["", f"## Peak RSS vs scene size ({rss['path']}, engine {rss['engine']}, {rss['threads']} threads)", "",
              "| scene (10 m px) | output (px) | peak RSS | wall time |", "|---|---|---|---|"]
        b = rss["baseline"]
        L.append(f"| imports only | - | {b['peak_rss_bytes'] / 1e6:.0f} MB | {b['wall_s']:.1f} s |")
        for p in rss["points"]:
            if p["rc"] != 0:
                L.append(f"| {p['scene_px']} | {p['output_px']} | failed (rc {p['rc']}) | |")
            else:
                L.append(f"| {p['scene_px']} | {p['output_px']} | {p['peak_rss_bytes'] / 1e6:.0f} MB | {p['wall_s']:.1f} s |")
        if "full_tile_bytes" in rss:
            L.append(f"| 10980 (extrapolated, linear) | {10980 * 2} | {rss['full_tile_bytes'] / 1e6:.0f} MB | |")
        elif rss.get("extrapolation"):
            L += ["", rss["extrapolation"] + "."]
    if results.get("notes"):
        L += ["", "## Notes", ""] + [f"- {n}" for n in results["notes"]]
    return "\n".join(L) + "\n"
