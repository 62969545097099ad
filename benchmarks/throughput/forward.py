"""The bare forward pass: one engine call on a ``(batch, C, T, T)`` reflectance tile, per model x engine x device
x precision x threads x tile x batch, with the figures derived from its median (output MP/s, full-tile time,
GFLOP/s against the peak), and the ``torch.compile`` verdicts."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.throughput.flops import conv_flops_onnx
from benchmarks.throughput.inputs import sample_reflectance
from benchmarks.throughput.runners import ENGINES, Runner, SkipConfig, make_runner
from benchmarks.throughput.system import (
    cores_used,
    cpu_info,
    gpu_info,
    peak_gflops,
    peak_rss_bytes,
    reset_peak_rss,
)
from benchmarks.throughput.timing import (
    FULL_TILE_PX,
    format_duration,
    full_tile_seconds,
    tiles_per_scene,
    time_calls,
    timing_stats,
)
from sr_core.models import load_card

__all__ = ["bench_forward", "compile_summary", "model_info"]

_MB = 1e6


def model_info(folder: Path) -> dict[str, Any]:
    """What the results record of the package in ``folder``: its card's name, version, network, bands, margin."""
    card = load_card(folder, verify=True)
    return {
        "name": card.name, "version": card.version, "path": str(folder), "arch": card.arch,
        "arch_kwargs": card.arch_kwargs, "scale": card.scale, "bands": card.bands, "out_bands": card.out_bands,
        "receptive_field": card.receptive_field, "margin": card.margin, "sha256": card.sha256,
    }


def _flops_per_tile(folder: Path, card: Any, tile: int, cache: dict) -> int | None:
    key = (str(folder), tile)
    if key not in cache:
        if "onnx" not in card.files:
            cache[key] = None
        else:
            cache[key] = conv_flops_onnx(folder / card.files["onnx"], (1, len(card.bands), tile, tile))["total"]
    return cache[key]


def bench_forward(
    folder: str | os.PathLike,
    *,
    engines: Sequence[str] = ("torch", "onnx"),
    device: str = "cpu",
    precisions: Sequence[str] = ("fp32",),
    threads: Sequence[int] = (1,),
    tiles: Sequence[int] = (128, 256, 512),
    batches: Sequence[int] = (1,),
    repeats: int = 5,
    warmup: int = 2,
    cpu: dict[str, Any] | None = None,
    compile_mode: str | None = None,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Time the bare forward pass of the package in ``folder`` for every combination; one dict per
    configuration (see the package docstring; ``skipped`` holds the reason for configurations that cannot
    run). ``threads`` only applies to ``device="cpu"``. The first engine's output on each tile is the
    reference of ``max_abs_diff`` (``torch`` eager fp32 first when listed)."""
    import torch

    folder = Path(folder)
    log = log or (lambda s: None)
    card = load_card(folder, verify=False)
    cpu = cpu or cpu_info()
    thread_list: list[int | None] = list(threads) if device == "cpu" else [None]
    rows: list[dict[str, Any]] = []
    flops_cache: dict = {}
    refs: dict[tuple[int, int], np.ndarray] = {}
    saved_threads = torch.get_num_threads()
    order = sorted(engines, key=lambda e: ENGINES.index(e))  # torch eager first: it is the reference
    try:
        for engine in order:
            for precision in precisions:
                for th in thread_list:
                    base = {"model": card.name, "engine": engine, "device": device, "precision": precision,
                            "threads": th}
                    try:
                        runner = make_runner(folder, engine=engine, device=device, precision=precision,
                                             threads=th, compile_mode=compile_mode)
                    except SkipConfig as e:
                        rows.append(dict(base, skipped=str(e)))
                        log(f"  skip {engine}/{device}/{precision}/threads={th}: {e}")
                        continue
                    try:
                        for tile in tiles:
                            for batch in batches:
                                rows.append(_forward_one(runner, card, folder, base, tile, batch, repeats, warmup,
                                                         cpu, flops_cache, refs, log))
                    finally:
                        if runner.close:
                            runner.close()
    finally:
        torch.set_num_threads(saved_threads)
    return rows


def _forward_one(runner: Runner, card: Any, folder: Path, base: dict, tile: int, batch: int, repeats: int,
                 warmup: int, cpu: dict, flops_cache: dict, refs: dict, log: Callable[[str], None]) -> dict:
    import torch

    row = dict(base, tile=tile, batch=batch)
    margin, s = card.margin, card.scale
    try:
        full_tile_seconds(0.0, tile=tile, margin=margin)
    except ValueError as e:
        row["skipped"] = str(e)
        return row
    x = runner.prepare(np.repeat(sample_reflectance(card.bands, tile, fill=card.mean)[None], batch, axis=0))
    if runner.device == "cpu" and runner.threads is not None and runner.engine != "onnx":
        torch.set_num_threads(runner.threads)
    cuda = runner.device == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    rss_scope = "config" if reset_peak_rss() else "process"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            times, warm, out = time_calls(lambda: runner.fn(x), repeats=repeats, warmup=warmup, sync=runner.sync)
    except (RuntimeError, MemoryError) as e:  # out of memory on big tiles x batches: recorded, not fatal
        row["skipped"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
        if cuda:
            torch.cuda.empty_cache()
        log(f"  fail {row['engine']}/{row['precision']} tile={tile} batch={batch}: {row['skipped']}")
        return row
    st = timing_stats(times)
    y = runner.to_numpy(out)
    key = (tile, batch)
    if key not in refs:
        refs[key] = y[:1].copy()
        row["reference"] = True
    diff = float(np.nanmax(np.abs(y[:1].astype(np.float64) - refs[key]))) if y.shape[1:] == refs[key].shape[1:] else None
    spt = st["median"] / batch
    out_px = (s * tile) ** 2
    full = full_tile_seconds(spt, tile=tile, margin=margin)
    flops = _flops_per_tile(folder, card, tile, flops_cache)
    row.update(
        input_shape=[batch, len(card.bands), tile, tile],
        output_shape=list(y.shape),
        seconds=st,
        first_call_s=(warm[0] if warm else None),
        warmup_s=warm,
        s_per_tile=spt,
        out_mp_per_s=out_px / _MB / spt,
        tiles_per_full_tile=tiles_per_scene(FULL_TILE_PX, tile - 2 * margin),
        full_tile_s=full,
        full_tile_useful_mp_per_s=(s * FULL_TILE_PX) ** 2 / _MB / full,
        gflop_per_tile=(flops / 1e9 if flops else None),
        peak_rss_bytes=peak_rss_bytes(),
        rss_scope=rss_scope,
        max_abs_diff=diff,
        notes=list(runner.notes),
    )
    if flops:
        row["gflops"] = flops / 1e9 / spt
        if cuda:
            info = gpu_info() or {}
            peak = (info.get("peak_tflops") or {})
            p_key = "tf32" if (runner.precision == "fp32" and info.get("cudnn_allow_tf32")
                               and float(info.get("capability", "0")) >= 8.0) else runner.precision
            if p_key in peak:
                row["peak_gflops"] = peak[p_key] * 1000.0
                row["peak_basis"] = f"{peak['matched']} datasheet dense {p_key}"
        elif cpu.get("ghz"):
            cores = cores_used(runner.threads or cpu["usable_cpus"], cpu)
            row["peak_gflops"] = peak_gflops(cores, cpu["ghz"], cpu["flops_per_cycle"])
            row["peak_basis"] = f"{cores} core(s) x {cpu['ghz']:.2f} GHz x {cpu['flops_per_cycle']} FLOP/cycle"
        if row.get("peak_gflops"):
            row["pct_peak"] = 100.0 * row["gflops"] / row["peak_gflops"]
    if cuda and runner.engine != "onnx":  # ONNX Runtime's CUDA arena is invisible to torch's allocator stats
        row["peak_gpu_bytes"] = int(torch.cuda.max_memory_allocated())
    log(
        f"  {row['engine']:8s} {runner.device}/{runner.precision} threads={runner.threads} tile={tile} "
        f"batch={batch}: {st['median'] * 1e3:.1f} ms [{st['min'] * 1e3:.1f}-{st['max'] * 1e3:.1f}], "
        f"{row['out_mp_per_s']:.2f} MP/s, full tile {format_duration(full)}"
        + (f", {row['gflops']:.1f} GFLOP/s" if "gflops" in row else "")
    )
    return row


def compile_summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """For every ``compile`` row, its compile time (first call minus a timed call) and speed-up over eager
    ``torch`` on the same configuration; ``helps`` = at least 5 % faster (medians) with the interquartile
    ranges apart (compiled q3 below eager q1)."""
    eager = {(r["model"], r["device"], r["precision"], r["threads"], r["tile"], r["batch"]): r
             for r in rows if r.get("engine") == "torch" and "seconds" in r}
    out = []
    for r in rows:
        if r.get("engine") != "compile" or "seconds" not in r:
            continue
        k = (r["model"], r["device"], r["precision"], r["threads"], r["tile"], r["batch"])
        e = eager.get(k)
        item = {"model": r["model"], "device": r["device"], "precision": r["precision"], "threads": r["threads"],
                "tile": r["tile"], "batch": r["batch"], "compile_s": (r["first_call_s"] or 0.0) - r["seconds"]["median"]}
        if e is not None:
            item["speedup"] = e["seconds"]["median"] / r["seconds"]["median"]
            item["helps"] = bool(item["speedup"] >= 1.05 and r["seconds"]["q3"] < e["seconds"]["q1"])
        out.append(item)
    return out
