"""Cloud-Optimized GeoTIFF from a tiled GeoTIFF, with memory bounded whatever the raster size and no tile
encoded twice.

GDAL's COG driver, asked to generate the overviews itself, processes strips the full width of the raster
and re-reads blocks through its block cache: with ``GDAL_CACHEMAX=128`` its peak RSS grows with the width
(383 MB for 5120 px, 571 MB for 10240 px, 10 float32 bands) and its time faster than the pixel count
(27.5 s, then 321.5 s: the cache thrashes; ``benchmarks/results/cog_conversion/cog_conversion.json``). Even
given the overviews, it decodes and re-encodes every tile it copies. See ``docs/decisions/2026-11-22-cog-overviews.md``.

Here the overviews are built first, window by window (:func:`build_overviews`): each level is the
nodata-aware area-weighted average of the level before (:func:`average_halve`: 2 x 2 blocks for even sizes,
GDAL's weighted average over its ``n / ceil(n / 2)`` pixel geometry for odd ones), read in windows aligned to
the blocks, so memory depends on the window size only. A writer that produces the raster window by window can
make level 1 on the way (:class:`HalvingWriter`), so the full-resolution raster is never read back. The COG is
then assembled by copying the compressed tiles of the raster and of the levels as they are
(:func:`assemble_cog`), in the layout of GDAL's COG driver: IFDs first, GDAL's structural metadata (GDAL reads
the file as ``LAYOUT=COG``), tiles coarsest level first with GDAL's block leader and trailer.

Levels are made while the larger side of the last level exceeds the block size, as many as GDAL's
``OVERVIEWS=AUTO`` makes (:func:`overview_shapes`); level ``k`` is ``ceil(h / 2**k) x ceil(w / 2**k)``, the
sizes of GDAL's ``BuildOverviews`` (``gdaladdo``; the COG driver's own generation rounds down instead, so each
of its pixels may cover a little more than 2 source pixels). Where the sizes agree (sides divisible by
``2**levels``) the values equal those of the COG driver's own ``AVERAGE`` overviews up to float rounding,
since both average each level from the one before (tested).
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sr_core.io.safe_output import remove_quietly, replace_output, temporary_path

__all__ = [
    "HalvingWriter",
    "IncompleteTiffError",
    "TiffIfd",
    "assemble_cog",
    "average_halve",
    "build_overviews",
    "check_tiles_complete",
    "halving_weights",
    "make_cog",
    "overview_shapes",
    "read_tiff_ifds",
]

#: Side (in pixels of the level being made) of the windows :func:`build_overviews` computes at once: the
#: source window is about twice that, 10 float32 bands of 512 x 512 = 10 MB (the working arrays of
#: :func:`average_halve` take about 4 times that).
OVERVIEW_WINDOW = 256

#: Threads :func:`assemble_cog` copies the tiles with (:func:`_copy_tiles`).
COPY_THREADS = 2


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
    Computed in float32 for float32 values (and 8/16-bit integers halved in 2 x 2 blocks), float64 otherwise.
    ``rows``/``cols``: ``(idx, wt)`` for a window of a larger level (``idx`` relative to the first row / column
    of ``values``); by default the whole axes.
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
    plain = all(not wt[:, 2].any() and (wt[:, :2] == 1).all() for wt in (rw, cw))
    # float32 is exact for sums of 4 integers of up to 16 bits, and a mean of 1-4 of them never lands within
    # float32 rounding of a .5 it would not have in float64: the same result, half the memory traffic
    small_int = v.dtype.kind in "iu" and v.dtype.itemsize <= 2 and plain
    work = np.float32 if v.dtype == np.float32 or small_int else np.float64
    f = v.astype(work, copy=False)

    def halve(x: np.ndarray) -> np.ndarray:
        # rows first: the row pairs are contiguous, and the strided column pass runs on half the data
        return _halve_axis(_halve_axis(x, x.ndim - 2, ri, rw), x.ndim - 1, ci, cw)

    def mean(total: np.ndarray) -> np.ndarray:
        if plain:  # every overview pixel covers 4 source pixels: the same values as dividing by an array of 4s
            total /= work(4)
            return total
        return total / (rw.sum(axis=1)[:, None] * cw.sum(axis=1)[None, :]).astype(work)

    if v.dtype.kind == "f" and fill_nan:
        # only NaN is invalid, and a NaN source makes its sum NaN: test the 4 times smaller sums for NaN instead of
        # the source; a NaN sum from valid values (inf - inf) is NaN in the masked path too
        total = halve(f)
        if not np.isnan(total).any():
            return mean(total).astype(v.dtype, copy=False)
    invalid = np.isnan(f) if v.dtype.kind == "f" else np.zeros(f.shape, bool)
    if not fill_nan:
        invalid |= f == nodata
    if not invalid.any():
        out = mean(halve(f))
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


def _level_profile(
    count: int, dtype: str, nodata: float | None, blocksize: int, creation_options: dict | None
) -> dict:
    """rasterio profile of an overview level file (size and georeferencing aside)."""
    return dict(
        driver="GTiff", count=count, dtype=dtype, nodata=nodata, tiled=True, blockxsize=blocksize,
        blockysize=blocksize, interleave="pixel", bigtiff="IF_SAFER", **(creation_options or {}),
    )


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

    from sr_core.tiling import in_order

    if window < 1 or window % blocksize:
        raise ValueError(f"window must be a positive multiple of blocksize {blocksize}, got {window}")
    path = Path(path)
    with rasterio.open(path) as src:
        height, width, count, dtype, nodata = src.height, src.width, src.count, src.dtypes[0], src.nodata
        transform, crs = src.transform, src.crs
    profile = _level_profile(count, dtype, nodata, blocksize, creation_options)
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


class HalvingWriter:
    """The next overview level of a raster that is being written window by window: each window's
    :func:`average_halve` goes straight to the level file, so making the COG need not read the raster back.
    Chained (one writer per level, each fed what the one before returns) it makes every level while the sides
    stay even.

    Exact only where the halving is local: the raster's height and width and every window's edges must be even
    (then each level pixel is the mean of one 2 x 2 block; ``ValueError`` otherwise, see :meth:`fits`). The level
    file is a tiled GeoTIFF of ``h / 2 x w / 2`` px written with ``creation_options``, georeferenced when the
    raster's ``transform`` (and ``crs``) are given (the COG takes only its tiles, but a level file without
    georeferencing makes rasterio warn ``NotGeoreferencedWarning`` whenever it is opened).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        height: int,
        width: int,
        count: int,
        dtype: str,
        nodata: float | None,
        blocksize: int,
        creation_options: dict | None = None,
        transform: Sequence[float] | None = None,
        crs: object | None = None,
    ) -> None:
        import rasterio
        from affine import Affine

        if height % 2 or width % 2:
            raise ValueError(f"HalvingWriter needs an even height and width, got {height} x {width}")
        self.path = Path(path)
        self.nodata = nodata
        #: the level's georeferencing: the raster's ``transform`` with pixels twice as large (the same bounds)
        self.transform = None if transform is None else Affine(*tuple(transform)[:6]) @ Affine.scale(2)
        georef = {} if self.transform is None else {"transform": self.transform, "crs": crs}
        self._dst = rasterio.open(self.path, "w", width=width // 2, height=height // 2, **georef,
                                  **_level_profile(count, dtype, nodata, blocksize, creation_options))

    @staticmethod
    def fits(window: tuple[int, int, int, int]) -> bool:
        """True when every edge of ``(row0, row1, col0, col1)`` is even."""
        return all(v % 2 == 0 for v in window)

    def write(
        self, values: np.ndarray, window: tuple[int, int, int, int]
    ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """Write the level pixels of ``values`` (the raster's ``window``); returns them and their window in the
        level (so that a writer of the next level can take them)."""
        from rasterio.windows import Window

        if not self.fits(window):
            raise ValueError(f"window {window} has an odd edge: its level pixels would mix windows")
        r0, r1, c0, c1 = window
        half = average_halve(np.asarray(values), self.nodata)
        self._dst.write(half, window=Window(c0 // 2, r0 // 2, (c1 - c0) // 2, (r1 - r0) // 2))
        return half, (r0 // 2, r1 // 2, c0 // 2, c1 // 2)

    def close(self) -> Path:
        self._dst.close()
        return self.path

    def abort(self) -> None:
        self._dst.close()
        if self.path.exists():
            self.path.unlink()


# ------------------------------------------------------------------------------------------------ COG layout

#: Bytes per value of each TIFF field type (TIFF 6.0 and BigTIFF).
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_NEW_SUBFILE_TYPE, _TILE_WIDTH, _TILE_OFFSETS, _TILE_BYTE_COUNTS = 254, 322, 324, 325
#: Tags an overview IFD must share with the full-resolution one for its tiles to be copied as they are.
_SAME_ENCODING = (258, 259, 277, 284, 317, 322, 323, 339)  # bits, compression, samples, planar, predictor, tile, format
#: Georeferencing and dataset metadata: on the full-resolution IFD only (as GDAL writes COGs).
_MAIN_ONLY = (33550, 33922, 34264, 34735, 34736, 34737, 42112)


def _fields(big: bool) -> tuple[str, int, str, int]:
    """Classic TIFF or BigTIFF: struct code of an IFD's entry count, bytes per entry, struct code of offsets and
    counts, bytes of a value stored inline."""
    return ("Q", 20, "Q", 8) if big else ("H", 12, "I", 4)


@dataclass
class TiffIfd:
    """One image file directory: ``tags`` maps tag -> ``(type, count, raw value bytes)`` (the file's byte order)
    for every tag except the tile offsets / byte counts, which are ``offsets`` and ``bytecounts``."""

    byteorder: str
    tags: dict[int, tuple[int, int, bytes]]
    offsets: np.ndarray
    bytecounts: np.ndarray


class IncompleteTiffError(ValueError):
    """A TIFF whose directories or tiles are cut short or missing (a write that failed: GDAL reports a failed
    write of its last blocks or of the directory on stderr only, and closes the file as if complete)."""


def read_tiff_ifds(path: str | os.PathLike) -> list[TiffIfd]:
    """Every IFD of the TIFF or BigTIFF ``path`` (tiled images only: a strip layout raises ``ValueError``; a
    file cut short :class:`IncompleteTiffError`)."""
    try:
        return _read_tiff_ifds(Path(path))
    except struct.error as e:  # a directory cut short: fewer bytes than its entries need
        raise IncompleteTiffError(f"{path}: the TIFF is cut short ({e})") from e


def check_tiles_complete(path: str | os.PathLike, *, sparse: bool = False) -> list[TiffIfd]:
    """Check that every directory of the tiled TIFF ``path`` is readable and lists every tile of its image
    (``ceil(width / tile) x ceil(height / tile)``, times the bands when planar), each inside the file; with
    ``sparse`` False (GDAL writes every block unless asked for ``SPARSE_OK``) none may be empty.
    :class:`IncompleteTiffError` otherwise. Returns the IFDs (:func:`read_tiff_ifds`)."""
    ifds = read_tiff_ifds(path)
    size = os.path.getsize(path)
    if not ifds:
        raise IncompleteTiffError(f"{path}: the TIFF has no image")
    for k, ifd in enumerate(ifds):
        width, height = _tag_int(ifd, 256), _tag_int(ifd, 257)
        tw, th = _tag_int(ifd, _TILE_WIDTH), _tag_int(ifd, _TILE_WIDTH + 1)
        planes = _tag_int(ifd, 277, 1) if _tag_int(ifd, 284, 1) == 2 else 1
        want = -(-width // max(tw, 1)) * -(-height // max(th, 1)) * planes
        if len(ifd.offsets) != want or len(ifd.bytecounts) != want:
            raise IncompleteTiffError(f"{path}: image {k} lists {len(ifd.offsets)} tiles, its size needs {want}")
        empty = ifd.bytecounts == 0
        if not sparse and empty.any():
            raise IncompleteTiffError(f"{path}: image {k} has {int(empty.sum())} of {want} tiles never written")
        ends = (ifd.offsets + ifd.bytecounts)[~empty]
        if len(ends) and int(ends.max()) > size:
            raise IncompleteTiffError(
                f"{path}: image {k} has tiles past the end of the file ({int(ends.max())} > {size} bytes)"
            )
    return ifds


def _tag_int(ifd: TiffIfd, tag: int, default: int | None = None) -> int:
    """The first value of an integer tag (SHORT, LONG or LONG8)."""
    if tag not in ifd.tags:
        if default is None:
            raise IncompleteTiffError(f"a TIFF directory has no tag {tag}")
        return default
    typ, _, value = ifd.tags[tag]
    code = {3: "H", 4: "I", 16: "Q"}.get(typ)
    if code is None:
        raise IncompleteTiffError(f"TIFF tag {tag} has type {typ}, expected SHORT, LONG or LONG8")
    return struct.unpack_from(ifd.byteorder + code, value)[0]


def _read_tiff_ifds(path: Path) -> list[TiffIfd]:
    with open(path, "rb") as f:
        head = f.read(16)
        if head[:2] not in (b"II", b"MM"):
            raise ValueError(f"{path}: not a TIFF file")
        bo = "<" if head[:2] == b"II" else ">"
        magic = struct.unpack(bo + "H", head[2:4])[0]
        if magic not in (42, 43):
            raise ValueError(f"{path}: not a TIFF file (magic {magic})")
        big = magic == 43
        ncode, entry, ocode, inline = _fields(big)
        nxt = struct.unpack(bo + ocode, head[8:16] if big else head[4:8])[0]
        out: list[TiffIfd] = []
        seen: set[int] = set()
        while nxt:
            if nxt in seen:
                raise ValueError(f"{path}: IFD chain loops at offset {nxt}")
            seen.add(nxt)
            f.seek(nxt)
            n = struct.unpack(bo + ncode, f.read(struct.calcsize(ncode)))[0]
            raw = f.read(n * entry + inline)
            if len(raw) != n * entry + inline:
                raise IncompleteTiffError(f"{path}: the TIFF is cut short in IFD {len(out)}")
            tags: dict[int, tuple[int, int, bytes]] = {}
            for i in range(n):
                e = raw[i * entry : (i + 1) * entry]
                tag, typ = struct.unpack(bo + "HH", e[:4])
                count = struct.unpack(bo + ocode, e[4 : 4 + inline])[0]
                size = _TYPE_SIZE.get(typ)
                if size is None:
                    raise ValueError(f"{path}: tag {tag} has unknown TIFF type {typ}")
                nbytes = size * count
                if nbytes <= inline:
                    value = e[4 + inline : 4 + inline + nbytes]
                else:
                    pos = f.tell()
                    f.seek(struct.unpack(bo + ocode, e[4 + inline :])[0])
                    value = f.read(nbytes)
                    if len(value) != nbytes:
                        raise IncompleteTiffError(f"{path}: the TIFF is cut short in the value of tag {tag}")
                    f.seek(pos)
                tags[tag] = (typ, count, value)
            nxt = struct.unpack(bo + ocode, raw[n * entry :])[0]
            arrays = []
            for tag in (_TILE_OFFSETS, _TILE_BYTE_COUNTS):
                if tag not in tags:
                    raise ValueError(f"{path}: IFD {len(out)} is not tiled (no tag {tag})")
                typ, count, value = tags.pop(tag)
                dt = {3: "u2", 4: "u4", 16: "u8"}.get(typ)
                if dt is None:
                    raise ValueError(f"{path}: tag {tag} has type {typ}, expected SHORT, LONG or LONG8")
                arrays.append(np.frombuffer(value, dtype=bo + dt).astype(np.uint64))
            out.append(TiffIfd(bo, tags, arrays[0], arrays[1]))
    return out


def _ghost_area(leader_trailer: bool) -> bytes:
    """GDAL's COG structural metadata (read by GDAL as ``LAYOUT=COG``), padded to an even length."""
    body = "LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\n"
    if leader_trailer:
        body += "BLOCK_LEADER=SIZE_AS_UINT4\nBLOCK_TRAILER=LAST_4_BYTES_REPEATED\n"
    body += "KNOWN_INCOMPATIBLE_EDITION=NO\n "
    head = f"GDAL_STRUCTURAL_METADATA_SIZE={len(body):06d} bytes\n"
    text = (head + body).encode("ascii")
    return text + b"\0" * (len(text) % 2)


def _encode_ifd(
    tags: dict[int, tuple[int, int, bytes]], at: int, big: bool, bo: str, nxt: int
) -> bytes:
    """The IFD at file offset ``at`` followed by its out-of-line values (each at an even offset)."""
    ncode, entry, ocode, inline = _fields(big)
    n = len(tags)
    extra_at = at + struct.calcsize(ncode) + n * entry + inline
    head = [struct.pack(bo + ncode, n)]
    extra = []
    pos = extra_at
    for tag in sorted(tags):
        typ, count, value = tags[tag]
        if len(value) <= inline:
            field = value + b"\0" * (inline - len(value))
        else:
            field = struct.pack(bo + ocode, pos)
            pad = value + b"\0" * (len(value) % 2)
            extra.append(pad)
            pos += len(pad)
        head.append(struct.pack(bo + "HH", tag, typ) + struct.pack(bo + ocode, count) + field)
    head.append(struct.pack(bo + ocode, nxt))
    return b"".join(head) + b"".join(extra)


def assemble_cog(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    overviews: Sequence[str | os.PathLike] = (),
    *,
    bigtiff: bool | None = None,
    threads: int = COPY_THREADS,
) -> Path:
    """Write the Cloud-Optimized GeoTIFF ``dst`` from the tiled GeoTIFF ``src`` and its overview level files
    (finest first, as :func:`build_overviews` returns them) by copying their compressed tiles byte for byte:
    nothing is decoded or encoded again.

    The layout is that of GDAL's COG driver: GDAL's structural metadata (``LAYOUT=IFDS_BEFORE_DATA``, row-major
    blocks, each preceded by its size as uint32 and followed by its last 4 bytes, so GDAL reports
    ``LAYOUT=COG``), then the full-resolution IFD (every tag of ``src``: georeferencing, nodata, band
    descriptions, tags), then one IFD per level (``NewSubfileType`` 1, the nodata but no georeferencing), then
    the tiles, coarsest level first, full resolution last. ``bigtiff``: None (BigTIFF only when the file would
    exceed 4 GiB), True or False (``ValueError`` when it does not fit). All
    files must share byte order, sample type, compression, predictor and tile size (``ValueError`` otherwise).
    ``threads``: the tiles are copied by that many threads, each writing its own contiguous part of the file
    (:func:`_copy_tiles`); the bytes do not depend on it. ``dst`` is written under a unique temporary name in its
    folder and renamed over an existing ``dst`` when complete (:mod:`sr_core.io.safe_output`).
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    src, dst = Path(src), Path(dst)
    main = read_tiff_ifds(src)[0]
    levels = [read_tiff_ifds(p)[0] for p in overviews]
    bo = main.byteorder
    for p, lv in zip(overviews, levels):
        diff = [t for t in _SAME_ENCODING if lv.tags.get(t) != main.tags.get(t)]
        if lv.byteorder != bo or diff:
            raise ValueError(f"{p}: its tiles are not encoded as those of {src} (tags {diff or 'byte order'} differ)")
    if _TILE_WIDTH not in main.tags:
        raise ValueError(f"{src}: not tiled")
    images = [dict(main.tags)]
    for lv in levels:
        t = {k: v for k, v in lv.tags.items() if k not in _MAIN_ONLY}
        t[_NEW_SUBFILE_TYPE] = (4, 1, struct.pack(bo + "I", 1))
        images.append(t)
    ifds = [main, *levels]
    leader = all(bool((i.bytecounts[i.bytecounts > 0] >= 4).all()) for i in ifds)  # empty (sparse) tiles: none
    ghost = _ghost_area(leader)
    per_block = 8 if leader else 0
    data_bytes = sum(int(i.bytecounts.sum()) + per_block * int((i.bytecounts > 0).sum()) for i in ifds)
    wide = any(typ in (16, 17, 18) for t in images for typ, _, _ in t.values())

    def with_tiles(t: dict, offsets: np.ndarray, counts: np.ndarray, big: bool) -> dict:
        """The IFD's tags with its tile offsets and byte counts (LONG, or LONG8 in a BigTIFF)."""
        typ, udt = (16, bo + "u8") if big else (4, bo + "u4")
        return {**t, _TILE_OFFSETS: (typ, len(offsets), offsets.astype(udt).tobytes()),
                _TILE_BYTE_COUNTS: (typ, len(counts), counts.astype(udt).tobytes())}

    def layout(big: bool) -> tuple[list[int], int]:
        """IFD offsets and the offset of the first tile (an IFD's size does not depend on its offset values)."""
        pos = (16 if big else 8) + len(ghost)
        at = []
        for t, i in zip(images, ifds):
            at.append(pos)
            pos += len(_encode_ifd(with_tiles(t, i.offsets, i.bytecounts, big), pos, big, bo, 0))
        return at, pos

    big = wide if bigtiff is None else bool(bigtiff)
    if wide and not big:
        raise ValueError(f"{src}: tags of 64-bit types need a BigTIFF, got bigtiff=False")
    at, data0 = layout(big)
    if not big and data0 + data_bytes >= 2**32:
        if bigtiff is False:
            raise ValueError(f"{dst}: {data0 + data_bytes} bytes do not fit a classic TIFF, got bigtiff=False")
        big = True
        at, data0 = layout(big)
    # tile offsets: the coarsest level's tiles first, the full resolution last, each level's tiles in order
    new_offsets: list[np.ndarray] = [np.zeros(0, np.uint64)] * len(ifds)
    pos = data0
    for k in reversed(range(len(ifds))):
        bc = ifds[k].bytecounts
        step = bc + np.where(bc > 0, per_block, 0).astype(np.uint64)
        ends = pos + np.cumsum(step, dtype=np.uint64)
        off = ends - step + per_block // 2  # past the 4-byte leader, if any
        new_offsets[k] = np.where(bc > 0, off, 0).astype(np.uint64)
        pos = int(ends[-1]) if len(ends) else pos
    # the copy jobs, in file order: (source file, source offset, bytes, offset in dst of the leader or tile)
    jobs: list[tuple[int, int, int, int]] = []
    for k in reversed(range(len(ifds))):
        for off, n, to in zip(ifds[k].offsets.tolist(), ifds[k].bytecounts.tolist(), new_offsets[k].tolist()):
            if n:
                jobs.append((k, off, n, to - per_block // 2))
    paths = [src, *(Path(p) for p in overviews)]
    tmp_dst: Path | None = temporary_path(dst)  # a name of this call's own: concurrent writers never share it
    try:
        with open(tmp_dst, "wb") as out:
            out.write(struct.pack(bo + "2sHHHQ", b"II" if bo == "<" else b"MM", 43, 8, 0, at[0]) if big
                      else struct.pack(bo + "2sHI", b"II" if bo == "<" else b"MM", 42, at[0]))
            out.write(ghost)
            for k, (t, i) in enumerate(zip(images, ifds)):
                t = with_tiles(t, new_offsets[k], i.bytecounts, big)
                if out.tell() != at[k]:
                    raise AssertionError(f"IFD {k} at {out.tell()}, planned at {at[k]}")
                out.write(_encode_ifd(t, at[k], big, bo, at[k + 1] if k + 1 < len(at) else 0))
            if out.tell() != data0:
                raise AssertionError(f"tile data at {out.tell()}, planned at {data0}")
        _copy_tiles(tmp_dst, paths, jobs, leader=leader, byteorder=bo, threads=threads)
        replace_output(tmp_dst, dst)
        tmp_dst = None
    finally:
        remove_quietly(tmp_dst)
    return dst


def _copy_tiles(
    dst: Path,
    paths: Sequence[Path],
    jobs: Sequence[tuple[int, int, int, int]],
    *,
    leader: bool,
    byteorder: str,
    threads: int,
) -> None:
    """Copy the tiles ``jobs`` (``(index in paths, source offset, bytes, dst offset)``, in dst order) into the
    existing file ``dst``, each preceded by its size as uint32 and followed by its last 4 bytes when ``leader``.

    The jobs are split into ``threads`` contiguous runs of about equal bytes, each copied by a thread of its own
    with its own file handles, read into and written from one reused buffer: faster than one thread and than a
    new bytes object per tile (docs/decisions/2026-11-22-cog-overviews.md); the copy runs after the last tile is
    computed, when the cores are otherwise idle."""
    if not jobs:
        return
    extra = 8 if leader else 0
    sizes = np.array([n + extra for _, _, n, _ in jobs], dtype=np.int64)
    ends = np.cumsum(sizes)
    cuts = np.searchsorted(ends, ends[-1] * np.arange(1, threads) / threads, side="right")
    runs = [r for r in np.split(np.arange(len(jobs)), cuts) if len(r)]

    def copy(run: np.ndarray) -> None:
        buf = bytearray(int(sizes[run].max()))
        view = memoryview(buf)
        handles: dict[int, object] = {}
        try:
            with open(dst, "r+b", buffering=0) as out:
                for j in run.tolist():
                    k, off, n, at = jobs[j]
                    f = handles.get(k)
                    if f is None:
                        f = handles[k] = open(paths[k], "rb", buffering=0)
                    f.seek(off)
                    body = view[4 : 4 + n] if leader else view[:n]
                    got = 0
                    while got < n:  # a raw read may return fewer bytes than asked; 0 at the end of the file
                        r = f.readinto(body[got:])
                        if not r:
                            break
                        got += r
                    if got != n:
                        raise IncompleteTiffError(f"{paths[k]}: tile at {off} is truncated ({got} of {n} bytes)")
                    if leader:
                        struct.pack_into(byteorder + "I", buf, 0, n)
                        view[4 + n : 8 + n] = view[n : 4 + n]
                    out.seek(at)
                    chunk = view[: n + extra]
                    done = 0
                    while done < len(chunk):
                        done += out.write(chunk[done:])
        finally:
            for f in handles.values():
                f.close()

    if len(runs) == 1:
        copy(runs[0])
        return
    with ThreadPoolExecutor(len(runs), thread_name_prefix="s2sr-cog-copy") as pool:
        for fut in [pool.submit(copy, r) for r in runs]:
            fut.result()


def make_cog(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    blocksize: int,
    scratch_options: dict | None = None,
    first_levels: Sequence[str | os.PathLike] = (),
) -> Path:
    """The COG ``dst`` of the tiled GeoTIFF ``src``: its overview levels (:func:`build_overviews`, level files
    next to ``src`` written with ``scratch_options``, which must be ``src``'s own compression and predictor),
    then :func:`assemble_cog`. ``first_levels``: levels 1, 2, ... already written (by :class:`HalvingWriter` while
    ``src`` was, finest first); the further levels are made from the last of them instead of from ``src``. The
    level files (``first_levels`` too) are removed afterwards, also on error; ``src`` is left as it is. ``src``
    and every level must be complete (:func:`check_tiles_complete`, no empty tile), or
    :class:`IncompleteTiffError`. ``dst`` appears only when complete (written under a temporary name of its own
    and renamed over an existing ``dst``: :func:`assemble_cog`)."""
    levels: list[Path] = [Path(p) for p in first_levels]
    try:
        for p in [Path(src), *levels]:
            check_tiles_complete(p)
        base = levels[-1] if levels else Path(src)  # the finest level at hand
        made = build_overviews(base, blocksize=blocksize, creation_options=scratch_options)
        levels += made
        for p in made:
            check_tiles_complete(p)
        return assemble_cog(src, dst, levels)
    finally:
        for p in levels:
            if p.exists():
                p.unlink()
