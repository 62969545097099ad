"""The whole benchmark: its settings, :func:`run_benchmark` (every part for every model) and :func:`write_results`
(``throughput_<tag>.json`` and ``throughput.md``)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.throughput.flops import conv_flops_onnx
from benchmarks.throughput.forward import bench_forward, compile_summary, model_info
from benchmarks.throughput.report import evaluate_targets, markdown_report
from benchmarks.throughput.rss import bench_rss, superres_available
from benchmarks.throughput.system import cpu_info, environment_info, gpu_info
from benchmarks.throughput.timing import FULL_TILE_PX
from benchmarks.throughput.whole_path import bench_superres_path, bench_whole_path
from sr_core.models import load_card, resolve_model
from sr_core.runtime import usable_cpus

__all__ = ["SCHEMA", "BenchSettings", "run_benchmark", "write_results"]

#: The ``schema`` field of the results JSON.
SCHEMA = "s2sr-throughput/1"


@dataclass
class BenchSettings:
    """Everything :func:`run_benchmark` does; the CLI fills it from its arguments."""

    models: list[str]
    engines: list[str] = field(default_factory=lambda: ["torch", "onnx", "compile"])
    devices: list[str] = field(default_factory=lambda: ["cpu"])
    cuda_precisions: list[str] = field(default_factory=lambda: ["fp32", "fp16", "bf16"])
    cuda_batches: list[int] = field(default_factory=lambda: [1, 8, 32])
    threads: list[int] = field(default_factory=lambda: [1])
    tiles: list[int] = field(default_factory=lambda: [128, 256, 512])
    batches: list[int] = field(default_factory=lambda: [1])
    repeats: int = 5
    warmup: int = 2
    scene: int = 512
    chunk: int | None = None
    mode: str = "resampled"
    emulator_input: str = "lazy"
    superres_tile: int | None = None
    overhead_engines: list[str] = field(default_factory=lambda: ["onnx"])
    overhead_threads: list[int] = field(default_factory=lambda: [1])
    overhead_workers: list[int] = field(default_factory=lambda: [1])
    rss_sizes: list[int] = field(default_factory=lambda: [1280, 2560])
    rss_engine: str = "onnx"
    rss_threads: int | None = None
    skip: list[str] = field(default_factory=list)
    compile_mode: str | None = None
    ghz: float | None = None
    workdir: str | None = None
    quick: bool = False
    force_emulator_rss: bool = False


def run_benchmark(settings: BenchSettings, *, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every part of the benchmark not in ``settings.skip`` (``forward``, ``overhead``, ``rss``) and
    return the results dict (JSON-serialisable; :func:`markdown_report` renders it)."""
    log = log or (lambda s: None)
    cpu = cpu_info(ghz=settings.ghz)
    env = environment_info()
    gpu = gpu_info() if "cuda" in settings.devices else None
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "settings": {k: v for k, v in vars(settings).items()},
        "reportable": settings.repeats >= 5,
        "machine": {"cpu": cpu, "gpu": gpu},
        "environment": env,
        "assumptions": {
            "peak_gflops": f"cores x GHz ({cpu['ghz_source']}) x fp32 FLOP/cycle; {cpu['flops_per_cycle_basis']}",
            "flops": "2 * Cin/groups * kh * kw * Cout per output pixel of every ONNX Conv node (bias, "
                     "activations, pixel shuffle not counted)",
            "full_tile": f"{FULL_TILE_PX} x {FULL_TILE_PX} px at 10 m, x2, ceil({FULL_TILE_PX} / (tile - 2 margin))^2 tiles",
            "out_mp_per_s": "output (5 m) pixels of the whole tile, all output bands, per second",
        },
        "models": [], "forward": [], "compile": [], "overhead": [], "rss": None, "notes": [],
    }
    if settings.repeats < 5:
        results["notes"].append(f"{settings.repeats} timed run(s) per configuration: a dry run, not a reportable result")
    folders = [resolve_model(m).resolve() for m in settings.models]
    for folder in folders:
        info = model_info(folder)
        card = load_card(folder, verify=False)
        if "onnx" in card.files:
            import onnx

            proto = onnx.load(str(folder / card.files["onnx"]))
            inits = {t.name for t in proto.graph.initializer}
            if len([i for i in proto.graph.input if i.name not in inits]) != 1:
                results["notes"].append(f"{info['name']}: multi-image (MISR) package, not benchmarked here")
                continue
            fl = conv_flops_onnx(folder / card.files["onnx"], (1, len(card.bands), 64, 64))
            info["conv_gflop_per_lr_px_at_64"] = fl["total"] / 1e9 / 64**2
            info["flop_count_method"] = fl["method"]
        results["models"].append(info)
        log(f"model {info['name']} ({folder}): {info['arch']} x{info['scale']}, receptive field "
            f"{info['receptive_field']} px, margin {info['margin']}")
        if "forward" not in settings.skip:
            for device in settings.devices:
                cuda = device == "cuda"
                results["forward"] += bench_forward(
                    folder, engines=settings.engines, device=device,
                    precisions=settings.cuda_precisions if cuda else ["fp32"],
                    threads=settings.threads, tiles=settings.tiles,
                    batches=settings.cuda_batches if cuda else settings.batches,
                    repeats=settings.repeats, warmup=settings.warmup, cpu=cpu,
                    compile_mode=settings.compile_mode, log=log,
                )
        if "overhead" not in settings.skip:
            for engine in settings.overhead_engines:
                for th, wk in [(t, w) for w in settings.overhead_workers for t in settings.overhead_threads
                               if t * w <= usable_cpus() and (w == 1 or t == 1)]:
                    common: dict[str, Any] = {
                        "engine": engine, "threads": th, "scene": settings.scene, "repeats": settings.repeats,
                        "warmup": min(settings.warmup, 1), "workdir": settings.workdir, "log": log,
                    }
                    parts: list[tuple[str, Callable[..., dict], dict[str, Any]]] = [(
                        "udf-emulator", bench_whole_path,
                        {"mode": settings.mode, "chunk": settings.chunk, "emulator_input": settings.emulator_input,
                         "workers": wk},
                    )]
                    if superres_available():
                        parts.append(("superres", bench_superres_path, {"tile": settings.superres_tile,
                                                                        "workers": wk}))
                    for pname, fn, kwargs in parts:
                        try:
                            results["overhead"].append(fn(folder, **kwargs, **common))
                        except Exception as e:  # noqa: BLE001 - one failed part must not lose the others
                            results["overhead"].append({"path": pname, "model": info["name"], "engine": engine,
                                                        "threads": th, "error": f"{type(e).__name__}: {e}"})
                            log(f"  whole path {pname} {engine} threads={th} failed: {type(e).__name__}: {e}")
        if "rss" not in settings.skip and results["rss"] is None:  # RSS: the first model only (default model)
            results["rss"] = bench_rss(folder, sizes=settings.rss_sizes, engine=settings.rss_engine,
                                       threads=settings.rss_threads, workdir=settings.workdir,
                                       force_emulator=settings.force_emulator_rss, log=log)
            results["rss_model"] = info["name"]
            if not superres_available() or settings.force_emulator_rss:
                why = "--rss-emulator" if superres_available() else "`s2sr superres` is not in this installation"
                results["notes"].append(f"peak RSS measured on the emulator path streaming into NetCDF ({why})")
    results["compile"] = compile_summary(results["forward"])
    for c in results["compile"]:
        if "speedup" in c:
            verdict = "helps" if c["helps"] else ("no clear gain" if c["speedup"] >= 1.0 else "is slower")
            results["notes"].append(
                f"torch.compile {verdict} for {c['model']} {c['device']}/{c['precision']} threads={c['threads']} "
                f"tile={c['tile']}: {c['speedup']:.2f}x eager's speed, after {c['compile_s']:.0f} s of compilation")
    if "cuda" not in settings.devices:
        results["notes"].append("CUDA not measured (no CUDA device, or --device cpu): the CUDA path (synchronised "
                                "timing, fp16/bf16 autocast, batches of tiles) did not run")
    results["targets"] = evaluate_targets(results)
    return results


def _default_tag() -> str:
    host = re.sub(r"[^A-Za-z0-9_.-]+", "-", socket.gethostname()) or "host"
    return f"{host}_{_dt.date.today().strftime('%Y%m%d')}"


def write_results(results: dict[str, Any], out: str | os.PathLike, *, tag: str | None = None) -> tuple[Path, Path]:
    """Write ``<out>/throughput_<tag>.json`` and ``<out>/throughput.md``; returns both paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tag = tag or _default_tag()
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", tag):
        raise ValueError(f"tag must be letters, digits, '_', '.', '-', got {tag!r}")
    jpath = out / f"throughput_{tag}.json"
    jpath.write_text(json.dumps(results, indent=2, default=str) + "\n")
    mpath = out / "throughput.md"
    mpath.write_text(markdown_report(results))
    return jpath, mpath
