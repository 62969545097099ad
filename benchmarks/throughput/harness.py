"""Throughput benchmarks of the model packages: ``s2sr bench`` == ``python benchmarks/throughput.py``.

What is measured (``benchmarks/README.md`` has the full description)
-------------------------------------------------------------------
1. **Bare forward pass** (:func:`bench_forward`) of every model x engine (``torch`` eager, ``onnx`` = ONNX
   Runtime, ``compile`` = ``torch.compile``) x device (CPU; CUDA when present) x precision (fp32; fp16/bf16
   autocast on CUDA) x threads x tile size x batch. A *tile* of size ``T`` is a ``(batch, C, T, T)`` float32
   reflectance input (the tile core plus the model's margin ``receptive_field // 2`` on every side) and a
   ``(batch, C_out, s*T, s*T)`` output. Timing: :func:`time.perf_counter` around each call (CUDA:
   ``torch.cuda.synchronize()`` before and after; host<->device copies of input and output included),
   ``warmup`` calls first (the first one, reported as ``first_call_s``, includes ``torch.compile``'s
   compilation), then ``repeats`` timed calls: median, quartiles, min and max.
2. **Derived figures**: output megapixels per second (5 m pixels, all output bands, whole tile),
   seconds per tile, and the extrapolated time of a full Sentinel-2 tile (:data:`FULL_TILE_PX` x
   :data:`FULL_TILE_PX` 10 m pixels, 10 bands, x2): ``ceil(10980 / (T - 2*margin))**2`` tiles, i.e. the
   margin overlap of the seamless tiling is paid, as in production. Achieved GFLOP/s = convolution FLOPs of
   the ONNX graph (:func:`conv_flops_onnx`: ``2 * Cin/groups * kh * kw * Cout`` per output pixel of every
   ``Conv``) / seconds, against the peak of the cores used (:func:`cpu_info`, :func:`peak_gflops`).
3. **Whole path** (:func:`bench_whole_path`): ``udf/sr_udf.py`` run by the local back-end emulator
   (``udf.local.apply_neighborhood_local``, sequential chunks) on a NetCDF cube read from disk, plus the write
   of the result as a tiled, compressed GeoTIFF; and (:func:`bench_superres_path`) ``s2sr superres`` from a
   scene folder to a GeoTIFF. Each against the bare forward pass over the same scene: the model as shipped
   (:class:`sr_core.models.Predictor`: the engine plus its card's post-processing, e.g. the 20 m-band
   projection) on tiles with the same core and the model's margin, no glue. Overhead = ``whole / bare - 1``,
   split into extra network work (e.g. the apply_neighborhood overlap rounded up to a multiple of 16 px),
   extra post-processing, reading, UDF glue, emulator and writing, from timers around those steps; the
   post-processing share of the bare time and the overhead over the engine alone are reported beside it.
4. **Peak RSS at two scene sizes** (:func:`bench_rss`), each in a fresh child process that reports its own
   ``VmHWM`` at exit: the streaming CLI ``s2sr superres`` when it exists, else the emulator streaming its
   result into a NetCDF file (``out_path``). A straight line through the two points extrapolates to a full
   tile (when both scenes have at least :data:`MIN_EXTRAPOLATION_PX` px).

Peak RSS of the in-process measurements comes from ``VmHWM`` of ``/proc/self/status``, reset before each
configuration through ``/proc/self/clear_refs`` (Linux); elsewhere it is the process-wide peak
(``resource.getrusage``), which the JSON marks (``rss_scope``).

Everything here is a function with typed keyword arguments; the command line (:func:`add_bench_arguments`,
:func:`run_from_args`) prints progress to stderr and writes JSON + Markdown.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as _dt
import json
import math
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sr_core.checks import check_int
from sr_core.runtime import usable_cpus

if TYPE_CHECKING:  # pragma: no cover - numpy is imported lazily (fast `s2sr --help`)
    import numpy as np

__all__ = [
    "ENGINES",
    "EVOLAND_FULL_TILE_S",
    "FULL_TILE_BANDS",
    "FULL_TILE_PX",
    "GPU_PEAK_TFLOPS",
    "TARGET_FULL_TILE_S",
    "TARGET_OVERHEAD",
    "TARGET_RSS_BYTES",
    "BenchSettings",
    "Runner",
    "add_bench_arguments",
    "bench_forward",
    "bench_rss",
    "bench_whole_path",
    "conv_flops_onnx",
    "cpu_info",
    "environment_info",
    "evaluate_targets",
    "flops_per_cycle",
    "full_tile_seconds",
    "gpu_info",
    "main",
    "make_runner",
    "markdown_report",
    "parse_int_list",
    "parse_threads",
    "peak_gflops",
    "peak_rss_bytes",
    "reset_peak_rss",
    "run_benchmark",
    "run_from_args",
    "sample_reflectance",
    "settings_from_args",
    "tiles_per_scene",
    "time_calls",
    "timing_stats",
]

#: A Sentinel-2 MGRS tile: 10980 x 10980 pixels at 10 m (109.8 km).
FULL_TILE_PX = 10980
#: Bands of the default model (B02, B03, B04, B08 at 10 m; B05, B06, B07, B8A, B11, B12 at 20 m).
FULL_TILE_BANDS = 10
#: Target: a full tile (10 bands, x2) on ONE CPU core in at most 30 minutes.
TARGET_FULL_TILE_S = 30 * 60.0
#: EVOLAND's published figure for the same job: 5 hours.
EVOLAND_FULL_TILE_S = 5 * 3600.0
#: Target: the whole path (UDF + emulator + I/O) at most 15 % slower than the bare forward pass.
TARGET_OVERHEAD = 0.15
#: Target: peak resident memory at most 2 GB (10**9 bytes) whatever the scene size.
TARGET_RSS_BYTES = 2 * 10**9
#: Engines: torch eager, ONNX Runtime, torch.compile (inductor).
ENGINES = ("torch", "onnx", "compile")
PRECISIONS = ("fp32", "fp16", "bf16")
#: Dense (no sparsity) datasheet peaks in TFLOP/s of the GPUs this benchmark is written for:
#: ``name substring -> {fp32, tf32, fp16, bf16}``. fp32 convolutions run as TF32 on tensor cores when
#: ``torch.backends.cudnn.allow_tf32`` (torch's default) on compute capability >= 8.0.
GPU_PEAK_TFLOPS = {
    "H100 PCIe": {"fp32": 51.2, "tf32": 378.0, "fp16": 756.0, "bf16": 756.0},
    "H100": {"fp32": 66.9, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4},  # SXM
    "H200": {"fp32": 66.9, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4},
    "A100": {"fp32": 19.5, "tf32": 156.0, "fp16": 312.0, "bf16": 312.0},
}
SCHEMA = "s2sr-throughput/1"
#: Smallest RSS scene size (10 m px) from which the peak RSS is extrapolated to a full tile.
MIN_EXTRAPOLATION_PX = 1024
DESCRIPTION = (
    "Throughput benchmark: bare forward pass per model x engine x threads x tile (x CUDA precision x batch), "
    "whole path (UDF + emulator + GeoTIFF) vs bare forward, peak RSS at two scene sizes; JSON + Markdown "
    "in --out. See benchmarks/README.md."
)
_MB = 1e6


# ================================================================================================ small pieces




def timing_stats(samples: Sequence[float]) -> dict[str, float]:
    """``{n, median, q1, q3, iqr, min, max, mean}`` of ``samples`` (seconds; quartiles by linear
    interpolation, numpy's default)."""
    import numpy as np

    a = np.asarray(list(samples), dtype=np.float64)
    if a.ndim != 1 or a.size == 0 or not np.isfinite(a).all():
        raise ValueError(f"samples must be a non-empty sequence of finite numbers, got {list(samples)!r}")
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {
        "n": int(a.size), "median": float(med), "q1": float(q1), "q3": float(q3), "iqr": float(q3 - q1),
        "min": float(a.min()), "max": float(a.max()), "mean": float(a.mean()),
    }


def time_calls(
    fn: Callable[[], Any], *, repeats: int, warmup: int, sync: Callable[[], None] | None = None
) -> tuple[list[float], list[float], Any]:
    """Call ``fn`` ``warmup`` times, then ``repeats`` timed times; returns ``(times, warmup_times, last_output)``.

    ``sync`` (e.g. ``torch.cuda.synchronize``) runs before the clock starts and before it stops, so that
    asynchronous device work is inside the measured interval."""
    repeats = check_int("repeats", repeats, 1)
    warmup = check_int("warmup", warmup, 0)
    sync = sync or (lambda: None)
    out = None
    warm: list[float] = []
    for _ in range(warmup):
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        warm.append(time.perf_counter() - t0)
    times: list[float] = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times, warm, out


def parse_int_list(text: str | Sequence[int], name: str, *, minimum: int = 1) -> list[int]:
    """``"128,256,512"`` (or a sequence) -> ``[128, 256, 512]`` (order kept, duplicates dropped)."""
    items: Iterable[Any] = text.split(",") if isinstance(text, str) else text
    out: list[int] = []
    for item in items:
        s = str(item).strip()
        try:
            v = int(s)
        except ValueError:
            raise ValueError(f"{name}: {s!r} is not an integer (expected a comma-separated list)") from None
        if v < minimum:
            raise ValueError(f"{name}: values must be >= {minimum}, got {v}")
        if v not in out:
            out.append(v)
    if not out:
        raise ValueError(f"{name}: empty list")
    return out


def parse_threads(text: str | Sequence[int], *, all_cpus: int | None = None) -> list[int]:
    """Thread counts: ``"1..all"`` (1, 2, 4, ... and all), ``"all"``, ``"1-4"``, ``"1,2,all"`` or ints.

    ``all`` = :func:`usable_cpus` (or ``all_cpus``). Counts above ``all`` are refused."""
    n_all = all_cpus or usable_cpus()
    if not isinstance(text, str):
        return [v for v in parse_int_list(list(text), "threads") if _le(v, n_all)]
    s = text.strip().lower()
    out: list[int] = []
    for part in s.split(","):
        part = part.strip()
        if part in ("1..all", "all..1"):
            k = 1
            while k < n_all:
                out.append(k)
                k *= 2
            out.append(n_all)
        elif part == "all":
            out.append(n_all)
        elif re.fullmatch(r"\d+-\d+", part):
            a, b = (int(v) for v in part.split("-"))
            if a < 1 or b < a:
                raise ValueError(f"threads: bad range {part!r}")
            out.extend(range(a, b + 1))
        else:
            out.extend(parse_int_list(part, "threads"))
    res: list[int] = []
    for v in out:
        _le(v, n_all)
        if v not in res:
            res.append(v)
    return res


def _le(v: int, n_all: int) -> bool:
    if v > n_all:
        raise ValueError(f"threads: {v} is more than the {n_all} CPUs this process may use")
    return True


def tiles_per_scene(size: int, core: int) -> int:
    """Tiles of core ``core`` px covering a ``size`` x ``size`` scene: ``ceil(size / core) ** 2``."""
    size = check_int("size", size, 1)
    core = check_int("core", core, 1)
    return (-(-size // core)) ** 2


def full_tile_seconds(seconds_per_tile: float, *, tile: int, margin: int, size: int = FULL_TILE_PX) -> float:
    """Extrapolated time of a ``size`` x ``size`` scene from the time of one ``tile`` x ``tile`` model input.

    Each tile yields a core of ``tile - 2*margin`` px (its margin is the context the seamless tiling needs),
    so the scene costs :func:`tiles_per_scene` ``(size, tile - 2*margin)`` tiles."""
    tile = check_int("tile", tile, 1)
    margin = check_int("margin", margin, 0)
    if tile - 2 * margin < 1:
        raise ValueError(
            f"tile {tile} px leaves no core with a margin of {margin} px per side: use tile > {2 * margin}"
        )
    if not (seconds_per_tile >= 0 and math.isfinite(seconds_per_tile)):
        raise ValueError(f"seconds_per_tile must be a finite number >= 0, got {seconds_per_tile!r}")
    return tiles_per_scene(size, tile - 2 * margin) * float(seconds_per_tile)


# ================================================================================================ FLOPs


def _dims(vi: Any) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]


def conv_flops_onnx(model: Any, input_shape: Sequence[int], *, allow_run: bool = True) -> dict[str, Any]:
    """Convolution FLOPs of an ONNX model for one input of ``input_shape`` (``(N, C, H, W)``).

    Counted: every ``Conv`` node, ``2 * (Cin / groups) * kh * kw * Cout`` per output pixel (a multiply-add is
    2 FLOPs; bias additions are not counted), and every ``ConvTranspose`` node, ``2 * Cin * (Cout / groups) *
    kh * kw`` per input pixel. Everything else (activations, pixel shuffle, additions) is left out: it is
    < 1 % for these networks. Shapes come from ONNX shape inference with the input dims fixed; where it
    cannot resolve a node (dynamic ``Pad``, ...) and ``allow_run``, the missing shapes are read from one
    ONNX Runtime run on zeros of ``input_shape``. ``model`` is a path or an ``onnx.ModelProto`` with a
    single input. Returns ``{"total": int, "nodes": [{name, op, flops}], "method": str}``.
    """
    import copy

    import numpy as np
    import onnx
    from onnx import numpy_helper, shape_inference

    proto = onnx.load(os.fspath(model)) if not isinstance(model, onnx.ModelProto) else copy.deepcopy(model)
    init_names = {t.name for t in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in init_names]
    if len(inputs) != 1:
        raise ValueError(f"conv_flops_onnx needs a model with one input, got {[i.name for i in inputs]}")
    shape = [check_int("input_shape", int(v), 1) for v in input_shape]
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != len(shape):
        raise ValueError(f"input_shape {tuple(shape)} has {len(shape)} dims, the model input has {len(dims)}")
    for d, v in zip(dims, shape):
        if d.HasField("dim_value") and d.dim_value != v:
            raise ValueError(f"input_shape {tuple(shape)} contradicts the model input shape {_dims(inputs[0])}")
        d.dim_value = v
    inferred = shape_inference.infer_shapes(proto, strict_mode=False, data_prop=True)
    shapes: dict[str, list[int | None]] = {}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        shapes[vi.name] = _dims(vi)
    for t in inferred.graph.initializer:
        shapes[t.name] = list(t.dims)
    for n in inferred.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    shapes[n.output[0]] = list(numpy_helper.to_array(a.t).shape)
    convs = [n for n in inferred.graph.node if n.op_type in ("Conv", "ConvTranspose")]

    def known(name: str) -> bool:
        s = shapes.get(name)
        return s is not None and len(s) >= 3 and all(v is not None for v in s)

    method = "onnx shape inference"
    missing = sorted({t for n in convs for t in (n.input[0], n.input[1], n.output[0]) if not known(t)})
    if missing:
        if not allow_run:
            raise ValueError(f"shape inference left the shapes of {missing} unknown (allow_run=False)")
        import onnxruntime as ort

        run_model = copy.deepcopy(proto)
        have = {o.name for o in run_model.graph.output}
        for name in missing:
            if name not in have and name not in init_names:
                run_model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
        sess = ort.InferenceSession(run_model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        outs = sess.run(None, {inputs[0].name: np.zeros(shape, dtype=np.float32)})
        for name, arr in zip(names, outs):
            shapes[name] = list(np.shape(arr))
        method = "onnx shape inference + one ONNX Runtime run for dynamic shapes"
    nodes = []
    total = 0
    for n in convs:
        group = 1
        for a in n.attribute:
            if a.name == "group":
                group = int(a.i)
        w = shapes[n.input[1]]
        k = int(np.prod(w[2:]))
        if n.op_type == "Conv":  # weight (Cout, Cin/group, kh, kw)
            pixels = int(np.prod(shapes[n.output[0]][2:])) * shapes[n.output[0]][0]
            flops = 2 * w[0] * w[1] * k * pixels
        else:  # ConvTranspose weight (Cin, Cout/group, kh, kw)
            pixels = int(np.prod(shapes[n.input[0]][2:])) * shapes[n.input[0]][0]
            flops = 2 * w[0] * w[1] * k * pixels
        total += flops
        nodes.append({"name": n.name, "op": n.op_type, "group": group, "weight": list(w), "flops": int(flops)})
    return {"total": int(total), "nodes": nodes, "method": method}


# ================================================================================================ machine


def flops_per_cycle(flags: Iterable[str]) -> tuple[int, str]:
    """fp32 FLOPs per cycle per core from the CPU flags, and the assumption in words.

    ``avx512f``: 2 FMA units x 16 fp32 lanes x 2 = 64; ``avx2`` + ``fma``: 2 x 8 x 2 = 32; otherwise 8
    (2 units x 4 SSE lanes, no FMA). Upper bounds: parts with one AVX-512 FMA unit reach half of 64."""
    f = {s.lower() for s in flags}
    if "avx512f" in f:
        return 64, "avx512f: 2 FMA units x 16 fp32 lanes x 2 FLOP = 64 FLOP/cycle/core"
    if "avx2" in f and "fma" in f:
        return 32, "avx2+fma: 2 FMA units x 8 fp32 lanes x 2 FLOP = 32 FLOP/cycle/core"
    return 8, "no avx2+fma: 2 units x 4 fp32 SSE lanes = 8 FLOP/cycle/core"


def peak_gflops(cores: int, ghz: float, flops_cycle: int) -> float:
    """Peak fp32 GFLOP/s = ``cores * GHz * FLOPs/cycle``."""
    cores = check_int("cores", cores, 1)
    flops_cycle = check_int("flops_cycle", flops_cycle, 1)
    if not (isinstance(ghz, (int, float)) and ghz > 0 and math.isfinite(ghz)):
        raise ValueError(f"ghz must be a positive number, got {ghz!r}")
    return cores * float(ghz) * flops_cycle


def cpu_info(*, ghz: float | None = None) -> dict[str, Any]:
    """CPU model, logical/usable/physical cores, vector flags, clock (GHz) and fp32 FLOPs/cycle.

    Clock: ``ghz`` if given, else ``/sys/.../cpuinfo_max_freq``, else ``cpu MHz`` of ``/proc/cpuinfo`` (the
    current clock, which may be below the turbo clock: the peak is then an underestimate)."""
    model, mhz, flags = platform.processor() or platform.machine(), None, set()
    cores: set[tuple[str, str]] = set()
    phys, core = "0", None
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, val = line.partition(":")
        key, val = key.strip(), val.strip()
        if key == "model name":
            model = val
        elif key == "cpu MHz" and mhz is None:
            with contextlib.suppress(ValueError):
                mhz = float(val)
        elif key == "flags" and not flags:
            flags = set(val.split())
        elif key == "physical id":
            phys = val
        elif key == "core id":
            core = val
            cores.add((phys, core))
    logical = os.cpu_count() or 1
    usable = usable_cpus()
    physical = min(len(cores), logical) if cores else logical
    ghz_source = "argument"
    if ghz is None:
        try:
            ghz = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1e6
            ghz_source = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"
        except (OSError, ValueError):
            ghz = (mhz or 0.0) / 1000.0 or None
            ghz_source = "/proc/cpuinfo cpu MHz (current clock)" if ghz else "unknown"
    fpc, basis = flops_per_cycle(flags)
    return {
        "model": model,
        "logical_cpus": logical,
        "usable_cpus": usable,
        "physical_cores": physical,
        "flags": sorted(f for f in flags if f in ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni", "sse4_2", "neon", "asimd")),
        "ghz": ghz,
        "ghz_source": ghz_source,
        "flops_per_cycle": fpc,
        "flops_per_cycle_basis": basis,
        "peak_gflops_per_core": peak_gflops(1, ghz, fpc) if ghz else None,
    }


def _cores_used(threads: int, cpu: dict[str, Any]) -> int:
    return max(1, min(int(threads), int(cpu["physical_cores"]), int(cpu["usable_cpus"])))


def gpu_info() -> dict[str, Any] | None:
    """The CUDA device (name, capability, memory, datasheet peaks) or None without torch/CUDA."""
    torch = sys.modules.get("torch")
    if torch is None:
        try:
            import torch
        except ImportError:  # pragma: no cover
            return None
    if not torch.cuda.is_available():
        return None
    i = torch.cuda.current_device()
    p = torch.cuda.get_device_properties(i)
    name = p.name
    peak = None
    for key, tflops in GPU_PEAK_TFLOPS.items():  # the more specific names come first
        if key.lower() in name.lower():
            peak = dict(tflops, matched=key)
            break
    return {
        "name": name,
        "capability": f"{p.major}.{p.minor}",
        "memory_bytes": int(p.total_memory),
        "multiprocessors": int(p.multi_processor_count),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "peak_tflops": peak,
    }


def _git(repo: Path, *args: str) -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def _version(mod: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:  # noqa: BLE001 - not installed
        m = sys.modules.get(mod)
        return getattr(m, "__version__", None)


def environment_info() -> dict[str, Any]:
    """Host, OS, Python and package versions, git commit (and whether the tree is dirty), thread env vars."""
    repo = Path(__file__).resolve().parents[2]
    commit = _git(repo, "rev-parse", "HEAD")
    status = _git(repo, "status", "--porcelain", "--untracked-files=no") if commit else None
    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES") if k in os.environ}
    versions = {
        k: _version(k)
        for k in ("s2sr", "torch", "onnxruntime", "onnx", "numpy", "xarray", "dask", "rasterio", "openeo", "h5netcdf")
    }
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": commit,
        "git_dirty": (bool(status) if status is not None else None),
        "env": env,
    }
    with contextlib.suppress(Exception):
        import onnxruntime as ort

        info["onnxruntime_providers"] = ort.get_available_providers()
    with contextlib.suppress(Exception):
        import torch

        info["torch_default_threads"] = torch.get_num_threads()
        info["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
    return info


# ================================================================================================ memory


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS; False where the OS does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def peak_rss_bytes() -> int:
    """Peak resident set size of this process in bytes (since the last :func:`reset_peak_rss` on Linux)."""
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb * 1024
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r) if sys.platform == "darwin" else int(r) * 1024


def current_rss_bytes() -> int | None:
    kb = _status_kb("VmRSS")
    return None if kb is None else kb * 1024


# ================================================================================================ runners


@dataclass
class Runner:
    """One engine ready to run: ``fn(x)`` on a prepared input (numpy for ONNX, a host tensor for torch)."""

    engine: str
    device: str
    precision: str
    threads: int | None
    fn: Callable[[Any], Any]
    prepare: Callable[[np.ndarray], Any]
    to_numpy: Callable[[Any], np.ndarray]
    sync: Callable[[], None] | None = None
    notes: list[str] = field(default_factory=list)
    close: Callable[[], None] | None = None


class SkipConfig(Exception):
    """This configuration cannot run here (reason in the message): recorded, not fatal."""


def make_runner(
    folder: str | os.PathLike, *, engine: str, device: str = "cpu", precision: str = "fp32",
    threads: int | None = None, compile_mode: str | None = None,
) -> Runner:
    """A :class:`Runner` for the package in ``folder``: ``engine`` ``torch`` / ``onnx`` / ``compile``,
    ``device`` ``cpu`` / ``cuda``, ``precision`` ``fp32`` or (torch engines) ``fp16`` / ``bf16`` autocast.

    CPU torch engines set ``torch.set_num_threads(threads)`` (the caller restores it); ONNX Runtime gets
    ``intra_op_num_threads=threads``, ``inter_op_num_threads=1``. ``compile`` builds a fresh
    ``torch.compile(model, dynamic=False, mode=compile_mode)`` (inductor specialises its CPU kernels to the
    thread count, so one compiled model per thread count). CUDA: the input comes from pinned host memory, the
    output goes back into a pinned host buffer reused per output shape, both copies are inside the timed call.
    Raises :class:`SkipConfig` for combinations that cannot run (no CUDA, no weights file, fp16 ONNX, ...)."""
    import numpy as np

    from sr_core.models import load_card

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if threads is not None:
        threads = check_int("threads", threads, 1)
    folder = Path(folder)
    if engine == "onnx":
        return _onnx_runner(folder, device, precision, threads, load_card(folder, verify=True, role="onnx"))
    import torch

    from sr_core.models import load_torch_model

    card = load_card(folder, verify=False)
    if "weights" not in card.files:
        raise SkipConfig(f"model {card.name!r} ships no torch weights (card.json files: {sorted(card.files)})")
    if device == "cuda" and not torch.cuda.is_available():
        raise SkipConfig("CUDA is not available")
    if device == "cpu" and precision == "fp16":
        raise SkipConfig("fp16 autocast is not supported for CPU convolutions")
    model, card = load_torch_model(folder)
    dev = torch.device(device)
    model = model.to(dev).eval()
    notes: list[str] = []
    if threads is not None and device == "cpu":
        torch.set_num_threads(threads)
    net: Any = model
    if engine == "compile":
        torch._dynamo.reset()
        kwargs = {"dynamic": False}
        if compile_mode:
            kwargs["mode"] = compile_mode
        net = torch.compile(model, **kwargs)
        notes.append(f"torch.compile({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}); first call compiles")
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    saved_benchmark = torch.backends.cudnn.benchmark
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # autotuned conv algorithms: warm-up calls pay the search
        notes.append("cudnn.benchmark=True; timed call includes the host->device and device->host copies "
                     "(pinned host buffers)")
        if precision == "fp32" and torch.backends.cudnn.allow_tf32:
            notes.append("fp32 convolutions may run as TF32 (torch.backends.cudnn.allow_tf32=True)")

    def prepare(x: np.ndarray) -> Any:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return t.pin_memory() if device == "cuda" else t

    # CUDA output: copied into a pinned host buffer kept per shape, as a pipeline that streams tiles would do.
    # A fresh pageable tensor per call (``.cpu()``) made the timing the page faults of the host allocation:
    # on an H100, 1.4 GB/s, so that batching tiles looked slower than single tiles.
    host_out: dict[tuple[int, ...], Any] = {}

    def fn(x: Any) -> Any:
        with torch.inference_mode():
            xd = x.to(dev, non_blocking=True) if device == "cuda" else x
            if dtype is not None:
                with torch.autocast(device_type=device, dtype=dtype):
                    y = net(xd)
            else:
                y = net(xd)
            if device != "cuda":
                return y
            buf = host_out.get(tuple(y.shape))
            if buf is None:
                buf = host_out[tuple(y.shape)] = torch.empty(tuple(y.shape), dtype=torch.float32, pin_memory=True)
            return buf.copy_(y.float(), non_blocking=True)  # complete once the timer synchronises

    def to_numpy(y: Any) -> np.ndarray:
        if device == "cuda":
            torch.cuda.synchronize()
            return y.detach().float().cpu().numpy().copy()  # the pinned buffer is reused by the next call
        return y.detach().float().cpu().numpy()

    sync = torch.cuda.synchronize if device == "cuda" else None

    def close() -> None:
        torch.backends.cudnn.benchmark = saved_benchmark
        if engine == "compile":
            torch._dynamo.reset()
        if device == "cuda":
            torch.cuda.empty_cache()

    return Runner(engine, device, precision, threads, fn, prepare, to_numpy, sync, notes, close)


def _onnx_runner(folder: Path, device: str, precision: str, threads: int | None, card: Any) -> Runner:
    import numpy as np
    import onnxruntime as ort

    if precision != "fp32":
        raise SkipConfig("the ONNX files are fp32: no fp16/bf16 ONNX Runtime run")
    if "onnx" not in card.files:
        raise SkipConfig(f"model {card.name!r} ships no ONNX file")
    providers = ["CPUExecutionProvider"]
    notes: list[str] = []
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise SkipConfig("onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        notes.append("CUDAExecutionProvider; timed call includes the host<->device copies")
    from sr_core.models import ort_session_options

    opts = ort_session_options(threads)  # the options of the shipped Predictor
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(str(folder / card.files["onnx"]), sess_options=opts, providers=providers)
    if device == "cuda" and sess.get_providers()[0] != "CUDAExecutionProvider":
        raise SkipConfig(f"ONNX Runtime fell back to {sess.get_providers()}")
    name = sess.get_inputs()[0].name
    if len(sess.get_inputs()) != 1 or len(sess.get_inputs()[0].shape) != 4:
        raise SkipConfig(f"model {card.name!r}: not a single-image (N, C, H, W) ONNX model")

    def fn(x: np.ndarray) -> np.ndarray:
        return sess.run(None, {name: x})[0]

    return Runner("onnx", device, precision, threads, fn, lambda x: np.ascontiguousarray(x, np.float32),
                  lambda y: np.asarray(y), None, notes)


# ================================================================================================ inputs

_SAMPLE_CACHE: dict[str, Any] = {}


def _sample_stack() -> tuple[list[str], np.ndarray]:
    """Bundled real sample as float32 reflectance ``(10, 256, 256)`` on the 10 m grid (20 m bands nearest
    x2), band names in canonical order."""
    import numpy as np

    if "stack" not in _SAMPLE_CACHE:
        from sr_core.bands import BANDS_10M, BANDS_20M
        from sr_core.io.sample import load_sample

        s = load_sample()
        b20 = np.repeat(np.repeat(s.bands20, 2, axis=-2), 2, axis=-1)
        _SAMPLE_CACHE["stack"] = (list(BANDS_10M) + list(BANDS_20M), np.concatenate([s.bands10, b20]).astype(np.float32))
    return _SAMPLE_CACHE["stack"]


def sample_reflectance(bands: Sequence[str], size: int, *, fill: Sequence[float] | None = None) -> np.ndarray:
    """Real-texture reflectance ``(len(bands), size, size)``: the bundled sample mirror-tiled to ``size``.

    Bands the sample lacks (B01, B09) are ``fill`` (per band) or 0.1. Speed does not depend on the values,
    but real values avoid denormal or constant-input artefacts."""
    import numpy as np

    from sr_core.bands import normalize_band_name

    size = check_int("size", size, 1)
    names, stack = _sample_stack()
    out = np.empty((len(bands), size, size), dtype=np.float32)
    for k, b in enumerate(bands):
        c = normalize_band_name(b)
        if c in names:
            a = stack[names.index(c)]
            out[k] = np.pad(a, ((0, max(0, size - a.shape[0])), (0, max(0, size - a.shape[1]))), mode="symmetric")[:size, :size]
        else:
            out[k] = fill[k] if fill is not None else 0.1
    return out


def _dn_scene(bands: Sequence[str], size: int) -> np.ndarray:
    """uint16 DN ``(len(bands), size, size)`` on the 10 m grid: 20 m bands constant on aligned 2x2 blocks
    (nearest-replicated from their native grid, as openEO delivers them)."""
    import numpy as np

    from sr_core.bands import BANDS, normalize_band_name

    if size % 2:
        raise ValueError(f"scene size must be even (20 m bands nest in 2x2 blocks), got {size}")
    refl = sample_reflectance(bands, size)
    for k, b in enumerate(bands):
        if BANDS[normalize_band_name(b)].resolution == 20:
            refl[k] = np.repeat(np.repeat(refl[k, ::2, ::2], 2, axis=0), 2, axis=1)
    return np.clip(np.round(refl * 10000.0), 0, 65535).astype(np.uint16)


def bare_tile_inputs(
    bands: Sequence[str], scene: int, *, tile: int, margin: int, scale: int
) -> tuple[list[Any], list[np.ndarray]]:
    """The bare forward pass's model inputs on the synthetic benchmark scene (:func:`_dn_scene`, ``scene`` px):
    the tiles of :func:`sr_core.tiling.plan_tiles` (``tile`` core, ``margin``) as reflectance, cut as ``s2sr
    superres`` cuts them. Returns ``(tiles, inputs)``."""
    import numpy as np

    from sr_core.tiling import extract_tile, plan_tiles

    lr_refl = _dn_scene(list(bands), scene).astype(np.float32) / np.float32(10000.0)
    tiles = plan_tiles(scene, scene, tile=tile, margin=margin, scale=scale)
    return tiles, [np.ascontiguousarray(extract_tile(lr_refl[None], t)) for t in tiles]


def _dn_dataarray(bands: Sequence[str], size: int, factor: int = 1, res: float = 10.0) -> Any:
    """The DN scene as an ``xarray.DataArray`` ``(bands, y, x)`` (cell centres, EPSG:32633-like origin),
    nearest-resampled by ``factor`` (``resampled`` mode input)."""
    import numpy as np
    import xarray as xr

    dn = _dn_scene(bands, size)
    if factor > 1:
        dn = np.repeat(np.repeat(dn, factor, axis=-2), factor, axis=-1)
    r = res / factor
    n = dn.shape[-1]
    x0, y0 = 300000.0, 6200000.0
    coords = {"bands": list(bands), "y": y0 - r * (np.arange(n) + 0.5), "x": x0 + r * (np.arange(n) + 0.5)}
    return xr.DataArray(dn, dims=("bands", "y", "x"), coords=coords, name="dn", attrs={"crs": "EPSG:32633"})


def _write_netcdf(da: Any, path: Path) -> Path:
    chunks = (1, min(256, da.shape[-2]), min(256, da.shape[-1]))
    da.to_dataset(name="dn").to_netcdf(path, engine="h5netcdf", encoding={"dn": {"chunksizes": chunks}})
    return path


# ================================================================================================ forward


def _model_info(folder: Path) -> dict[str, Any]:
    from sr_core.models import load_card

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
    configuration (see the module docstring; ``skipped`` holds the reason for configurations that cannot
    run). ``threads`` only applies to ``device="cpu"``. The first engine's output on each tile is the
    reference of ``max_abs_diff`` (``torch`` eager fp32 first when listed)."""
    import torch

    from sr_core.models import load_card

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
    import numpy as np
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
            cores = _cores_used(runner.threads or cpu["usable_cpus"], cpu)
            row["peak_gflops"] = peak_gflops(cores, cpu["ghz"], cpu["flops_per_cycle"])
            row["peak_basis"] = f"{cores} core(s) x {cpu['ghz']:.2f} GHz x {cpu['flops_per_cycle']} FLOP/cycle"
        if row.get("peak_gflops"):
            row["pct_peak"] = 100.0 * row["gflops"] / row["peak_gflops"]
    if cuda and runner.engine != "onnx":  # ONNX Runtime's CUDA arena is invisible to torch's allocator stats
        row["peak_gpu_bytes"] = int(torch.cuda.max_memory_allocated())
    log(
        f"  {row['engine']:8s} {runner.device}/{runner.precision} threads={runner.threads} tile={tile} "
        f"batch={batch}: {st['median'] * 1e3:.1f} ms [{st['min'] * 1e3:.1f}-{st['max'] * 1e3:.1f}], "
        f"{row['out_mp_per_s']:.2f} MP/s, full tile {_fmt_duration(full)}"
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


# ================================================================================================ whole path


def _udf_file() -> Path:
    import udf

    return Path(udf.__file__).resolve().parent / "sr_udf.py"


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
    writing a GeoTIFF as it goes (``out_path=*.tif``: chunk results streamed on a writer thread) on the NetCDF cube (in ``resampled`` mode the cube is on the output grid, nearest-resampled, as the
    process graph makes it; ``upscale`` mode: 10 m input, runtime ``Python-Jep``) with ``udf/sr_udf.py``,
    ``size``/``overlap`` from :func:`sr_core.inference.cube.recommended_neighborhood` (``chunk`` overrides ``size``),
    one chunk at a time, engine ``threads``; then the result written as a GeoTIFF. Bare forward: the model
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
    import numpy as np
    import xarray as xr

    import udf.local as ul
    from sr_core.inference.cube import recommended_neighborhood
    from sr_core.models import load_predictor
    from sr_core.tiling import extract_tile, plan_tiles

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
        cube = _dn_dataarray(list(pred.bands), scene, factor=factor)
        nc = _write_netcdf(cube, tmp / "input.nc")
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

        apply, udf_file = ul.apply_neighborhood_local, _udf_file()
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
        import shutil

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
    from sr_core.inference import scene as sres
    from sr_core.models import load_predictor

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
    tile = int(tile or getattr(sres, "DEFAULT_TILE", 256))
    core = sres.aligned_tile(tile, s) if hasattr(sres, "aligned_tile") else tile
    tmp = Path(tempfile.mkdtemp(prefix="s2sr-bench-", dir=workdir))
    raw, orig_post = pred._fn, pred.postprocess
    try:
        scene_dir = _write_scene_folder(scene, tmp / "scene")
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
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


# ================================================================================================ RSS


def superres_available() -> bool:
    """True when the ``s2sr`` command line of this installation has the ``superres`` subcommand."""
    try:
        from s2sr_cli.main import build_parser

        p = build_parser()
    except Exception:  # noqa: BLE001 - a broken sibling command must not break the benchmark
        return False
    for a in p._actions:  # argparse has no public accessor for subcommands
        if isinstance(a, argparse._SubParsersAction) and "superres" in a.choices:
            return True
    return False


def _write_scene_folder(size: int, folder: Path) -> Path:
    """A scene folder of the shared layout (``bands_10m.tif``, ``bands_20m.tif``, ``scene.json``) of
    ``size`` x ``size`` 10 m px made from the mirror-tiled bundled sample (DN uint16, dn_scale 10000)."""
    import rasterio
    from rasterio.transform import Affine

    from sr_core.bands import BANDS_10M, BANDS_20M

    folder.mkdir(parents=True, exist_ok=True)
    all_bands = list(BANDS_10M) + list(BANDS_20M)
    dn = _dn_scene(all_bands, size)
    x0, y0 = 300000.0, 6200000.0
    files = {}
    for res, names, arr in ((10, BANDS_10M, dn[:4]), (20, BANDS_20M, dn[4:, ::2, ::2])):
        fname = f"bands_{res}m.tif"
        h, w = arr.shape[-2:]
        prof = {"driver": "GTiff", "width": w, "height": h, "count": len(names), "dtype": "uint16",
                "crs": "EPSG:32633", "transform": Affine(float(res), 0, x0, 0, -float(res), y0), "tiled": True,
                "blockxsize": 256, "blockysize": 256, "compress": "deflate", "predictor": 2, "BIGTIFF": "IF_SAFER"}
        with rasterio.open(folder / fname, "w", **prof) as dst:
            dst.write(arr)
            dst.update_tags(DN_SCALE="10000", ADD_OFFSET="0", PRODUCT_LEVEL="L1C")
            for i, b in enumerate(names, start=1):
                dst.set_band_description(i, b)
                dst.update_tags(i, BANDNAME=b)
        files[fname] = {"bands": list(names), "pixel_size_m": res, "width": w, "height": h, "dtype": "uint16"}
    meta = {
        "id": f"s2sr-bench-{size}", "product_level": "L1C", "dn_scale": 10000, "add_offset": 0, "lossy": False,
        "crs": "EPSG:32633", "bounds": [x0, y0 - 10.0 * size, x0 + 10.0 * size, y0], "nodata": None,
        "files": files, "georef": "synthetic",
        "notes": "benchmark input: the bundled sample mirror-tiled (Contains modified Copernicus Sentinel data 2017)",
    }
    (folder / "scene.json").write_text(json.dumps(meta, indent=2))
    del dn
    return folder


def _stream_child(argv: Sequence[str]) -> int:
    """Child process of :func:`bench_rss` (emulator fallback): stream a NetCDF cube through the UDF into a
    NetCDF file. ``argv``: one JSON object with input, output, size, overlap, context, workers."""
    a = json.loads(argv[0])
    from udf.local import apply_neighborhood_local

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
    from benchmarks.throughput.harness import _stream_child
    sys.exit(_stream_child(args))
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
    default) when :func:`superres_available`
    (and not ``force_emulator``), else the emulator (upscale mode, ``threads`` chunk workers with 1 engine
    thread each) streaming into NetCDF (``out_path``). Also measured: a child that only imports the stack
    (``baseline``). The line through the two largest sizes (slope clipped at 0) gives ``full_tile_bytes`` at
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
        from sr_core.inference.cube import recommended_neighborhood
        from sr_core.models import load_predictor

        pred = load_predictor(str(folder), engine=engine, threads=1)
        size_c, overlap = recommended_neighborhood(pred, "upscale")
        for n in sizes:
            if n % 2:
                raise ValueError(f"rss sizes must be even, got {n}")
            if use_superres:
                scene_dir = _write_scene_folder(n, tmp / f"scene_{n}")
                cmd = ["module", "s2sr_cli.main", "superres", str(scene_dir), str(tmp / f"out_{n}.tif"),
                       "--model", str(folder), "--engine", engine, "--threads", str(threads), "--quiet"]
            else:
                nc = _write_netcdf(_dn_dataarray(list(pred.bands), n), tmp / f"input_{n}.nc")
                arg = {"input": str(nc), "output": str(tmp / f"out_{n}.nc"), "udf": str(_udf_file()),
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
        import shutil

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


# ================================================================================================ report


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


def _fmt_duration(seconds: float) -> str:
    """Seconds below a minute (a GPU's full tile), minutes above."""
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def _fmt_s(st: dict[str, float], scale: float = 1.0, unit: str = "s") -> str:
    return f"{st['median'] * scale:.3g} {unit} [{st['q1'] * scale:.3g}-{st['q3'] * scale:.3g}]"


def markdown_report(results: dict[str, Any]) -> str:
    """The Markdown summary of a results dict (for ``benchmarks/results/throughput.md`` and the README)."""
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
            f"{r['batch']} | {_fmt_s(st)} | {r['out_mp_per_s']:.2f} | {_fmt_duration(r['full_tile_s'])} | "
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


# ================================================================================================ driver


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
    from sr_core.models import resolve_model

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
        info = _model_info(folder)
        from sr_core.models import load_card

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


# ================================================================================================ CLI


def add_bench_arguments(p: argparse.ArgumentParser, *, quiet_flag: bool = False) -> None:
    """The benchmark's command-line options (shared by ``s2sr bench`` and ``benchmarks/throughput.py``)."""
    p.add_argument("--model", action="append", default=None,
                   help="shipped model name or package folder (repeatable; default: every shipped model)")
    p.add_argument("--random-model", action="store_true",
                   help="benchmark a tiny RANDOM package (udf.testing.make_package): a dry run of the benchmark itself")
    p.add_argument("--engines", default=None, help="comma list of torch, onnx, compile (default: all three; --quick: torch,onnx)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto = CPU, plus CUDA when torch sees a GPU (default)")
    p.add_argument("--threads", default=None, help="CPU thread counts: '1..all' (1, 2, 4, ..., all; default), 'all', '1-4', '1,2,all'")
    p.add_argument("--tiles", default=None, help="tile sizes in input (10 m) px, margin included (default 128,256,512)")
    p.add_argument("--batch", default=None, help="CPU batch sizes (default 1)")
    p.add_argument("--cuda-batches", default="1,8,32", help="CUDA batch sizes (tiles per call; default 1,8,32)")
    p.add_argument("--cuda-precisions", default="fp32,fp16,bf16", help="CUDA precisions (autocast; default fp32,fp16,bf16)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per configuration (default 5; >= 5 to report)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up runs per configuration (default 2)")
    p.add_argument("--scene", type=int, default=None, help="whole-path scene size, 10 m px per side (default 512)")
    p.add_argument("--chunk", type=int, default=None, help="apply_neighborhood size for the whole path (default: recommended)")
    p.add_argument("--mode", choices=("resampled", "upscale"), default="resampled", help="UDF mode of the whole path")
    p.add_argument("--emulator-input", choices=("lazy", "path"), default="lazy",
                   help="whole path input: NetCDF opened lazily without dask (default) or the path (dask-backed open_cube)")
    p.add_argument("--superres-tile", type=int, default=None, help="tile of the `s2sr superres` whole path (default: its default)")
    p.add_argument("--overhead-engines", default="onnx", help="engines of the whole-path measurement (default onnx)")
    p.add_argument("--overhead-threads", default=None, help="thread counts of the whole-path measurement (default '1,all')")
    p.add_argument("--overhead-workers", default=None,
                   help="chunk workers of the whole-path (UDF + emulator) measurement, each with 1 engine thread when "
                        "more than 1 (default '1,all': one chunk at a time, and one chunk per core as a back-end's "
                        "executors run them)")
    p.add_argument("--rss-sizes", default=None,
                   help="two or more scene sizes (10 m px) for peak RSS (default 1280,2560: both outputs above "
                        "2048 px, so `s2sr superres` writes a COG at both)")
    p.add_argument("--rss-engine", choices=("onnx", "torch"), default="onnx")
    p.add_argument("--rss-threads", type=int, default=None, help="threads of the RSS runs (default all)")
    p.add_argument("--rss-emulator", action="store_true", help="measure RSS on the emulator path even when `s2sr superres` exists")
    p.add_argument("--skip", action="append", default=[], choices=("forward", "overhead", "rss"),
                   help="skip a part (repeatable)")
    p.add_argument("--compile-mode", default=None, help="torch.compile mode (default: torch's default)")
    p.add_argument("--ghz", type=float, default=None, help="CPU clock for the peak GFLOP/s (default: from the system)")
    p.add_argument("--quick", action="store_true",
                   help="dry run: 1 warm-up + 1 run, threads 1, one 64 px tile, 128 px scene, RSS at 64,128 px")
    p.add_argument("--out", default="benchmarks/results", help="output folder (default benchmarks/results)")
    p.add_argument("--tag", default=None, help="JSON file name part: throughput_<tag>.json (default <host>_<date>)")
    p.add_argument("--workdir", default=None, help="folder for temporary inputs/outputs (default: system temp)")
    if quiet_flag:
        p.add_argument("--quiet", action="store_true", help="print only errors and the output paths")


def settings_from_args(args: argparse.Namespace, *, tmp_models: str | None = None) -> BenchSettings:
    """:class:`BenchSettings` from parsed arguments (``--quick`` fills what was not given explicitly)."""
    from sr_core.models import list_models

    q = bool(args.quick)
    models = list(args.model or [])
    if args.random_model:
        if tmp_models is None:
            raise ValueError("--random-model needs a folder for the package")
        from udf.testing import make_package

        make_package(Path(tmp_models) / "random-s2fast", arch="s2fast", arch_kwargs={"num_features": 8, "num_blocks": 1})
        models.append(str(Path(tmp_models) / "random-s2fast"))
    if not models:
        models = list_models()
    if not models:
        raise ValueError("no model packages shipped in this installation: pass --model PATH (or --random-model for a dry run)")
    engines = parse_engines(args.engines or ("torch,onnx" if q else "torch,onnx,compile"))
    devices = ["cpu"]
    if args.device in ("auto", "cuda"):
        import torch

        if torch.cuda.is_available():
            devices.append("cuda")
        elif args.device == "cuda":
            raise ValueError("--device cuda: torch sees no CUDA device")
        if args.device == "cuda":
            devices = ["cuda"]
    precisions = [p.strip() for p in args.cuda_precisions.split(",") if p.strip()]
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad:
        raise ValueError(f"--cuda-precisions: unknown {bad}; choose from {', '.join(PRECISIONS)}")
    all_t = usable_cpus()
    threads = parse_threads(args.threads or ("1" if q else "1..all"))
    ov_threads = parse_threads(args.overhead_threads or ("1" if q else "1,all"))
    ov_workers = parse_threads(args.overhead_workers or ("1" if q else "1,all"))
    repeats = args.repeats if args.repeats is not None else (1 if q else 5)
    warmup = args.warmup if args.warmup is not None else (1 if q else 2)
    check_int("--repeats", repeats, 1)
    check_int("--warmup", warmup, 0)
    if "compile" in engines and warmup < 1:
        raise ValueError("--warmup must be >= 1 with the compile engine (the first call compiles)")
    rss_sizes = parse_int_list(args.rss_sizes or ("64,128" if q else "1280,2560"), "--rss-sizes", minimum=2)
    if len(rss_sizes) < 2 and "rss" not in args.skip:
        raise ValueError(f"--rss-sizes needs two sizes or more to show whether RSS grows, got {rss_sizes}")
    return BenchSettings(
        models=models, engines=engines, devices=devices, cuda_precisions=precisions,
        cuda_batches=parse_int_list(args.cuda_batches, "--cuda-batches"),
        threads=threads, tiles=parse_int_list(args.tiles or ("64" if q else "128,256,512"), "--tiles"),
        batches=parse_int_list(args.batch or "1", "--batch"), repeats=repeats, warmup=warmup,
        scene=check_int("--scene", args.scene if args.scene is not None else (128 if q else 512), 2),
        chunk=args.chunk, mode=args.mode, emulator_input=args.emulator_input, superres_tile=args.superres_tile,
        overhead_engines=[e for e in parse_engines(args.overhead_engines) if e != "compile"],
        overhead_threads=ov_threads, overhead_workers=ov_workers, rss_sizes=rss_sizes, rss_engine=args.rss_engine,
        rss_threads=args.rss_threads or all_t, skip=list(args.skip), compile_mode=args.compile_mode, ghz=args.ghz,
        workdir=args.workdir, quick=q, force_emulator_rss=args.rss_emulator,
    )


def parse_engines(text: str) -> list[str]:
    """``"torch,onnx"`` -> ``["torch", "onnx"]``; unknown names are a ``ValueError``."""
    out = [e.strip() for e in text.split(",") if e.strip()]
    bad = [e for e in out if e not in ENGINES]
    if bad or not out:
        raise ValueError(f"engines: unknown {bad or text!r}; choose from {', '.join(ENGINES)}")
    return list(dict.fromkeys(out))


def run_from_args(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed arguments; write JSON + Markdown; print the Markdown unless quiet."""
    quiet = bool(getattr(args, "quiet", False))

    def log(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr, flush=True)

    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="s2sr-bench-models-") as tmp_models:
        settings = settings_from_args(args, tmp_models=tmp_models)
        log(f"s2sr bench: models {', '.join(Path(m).name for m in settings.models)}; engines {settings.engines}; "
            f"devices {settings.devices}; threads {settings.threads}; tiles {settings.tiles}; "
            f"{settings.repeats} runs after {settings.warmup} warm-up")
        results = run_benchmark(settings, log=log)
    jpath, mpath = write_results(results, args.out, tag=args.tag)
    if not quiet:
        print(markdown_report(results))
    print(f"wrote {jpath} and {mpath}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None, *, prog: str = "throughput.py") -> int:
    """Stand-alone entry point (``benchmarks/throughput.py``)."""
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION + " Same as `s2sr bench`.")
    add_bench_arguments(p, quiet_flag=True)
    args = p.parse_args(argv)
    try:
        return run_from_args(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
