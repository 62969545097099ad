"""Timing: summary statistics of repeated calls, and the extrapolation of a tile's time to a full Sentinel-2 tile."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sr_core.checks import check_int

__all__ = [
    "FULL_TILE_BANDS",
    "FULL_TILE_PX",
    "format_duration",
    "full_tile_seconds",
    "tiles_per_scene",
    "time_calls",
    "timing_stats",
]

#: A Sentinel-2 MGRS tile: 10980 x 10980 pixels at 10 m (109.8 km).
FULL_TILE_PX = 10980
#: Bands of the default model (B02, B03, B04, B08 at 10 m; B05, B06, B07, B8A, B11, B12 at 20 m).
FULL_TILE_BANDS = 10


def timing_stats(samples: Sequence[float]) -> dict[str, float]:
    """``{n, median, q1, q3, iqr, min, max, mean}`` of ``samples`` (seconds; quartiles by linear
    interpolation, numpy's default)."""
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


def format_duration(seconds: float) -> str:
    """Seconds below a minute (a GPU's full tile), minutes above."""
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds / 60:.1f} min"
