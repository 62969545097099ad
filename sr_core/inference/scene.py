"""Streaming super-resolution of whole scenes to GeoTIFF / COG (what ``s2sr superres`` runs).

A scene is read window by window (tile + margin, :class:`sr_core.io.RasterSource`), each window goes through the
model, and each output window is written straight into the output GeoTIFF (:class:`sr_core.io.GeoTiffWriter`):
memory is bounded by the tile size, whatever the scene size.

Conventions
-----------
* Inputs (:func:`sr_core.io.open_source`): a scene folder of the shared layout (the 20 m bands are
  nearest-replicated 2 x 2 onto the 10 m grid per window), a multi-band GeoTIFF or an openEO NetCDF cube. A NetCDF
  cube with a ``t`` dim of ``n > 1`` dates gives ``n`` outputs, ``<stem>_<date><suffix>``
  (:func:`sr_core.io.output_paths`); one date gives ``OUTPUT`` itself.
* Values: DN. Reflectance = ``(DN + add_offset) / dn_scale`` from explicit metadata or explicit arguments
  (:mod:`sr_core.io.conventions`); never guessed. The output uses the input's convention and says so in its
  ``DN_SCALE``/``ADD_OFFSET`` tags.
* Grid: the input must be on the model's input grid (``card.input_resolution_m``, checked when the CRS is in
  metres), north-up. The output grid has the same outer bounds (identical ``bounds``) and a pixel ``scale``
  times smaller (:func:`sr_core.tiling.hr_transform`); windows are ``(row0, row1, col0, col1)``, half-open.
* Tiling: exactly :func:`sr_core.tiling.plan_tiles` with the model's margin (``receptive_field // 2``): each
  tile is read with its margin, edge-replicated where it leaves the scene, run, and cropped; the result equals
  the whole scene run at once (:func:`sr_core.inference.cube.superresolve_dataarray`) up to float summation order.
  The tile size is rounded up so that output windows align with the GeoTIFF blocks (no block is written twice).
* Nodata (GDAL nodata / masks, NaN, NetCDF ``_FillValue``): a pixel is valid when all model bands are valid;
  invalid pixels are filled with the nearest valid pixel inside a context of ``2 * margin`` extra pixels
  around the read window (enough for every valid output pixel to see the same fill as a whole-scene run),
  and become nodata on their ``scale x scale`` output blocks: NaN in float output, the input's nodata value
  (0 when it has none) in integer output (``dtype="input"``).
* Output: owned and atomic (:mod:`sr_core.io.safe_output`): :func:`superresolve_file` refuses, before any work,
  an OUTPUT that is not a ``.tif``/``.tiff`` name, an existing symbolic link or non-regular file, one in a folder
  that does not exist or takes no new file, or one that resolves to the input file or into the input folder; the
  file is written under a unique temporary name in OUTPUT's folder and renamed over an existing OUTPUT only when
  complete (a failed or interrupted run leaves the old file and no temporary file).
* Output format: a tiled compressed GeoTIFF (:mod:`sr_core.io.writer`); a Cloud-Optimized GeoTIFF with overviews when
  ``cog=True``, or with ``cog="auto"`` when the output is larger than :data:`COG_MIN_SIZE` px and the extension
  is ``.tif``/``.tiff``. Band descriptions and ``BANDNAME`` tags = the model's output band names; tags name the
  model, its version and the sha256 of the model file the engine ran (:func:`sr_core.io.model_tags`).
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sr_core.bands import normalize_band_name
from sr_core.checks import check_int
from sr_core.inference.cube import TilingWarning
from sr_core.io.area import restrict, scl_output_path, write_scl
from sr_core.io.dispatch import open_source
from sr_core.io.safe_output import check_output_file
from sr_core.io.source import RasterSource, Window, check_input_grid
from sr_core.io.writer import (
    BLOCKSIZE,
    COMPRESSIONS,
    DEFAULT_COMPRESS,
    DEFAULT_PREDICTOR,
    OUTPUT_DTYPES,
    PREDICTORS,
    GeoTiffWriter,
    cast_output,
    dn_convention_tags,
    model_tags,
    output_format,
    output_paths,
)
from sr_core.models import (
    DEFAULT_RESOLUTION,
    check_model_resolution,
    check_predictor,
    check_resolution,
    load_card,
    load_predictor,
    pick_model,
)
from sr_core.nodata import fill_nodata, finalize_output
from sr_core.radiometry import dn_to_reflectance, reflectance_to_dn
from sr_core.runtime import lower_thread_priority, usable_cpus
from sr_core.tiling import TileWindow, edge_pad, hr_transform, in_order, plan_tiles

__all__ = [
    "COG_MIN_SIZE",
    "DEFAULT_TILE",
    "aligned_tile",
    "check_margin",
    "superresolve_file",
    "superresolve_source",
    "write_threads_for",
]

#: Default tile core size, in input (model-grid) pixels.
DEFAULT_TILE = 512
#: With ``cog="auto"``, outputs whose larger side exceeds this many pixels are written as COG with overviews.
COG_MIN_SIZE = 2048


def aligned_tile(tile: int, scale: int, blocksize: int = BLOCKSIZE) -> int:
    """``tile`` rounded up so that ``tile * scale`` is a multiple of the output ``blocksize`` (or of a multiple
    of 16 divisible by ``scale`` when ``scale`` does not divide ``blocksize``)."""
    tile = check_int("tile", tile, 1)
    scale = check_int("scale", scale, 1)
    bs = check_int("blocksize", blocksize, 16)
    if bs % scale:
        bs = 16 * scale * -(-bs // (16 * scale))
    step = bs // scale
    return step * -(-tile // step)


def check_margin(margin: int, *, tile: int, need: int, name: str = "margin") -> int:
    """``margin`` (input pixels per side) must not exceed both the tile core ``tile`` and the ``need`` of the
    model (its margin): beyond ``need`` the result does not change, and each tile reads
    ``(tile + 2 * margin)`` px squared, so a larger margin only costs memory (``margin`` 100000 would ask for
    terabytes). ``name`` names the argument in the error. Returns ``margin``."""
    limit = max(int(tile), int(need))
    if margin > limit:
        side = int(tile) + 2 * int(margin)
        raise ValueError(
            f"{name} {margin} px is larger than the tile ({tile} px) and than the {need} px the model needs: each "
            f"tile would read {side} x {side} px; give at most {limit}"
        )
    return margin


def _check_resolution(source: RasterSource, predictor: Any) -> None:
    card = getattr(predictor, "card", None)
    want = getattr(card, "input_resolution_m", None)
    if not want or source.crs is None:
        return
    try:
        from rasterio.crs import CRS

        crs = CRS.from_user_input(source.crs)
        metres = crs.is_projected and (crs.linear_units or "").lower() in ("metre", "meter", "m", "metres")
    except Exception:  # noqa: BLE001 - an unparsable CRS: nothing to check against
        return
    if metres:
        px = (abs(source.transform[0]), abs(source.transform[4]))
        if any(abs(p - want) > 0.01 * want for p in px):
            raise ValueError(
                f"{source.name}: pixel size {px[0]:g} x {px[1]:g} m, but model {card.name!r} takes input on its "
                f"{want:g} m grid (all bands, coarser ones nearest-resampled onto it); resample the input first"
            )


@dataclass
class _Tile:
    """One tile on its way through :func:`superresolve_source`: ``x`` is the model input (None when the tile has
    no valid pixel), ``vcore`` the validity of its core at the input resolution."""

    window: TileWindow
    x: np.ndarray | None
    vcore: np.ndarray
    y: np.ndarray | None = None


def _prepare_tile(source: RasterSource, bands: Sequence[str], w: TileWindow, ctx: int) -> _Tile:
    """Read the tile's window (with ``ctx`` px of nearest-valid fill context around it), convert to reflectance,
    fill its nodata and pad it at the scene border: the model input."""
    R0, C0 = max(0, w.read_row0 - ctx), max(0, w.read_col0 - ctx)
    outer = (R0, min(source.height, w.read_row1 + ctx), C0, min(source.width, w.read_col1 + ctx))
    dn = source.read(bands, outer)
    valid = np.isfinite(dn).all(axis=0)
    vcore = valid[w.row0 - R0 : w.row1 - R0, w.col0 - C0 : w.col1 - C0]
    if not vcore.any():
        return _Tile(w, None, vcore)
    refl = dn_to_reflectance(dn, dn_scale=source.dn_scale, add_offset=source.add_offset)
    del dn
    filled, _ = fill_nodata(refl, valid)
    sub = filled[:, w.read_row0 - R0 : w.read_row1 - R0, w.read_col0 - C0 : w.read_col1 - C0]
    return _Tile(w, np.ascontiguousarray(edge_pad(sub, w.pad)[None], dtype=np.float32), vcore)


def _forward_tile(predictor: Any, t: _Tile) -> _Tile:
    if t.x is not None:
        t.y = np.asarray(predictor(t.x), dtype=np.float32)
        t.x = None
    return t


def _finish_tile(t: _Tile, scale: int, c_out: int) -> np.ndarray:
    """Reflectance of the tile's core at the output resolution, ``(C_out, s*h, s*w)`` float32, NaN = nodata."""
    s = scale
    h, wd = t.window.core_shape
    if t.y is None:
        return np.full((c_out, s * h, s * wd), np.nan, dtype=np.float32)
    ih, iw = t.window.input_shape
    if t.y.shape != (1, c_out, s * ih, s * iw):
        raise ValueError(
            f"the model returned shape {t.y.shape} for an input of {ih} x {iw} px; expected "
            f"(1, {c_out}, {s * ih}, {s * iw})"
        )
    rows, cols = t.window.crop
    return finalize_output(t.y[0, :, rows, cols], t.vcore, s)


def _progress_bar(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the train/test extras
        return None
    return tqdm(total=total, desc=desc, unit="tile", file=sys.stderr, dynamic_ncols=True)


def write_threads_for(predictor: Any, write_threads: int | None = None) -> int:
    """Threads that compress the output GeoTIFF's blocks: ``write_threads`` when given (>= 1), else 1 when the
    engine computes on the CPU (its threads have the cores; the writer's encoding on more threads would only
    compete with them) and every core when it runs on a GPU (``predictor.device`` ``"cuda"``), where the CPU
    side is the bottleneck: on an H100 machine with 16 cores, a full Sentinel-2 tile takes 84.9 s with every core
    compressing and 124.3 s with one, for 284 MB more peak RSS (docs/decisions/2026-11-22-write-threads-by-device.md,
    benchmarks/results/throughput_cuda_h100/full_tile_write_threads.txt)."""
    if write_threads is not None:
        return check_int("write_threads", write_threads, 1)
    if str(getattr(predictor, "device", "cpu")).startswith("cuda"):
        return usable_cpus()
    return 1


def superresolve_source(
    source: RasterSource,
    output: str | os.PathLike,
    *,
    predictor: Any,
    tile: int = DEFAULT_TILE,
    margin: int | None = None,
    dtype: str = "float32",
    cog: bool | str = "auto",
    blocksize: int = BLOCKSIZE,
    progress: bool | Callable[[int, int], None] = False,
    tags: dict[str, str] | None = None,
    compress: str = DEFAULT_COMPRESS,
    tiff_predictor: str = DEFAULT_PREDICTOR,
    workers: int = 1,
    write_threads: int | None = None,
) -> Path:
    """Super-resolve ``source`` tile by tile into the GeoTIFF ``output``; returns its path.

    ``predictor``: a :class:`sr_core.models.Predictor` (or anything with ``scale``, ``margin``, ``bands``,
    ``out_bands``, ``card`` and ``__call__(np (N, C, H, W) reflectance) -> np``). ``tile``: tile core in input
    pixels (rounded up by :func:`aligned_tile`). ``margin``: tiling margin in input pixels (default the
    model's; less gives seams and a :class:`~sr_core.inference.cube.TilingWarning`; at most the larger of the
    tile and the model's margin: :func:`check_margin`). ``dtype``: ``"float32"`` or
    ``"input"``. ``cog``: True, False or ``"auto"`` (see the module docstring). ``progress``: a tqdm bar
    (True) or a callback ``(done, total)``. ``tags``: extra dataset tags. ``compress``:
    :data:`sr_core.io.COMPRESSIONS`. ``tiff_predictor``: the GeoTIFF predictor, :data:`sr_core.io.PREDICTORS`.
    ``workers``: tiles computed at the same time, each on its own thread calling ``predictor`` (give it
    ``cores / workers`` engine threads; ONNX Runtime and torch release the GIL while they compute). With 1, at most
    two input windows and two output tiles are in memory at any time (reading, computing and writing overlap in
    threads); with more, at most ``2 * workers`` tiles are in flight (reads serialised, one writer thread). The
    output does not depend on ``workers``. ``write_threads``: threads compressing the output blocks
    (:func:`write_threads_for`; default: 1 when the engine computes on the CPU, every core when it runs on a GPU).
    """
    workers = check_int("workers", workers, 1)
    write_threads = write_threads_for(predictor, write_threads)
    s = int(predictor.scale)
    need = int(predictor.margin)
    tile = aligned_tile(tile, s, blocksize)
    m = need if margin is None else check_margin(check_int("margin", margin, 0), tile=tile, need=need)
    name = getattr(getattr(predictor, "card", None), "name", "the model")
    if m < need:
        warnings.warn(
            f"tiling margin {m} px is smaller than the {need} px model {name!r} needs (receptive field "
            f"{getattr(predictor, 'receptive_field', 2 * need + 1)} px): tiles will show seams",
            TilingWarning,
            stacklevel=2,
        )
    if cog not in (True, False, "auto"):
        raise ValueError(f"cog must be True, False or 'auto', got {cog!r}")
    bands = [normalize_band_name(b) for b in predictor.bands]
    out_bands = [normalize_band_name(b) for b in predictor.out_bands]
    source.band_indices(bands, model=f"model {name!r}")
    _check_resolution(source, predictor)
    out_dtype, out_nodata = output_format(
        dtype, input_dtype=source.dtype, input_nodata=source.nodata, where=source.name
    )
    H, W = source.height, source.width
    out_path = Path(output)
    if cog == "auto":
        cog = out_path.suffix.lower() in (".tif", ".tiff") and max(s * H, s * W) > COG_MIN_SIZE
    plan = plan_tiles(H, W, tile=tile, margin=m, scale=s)
    ctx = 2 * m  # nearest-valid fill context beyond the read window (see the module docstring)
    all_tags = {
        **dn_convention_tags(source.dn_scale, source.add_offset),
        **source.tags,
        **model_tags(predictor),
        "S2SR_TILE": str(tile),
        "S2SR_MARGIN": str(m),
        "SOURCE": Path(source.name.split(" (t=")[0]).name,
        **(tags or {}),
    }
    bar = _progress_bar(len(plan), out_path.name, progress is True)
    callback = progress if callable(progress) else None
    writer = GeoTiffWriter(
        out_path,
        height=s * H,
        width=s * W,
        transform=hr_transform(source.transform, s),
        crs=source.crs,
        dtype=out_dtype,
        nodata=out_nodata,
        band_names=out_bands,
        tags=all_tags,
        cog=bool(cog),
        blocksize=blocksize,
        compress=compress,
        tiff_predictor=tiff_predictor,
        compress_threads=write_threads,
    )
    lock = threading.Lock()  # a raster dataset is not thread-safe: reads one at a time

    def read(k: int) -> _Tile:
        with lock:
            return _prepare_tile(source, bands, plan[k], ctx)

    def finish(t: _Tile) -> tuple[np.ndarray, Window]:
        refl = _finish_tile(t, s, len(out_bands))
        t.y = None
        dn = reflectance_to_dn(refl, dn_scale=source.dn_scale, add_offset=source.add_offset, inplace=True)
        values = cast_output(dn, out_dtype, out_nodata, inplace=True)
        rows, cols = t.window.out
        return values, (rows.start, rows.stop, cols.start, cols.stop)

    def write(t: _Tile | tuple[np.ndarray, Window]) -> None:
        writer.write(*(finish(t) if isinstance(t, _Tile) else t))

    try:
        with (
            # workers == 1: the model runs here; the next window is read and prepared on the reader thread, the
            # previous output finished, converted and written on the writer thread meanwhile. workers > 1: tiles
            # read, prepared, run, finished and converted on the workers, at most 2 * workers in flight; written
            # in plan order.
            # the reader (workers == 1) and the writer run at a lower priority: lower_thread_priority
            ThreadPoolExecutor(workers, thread_name_prefix="s2sr-tile" if workers > 1 else "s2sr-read",
                               initializer=lower_thread_priority if workers == 1 else None) as pool,
            ThreadPoolExecutor(1, thread_name_prefix="s2sr-write", initializer=lower_thread_priority) as wpool,
        ):
            if workers == 1:
                reads = in_order(lambda k: pool.submit(read, k), len(plan), 1)
                tiles: Iterator[_Tile | tuple[np.ndarray, Window]] = (_forward_tile(predictor, t) for t in reads)
            else:
                tiles = in_order(lambda k: pool.submit(lambda: finish(_forward_tile(predictor, read(k)))),
                                 len(plan), 2 * workers)
            pending_write: Future | None = None
            with closing(tiles):
                for k, t in enumerate(tiles):
                    if pending_write is not None:
                        pending_write.result()
                    pending_write = wpool.submit(write, t)
                    if bar is not None:
                        bar.update(1)
                    if callback is not None:
                        callback(k + 1, len(plan))
            if pending_write is not None:
                pending_write.result()
    except BaseException:
        writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    return writer.close()


def superresolve_file(
    input: str | os.PathLike,
    output: str | os.PathLike,
    *,
    model: Any = None,
    resolution: float | None = None,
    engine: str = "onnx",
    device: str = "cpu",
    threads: int | None = None,
    tile: int = DEFAULT_TILE,
    overlap: int | None = None,
    dtype: str = "float32",
    cog: bool | str = "auto",
    dn_scale: float | None = None,
    add_offset: float | None = None,
    variable: str | None = None,
    progress: bool = False,
    compress: str = DEFAULT_COMPRESS,
    tiff_predictor: str = DEFAULT_PREDICTOR,
    workers: int | None = None,
    write_threads: int | None = None,
    allow_any_crs: bool = False,
    bbox: Sequence[float] | None = None,
    bbox_crs: Any = None,
    mask_scl: bool | Sequence[int] = False,
    scl: bool = False,
    log: Callable[[str], None] | None = None,
) -> list[Path]:
    """``s2sr superres``: super-resolve a scene folder / GeoTIFF / NetCDF cube into GeoTIFF(s).

    ``model``: shipped name, package folder or a loaded Predictor; None: the shipped model whose bands the input
    holds and whose output pixels are ``resolution`` metres (:func:`sr_core.models.pick_model`; 5 m: 10 bands ->
    :data:`sr_core.models.DEFAULT_MODEL`, the four 10 m bands alone -> :data:`sr_core.models.RGBN_MODEL`; 10 m:
    10 bands -> :data:`sr_core.models.SHARPEN_MODEL`, the 10 m bands unchanged and the 20 m bands sharpened on
    the input's 10 m grid), announced through ``log`` (one line) when given. ``resolution``: the output pixel
    size in metres; None: the named model's own, 5 m (:data:`sr_core.models.DEFAULT_RESOLUTION`) for the
    automatic choice; with a named model a ``resolution`` it does not output is refused (``ValueError``) before
    any work. ``workers`` x ``threads``: tiles computed at the same time x engine intra-op threads each (default
    one tile at a time with all cores). ``workers = cores, threads = 1`` is 10-20 % faster on a 2-core VM but
    holds more memory (+70 MB peak RSS at 2560-5120 px with 2 workers, more with more;
    docs/decisions/2026-11-22-parallel-workers.md), so it is not the default. ``overlap``: the tiling margin in
    input pixels (default the model's). ``allow_any_crs``: process an input without a CRS or in a CRS whose unit
    is not the metre (refused by default: :func:`sr_core.io.source.check_input_grid`). Other arguments:
    :func:`superresolve_source` and :func:`sr_core.io.open_source`. Returns the written paths (one per NetCDF
    date, see :func:`sr_core.io.output_paths`). ``bbox``/``bbox_crs``: process only the window of the input
    covering this box, read alone (:func:`sr_core.io.area.bbox_window`; default CRS the input's); ``mask_scl``:
    pixels whose Level-2A scene classification is in these classes (True: the clouds, their shadows and
    defective pixels, :data:`sr_core.io.area.DEFAULT_SCL_MASK`) become nodata; ``scl``: also write the scene
    classification on the output grid to ``<stem>_SCL<suffix>`` (:func:`sr_core.io.area.write_scl`), listed
    before the output in the returned paths.

    ``output`` is checked before the model is loaded (:func:`sr_core.io.safe_output.check_output_file`: a
    ``.tif``/``.tiff`` name, not an existing symbolic link or non-regular file, in an existing writable folder,
    not the input file nor inside the input folder), and so is every per-date output name before the first tile,
    also against the local files a source lists in its ``files`` attribute (when it has one: e.g. the assets of a
    STAC item).
    """
    if threads is not None:
        threads = check_int("threads", threads, 1)
    workers = 1 if workers is None else check_int("workers", workers, 1)
    if write_threads is not None:
        write_threads = check_int("write_threads", write_threads, 1)
    tile = check_int("tile", tile, 1)
    if overlap is not None:
        overlap = check_int("overlap", overlap, 0)
    if dtype not in OUTPUT_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(OUTPUT_DTYPES)}, got {dtype!r}")
    if compress not in COMPRESSIONS:
        raise ValueError(f"compress must be one of {', '.join(COMPRESSIONS)}, got {compress!r}")
    if tiff_predictor not in PREDICTORS:
        raise ValueError(f"tiff_predictor must be one of {', '.join(PREDICTORS)}, got {tiff_predictor!r}")
    if resolution is not None:
        resolution = check_resolution(resolution)
    if model is not None and resolution is not None:
        card = load_card(model, verify=False) if isinstance(model, (str, os.PathLike)) else getattr(model, "card", None)
        if getattr(card, "input_resolution_m", None) is not None:
            check_model_resolution(card, resolution)
    check_output_file(output, reads=[input])
    sources = open_source(input, dn_scale=dn_scale, add_offset=add_offset, variable=variable)
    try:
        if model is None:
            bands = sources[0].bands if sources else ()
            model = pick_model(bands, resolution=DEFAULT_RESOLUTION if resolution is None else resolution)
            if log is not None:
                log(f"model {model} (chosen by the input's bands: {', '.join(bands)})")
        if isinstance(model, (str, os.PathLike)):
            predictor = load_predictor(
                model, engine=engine, device=device, threads=threads or os.cpu_count() or 1
            )
            check_predictor(predictor)
        else:
            predictor = model
        if overlap is not None:
            check_margin(overlap, tile=aligned_tile(tile, int(predictor.scale)), need=int(predictor.margin),
                         name="overlap")
        sources = [restrict(src, bbox=bbox, bbox_crs=bbox_crs, mask_scl=mask_scl, scl=scl) for src in sources]
        card = getattr(predictor, "card", None)
        for src in sources:
            check_input_grid(src, getattr(card, "input_resolution_m", None), allow_any_crs=allow_any_crs,
                             model=repr(getattr(card, "name", "the model")))
        dates = [getattr(src, "date", "") for src in sources]
        paths = output_paths(output, dates)
        reads = [input, *(f for src in sources for f in (getattr(src, "files", None) or ()))]
        for path in paths:
            check_output_file(path, reads=reads)
            if scl:
                check_output_file(scl_output_path(path), reads=[input])
        done = []
        for src, path in zip(sources, paths):
            if scl:
                done.append(write_scl(src, scl_output_path(path), scale=int(predictor.scale), compress=compress))
            try:
                done.append(
                    superresolve_source(
                        src,
                        path,
                        predictor=predictor,
                        tile=tile,
                        margin=overlap,
                        dtype=dtype,
                        cog=cog,
                        progress=progress,
                        compress=compress,
                        tiff_predictor=tiff_predictor,
                        workers=workers,
                        write_threads=write_threads,
                    )
                )
            except BaseException:
                if scl:  # no output: no classification beside it either
                    scl_output_path(path).unlink(missing_ok=True)
                raise
        return done
    finally:
        for src in sources:
            src.close()
