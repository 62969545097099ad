"""The machine and the process: CPU and GPU (with their peak FLOP/s), software environment, peak resident memory.

Peak RSS is ``VmHWM`` of ``/proc/self/status``, reset through ``/proc/self/clear_refs`` (Linux); elsewhere it is
the process-wide peak (``resource.getrusage``)."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sr_core.checks import check_int
from sr_core.runtime import usable_cpus

__all__ = [
    "GPU_PEAK_TFLOPS",
    "cores_used",
    "cpu_info",
    "current_rss_bytes",
    "environment_info",
    "flops_per_cycle",
    "gpu_info",
    "peak_gflops",
    "peak_rss_bytes",
    "reset_peak_rss",
]

#: Dense (no sparsity) datasheet peaks in TFLOP/s of the GPUs this benchmark is written for:
#: ``name substring -> {fp32, tf32, fp16, bf16}``. fp32 convolutions run as TF32 on tensor cores when
#: ``torch.backends.cudnn.allow_tf32`` (torch's default) on compute capability >= 8.0.
GPU_PEAK_TFLOPS = {
    "H100 PCIe": {"fp32": 51.2, "tf32": 378.0, "fp16": 756.0, "bf16": 756.0},
    "H100": {"fp32": 66.9, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4},  # SXM
    "H200": {"fp32": 66.9, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4},
    "A100": {"fp32": 19.5, "tf32": 156.0, "fp16": 312.0, "bf16": 312.0},
}


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


def cores_used(threads: int, cpu: dict[str, Any]) -> int:
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
