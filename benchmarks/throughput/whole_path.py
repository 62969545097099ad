"""The whole path against the bare forward pass on the same scene: ``udf/sr_udf.py`` run by the local back-end
emulator with a GeoTIFF written as it goes (:func:`bench_whole_path`), and ``s2sr superres`` from a scene folder to
a GeoTIFF (:func:`bench_superres_path`). Bare = the model as shipped (:class:`sr_core.models.Predictor`: the engine
plus its card's post-processing) on tiles with the same core and the model's margin, no glue. Overhead =
``whole / bare - 1``, split by timers around the steps of the path."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import udf.local as ul
from benchmarks.throughput.inputs import (
    bare_tile_inputs,
    dn_dataarray,
    sr_udf_path,
    write_netcdf,
    write_scene_folder,
)
from benchmarks.throughput.system import peak_rss_bytes, reset_peak_rss
from benchmarks.throughput.timing import timing_stats
from sr_core.checks import check_int
from sr_core.inference import scene as sres
from sr_core.inference.cube import recommended_neighborhood
from sr_core.models import load_predictor
from sr_core.tiling import extract_tile, plan_tiles

__all__ = ["bench_superres_path", "bench_whole_path"]


def _faster_bare(b_times: list[float], intra: list[float], cores: int) -> tuple[list[float], dict[str, Any]]:
    """``b_times`` = the workers' pass + the intra-op pass (``intra``) per run: split them, keep the faster
    (by median). Returns its times and the record of both."""
    par = [tb - ti for tb, ti in zip(b_times, intra)]
    st_par, st_intra = timing_stats(par), timing_stats(intra)
    best = "workers" if st_par["median"] <= st_intra["median"] else "intra_op"
    return (par if best == "workers" else list(intra)), {
        "workers_s": st_par, "intra_op_s": st_intra, "faster": best, "intra_op_threads": cores}


def _interleaved(
    whole: Callable[[], dict[str, Any]], bare: Callable[[], None], *, repeats: int, warmup: int
) -> tuple[list[dict[str, Any]], list[float]]:
    """Alternate ``whole()`` and a timed ``bare()`` (so that drifting machine load hits both alike);
    returns the ``whole`` results (with the warnings they raised) and the bare times, warm-up dropped."""
    runs: list[dict[str, Any]] = []
    b_times: list[float] = []
    for i in range(warmup + repeats):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = whole()
        r["warnings"] = sorted({str(w.message)[:300] for w in caught})
        t0 = time.perf_counter()
        bare()
        tb = time.perf_counter() - t0
        if i >= warmup:
            runs.append(r)
            b_times.append(tb)
    return runs, b_times


def bench_whole_path(
    folder: str | os.PathLike,
    *,
    engine: str = "onnx",
    threads: int = 1,
    scene: int = 512,
    mode: str = "resampled",
    chunk: int | None = None,
    repeats: int = 5,
    warmup: int = 1,
    workdir: str | os.PathLike | None = None,
    emulator_input: str = "lazy",
    workers: int = 1,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Whole path vs bare forward pass on one ``scene`` x ``scene`` (10 m px) DN scene.

    ``workers``: 1 runs the chunks one at a time (``scheduler="synchronous"``, the next window read on a reader
    thread) with ``threads`` engine threads, against the bare forward pass with ``threads`` threads. More runs
    them on ``workers`` worker threads (``scheduler="threads"``, as a back-end's executors do), each UDF call with
    ``threads`` engine threads, against the faster of two bare passes on the same ``workers * threads`` cores:
    the tiles one after the other with ``workers * threads`` engine threads (intra-op parallelism), and the tiles
    on ``workers`` threads with ``threads`` engine threads each. The breakdown is then not reported (its timers
    add up thread time, not wall time); ``thread_s`` holds them.

    ``emulator_input``: ``"lazy"`` hands the emulator the NetCDF opened lazily by xarray without dask (each
    chunk window is read from disk on demand); ``"path"`` hands it the file path (``udf.local.open_cube``:
    dask-backed, which adds dask's per-task overhead to every window read).

    Whole path (timed from opening the input to closing the output): ``udf.local.apply_neighborhood_local``
    writing a GeoTIFF as it goes (``out_path=*.tif``: chunk results streamed on a writer thread) on the NetCDF
    cube (in ``resampled`` mode the cube is on the output grid, nearest-resampled, as the process graph makes it;
    ``upscale`` mode: 10 m input, runtime ``Python-Jep``) with ``udf/sr_udf.py``, ``size``/``overlap`` from
    :func:`sr_core.inference.cube.recommended_neighborhood` (``chunk`` overrides ``size``), one chunk at a time,
    engine ``threads``; then the result written as a GeoTIFF. Bare forward: the model
    as shipped, i.e. the same :class:`sr_core.models.Predictor` (engine session + the card's post-processing)
    called on the tiles of :func:`sr_core.tiling.plan_tiles` (core = the chunk's core on the 10 m grid, the
    model's margin, edge padding; tiles prepared in advance).

    Breakdown (timers around the emulator's window reads and UDF calls, the engine calls, the
    post-processing and the GeoTIFF write, medians over the runs), as fractions of the bare time that add up
    to ``overhead`` (up to the medians): ``extra_forward`` (engine inside the path minus the bare engine
    time: the overlap rounded up to a multiple of 16 px, NaN-padded border chunks), ``extra_post``
    (post-processing inside the path minus the bare one), ``read`` (input windows), ``udf_glue`` (UDF minus
    engine and post-processing), ``emulator`` (the rest of the emulator), ``write`` (time the emulator waits
    for the GeoTIFF writer thread). Also: ``bare_engine_s`` / ``bare_post_s`` (the bare time split),
    ``postprocess_share`` (post-processing / bare, medians) and ``overhead_vs_engine`` (``whole`` over the
    bare engine alone, post-processing counted as overhead)."""
    import xarray as xr

    if mode not in ("resampled", "upscale"):
        raise ValueError(f"mode must be 'resampled' or 'upscale', got {mode!r}")
    if emulator_input not in ("lazy", "path"):
        raise ValueError(f"emulator_input must be 'lazy' or 'path', got {emulator_input!r}")
    folder = Path(folder).resolve()
    log = log or (lambda s: None)
    threads = check_int("threads", threads, 1)
    workers = check_int("workers", workers, 1)
    scene = check_int("scene", scene, 2)
    repeats = check_int("repeats", repeats, 1)
    warmup = check_int("warmup", warmup, 0)
    pred = load_predictor(str(folder), engine=engine, threads=threads)
    pred_all = load_predictor(str(folder), engine=engine, threads=threads * workers) if workers > 1 else pred
    s, m = int(pred.scale), int(pred.margin)
    size, overlap = recommended_neighborhood(pred, mode, size=chunk)
    factor = s if mode == "resampled" else 1
    core = size // factor
    tmp = Path(tempfile.mkdtemp(prefix="s2sr-bench-", dir=workdir))
    raw, orig_window, orig_run, orig_await = pred._fn, ul._window, ul._run_chunk, ul._await
    orig_post = pred.postprocess
    lock = threading.Lock()
    try:
        cube = dn_dataarray(list(pred.bands), scene, factor=factor)
        nc = write_netcdf(cube, tmp / "input.nc")
        lr_refl = np.asarray(cube.values[:, ::factor, ::factor], dtype=np.float32) / np.float32(10000.0)
        del cube
        context = {"model": str(folder), "engine": engine, "threads": threads, "mode": mode, "overlap": overlap,
                   "size": size}
        runtime = "Python" if mode == "resampled" else "Python-Jep"
        acc = {"forward": 0.0, "post": 0.0, "read": 0.0, "read_io": 0.0, "udf": 0.0, "write": 0.0, "px": 0}

        def timer(key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(*a: Any, **k: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    dt = time.perf_counter() - t0
                    with lock:
                        acc[key] += dt
            return wrapped

        def forward(x: np.ndarray) -> np.ndarray:
            with lock:
                acc["px"] += int(np.prod(x.shape[-2:])) * x.shape[0]
            return raw(x)

        out_tif = tmp / "output.tif"

        def whole() -> dict[str, float]:
            for k in acc:
                acc[k] = 0
            t0 = time.perf_counter()
            if emulator_input == "lazy":
                ds = xr.open_dataset(nc, engine="h5netcdf")
                src: Any = ds["dn"]
            else:
                ds, src = None, nc
            if out_tif.exists():
                out_tif.unlink()
            try:
                res = apply(src, udf_file, size=size, overlap=overlap, context=context, runtime=runtime,
                            scheduler=scheduler, num_workers=workers,
                            out_path=out_tif)  # GeoTIFF streamed on a writer thread
                res.close()
            finally:
                if ds is not None:
                    ds.close()
            t2 = time.perf_counter()
            return dict(acc, whole=t2 - t0)

        tiles = plan_tiles(scene, scene, tile=core, margin=m, scale=s)
        inputs = [np.ascontiguousarray(extract_tile(lr_refl[None], t)) for t in tiles]
        bare_px = sum(int(np.prod(x.shape[-2:])) for x in inputs)
        bare_post: list[float] = []
        bare_intra: list[float] = []
        scheduler = "synchronous" if workers == 1 else "threads"
        bpool = concurrent.futures.ThreadPoolExecutor(workers) if workers > 1 else None

        def bare() -> None:  # the model as shipped: engine + the card's post-processing (timed apart)
            acc["post"] = 0.0
            if bpool is None:
                for x in inputs:
                    pred(x)
            else:  # tiles on the workers; then the intra-op alternative on all the cores, timed apart
                list(bpool.map(pred, inputs))
                t0 = time.perf_counter()
                for x in inputs:
                    pred_all(x)
                bare_intra.append(time.perf_counter() - t0)
            bare_post.append(acc["post"])  # (workers > 1: thread time of both passes, not used)

        apply, udf_file = ul.apply_neighborhood_local, sr_udf_path()
        orig_sink_write, orig_sink_finish = ul._Sink.write, ul._Sink.finish
        pred._fn = timer("forward", forward)
        pred.postprocess = timer("post", orig_post)
        ul._window = timer("read_io", orig_window)  # on the reader / worker threads
        if workers == 1:
            ul._await = timer("read", orig_await)  # what the emulator waits for its next window
        ul._run_chunk = timer("udf", orig_run)
        # the GeoTIFF write runs on the sink's thread: "write" = the time the emulator waits for it
        ul._Sink.write = timer("write", orig_sink_write)
        ul._Sink.finish = timer("write", orig_sink_finish)
        rss_scope = "config" if reset_peak_rss() else "process"
        runs, b_times = _interleaved(whole, bare, repeats=repeats, warmup=warmup)
        pred._fn, ul._window, ul._run_chunk, ul._await = raw, orig_window, orig_run, orig_await
        pred.__dict__.pop("postprocess", None)
        ul._Sink.write, ul._Sink.finish = orig_sink_write, orig_sink_finish
        whole_rss = peak_rss_bytes()
        bare_alt = None
        if workers > 1:
            b_times, bare_alt = _faster_bare(b_times, bare_intra[warmup:], threads * workers)
        st_b = timing_stats(b_times)
        # bare engine = bare minus its post-processing (the predictor's own few checks count as engine)
        st_be = timing_stats([tb - tp for tb, tp in zip(b_times, bare_post[warmup:])])
        st_bp = timing_stats(bare_post[warmup:])
        comp = {k: timing_stats([r[k] for r in runs])
                for k in ("whole", "forward", "post", "read", "read_io", "udf", "write")}
        bare_med = st_b["median"]
        med = {k: v["median"] for k, v in comp.items()}
        emulator_rest = timing_stats([r["whole"] - r["read"] - r["udf"] - r["write"] for r in runs])["median"]
        udf_glue = timing_stats([r["udf"] - r["forward"] - r["post"] for r in runs])["median"]
        breakdown = {} if workers > 1 else {
            "extra_forward": (med["forward"] - st_be["median"]) / bare_med,
            "extra_post": (med["post"] - st_bp["median"]) / bare_med,
            "read": med["read"] / bare_med,
            "udf_glue": udf_glue / bare_med,
            "emulator": emulator_rest / bare_med,
            "write": med["write"] / bare_med,
        }
        res = {
            "path": "udf-emulator", "emulator_input": emulator_input,
            "model": pred.card.name, "engine": engine, "threads": threads, "workers": workers,
            "cores": threads * workers, "mode": mode,
            "scene_px": scene, "output_px": s * scene, "bands": len(pred.bands),
            "apply_neighborhood": {"size": size, "overlap": overlap, "runtime": runtime,
                                   "chunks": (-(-scene * factor // size)) ** 2, "scheduler": scheduler},
            "bare_tile_core": core, "bare_tiles": len(tiles), "margin": m,
            "whole_s": comp["whole"], "bare_s": st_b, "bare_engine_s": st_be if workers == 1 else None,
            "bare_post_s": st_bp if workers == 1 else None,
            "forward_in_path_s": comp["forward"], "post_in_path_s": comp["post"],
            "read_s": comp["read"], "udf_s": comp["udf"], "write_s": comp["write"],
            "model_input_px_path": int(runs[-1]["px"]), "model_input_px_bare": bare_px,
            "overhead": med["whole"] / bare_med - 1.0,
            "breakdown": breakdown,
            "postprocess_share": st_bp["median"] / bare_med if workers == 1 else None,
            "overhead_vs_engine": med["whole"] / st_be["median"] - 1.0 if workers == 1 else None,
            "bare_alternatives": bare_alt,
            "thread_s": {k: med[k] for k in ("forward", "post", "read_io", "udf", "write")} if workers > 1 else None,
            "peak_rss_bytes": whole_rss, "rss_scope": rss_scope,
            "output_bytes": out_tif.stat().st_size,
            "warnings": runs[-1]["warnings"],
        }
        if workers == 1:
            log(
                f"  whole path (UDF + emulator) {engine} threads={threads} scene={scene}: whole {med['whole']:.2f} s, "
                f"bare {bare_med:.2f} s (post-processing {100 * res['postprocess_share']:.1f} % of it) -> overhead "
                f"{100 * res['overhead']:.1f} % ("
                + ", ".join(f"{k} {100 * v:.1f} %" for k, v in breakdown.items())
                + f"); over the engine alone {100 * res['overhead_vs_engine']:.1f} %"
            )
        else:
            log(
                f"  whole path (UDF + emulator) {engine} {workers} workers x {threads} threads scene={scene}: whole "
                f"{med['whole']:.2f} s, bare {bare_med:.2f} s (faster of: tiles on {workers} workers "
                f"{bare_alt['workers_s']['median']:.2f} s, intra-op {threads * workers} threads "
                f"{bare_alt['intra_op_s']['median']:.2f} s) -> overhead {100 * res['overhead']:.1f} %"
            )
        return res
    finally:
        pred._fn, ul._window, ul._run_chunk, ul._await = raw, orig_window, orig_run, orig_await
        pred.__dict__.pop("postprocess", None)
        if workers > 1 and "bpool" in locals() and bpool is not None:
            bpool.shutdown(wait=True)
        shutil.rmtree(tmp, ignore_errors=True)


def bench_superres_path(
    folder: str | os.PathLike,
    *,
    engine: str = "onnx",
    threads: int = 1,
    scene: int = 512,
    tile: int | None = None,
    repeats: int = 5,
    warmup: int = 1,
    workdir: str | os.PathLike | None = None,
    workers: int = 1,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """``s2sr superres`` (``sr_core.inference.scene.superresolve_file``: scene folder in, tiled GeoTIFF out, tiles
    streamed, reading/computing/writing overlapped in threads; ``workers`` tiles at a time with ``threads``
    engine threads each, compared as in :func:`bench_whole_path`) vs the bare forward pass on the same tiles
    (the CLI's tile plan: :func:`sr_core.inference.scene.aligned_tile` core, the model's margin), bare = the
    :class:`sr_core.models.Predictor` (engine + the card's post-processing) as in :func:`bench_whole_path`.
    Breakdown as fractions of the bare time: ``extra_forward`` (engine inside the path minus bare),
    ``extra_post`` (post-processing inside the path minus bare) and ``io_glue`` (everything else: reading,
    nodata handling, DN conversion, writing, not hidden behind the forward)."""
    folder = Path(folder).resolve()
    log = log or (lambda s: None)
    threads = check_int("threads", threads, 1)
    workers = check_int("workers", workers, 1)
    scene = check_int("scene", scene, 2)
    repeats = check_int("repeats", repeats, 1)
    warmup = check_int("warmup", warmup, 0)
    pred = load_predictor(str(folder), engine=engine, threads=threads)
    pred_all = load_predictor(str(folder), engine=engine, threads=threads * workers) if workers > 1 else pred
    s, m = int(pred.scale), int(pred.margin)
    tile = int(tile or sres.DEFAULT_TILE)
    core = sres.aligned_tile(tile, s)
    tmp = Path(tempfile.mkdtemp(prefix="s2sr-bench-", dir=workdir))
    raw, orig_post = pred._fn, pred.postprocess
    try:
        scene_dir = write_scene_folder(scene, tmp / "scene")
        tiles, inputs = bare_tile_inputs(pred.bands, scene, tile=core, margin=m, scale=s)
        acc = {"forward": 0.0, "post": 0.0}
        lock = threading.Lock()

        def timed(key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(*a: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return fn(*a)
                finally:
                    dt = time.perf_counter() - t0
                    with lock:
                        acc[key] += dt
            return wrapped

        def whole() -> dict[str, float]:
            acc["forward"] = acc["post"] = 0.0
            t0 = time.perf_counter()
            sres.superresolve_file(scene_dir, tmp / "out.tif", model=pred, tile=tile, workers=workers)
            return dict(acc, whole=time.perf_counter() - t0)

        bare_post: list[float] = []
        bare_intra: list[float] = []
        bpool = concurrent.futures.ThreadPoolExecutor(workers) if workers > 1 else None

        def bare() -> None:  # the model as shipped: engine + the card's post-processing (timed apart)
            acc["post"] = 0.0
            if bpool is None:
                for x in inputs:
                    pred(x)
            else:  # as in bench_whole_path: the tiles on the workers, then intra-op on all the cores
                list(bpool.map(pred, inputs))
                t0 = time.perf_counter()
                for x in inputs:
                    pred_all(x)
                bare_intra.append(time.perf_counter() - t0)
            bare_post.append(acc["post"])

        pred._fn = timed("forward", raw)
        pred.postprocess = timed("post", orig_post)
        rss_scope = "config" if reset_peak_rss() else "process"
        runs, b_times = _interleaved(whole, bare, repeats=repeats, warmup=warmup)
        pred._fn = raw
        pred.__dict__.pop("postprocess", None)
        whole_rss = peak_rss_bytes()
        bare_alt = None
        if workers > 1:
            b_times, bare_alt = _faster_bare(b_times, bare_intra[warmup:], threads * workers)
        st_b = timing_stats(b_times)
        # bare engine = bare minus its post-processing (the predictor's own few checks count as engine)
        st_be = timing_stats([tb - tp for tb, tp in zip(b_times, bare_post[warmup:])])
        st_bp = timing_stats(bare_post[warmup:])
        st_w = timing_stats([r["whole"] for r in runs])
        st_f = timing_stats([r["forward"] for r in runs])
        st_p = timing_stats([r["post"] for r in runs])
        b = st_b["median"]
        res = {
            "path": "superres", "model": pred.card.name, "engine": engine, "threads": threads, "workers": workers,
            "cores": threads * workers, "bare_alternatives": bare_alt, "mode": "upscale",
            "scene_px": scene, "output_px": s * scene, "bands": len(pred.bands),
            "tile": tile, "bare_tile_core": core, "bare_tiles": len(tiles), "margin": m,
            "whole_s": st_w, "bare_s": st_b, "bare_engine_s": st_be, "bare_post_s": st_bp,
            "forward_in_path_s": st_f, "post_in_path_s": st_p,
            "overhead": st_w["median"] / b - 1.0,
            "breakdown": {} if workers > 1 else {
                "extra_forward": (st_f["median"] - st_be["median"]) / b,
                "extra_post": (st_p["median"] - st_bp["median"]) / b,
                "io_glue": timing_stats([r["whole"] - r["forward"] - r["post"] for r in runs])["median"] / b},
            "postprocess_share": st_bp["median"] / b if workers == 1 else None,
            "overhead_vs_engine": st_w["median"] / st_be["median"] - 1.0 if workers == 1 else None,
            "thread_s": {"forward": st_f["median"], "post": st_p["median"]} if workers > 1 else None,
            "peak_rss_bytes": whole_rss, "rss_scope": rss_scope,
            "warnings": runs[-1]["warnings"],
        }
        if workers > 1:
            res["bare_engine_s"] = res["bare_post_s"] = None
            log(f"  whole path (s2sr superres) {engine} {workers} workers x {threads} threads scene={scene}: whole "
                f"{st_w['median']:.2f} s, bare {b:.2f} s (faster of: tiles on {workers} workers "
                f"{bare_alt['workers_s']['median']:.2f} s, intra-op {threads * workers} threads "
                f"{bare_alt['intra_op_s']['median']:.2f} s) -> overhead {100 * res['overhead']:.1f} %")
            return res
        log(f"  whole path (s2sr superres) {engine} threads={threads} scene={scene}: whole {st_w['median']:.2f} s, "
            f"bare {b:.2f} s (post-processing {100 * res['postprocess_share']:.1f} % of it) -> overhead "
            f"{100 * res['overhead']:.1f} % (" + ", ".join(f"{k} {100 * v:.1f} %" for k, v in res["breakdown"].items())
            + f"); over the engine alone {100 * res['overhead_vs_engine']:.1f} %")
        return res
    finally:
        pred._fn = raw
        pred.__dict__.pop("postprocess", None)
        if workers > 1 and "bpool" in locals() and bpool is not None:
            bpool.shutdown(wait=True)
        shutil.rmtree(tmp, ignore_errors=True)
