"""Cloud-Optimized GeoTIFF from a tiled GeoTIFF, with memory bounded whatever the raster size.

GDAL's COG driver, asked to generate the overviews itself, processed strips the full width of the raster
and re-read blocks through its block cache: with ``GDAL_CACHEMAX=128`` its peak RSS grew with the width
(383 MB for 5120 px, 571 MB for 10240 px, 10 float32 bands) and its time grew faster than the pixel count
(27.5 s, then 321.5 s: the cache thrashed; ``benchmarks/results/cog_conversion.json``). See
``docs/decisions/2026-11-22-cog-overviews.md``.

Here the overviews are built first, window by window (:func:`build_overviews`): each level is the
nodata-aware area-weighted average of the level before (:func:`average_halve`: 2 x 2 blocks for even sizes,
GDAL's weighted average over its ``n / ceil(n / 2)`` pixel geometry for odd ones), read in windows aligned to
the blocks, so memory depends on the window size only. The COG driver then only *copies* the
raster and these levels (``OVERVIEWS=FORCE_USE_EXISTING`` through a VRT that lists them,
:func:`write_cog`).

Levels are made while the larger side of the last level exceeds the block size, as many as GDAL's
``OVERVIEWS=AUTO`` makes (:func:`overview_shapes`); level ``k`` is ``ceil(h / 2**k) x ceil(w / 2**k)``, the
sizes of GDAL's ``BuildOverviews`` (``gdaladdo``; the COG driver's own generation rounds down instead, so each
of its pixels may cover a little more than 2 source pixels). Where the sizes agree (sides divisible by
``2**levels``) the values equal those of the COG driver's own ``AVERAGE`` overviews up to float rounding,
since both average each level from the one before (tested).
"""

from __future__ import annotations

import os
import threading
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

__all__ = ["average_halve", "build_overviews", "halving_weights", "make_cog", "overview_shapes", "write_cog"]

#: Side (in pixels of the level being made) of the windows :func:`build_overviews` computes at once: the
#: source window is about twice that, 10 float32 bands of 512 x 512 = 10 MB (the working arrays of
#: :func:`average_halve` take about 4 times that).
OVERVIEW_WINDOW = 256


def overview_shapes(height: int, width: int, blocksize: int) -> list[tuple[int, int]]:
    """``(h, w)`` of each overview level: halved (rounded up) while the larger side exceeds ``blocksize``."""
    if height < 1 or width < 1 or blocksize < 1:
        raise ValueError(f"height, width and blocksize must be >= 1, got {height}, {width}, {blocksize}")
    shapes = []
    h, w = int(height), int(width)
    while max(h, w) > blocksize:
        h, w = -(-h // 2), -(-w // 2)
        shapes.append((h, w))
    return shapes


def halving_weights(n: int) -> tuple[np.ndarray, np.ndarray]:
    """How an axis of ``n`` pixels becomes ``m = ceil(n / 2)``: overview pixel ``i`` covers
    ``[i n / m, (i + 1) n / m)`` of the axis (GDAL's overview geometry: the same extent, ``n / m`` times coarser
    pixels), i.e. up to 3 source pixels. Returns ``idx`` and ``wt``, both ``(m, 3)``: the source pixels and the
    length of their overlap with that interval (0 for unused slots). For even ``n`` that is pixels ``2i, 2i+1``
    with weight 1 each."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    m = -(-n // 2)
    i = np.arange(m, dtype=np.int64)[:, None]
    lo, hi = i * n, (i + 1) * n  # the interval, in units of 1/m source pixel
    j = lo // m + np.arange(3, dtype=np.int64)[None, :]
    overlap = np.clip(np.minimum(hi, (j + 1) * m) - np.maximum(lo, j * m), 0, None)
    idx = np.minimum(j, n - 1)
    return idx, overlap / m


def _halve_axis(x: np.ndarray, axis: int, idx: np.ndarray, wt: np.ndarray) -> np.ndarray:
    """Weighted sums along ``axis`` (``idx`` local to ``x``): ``sum_t wt[:, t] * x.take(idx[:, t])``."""
    m = idx.shape[0]
    if x.shape[axis] == 2 * m and not wt[:, 2].any() and (wt[:, :2] == 1).all():
        y = np.moveaxis(x, axis, 0)
        return np.moveaxis(y[0::2] + y[1::2], 0, axis)
    shape = [1] * x.ndim
    shape[axis] = m
    out = None
    for t in range(3):
        if not wt[:, t].any():
            continue
        term = x.take(idx[:, t], axis=axis) * wt[:, t].astype(x.dtype).reshape(shape)
        out = term if out is None else out + term
    return out


def average_halve(
    values: np.ndarray,
    nodata: float | None,
    rows: tuple[np.ndarray, np.ndarray] | None = None,
    cols: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """One overview level of ``values`` (``(..., h, w)``): the area-weighted mean of the valid source pixels
    each overview pixel covers (:func:`halving_weights`; 2 x 2 blocks for even sizes), in ``values``' dtype.

    A pixel is invalid when it is NaN or equals ``nodata``; an overview pixel with no valid source is
    ``nodata`` (NaN for float values when ``nodata`` is None or NaN). Integer output is rounded half up.
    Computed in float32 for float32 values, float64 otherwise. ``rows``/``cols``: ``(idx, wt)`` for a window
    of a larger level (``idx`` relative to the first row / column of ``values``); by default the whole axes.
    """
    v = np.asarray(values)
    if v.ndim < 2 or v.shape[-2] < 1 or v.shape[-1] < 1:
        raise ValueError(f"values must be (..., h, w) with h, w >= 1, got shape {v.shape}")
    if v.dtype.kind not in "uif":
        raise ValueError(f"values must be integer or floating point, got dtype {v.dtype}")
    fill_nan = nodata is None or bool(np.isnan(nodata))
    if v.dtype.kind != "f" and nodata is not None and fill_nan:
        raise ValueError(f"nodata NaN for integer values ({v.dtype})")
    ri, rw = rows if rows is not None else halving_weights(v.shape[-2])
    ci, cw = cols if cols is not None else halving_weights(v.shape[-1])
    if ri.max() >= v.shape[-2] or ci.max() >= v.shape[-1] or ri.min() < 0 or ci.min() < 0:
        raise ValueError(f"row/column weights index outside values of shape {v.shape}")
    work = np.float32 if v.dtype == np.float32 else np.float64
    f = v.astype(work, copy=False)
    invalid = np.isnan(f) if v.dtype.kind == "f" else np.zeros(f.shape, bool)
    if not fill_nan:
        invalid |= f == nodata

    def halve(x: np.ndarray) -> np.ndarray:
        return _halve_axis(_halve_axis(x, x.ndim - 1, ci, cw), x.ndim - 2, ri, rw)

    if not invalid.any():
        area = (rw.sum(axis=1)[:, None] * cw.sum(axis=1)[None, :]).astype(work)
        out = halve(f) / area
    else:
        count = halve((~invalid).astype(work))
        total = halve(np.where(invalid, work(0), f))
        with np.errstate(invalid="ignore", divide="ignore"):
            out = total / count
        out[count <= 0] = np.nan
    if v.dtype.kind != "f":
        empty = np.isnan(out)
        out = np.floor(out + 0.5)
        out[empty] = nodata if nodata is not None else 0
    elif not fill_nan:
        out[np.isnan(out)] = nodata
    return out.astype(v.dtype, copy=False)


def _window_grid(height: int, width: int, size: int) -> list[tuple[int, int, int, int]]:
    return [(r, min(r + size, height), c, min(c + size, width))
            for r in range(0, height, size) for c in range(0, width, size)]


def build_overviews(
    path: str | os.PathLike,
    *,
    blocksize: int,
    creation_options: dict | None = None,
    window: int = OVERVIEW_WINDOW,
    threads: int = 2,
) -> list[Path]:
    """Write the overview levels of the GeoTIFF ``path`` to ``<path>.ovr<k>`` files (tiled, pixel
    interleaved, ``blocksize`` blocks, ``creation_options`` such as compression) and return their paths, finest
    first. Level ``k`` is :func:`average_halve` of level ``k - 1`` (the file's own nodata), computed in windows of
    ``window`` px (a multiple of ``blocksize``) on ``threads`` threads;
    windows are written in order, so the peak memory is about ``(threads + 1) x`` one source window.
    On error the level files written so far are removed."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    from .tiling import in_order

    if window < 1 or window % blocksize:
        raise ValueError(f"window must be a positive multiple of blocksize {blocksize}, got {window}")
    path = Path(path)
    with rasterio.open(path) as src:
        height, width, count, dtype, nodata = src.height, src.width, src.count, src.dtypes[0], src.nodata
        transform, crs = src.transform, src.crs
    profile = dict(
        driver="GTiff", count=count, dtype=dtype, nodata=nodata, tiled=True, blockxsize=blocksize,
        blockysize=blocksize, interleave="pixel", bigtiff="IF_SAFER", **(creation_options or {}),
    )
    levels: list[Path] = []
    try:
        prev, (ph, pw) = path, (height, width)
        for k, (h, w) in enumerate(overview_shapes(height, width, blocksize), start=1):
            out = path.with_name(f"{path.name}.ovr{k}")
            levels.append(out)
            grid = _window_grid(h, w, window)
            level_transform = transform @ Affine.scale(width / w, height / h)  # same bounds
            with rasterio.open(prev) as src, \
                    rasterio.open(out, "w", width=w, height=h, transform=level_transform, crs=crs, **profile) as dst, \
                    ThreadPoolExecutor(max(1, threads), thread_name_prefix="s2sr-ovr") as pool:
                lock = threading.Lock()  # one dataset handle: reads one at a time

                ri, rw = halving_weights(ph)
                ci, cw = halving_weights(pw)

                def job(i: int, src=src, grid=grid, lock=lock, ri=ri, rw=rw, ci=ci, cw=cw) -> np.ndarray:
                    r0, r1, c0, c1 = grid[i]
                    rows, cols = ri[r0:r1], ci[c0:c1]
                    s0, s1, t0, t1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
                    with lock:
                        v = src.read(window=Window(t0, s0, t1 - t0, s1 - s0))
                    return average_halve(v, nodata, (rows - s0, rw[r0:r1]), (cols - t0, cw[c0:c1]))

                for i, res in enumerate(in_order(lambda i: pool.submit(job, i), len(grid), max(1, threads))):
                    r0, r1, c0, c1 = grid[i]
                    dst.write(res, window=Window(c0, r0, c1 - c0, r1 - r0))
            prev, ph, pw = out, h, w
    except BaseException:
        for p in levels:
            if p.exists():
                p.unlink()
        raise
    return levels


def write_cog(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    overviews: Sequence[str | os.PathLike],
    *,
    blocksize: int,
    creation_options: dict | None = None,
) -> Path:
    """Copy the GeoTIFF ``src`` and its overview level files (finest first, as :func:`build_overviews`
    returns them) into the COG ``dst`` with GDAL's COG driver (``creation_options``: its options, e.g.
    ``compress``, ``level``, ``predictor``). Tags, band descriptions, nodata and georeferencing are those of
    ``src``. The overviews are copied, not regenerated (``OVERVIEWS=FORCE_USE_EXISTING``; with none,
    ``OVERVIEWS=NONE``)."""
    import rasterio.shutil

    src, dst = Path(src), Path(dst)
    vrt = dst.with_name(f"{dst.name}.vrt")
    try:
        rasterio.shutil.copy(src, vrt, driver="VRT")
        tree = ET.parse(vrt)
        for band in tree.getroot().iter("VRTRasterBand"):
            for level in overviews:
                ov = ET.SubElement(band, "Overview")
                ET.SubElement(ov, "SourceFilename", relativeToVRT="0").text = str(Path(level).resolve())
                ET.SubElement(ov, "SourceBand").text = band.get("band")
        tree.write(vrt)
        rasterio.shutil.copy(
            vrt, dst, driver="COG", blocksize=blocksize, bigtiff="IF_SAFER", num_threads="ALL_CPUS",
            overviews="FORCE_USE_EXISTING" if overviews else "NONE", **(creation_options or {}),
        )
    finally:
        if vrt.exists():
            vrt.unlink()
    return dst


def make_cog(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    blocksize: int,
    scratch_options: dict | None = None,
    creation_options: dict | None = None,
) -> Path:
    """The COG ``dst`` of the tiled GeoTIFF ``src``: :func:`build_overviews` (level files next to ``src``,
    written with ``scratch_options``), then :func:`write_cog` (``creation_options``). The level files are
    removed afterwards, also on error; ``src`` is left as it is."""
    levels = build_overviews(src, blocksize=blocksize, creation_options=scratch_options)
    try:
        return write_cog(src, dst, levels, blocksize=blocksize, creation_options=creation_options)
    finally:
        for p in levels:
            if p.exists():
                p.unlink()
