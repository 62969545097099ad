"""Peak resident memory of the streaming path at two scene sizes or more, each in a fresh child process that
reports its own ``VmHWM`` at exit, and its linear extrapolation to a full Sentinel-2 tile."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.throughput.inputs import dn_dataarray, sr_udf_path, write_netcdf, write_scene_folder
from benchmarks.throughput.parsing import parse_int_list
from benchmarks.throughput.timing import FULL_TILE_PX
from s2sr_cli.main import build_parser
from sr_core.inference.cube import recommended_neighborhood
from sr_core.models import load_predictor
from sr_core.runtime import usable_cpus
from udf.local import apply_neighborhood_local

__all__ = ["MIN_EXTRAPOLATION_PX", "bench_rss", "stream_child", "superres_available"]

#: Smallest RSS scene size (10 m px) from which the peak RSS is extrapolated to a full tile.
MIN_EXTRAPOLATION_PX = 1024


def superres_available() -> bool:
    """True when the ``s2sr`` command line of this installation has the ``superres`` subcommand."""
    try:
        p = build_parser()
    except Exception:  # noqa: BLE001 - a broken sibling command must not break the benchmark
        return False
    for a in p._actions:  # argparse has no public accessor for subcommands
        if isinstance(a, argparse._SubParsersAction) and "superres" in a.choices:
            return True
    return False


def stream_child(argv: Sequence[str]) -> int:
    """Child process of :func:`bench_rss` (emulator fallback): stream a NetCDF cube through the UDF into a
    NetCDF file. ``argv``: one JSON object with input, output, size, overlap, context, workers."""
    a = json.loads(argv[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = apply_neighborhood_local(a["input"], a["udf"], size=a["size"], overlap=a["overlap"],
                                       context=a["context"], runtime=a["runtime"], scheduler="threads",
                                       num_workers=a["workers"], out_path=a["output"])
        out.close()
    return 0


# Child bootstrap: report the child's OWN peak RSS (VmHWM of its address space after exec) at exit. The
# rusage of os.wait4 is only a fallback: on Linux its ru_maxrss includes the forked copy of the parent
# before exec, i.e. the benchmark process itself.
_CHILD_BOOT = """
import atexit, os, sys
def _s2sr_report():
    try:
        with open('/proc/self/status') as f:
            kb = [l for l in f if l.startswith('VmHWM:')][0].split()[1]
        with open(os.environ['S2SR_BENCH_RSS_FILE'], 'w') as f:
            f.write(kb)
    except Exception:
        pass
atexit.register(_s2sr_report)
kind, args = sys.argv[1], sys.argv[2:]
if kind == 'module':
    import runpy
    sys.argv = [args[0]] + args[1:]
    runpy.run_module(args[0], run_name='__main__', alter_sys=True)
elif kind == 'stream':
    from benchmarks.throughput.rss import stream_child
    sys.exit(stream_child(args))
else:
    import numpy, xarray, onnxruntime, sr_core.inference.cube, udf.local, sr_core.models
"""


def _run_child(args: Sequence[str], env: dict[str, str], logdir: Path) -> dict[str, Any]:
    """Run ``python -c _CHILD_BOOT *args``; its own peak RSS (``VmHWM`` reported at exit, else the
    ``os.wait4`` rusage, an upper bound), wall time and return code."""
    out_f, err_f, rss_f = logdir / "child.stdout", logdir / "child.stderr", logdir / "child.rss"
    rss_f.unlink(missing_ok=True)
    env = dict(env, S2SR_BENCH_RSS_FILE=str(rss_f))
    t0 = time.perf_counter()
    wait_rss = None
    with open(out_f, "wb") as so, open(err_f, "wb") as se:
        p = subprocess.Popen([sys.executable, "-c", _CHILD_BOOT, *args], stdout=so, stderr=se, env=env)
        if hasattr(os, "wait4"):
            _, status, ru = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            wait_rss = int(ru.ru_maxrss) * (1 if sys.platform == "darwin" else 1024)
        else:  # pragma: no cover - Windows
            p.wait()
    wall = time.perf_counter() - t0
    try:
        maxrss, scope = int(rss_f.read_text()) * 1024, "child VmHWM"
    except (OSError, ValueError):
        maxrss, scope = wait_rss, "os.wait4 ru_maxrss (upper bound: includes the parent's RSS at fork)"
    err = err_f.read_text(errors="replace")[-2000:]
    return {"rc": p.returncode, "wall_s": wall, "peak_rss_bytes": maxrss, "rss_scope": scope, "stderr_tail": err}


def bench_rss(
    folder: str | os.PathLike,
    *,
    sizes: Sequence[int] = (1280, 2560),
    engine: str = "onnx",
    threads: int | None = None,
    workdir: str | os.PathLike | None = None,
    force_emulator: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Peak RSS of the streaming path at each scene size (10 m px per side), each in a fresh process.

    Path: ``s2sr superres SCENE_FOLDER OUT.tif --model --engine --threads`` (one tile at a time, the CLI's
    default) when :func:`superres_available` (and not ``force_emulator``), else the emulator (upscale mode,
    ``threads`` chunk workers with 1 engine thread each) streaming into NetCDF (``out_path``). Also measured: a
    child that only imports the stack (``baseline``). The line through the two largest sizes (slope clipped at 0) gives ``full_tile_bytes`` at
    :data:`FULL_TILE_PX` when the smaller one has at least :data:`MIN_EXTRAPOLATION_PX` px."""
    folder = Path(folder).resolve()
    log = log or (lambda s: None)
    sizes = parse_int_list(list(sizes), "rss sizes", minimum=2)
    threads = threads or usable_cpus()
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    use_superres = superres_available() and not force_emulator
    path = "s2sr superres (scene folder -> GeoTIFF)" if use_superres else \
        "udf.local.apply_neighborhood_local + udf/sr_udf.py, out_path NetCDF streaming (upscale mode)"
    tmp = Path(tempfile.mkdtemp(prefix="s2sr-rss-", dir=workdir))
    points = []
    try:
        base = _run_child(["imports"], env, tmp)
        pred = load_predictor(str(folder), engine=engine, threads=1)
        size_c, overlap = recommended_neighborhood(pred, "upscale")
        for n in sizes:
            if n % 2:
                raise ValueError(f"rss sizes must be even, got {n}")
            if use_superres:
                scene_dir = write_scene_folder(n, tmp / f"scene_{n}")
                cmd = ["module", "s2sr_cli.main", "superres", str(scene_dir), str(tmp / f"out_{n}.tif"),
                       "--model", str(folder), "--engine", engine, "--threads", str(threads), "--quiet"]
            else:
                nc = write_netcdf(dn_dataarray(list(pred.bands), n), tmp / f"input_{n}.nc")
                arg = {"input": str(nc), "output": str(tmp / f"out_{n}.nc"), "udf": str(sr_udf_path()),
                       "size": size_c, "overlap": overlap, "runtime": "Python-Jep", "workers": threads,
                       "context": {"model": str(folder), "engine": engine, "threads": 1, "mode": "upscale",
                                   "overlap": overlap}}
                cmd = ["stream", json.dumps(arg)]
            r = _run_child(cmd, env, tmp)
            r.update(scene_px=n, output_px=int(pred.scale) * n, pixels=n * n)
            if r["rc"] != 0:
                log(f"  rss scene {n}: child failed (rc {r['rc']}): {r['stderr_tail'][-300:]}")
            else:
                r.pop("stderr_tail")
                log(f"  rss scene {n} px: peak {r['peak_rss_bytes'] / 1e6:.0f} MB in {r['wall_s']:.1f} s")
            points.append(r)
            for p in tmp.glob(f"*_{n}*"):
                if p.is_file():
                    p.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ok = [p for p in points if p["rc"] == 0 and p["peak_rss_bytes"]]
    res: dict[str, Any] = {"path": path, "engine": engine, "threads": threads, "baseline": base, "points": points}
    if len(ok) >= 2:
        a, b = ok[-2], ok[-1]
        slope = (b["peak_rss_bytes"] - a["peak_rss_bytes"]) / (b["pixels"] - a["pixels"])
        res["bytes_per_pixel"] = slope
        res["growth"] = b["peak_rss_bytes"] / a["peak_rss_bytes"] - 1.0
        if a["scene_px"] >= MIN_EXTRAPOLATION_PX:
            res["full_tile_bytes"] = b["peak_rss_bytes"] + max(slope, 0.0) * (FULL_TILE_PX**2 - b["pixels"])
        else:
            res["extrapolation"] = (f"not extrapolated: scenes below {MIN_EXTRAPOLATION_PX} px are only a few "
                                    "tiles, their memory is fixed costs and per-tile buffers")
    return res
