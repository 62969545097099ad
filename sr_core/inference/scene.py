"""Streaming super-resolution of whole scenes to GeoTIFF / COG (what ``s2sr superres`` runs).

A scene is read window by window (tile + margin, with rasterio windows or lazy NetCDF indexing), each window
goes through the model, and each output window is written straight into the output GeoTIFF: memory is bounded
by the tile size, whatever the scene size.

Conventions
-----------
* Inputs (:func:`open_source`): a scene folder of the shared layout (``bands_10m.tif``, ``bands_20m.tif``,
  ``scene.json``; the 20 m bands are nearest-replicated 2 x 2 onto the 10 m grid per window), a multi-band
  GeoTIFF (band names from the band descriptions or ``BANDNAME`` tags; labels that are not Sentinel-2 bands
  are ignored) or an openEO NetCDF cube (one variable with a ``bands`` dim, or one variable per band).
  A NetCDF cube with a ``t`` dim of ``n > 1`` dates gives ``n`` outputs, ``<stem>_<date><suffix>``
  (:func:`output_paths`); one date gives ``OUTPUT`` itself.
* Values: DN. Reflectance = ``(DN + add_offset) / dn_scale`` from explicit metadata (``scene.json``, GeoTIFF
  tags ``DN_SCALE``/``ADD_OFFSET``, NetCDF attributes ``dn_scale``/``add_offset_dn``) or explicit arguments;
  never guessed. The output uses the input's convention and says so in its ``DN_SCALE``/``ADD_OFFSET`` tags.
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
* Output: tiled (256 px blocks), compressed GeoTIFF (:data:`COMPRESSIONS`; default ZSTD level 1: about as small
  as DEFLATE and several times faster to write; GDAL >= 2.3 reads it; ``compress="deflate"`` for older readers;
  :data:`PREDICTORS`: by default the horizontal predictor for integer output and none for float32 output, whose
  low mantissa bytes the floating-point predictor hardly compresses: 19 % larger files, written in half the CPU
  time and read 30 % faster, docs/decisions/2026-11-22-float-output-predictor.md); a Cloud-Optimized GeoTIFF
  with overviews when ``cog=True``, or with ``cog="auto"`` when the output is larger than :data:`COG_MIN_SIZE` px
  and the extension is ``.tif``/``.tiff``. Band descriptions and ``BANDNAME`` tags = the model's output band names;
  tags name the model, its version and the sha256 of the model file the engine ran (:func:`model_tags`).
  The file is written under a temporary name and renamed when complete (replacing an existing file).
"""

from __future__ import annotations

import json
import math
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
from sr_core.io.cog import HalvingWriter, make_cog, move_into_place, overview_shapes
from sr_core.nodata import fill_nodata, finalize_output
from sr_core.radiometry import dn_to_reflectance, reflectance_to_dn
from sr_core.runtime import usable_cpus
from sr_core.tiling import TileWindow, edge_pad, hr_transform, in_order, plan_tiles

__all__ = [
    "BLOCKSIZE",
    "COG_MIN_SIZE",
    "DEFAULT_TILE",
    "OUTPUT_DTYPES",
    "PREDICTORS",
    "ArraySource",
    "GeoTiffSource",
    "GeoTiffWriter",
    "NetCDFSource",
    "RasterSource",
    "SceneFolderSource",
    "aligned_tile",
    "model_tags",
    "open_source",
    "lower_thread_priority",
    "output_paths",
    "predictor_code",
    "superresolve_file",
    "superresolve_source",
    "write_threads_for",
]

#: Default tile core size, in input (model-grid) pixels.
DEFAULT_TILE = 512
#: GeoTIFF block size of the output, in output pixels.
BLOCKSIZE = 256
#: With ``cog="auto"``, outputs whose larger side exceeds this many pixels are written as COG with overviews.
COG_MIN_SIZE = 2048
#: Output compressions: name -> (GDAL COMPRESS, creation options of the level).
COMPRESSIONS = {
    "zstd": ("ZSTD", {"zstd_level": 1}),
    "deflate": ("DEFLATE", {"zlevel": 6}),
    "lzw": ("LZW", {}),
    "none": (None, {}),
}
DEFAULT_COMPRESS = "zstd"
#: Output predictors: ``"auto"`` (horizontal differencing for integer output, none for float output), ``"yes"``
#: (horizontal for integers, floating-point for floats: the smallest files), ``"no"``.
PREDICTORS = ("auto", "yes", "no")
DEFAULT_PREDICTOR = "auto"
#: ``dtype`` choices: ``"float32"`` (DN as float32, NaN nodata) or ``"input"`` (the input's dtype).
OUTPUT_DTYPES = ("float32", "input")

Window = tuple[int, int, int, int]  # (row0, row1, col0, col1), half-open


# ------------------------------------------------------------------------------------------------ helpers




def _canonical_or_none(label: Any) -> str | None:
    try:
        return normalize_band_name(str(label))
    except ValueError:
        return None


def _labels(labels: Sequence[Any], where: str) -> tuple[str | None, ...]:
    """Canonical name per label (None = not a Sentinel-2 band: ignored); duplicates are an error."""
    out = tuple(_canonical_or_none(v) for v in labels)
    names = [n for n in out if n is not None]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(
            f"{where}: band labels {[str(v) for v in labels]} name the same band twice: {', '.join(dup)}"
        )
    return out


def _north_up(transform: Any, where: str) -> tuple[float, float, float, float, float, float]:
    t = tuple(float(v) for v in tuple(transform)[:6])
    a, b, _, d, e, _ = t
    if not all(math.isfinite(v) for v in t) or b != 0 or d != 0 or a <= 0 or e >= 0:
        raise ValueError(f"{where}: the grid must be north-up (transform b = d = 0, a > 0, e < 0), got {t}")
    return t  # type: ignore[return-value]


def _fmt_number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


# ------------------------------------------------------------------------------------------------ sources


class RasterSource:
    """A 2-D multi-band raster read window by window: ``read(bands, window) -> DN float32 (C, h, w)``.

    Attributes: ``name`` (for messages), ``height``, ``width``, ``transform`` (6 numbers ``(a, b, c, d, e, f)``,
    north-up, ``(c, f)`` = upper-left corner), ``crs`` (string or None), ``labels`` (canonical band name per
    stored band, None for non-Sentinel-2 labels), ``dn_scale``, ``add_offset``, ``dtype`` (stored dtype),
    ``nodata`` (stored nodata value or None), ``tags`` (dict passed to the output: ``PRODUCT_LEVEL``, ...).
    Subclasses implement :meth:`_read`; invalid pixels must come back as NaN.
    """

    def __init__(
        self,
        *,
        name: str,
        height: int,
        width: int,
        transform: Any,
        crs: str | None,
        labels: Sequence[str | None],
        dn_scale: float,
        add_offset: float,
        dtype: str,
        nodata: float | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.height = check_int("height", height, 1)
        self.width = check_int("width", width, 1)
        self.transform = _north_up(transform, name)
        self.crs = crs
        self.labels = tuple(labels)
        if (
            isinstance(dn_scale, bool)
            or not isinstance(dn_scale, (int, float, np.number))
            or not dn_scale > 0
        ):
            raise ValueError(f"{name}: dn_scale must be a positive number, got {dn_scale!r}")
        if (
            isinstance(add_offset, bool)
            or not isinstance(add_offset, (int, float, np.number))
            or not math.isfinite(add_offset)
        ):
            raise ValueError(f"{name}: add_offset must be a finite number, got {add_offset!r}")
        self.dn_scale = float(dn_scale)
        self.add_offset = float(add_offset)
        self.dtype = str(np.dtype(dtype))
        self.nodata = None if nodata is None else float(nodata)
        self.tags = dict(tags or {})
        #: largest window (pixels) read so far: the streaming memory bound, for tests and benchmarks
        self.max_window_pixels = 0
        self.pixels_read = 0

    # -- geometry
    @property
    def bands(self) -> tuple[str, ...]:
        """The Sentinel-2 bands present (canonical names, stored order)."""
        return tuple(n for n in self.labels if n is not None)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` of the grid."""
        a, _, c, _, e, f = self.transform
        return (c, f + self.height * e, c + self.width * a, f)

    @property
    def resolution(self) -> float:
        return float(self.transform[0])

    # -- reading
    def band_indices(self, bands: Sequence[str], *, model: str = "the model") -> list[int]:
        """Positions of ``bands`` among the stored bands; missing bands raise ``ValueError`` naming them."""
        pos = {n: i for i, n in enumerate(self.labels) if n is not None}
        want = [normalize_band_name(b) for b in bands]
        missing = [b for b in want if b not in pos]
        if missing:
            raise ValueError(
                f"{self.name}: {model} needs bands {', '.join(want)}; missing: {', '.join(missing)}; "
                f"bands present: {', '.join(self.bands) or 'none'}"
            )
        return [pos[b] for b in want]

    def read(self, bands: Sequence[str], window: Window) -> np.ndarray:
        """DN of ``bands`` (names) in ``window`` ``(row0, row1, col0, col1)`` as float32 ``(C, h, w)``, NaN =
        nodata. The window must lie inside the raster."""
        r0, r1, c0, c1 = (int(v) for v in window)
        if not (0 <= r0 < r1 <= self.height and 0 <= c0 < c1 <= self.width):
            raise ValueError(
                f"{self.name}: window {window} is empty or outside the {self.height}x{self.width} raster"
            )
        idx = self.band_indices(bands)
        out = np.asarray(self._read(idx, (r0, r1, c0, c1)), dtype=np.float32)
        if out.shape != (len(idx), r1 - r0, c1 - c0):
            raise ValueError(f"{self.name}: read {out.shape} for window {window} and {len(idx)} bands")
        self.max_window_pixels = max(self.max_window_pixels, (r1 - r0) * (c1 - c0))
        self.pixels_read += (r1 - r0) * (c1 - c0)
        return out

    def _read(self, idx: list[int], window: Window) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> RasterSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ArraySource(RasterSource):
    """An in-memory DN array ``(C, H, W)`` (NaN or ``nodata`` = invalid) as a :class:`RasterSource`."""

    def __init__(
        self,
        dn: np.ndarray,
        bands: Sequence[str],
        *,
        transform: Any = (10.0, 0.0, 0.0, 0.0, -10.0, 0.0),
        crs: str | None = None,
        dn_scale: float = 10000.0,
        add_offset: float = 0.0,
        nodata: float | None = None,
        name: str = "array",
    ) -> None:
        a = np.asarray(dn)
        if a.ndim != 3 or a.shape[0] != len(bands):
            raise ValueError(f"dn must be (C, H, W) with C = len(bands) = {len(bands)}, got shape {a.shape}")
        super().__init__(
            name=name,
            height=a.shape[1],
            width=a.shape[2],
            transform=transform,
            crs=crs,
            labels=_labels(bands, name),
            dn_scale=dn_scale,
            add_offset=add_offset,
            dtype=str(a.dtype),
            nodata=nodata,
        )
        self._dn = a

    def _read(self, idx: list[int], window: Window) -> np.ndarray:
        r0, r1, c0, c1 = window
        x = self._dn[idx, r0:r1, c0:c1].astype(np.float32)
        if self.nodata is not None:
            x[x == np.float32(self.nodata)] = np.nan
        return x


def _rasterio():
    try:
        import rasterio
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError("s2sr superres needs rasterio: pip install 's2sr[udf]'") from err
    return rasterio


def _tif_labels(src: Any, where: str, bands: Sequence[str] | None) -> tuple[str | None, ...]:
    if bands is not None:
        if len(bands) != src.count:
            raise ValueError(f"{where}: bands names {len(bands)} bands, the file has {src.count}")
        return _labels(bands, where)
    given = []
    for i, desc in enumerate(src.descriptions):
        tag = src.tags(i + 1).get("BANDNAME")
        if desc and tag and _canonical_or_none(desc) != _canonical_or_none(tag):
            raise ValueError(
                f"{where}: band {i + 1} description {desc!r} contradicts its BANDNAME tag {tag!r}"
            )
        name = desc or tag
        if not name:
            raise ValueError(
                f"{where}: band {i + 1} has neither a description nor a BANDNAME tag: the bands cannot be "
                "identified (write band descriptions, e.g. 'B02', or pass bands=[...])"
            )
        given.append(name)
    return _labels(given, where)


def _read_tif_window(src: Any, idx: Sequence[int], window: Window, check_masks: bool) -> np.ndarray:
    from rasterio.windows import Window as RWindow

    r0, r1, c0, c1 = window
    win = RWindow(c0, r0, c1 - c0, r1 - r0)
    indexes = [i + 1 for i in idx]
    x = src.read(indexes, window=win).astype(np.float32)
    if check_masks:
        m = src.read_masks(indexes, window=win)
        x[m == 0] = np.nan
    return x


def _needs_masks(src: Any) -> bool:
    from rasterio.enums import MaskFlags

    return src.nodata is not None or any(flags != [MaskFlags.all_valid] for flags in src.mask_flag_enums)


class GeoTiffSource(RasterSource):
    """A multi-band GeoTIFF (any GDAL raster) read window by window.

    Band names: descriptions or ``BANDNAME`` tags (or ``bands``). Scale: tags ``DN_SCALE``/``ADD_OFFSET`` or
    the explicit arguments (both given: they must agree; neither: ``ValueError``)."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        dn_scale: float | None = None,
        add_offset: float | None = None,
        bands: Sequence[str] | None = None,
    ) -> None:
        from sr_core.io.readers import _scale_from

        rasterio = _rasterio()
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such GeoTIFF: {path}")
        self._src = src = rasterio.open(path)
        try:
            where = str(path)
            labels = _tif_labels(src, where, bands)
            tags = dict(src.tags())
            scale, offset = _scale_from(
                tags.get("DN_SCALE"),
                tags.get("ADD_OFFSET"),
                dn_scale,
                add_offset,
                where,
                "DN_SCALE",
                "ADD_OFFSET",
            )
            keep = {k: tags[k] for k in ("PRODUCT_LEVEL", "SCENE_ID") if k in tags}
            super().__init__(
                name=where,
                height=src.height,
                width=src.width,
                transform=src.transform,
                crs=src.crs.to_string() if src.crs is not None else None,
                labels=labels,
                dn_scale=scale,
                add_offset=offset,
                dtype=src.dtypes[0],
                nodata=src.nodata,
                tags=keep,
            )
            self._masks = _needs_masks(src)
        except BaseException:
            src.close()
            raise

    def _read(self, idx: list[int], window: Window) -> np.ndarray:
        return _read_tif_window(self._src, idx, window, self._masks)

    def close(self) -> None:
        self._src.close()


class SceneFolderSource(RasterSource):
    """A scene folder of the shared layout: ``bands_10m.tif`` + ``bands_20m.tif`` (optional for models that
    need only 10 m bands) + ``scene.json`` (``dn_scale``, ``add_offset``). The grid is the 10 m grid; 20 m
    bands are read on their own grid per window and nearest-replicated 2 x 2 (never the whole scene)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        from sr_core.io.readers import _check_add_offset, _check_dn_scale, _parse_number

        rasterio = _rasterio()
        folder = Path(folder)
        jpath = folder / "scene.json"
        if not jpath.is_file():
            raise FileNotFoundError(f"no scene.json in {folder}")
        try:
            meta = json.loads(jpath.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{jpath}: not valid JSON: {err}") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{jpath}: expected a JSON object")
        for key in ("dn_scale", "add_offset"):
            if meta.get(key) is None:
                raise ValueError(f"{jpath}: key {key!r} is missing or null; refusing to guess it")
        scale = _check_dn_scale(meta["dn_scale"], f"{jpath}: key 'dn_scale'")
        offset = _check_add_offset(meta["add_offset"], f"{jpath}: key 'add_offset'")
        p10, p20 = folder / "bands_10m.tif", folder / "bands_20m.tif"
        if not p10.is_file():
            raise FileNotFoundError(f"scene folder {folder} has no bands_10m.tif")
        self._srcs: list[Any] = []
        try:
            s10 = rasterio.open(p10)
            self._srcs.append(s10)
            s20 = rasterio.open(p20) if p20.is_file() else None
            if s20 is not None:
                self._srcs.append(s20)
            t10 = _north_up(s10.transform, str(p10))
            labels10 = _tif_labels(s10, str(p10), None)
            labels20: tuple[str | None, ...] = ()
            for src, path in ((s10, p10), (s20, p20)):
                if src is None:
                    continue
                tags = src.tags()
                for key, tag_key, want in (
                    ("dn_scale", "DN_SCALE", scale),
                    ("add_offset", "ADD_OFFSET", offset),
                ):
                    if tag_key in tags and _parse_number(tags[tag_key], str(path), tag_key) != want:
                        raise ValueError(
                            f"{path}: tag {tag_key} = {tags[tag_key]!r} contradicts scene.json {key} = {want}"
                        )
            if s20 is not None:
                labels20 = _tif_labels(s20, str(p20), None)
                t20 = _north_up(s20.transform, str(p20))
                a = t10[0]
                same_crs = (s10.crs is None and s20.crs is None) or (
                    s10.crs is not None and s10.crs == s20.crs
                )
                nests = (
                    abs(t20[0] - 2 * t10[0]) <= 1e-9 * a
                    and abs(t20[4] - 2 * t10[4]) <= 1e-9 * a
                    and abs(t20[2] - t10[2]) <= 1e-6 * a
                    and abs(t20[5] - t10[5]) <= 1e-6 * a
                    and (2 * s20.height, 2 * s20.width) == (s10.height, s10.width)
                )
                if not same_crs or not nests:
                    raise ValueError(
                        f"{p20}: the 20 m grid ({s20.width}x{s20.height}, transform {t20}, CRS {s20.crs}) does not "
                        f"nest in the 10 m grid of {p10.name} ({s10.width}x{s10.height}, transform {t10}, CRS {s10.crs})"
                    )
            labels = _labels(list(labels10) + list(labels20), str(folder))
            tags = {"SCENE_ID": str(meta.get("id", folder.name))}
            if meta.get("product_level") is not None:
                tags["PRODUCT_LEVEL"] = str(meta["product_level"])
            crs = s10.crs.to_string() if s10.crs is not None else meta.get("crs")
            super().__init__(
                name=str(folder),
                height=s10.height,
                width=s10.width,
                transform=t10,
                crs=crs,
                labels=labels,
                dn_scale=scale,
                add_offset=offset,
                dtype=s10.dtypes[0],
                nodata=s10.nodata,
                tags=tags,
            )
            self._s10, self._s20, self._n10 = s10, s20, len(labels10)
            self._m10 = _needs_masks(s10)
            self._m20 = s20 is not None and _needs_masks(s20)
        except BaseException:
            self.close()
            raise

    def _read(self, idx: list[int], window: Window) -> np.ndarray:
        r0, r1, c0, c1 = window
        out = np.empty((len(idx), r1 - r0, c1 - c0), dtype=np.float32)
        i10 = [(k, i) for k, i in enumerate(idx) if i < self._n10]
        i20 = [(k, i - self._n10) for k, i in enumerate(idx) if i >= self._n10]
        if i10:
            out[[k for k, _ in i10]] = _read_tif_window(self._s10, [i for _, i in i10], window, self._m10)
        if i20:
            rr0, rr1, cc0, cc1 = r0 // 2, (r1 + 1) // 2, c0 // 2, (c1 + 1) // 2
            x = _read_tif_window(self._s20, [i for _, i in i20], (rr0, rr1, cc0, cc1), self._m20)
            x = np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)
            dy, dx = r0 - 2 * rr0, c0 - 2 * cc0
            out[[k for k, _ in i20]] = x[:, dy : dy + (r1 - r0), dx : dx + (c1 - c0)]
        return out

    def close(self) -> None:
        for s in self._srcs:
            s.close()
        self._srcs = []


class _NetCDFCube:
    """A lazily opened NetCDF cube shared by the per-date :class:`NetCDFSource` objects."""

    def __init__(
        self, path: Path, *, variable: str | None, dn_scale: float | None, add_offset: float | None
    ) -> None:
        from sr_core.io.readers import _OFFSET_KEYS, _SCALE_KEYS, _first_attr, _scale_from

        try:
            import rioxarray  # noqa: F401  (registers .rio)
            import xarray as xr
        except ImportError as err:  # pragma: no cover - depends on the install
            raise ImportError("reading NetCDF needs xarray and rioxarray: pip install 's2sr[udf]'") from err
        where = str(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such NetCDF file: {path}")
        self.path = path
        self.ds = ds = xr.open_dataset(path, decode_coords="all")  # lazy: windows are read on demand
        try:
            bdim = {v: next((d for d in ("bands", "band") if d in ds[v].dims), None) for v in ds.data_vars}
            if variable is not None and variable not in ds.data_vars:
                raise ValueError(f"{where}: no variable {variable!r}; variables: {list(ds.data_vars)}")
            stacked = [v for v in ([variable] if variable else ds.data_vars) if bdim.get(v)]
            if len(stacked) > 1:
                raise ValueError(
                    f"{where}: several variables with a bands dimension {stacked}; pass variable=..."
                )
            if stacked:
                v = stacked[0]
                self.layout = [(v, k) for k in range(ds[v].sizes[bdim[v]])]
                self.bdim = bdim[v]
                if bdim[v] not in ds[v].coords:
                    raise ValueError(
                        f"{where}: variable {v!r} has no {bdim[v]!r} coordinate naming the bands"
                    )
                labels = [str(b) for b in ds[v].coords[bdim[v]].values]
                attrs = dict(ds[v].attrs)
                ref = ds[v]
            else:
                cands = [variable] if variable else [str(v) for v in ds.data_vars]
                names = [v for v in cands if ds[v].ndim >= 2 and _canonical_or_none(v) is not None]
                if not names:
                    raise ValueError(
                        f"{where}: no variable with a 'bands' dimension and no variable named like a band "
                        f"(B02, ...): variables {list(ds.data_vars)}"
                    )
                self.layout = [(v, None) for v in names]
                self.bdim = None
                labels = names
                attrs = {}
                for keys in (_SCALE_KEYS, _OFFSET_KEYS):
                    vals = {repr(_first_attr(ds[v].attrs, keys)[1]) for v in names}
                    if len(vals) > 1:
                        raise ValueError(f"{where}: the band variables disagree on {keys[0]}: {sorted(vals)}")
                    k, val = _first_attr(ds[names[0]].attrs, keys)
                    if k is not None:
                        attrs[k] = val
                ref = ds[names[0]]
            self.labels = _labels(labels, where)
            dims = [d for d in ref.dims if d != self.bdim]
            self.tdim = next((d for d in ("t", "time") if d in dims), None)
            extra = [d for d in dims if d not in ("y", "x", self.tdim)]
            if extra or "y" not in dims or "x" not in dims:
                raise ValueError(f"{where}: expected dimensions (t, bands, y, x), got {ref.dims}")
            skey, sval = _first_attr(attrs, _SCALE_KEYS)
            okey, oval = _first_attr(attrs, _OFFSET_KEYS)
            if skey is None:
                skey, sval = _first_attr(ds.attrs, _SCALE_KEYS)
            if okey is None:
                okey, oval = _first_attr(ds.attrs, _OFFSET_KEYS)
            self.dn_scale, self.add_offset = _scale_from(
                sval, oval, dn_scale, add_offset, where, skey or "dn_scale", okey or "add_offset_dn"
            )
            self.transform, self.flip_y = self._grid(ref, where)
            self.height, self.width = int(ref.sizes["y"]), int(ref.sizes["x"])
            crs = ref.rio.crs
            self.crs = crs.to_string() if crs is not None else None
            enc = ref.encoding
            self.dtype = str(np.dtype(enc.get("dtype", ref.dtype)))
            fill = enc.get("_FillValue", enc.get("missing_value"))
            self.nodata = None if fill is None or not np.isfinite(fill) else float(fill)
            self.dates = self._dates()
        except BaseException:
            ds.close()
            raise

    @staticmethod
    def _grid(ref: Any, where: str) -> tuple[tuple[float, ...], bool]:
        out = {}
        for d in ("y", "x"):
            if d not in ref.coords:
                raise ValueError(f"{where}: no {d!r} coordinate: the grid is unknown")
            v = np.asarray(ref.coords[d].values, dtype=np.float64)
            if v.size < 2:
                raise ValueError(
                    f"{where}: the {d!r} axis has {v.size} pixel(s): its pixel spacing is unknown"
                )
            step = float(v[1] - v[0])
            if step == 0 or np.abs(np.diff(v) - step).max() > 1e-6 * abs(step):
                raise ValueError(f"{where}: coordinate {d!r} is not regularly spaced")
            out[d] = (v, step)
        (y, dy), (x, dx) = out["y"], out["x"]
        if dx < 0:
            raise ValueError(f"{where}: x decreases to the right; only x-increasing grids are supported")
        top = max(y[0], y[-1]) + abs(dy) / 2
        return (dx, 0.0, float(x[0] - dx / 2), 0.0, -abs(dy), float(top)), dy > 0

    def _dates(self) -> list[str]:
        if self.tdim is None:
            return [""]
        vals = (
            np.asarray(self.ds[self.tdim].values)
            if self.tdim in self.ds.coords
            else np.arange(self.ds.sizes[self.tdim])
        )
        if np.issubdtype(vals.dtype, np.datetime64):
            labels = [str(np.datetime_as_string(v, unit="D")) for v in vals]
            if len(set(labels)) < len(labels):
                labels = [str(np.datetime_as_string(v, unit="s")).replace(":", "") for v in vals]
        else:
            labels = [str(v) for v in vals]
        if len(set(labels)) < len(labels):
            labels = [f"t{i}" for i in range(len(vals))]
        return labels

    def read(self, t: int | None, idx: list[int], window: Window) -> np.ndarray:
        r0, r1, c0, c1 = window
        ys = slice(self.height - r1, self.height - r0) if self.flip_y else slice(r0, r1)
        out = np.empty((len(idx), r1 - r0, c1 - c0), dtype=np.float32)
        for k, i in enumerate(idx):
            var, b = self.layout[i]
            sel: dict[str, Any] = {"y": ys, "x": slice(c0, c1)}
            if self.tdim is not None:
                sel[self.tdim] = t
            if b is not None:
                sel[self.bdim] = b
            band = self.ds[var].isel(sel).transpose("y", "x").values
            out[k] = band[::-1] if self.flip_y else band
        return out

    def close(self) -> None:
        self.ds.close()


class NetCDFSource(RasterSource):
    """One date of an openEO NetCDF cube (see :func:`open_source`)."""

    def __init__(self, cube: _NetCDFCube, t: int | None, date: str) -> None:
        tags = {"DATE": date} if date else {}
        super().__init__(
            name=f"{cube.path}" + (f" (t={date})" if date else ""),
            height=cube.height,
            width=cube.width,
            transform=cube.transform,
            crs=cube.crs,
            labels=cube.labels,
            dn_scale=cube.dn_scale,
            add_offset=cube.add_offset,
            dtype=cube.dtype,
            nodata=cube.nodata,
            tags=tags,
        )
        self._cube, self._t, self.date = cube, t, date

    def _read(self, idx: list[int], window: Window) -> np.ndarray:
        return self._cube.read(self._t, idx, window)

    def close(self) -> None:
        self._cube.close()


def open_source(
    path: str | os.PathLike,
    *,
    dn_scale: float | None = None,
    add_offset: float | None = None,
    variable: str | None = None,
) -> list[RasterSource]:
    """The rasters of ``path``: ``[SceneFolderSource]`` for a scene folder, ``[GeoTiffSource]`` for a
    ``.tif``/``.tiff``, one :class:`NetCDFSource` per date for a ``.nc`` (``variable`` picks the data variable).
    ``dn_scale``/``add_offset`` supply the DN convention when the file lacks it (scene folders take it from
    ``scene.json`` only). Close them (``close()`` or ``with``) when done."""
    p = Path(path)
    if p.is_dir():
        if dn_scale is not None or add_offset is not None or variable is not None:
            raise ValueError(
                f"{p}: a scene folder takes its DN convention from scene.json; no dn_scale/add_offset/variable"
            )
        if not (p / "bands_10m.tif").is_file():
            raise ValueError(
                f"{p}: not a scene folder (no bands_10m.tif); INPUT is a scene folder, .tif or .nc file"
            )
        return [SceneFolderSource(p)]
    if not p.exists():
        raise FileNotFoundError(f"no such file or folder: {p}")
    suffix = p.suffix.lower()
    if suffix in (".tif", ".tiff"):
        if variable is not None:
            raise ValueError("variable is only for NetCDF input")
        return [GeoTiffSource(p, dn_scale=dn_scale, add_offset=add_offset)]
    if suffix in (".nc", ".nc4", ".netcdf"):
        cube = _NetCDFCube(p, variable=variable, dn_scale=dn_scale, add_offset=add_offset)
        if cube.tdim is None:
            return [NetCDFSource(cube, None, "")]
        return [NetCDFSource(cube, i, d) for i, d in enumerate(cube.dates)]
    raise ValueError(
        f"{p}: unsupported input {suffix!r}; expected a scene folder, a .tif/.tiff or a .nc file"
    )


def output_paths(output: str | os.PathLike, dates: Sequence[str]) -> list[Path]:
    """Output file per date: ``output`` itself for one date, ``<stem>_<date><suffix>`` for several."""
    out = Path(output)
    if len(dates) <= 1:
        return [out]
    return [out.with_name(f"{out.stem}_{d}{out.suffix}") for d in dates]


# ------------------------------------------------------------------------------------------------ writer


def _output_format(dtype: str, source: RasterSource) -> tuple[np.dtype, float]:
    if dtype not in OUTPUT_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(OUTPUT_DTYPES)}, got {dtype!r}")
    if dtype == "float32":
        return np.dtype(np.float32), float("nan")
    dt = np.dtype(source.dtype)
    if dt.kind == "f":
        return dt, (source.nodata if source.nodata is not None else float("nan"))
    if dt.kind not in "iu":
        raise ValueError(f"{source.name}: cannot write output in the input dtype {dt}")
    nodata = source.nodata if source.nodata is not None else 0.0
    info = np.iinfo(dt)
    if not (info.min <= nodata <= info.max and float(nodata).is_integer()):
        raise ValueError(f"{source.name}: nodata {nodata!r} does not fit the dtype {dt}")
    return dt, float(nodata)


def _cast(dn: np.ndarray, dtype: np.dtype, nodata: float, *, inplace: bool = False) -> np.ndarray:
    """DN float32 (NaN or +-inf = nodata) -> ``dtype``. Integers: rounded half to even, clipped to the dtype's
    range; a valid value never equals ``nodata`` (moved by one DN). ``inplace``: ``dn`` may be overwritten (the
    caller's scratch array), which saves a copy."""
    if dtype.kind == "f":
        out = dn.astype(dtype, copy=not inplace)
        if not math.isnan(nodata):
            bad = ~np.isfinite(out)
            if bad.any():
                out[bad] = nodata
        return out
    info = np.iinfo(dtype)
    lo, hi = float(info.min), float(info.max)
    if nodata == lo:
        lo += 1
    elif nodata == hi:
        hi -= 1
    v = dn if inplace and dn.flags.writeable and dn.dtype == np.float32 else np.array(dn, dtype=np.float32)
    bad = ~np.isfinite(v)
    has_bad = bool(bad.any())
    np.rint(v, out=v)
    np.clip(v, lo, hi, out=v)  # NaN stays NaN (overwritten below)
    if lo < nodata < hi:
        v[v == nodata] = nodata + 1
    with np.errstate(invalid="ignore"):
        out = v.astype(dtype)
    if has_bad:
        out[bad] = nodata
    return out


def predictor_code(tiff_predictor: str, dtype: Any) -> int:
    """The TIFF ``Predictor`` tag value (1 none, 2 horizontal, 3 floating point) of :data:`PREDICTORS`
    ``tiff_predictor`` for output of ``dtype``."""
    if tiff_predictor not in PREDICTORS:
        raise ValueError(f"tiff_predictor must be one of {', '.join(PREDICTORS)}, got {tiff_predictor!r}")
    floating = np.dtype(dtype).kind == "f"
    if tiff_predictor == "no" or (tiff_predictor == "auto" and floating):
        return 1
    return 3 if floating else 2


class GeoTiffWriter:
    """A tiled compressed GeoTIFF written window by window, optionally a COG: its overview levels are made from
    the windows as they are written (:class:`sr_core.io.cog.HalvingWriter`, while the sides stay even; the rest on
    :meth:`close`), and on :meth:`close` the COG is assembled by copying the compressed tiles
    (:func:`sr_core.io.cog.make_cog`), in bounded memory whatever the raster size.

    ``write(values (C, h, w), (row0, row1, col0, col1))``. The file appears at ``path`` only after a
    successful :meth:`close` (an existing file there is replaced: :func:`sr_core.io.cog.move_into_place`);
    :meth:`abort` (or an exception inside ``with``) removes the partial file. ``compress``: :data:`COMPRESSIONS`;
    ``tiff_predictor``: :data:`PREDICTORS` (:func:`predictor_code`). ``compress_threads``: GDAL's ``NUM_THREADS``
    for the blocks of the raster and of its overview levels (1: compressed on the writing thread); the values and
    the compressed tiles do not depend on it.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        height: int,
        width: int,
        transform: Any,
        crs: Any,
        dtype: Any,
        nodata: float | None,
        band_names: Sequence[str],
        tags: dict[str, str] | None = None,
        cog: bool = False,
        blocksize: int = BLOCKSIZE,
        compress: str = DEFAULT_COMPRESS,
        tiff_predictor: str = DEFAULT_PREDICTOR,
        compress_threads: int = 1,
    ) -> None:
        rasterio = _rasterio()
        compress_threads = check_int("compress_threads", compress_threads, 1)
        if compress not in COMPRESSIONS:
            raise ValueError(f"compress must be one of {', '.join(COMPRESSIONS)}, got {compress!r}")
        codec, level = COMPRESSIONS[compress]
        code = predictor_code(tiff_predictor, dtype)
        from affine import Affine

        bs = check_int("blocksize", blocksize, 16)
        if bs % 16:
            raise ValueError(f"blocksize must be a multiple of 16, got {blocksize}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.cog = bool(cog)
        self.blocksize = bs
        self.dtype = np.dtype(dtype)
        self._tmp = self.path.with_name(f".{self.path.name}.part")
        profile = dict(
            driver="GTiff",
            width=int(width),
            height=int(height),
            count=len(band_names),
            dtype=self.dtype.name,
            crs=crs,
            transform=Affine(*tuple(transform)[:6]),
            nodata=nodata,
            tiled=True,
            blockxsize=bs,
            blockysize=bs,
            bigtiff="IF_SAFER",
            interleave="pixel",
        )
        comp: dict[str, Any] = {}
        if codec is not None:
            comp = dict(compress=codec.lower(), predictor=code, **level)
            if compress_threads > 1:  # GDAL compresses the blocks on that many worker threads
                comp["num_threads"] = str(compress_threads)
        profile.update(comp)
        self._scratch = comp  # the overview levels: encoded as the raster, so the COG copies their tiles as they are
        self._dst = rasterio.open(self._tmp, "w", **profile)
        self._dst.descriptions = tuple(band_names)
        if tags:
            self._dst.update_tags(**{k: str(v) for k, v in tags.items()})
        for i, b in enumerate(band_names):
            self._dst.update_tags(i + 1, BANDNAME=str(b))
        # COG overview levels made from the windows as they are written (sr_core.io.cog.HalvingWriter), one writer
        # per level while the sides stay even (where the 2 x 2 halving is local); the rest is made on close
        self._halving: list[HalvingWriter] = []
        shapes = overview_shapes(height, width, bs) if self.cog else []
        h, w = int(height), int(width)
        level_transform = profile["transform"]
        for k in range(len(shapes)):
            if h % 2 or w % 2:
                break
            level = HalvingWriter(
                self.path.with_name(f".{self.path.name}.ovr{k + 1}.part"), height=h, width=w,
                count=len(band_names), dtype=self.dtype.name, nodata=nodata, blocksize=bs, creation_options=comp,
                transform=level_transform, crs=crs,
            )
            self._halving.append(level)
            h, w, level_transform = h // 2, w // 2, level.transform
        self._closed = False

    def write(self, values: np.ndarray, window: Window) -> None:
        from rasterio.windows import Window as RWindow

        r0, r1, c0, c1 = window
        values = np.asarray(values, dtype=self.dtype)
        self._dst.write(values, window=RWindow(c0, r0, c1 - c0, r1 - r0))
        for k, level in enumerate(self._halving):
            if not HalvingWriter.fits(window):  # an odd window edge: this level and the next ones made on close
                for later in self._halving[k:]:
                    later.abort()
                del self._halving[k:]
                break
            values, window = level.write(values, window)

    def close(self) -> Path:
        if self._closed:
            return self.path
        self._closed = True
        self._dst.close()
        try:
            if self.cog:
                streamed = [level.close() for level in self._halving]
                # assembled under a temporary name of its own and moved into place (sr_core.io.cog.assemble_cog)
                make_cog(self._tmp, self.path, blocksize=self.blocksize, scratch_options=self._scratch,
                         first_levels=streamed)
                os.remove(self._tmp)
            else:
                move_into_place(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        if not self._closed:
            self._closed = True
            self._dst.close()
        for level in self._halving:
            level.abort()
        if self._tmp.exists():
            self._tmp.unlink()

    def __enter__(self) -> GeoTiffWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# ------------------------------------------------------------------------------------------------ engine


def model_tags(predictor: Any) -> dict[str, str]:
    """GeoTIFF tags naming the model that produced a file: ``S2SR_MODEL``, ``S2SR_MODEL_VERSION``,
    ``S2SR_MODEL_FILE`` + ``S2SR_MODEL_SHA256`` (the file the engine ran: ``model.onnx`` for ONNX Runtime,
    ``model.pt`` for torch), ``S2SR_MODEL_FILES_SHA256`` (JSON of every package file), ``S2SR_ENGINE``,
    ``S2SR_SCALE``, ``S2SR_VERSION`` (the s2sr package)."""
    from sr_core import __version__

    card = getattr(predictor, "card", None)
    engine = str(getattr(predictor, "engine", "") or "")
    files = dict(getattr(card, "files", {}) or {})
    sha = dict(getattr(card, "sha256", {}) or {})
    fname = files.get("onnx" if engine == "onnx" else "weights", "")
    return {
        "S2SR_MODEL": str(getattr(card, "name", "") or "model"),
        "S2SR_MODEL_VERSION": str(getattr(card, "version", "") or ""),
        "S2SR_MODEL_FILE": fname,
        "S2SR_MODEL_SHA256": sha.get(fname, ""),
        "S2SR_MODEL_FILES_SHA256": json.dumps(sha, sort_keys=True),
        "S2SR_ENGINE": engine,
        "S2SR_SCALE": str(int(predictor.scale)),
        "S2SR_VERSION": str(__version__),
    }


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


#: Nice increment of the threads that only read and write (Linux), so that they take the cores the engine leaves
#: idle rather than preempting its threads (docs/decisions/2026-11-22-io-thread-priority.md).
IO_THREAD_NICE = 10


def lower_thread_priority(increment: int = IO_THREAD_NICE) -> bool:
    """Linux: raise the calling thread's nice value by ``increment`` (at most 19); other threads keep theirs.

    For the reader and writer threads that share the cores with the engine: when an engine thread and an I/O thread
    compete for a core, the engine thread runs, and its partner threads do not wait at the next barrier of the
    operator for a thread that was preempted. Measured on this 2-core VM (``s2sr superres`` 1 x 2, 2048 px scene,
    docs/decisions/2026-11-22-io-thread-priority.md): whole run 23.7 s -> 21.9 s (ONNX Runtime spinning) and
    22.5 s -> 21.0 s (not spinning) in one experiment, within the drift in another.
    Returns whether it was applied (False on other systems or when not permitted)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + int(increment)))
    except (OSError, AttributeError):
        return False
    return True


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
    side is the bottleneck: on an H100 with 16 cores, a full tile took 84.9 s instead of 124.3 s, for +284 MB
    peak RSS (benchmarks/results/throughput_cuda_h100/README.md)."""
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
    model's; less gives seams and a :class:`~sr_core.inference.cube.TilingWarning`). ``dtype``: ``"float32"`` or
    ``"input"``. ``cog``: True, False or ``"auto"`` (see the module docstring). ``progress``: a tqdm bar
    (True) or a callback ``(done, total)``. ``tags``: extra dataset tags. ``compress``: :data:`COMPRESSIONS`.
    ``tiff_predictor``: the GeoTIFF predictor, :data:`PREDICTORS`. ``workers``: tiles computed at the same time,
    each on its own thread calling ``predictor`` (give it ``cores / workers`` engine threads; ONNX Runtime and
    torch release the GIL while they compute). With 1, at most
    two input windows and two output tiles are in memory at any time (reading, computing and writing overlap in
    threads); with more, at most ``2 * workers`` tiles are in flight (reads serialised, one writer thread). The
    output does not depend on ``workers``. ``write_threads``: threads compressing the output blocks
    (:func:`write_threads_for`; default: 1 when the engine computes on the CPU, every core when it runs on a GPU).
    """
    workers = check_int("workers", workers, 1)
    write_threads = write_threads_for(predictor, write_threads)
    s = int(predictor.scale)
    need = int(predictor.margin)
    m = need if margin is None else check_int("margin", margin, 0)
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
    tile = aligned_tile(tile, s, blocksize)
    out_dtype, out_nodata = _output_format(dtype, source)
    H, W = source.height, source.width
    out_path = Path(output)
    if cog == "auto":
        cog = out_path.suffix.lower() in (".tif", ".tiff") and max(s * H, s * W) > COG_MIN_SIZE
    plan = plan_tiles(H, W, tile=tile, margin=m, scale=s)
    ctx = 2 * m  # nearest-valid fill context beyond the read window (see the module docstring)
    all_tags = {
        "DN_SCALE": _fmt_number(source.dn_scale),
        "ADD_OFFSET": _fmt_number(source.add_offset),
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
        values = _cast(reflectance_to_dn(refl, dn_scale=source.dn_scale, add_offset=source.add_offset, inplace=True),
                       out_dtype, out_nodata, inplace=True)
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


def limit_heap_growth(mmap_threshold: int = 1 << 20) -> bool:
    """Linux/glibc: serve every allocation of ``mmap_threshold`` bytes or more (tiles, windows) with its own
    mapping, handed back to the OS when freed, and keep at most 2 malloc arenas. glibc otherwise raises the mmap
    threshold after each such free (up to 32 MB) and gives every thread its own arena, so tiles freed on the
    worker threads stay in fragmented heaps and the peak RSS grows with the scene (measured with 2 tile workers:
    720 MB at 2560 px, 1049 MB at 5120 px). Returns whether the settings were applied (False elsewhere)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_mmap_threshold, m_arena_max = -3, -8  # <malloc.h>
        return bool(libc.mallopt(m_mmap_threshold, int(mmap_threshold))) and bool(libc.mallopt(m_arena_max, 2))
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False


def superresolve_file(
    input: str | os.PathLike,
    output: str | os.PathLike,
    *,
    model: Any = None,
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
) -> list[Path]:
    """``s2sr superres``: super-resolve a scene folder / GeoTIFF / NetCDF cube into GeoTIFF(s).

    ``model``: shipped name, package folder (default :data:`sr_core.models.DEFAULT_MODEL`) or a loaded
    Predictor. ``workers`` x ``threads``: tiles computed at the same time x engine intra-op threads each (default
    one tile at a time with all cores). ``workers = cores, threads = 1`` is 10-20 % faster on this 2-core VM but
    holds more memory (+70 MB peak RSS at 2560-5120 px with 2 workers, more with more; docs/decisions/
    2026-11-22-parallel-workers.md), so it is not the default. ``overlap``: the
    tiling margin in input pixels (default the model's). Other arguments: :func:`superresolve_source` and
    :func:`open_source`. Returns the written paths (one per NetCDF date, see :func:`output_paths`).
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
    if model is None or isinstance(model, (str, os.PathLike)):
        from sr_core.inference.cube import check_predictor
        from sr_core.models import load_predictor

        predictor = load_predictor(
            model, engine=engine, device=device, threads=threads or os.cpu_count() or 1
        )
        check_predictor(predictor)
    else:
        predictor = model
    sources = open_source(input, dn_scale=dn_scale, add_offset=add_offset, variable=variable)
    try:
        dates = [getattr(src, "date", "") for src in sources]
        paths = output_paths(output, dates)
        if Path(input).resolve() in {p.resolve() for p in paths}:
            raise ValueError(f"OUTPUT {output} would overwrite INPUT {input}")
        done = []
        for src, path in zip(sources, paths):
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
        return done
    finally:
        closed: set[int] = set()
        for src in sources:
            cube = getattr(src, "_cube", None)
            if cube is not None:
                if id(cube) not in closed:
                    closed.add(id(cube))
                    cube.close()
            else:
                src.close()
