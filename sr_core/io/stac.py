"""STAC items of Sentinel-2 products (``s2sr superres item.json``, or the item's URL) read window by window through
odc-stac (:class:`StacItemSource`) or whole (:func:`read_stac_item`).

Conventions of the public catalogues, all understood:

- asset keys: the band name (``B02``: Microsoft Planetary Computer), the band name and its resolution
  (``B02_10m``: Copernicus Data Space), Element 84 Earth Search's names (``blue``, ``red``, ``rededge1``,
  ``nir08``, ``swir16``, ``scl``: :data:`EARTH_SEARCH_KEYS`), or any key whose single ``eo:bands`` entry is named
  after the band; several candidates: the one at the band's native resolution.
- DN convention: the assets' ``raster:bands`` ``scale``/``offset`` (STAC 1.1: ``raster:scale``/``raster:offset``)
  when they have them (``dn_scale = 1 / scale``, ``add_offset = offset / scale``); else the processing baseline of
  the item (``s2:processing_baseline``, ``processing:version``, ``sentinel:processing_baseline``) with the
  Sentinel-2 quantification value 10000 and the offset -1000 from baseline 04.00 on (0 before). Neither (nor
  ``dn_scale``/``add_offset`` arguments): ``ValueError``, never guessed.
- grid: the 10 m grid of the B02 asset (its ``proj:`` fields, or its file's header); the other bands nest in it
  (same CRS and bounds, 2 or 6 times the pixel) and are loaded onto it nearest-neighbour, window by window, so a
  20 m pixel covers exactly 2 x 2 pixels as in :class:`~sr_core.io.safe.SafeSource`.
- nodata: the assets' ``nodata`` (Sentinel-2: 0) and the saturated value 65535 read as NaN; the scene
  classification asset (``SCL``) is offered to :mod:`sr_core.io.area` for ``--mask-scl`` and ``--scl``.

odc-stac is imported when a source is made (the ``udf`` extra); remote hrefs are read by GDAL (``/vsicurl/``),
signed by the user where the catalogue needs it (Planetary Computer).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sr_core.bands import MODEL_BANDS_10, normalize_band_name, resolution
from sr_core.io.conventions import canonical_or_none, dn_convention, grid_dataarray, north_up, require_rasterio
from sr_core.io.safe import OFFSET_BASELINE, baseline_version
from sr_core.io.scene_folder import check_nests
from sr_core.io.source import RasterSource, Window, masked_dn
from sr_core.radiometry import dn_to_reflectance

if TYPE_CHECKING:  # pragma: no cover
    import xarray

__all__ = [
    "BASELINE_KEYS",
    "EARTH_SEARCH_KEYS",
    "S2_QUANTIFICATION",
    "StacItemSource",
    "find_asset",
    "is_stac_item",
    "load_item",
    "read_stac_item",
]

#: Element 84 Earth Search's asset key of each band (and of the scene classification).
EARTH_SEARCH_KEYS = {
    "B01": "coastal",
    "B02": "blue",
    "B03": "green",
    "B04": "red",
    "B05": "rededge1",
    "B06": "rededge2",
    "B07": "rededge3",
    "B08": "nir",
    "B8A": "nir08",
    "B09": "nir09",
    "B10": "cirrus",
    "B11": "swir16",
    "B12": "swir22",
    "SCL": "scl",
}
#: Item properties holding the processing baseline, in the order they are looked up.
BASELINE_KEYS = ("s2:processing_baseline", "processing:version", "sentinel:processing_baseline")
#: The QUANTIFICATION_VALUE of every Sentinel-2 Level-1C and Level-2A processing baseline (ESA's product
#: specification), for items that give only their baseline.
S2_QUANTIFICATION = 10000.0
#: The saturated DN of Sentinel-2 products.
_SATURATED = 65535.0


def is_stac_item(path: str | os.PathLike) -> bool:
    """Whether ``path`` is to be read as a STAC item: a ``.json`` file or an ``http(s)://`` URL."""
    s = str(path)
    return s.startswith(("http://", "https://")) or Path(s).suffix.lower() == ".json"


def load_item(item: Any) -> Any:
    """A ``pystac.Item`` from an Item, an item dict, a path or a URL of an item's JSON (a FeatureCollection of
    exactly one item is accepted); relative asset hrefs resolve against the file's location."""
    import pystac

    if isinstance(item, pystac.Item):
        return item
    href = None
    if isinstance(item, Mapping):
        d = dict(item)
        where = f"STAC item {d.get('id', '?')}"
    else:
        href = str(item)
        where = href
        if not href.startswith(("http://", "https://")):
            p = Path(href)
            if not p.is_file():
                raise FileNotFoundError(f"no such STAC item file: {p}")
            href = str(p.resolve())
        try:
            text = pystac.StacIO.default().read_text(href)
        except Exception as err:  # noqa: BLE001 - urllib / OS errors of a URL or a file
            raise ValueError(f"{where}: cannot read the STAC item: {err}") from None
        try:
            d = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: not valid JSON: {err}") from None
    if isinstance(d, dict) and d.get("type") == "FeatureCollection":
        feats = d.get("features") or []
        if len(feats) != 1:
            raise ValueError(f"{where}: a FeatureCollection of {len(feats)} items; give one item")
        d = feats[0]
    if not isinstance(d, dict) or d.get("type") != "Feature" or not isinstance(d.get("assets"), dict):
        raise ValueError(f"{where}: not a STAC item (a GeoJSON Feature with assets)")
    try:
        return pystac.Item.from_dict(d, href=href)
    except Exception as err:  # noqa: BLE001 - pystac's validation errors
        raise ValueError(f"{where}: not a valid STAC item: {err}") from None


def _asset_bands(asset: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    for key in ("eo:bands", "bands"):
        v = asset.get(key)
        if isinstance(v, list) and v:
            return [b for b in v if isinstance(b, Mapping)]
    return []


def _asset_resolution(asset: Mapping[str, Any]) -> float | None:
    t = asset.get("proj:transform")
    if isinstance(t, list) and len(t) >= 6:
        return abs(float(t[0]))
    rb = asset.get("raster:bands")
    if isinstance(rb, list) and rb and isinstance(rb[0], Mapping) and rb[0].get("spatial_resolution"):
        return float(rb[0]["spatial_resolution"])
    if asset.get("gsd"):
        return float(asset["gsd"])
    return None


def find_asset(assets: Mapping[str, Mapping[str, Any]], band: str) -> str | None:
    """The key of the asset holding ``band`` (a Sentinel-2 band or ``"SCL"``) among ``assets`` (key -> asset dict):
    the band's name as key, the name with its native resolution (``B02_10m``), Earth Search's key, or an asset with
    a single ``eo:bands`` entry named after the band; several: the one at the native resolution. None if none."""
    native = 20 if band == "SCL" else resolution(band)
    by_lower = {k.lower(): k for k in assets}
    for cand in (band, f"{band}_{native}m", EARTH_SEARCH_KEYS.get(band, "")):
        if cand and cand.lower() in by_lower:
            return by_lower[cand.lower()]
    hits = []
    for k, a in assets.items():
        bands = _asset_bands(a)
        if len(bands) == 1:
            name = bands[0].get("name")
            canon = "SCL" if str(name).upper() == "SCL" else canonical_or_none(name)
            if canon == band:
                hits.append(k)
    if not hits:
        return None
    at_native = [k for k in hits if _asset_resolution(assets[k]) == native]
    return sorted(at_native or hits)[0]


def _scale_offset(asset: Mapping[str, Any]) -> tuple[float, float] | None:
    """``(scale, offset)`` of an asset (reflectance = DN * scale + offset), None when it states no scale."""
    rb = asset.get("raster:bands")
    if isinstance(rb, list) and rb and isinstance(rb[0], Mapping) and rb[0].get("scale") is not None:
        return float(rb[0]["scale"]), float(rb[0].get("offset") or 0.0)
    if asset.get("raster:scale") is not None:
        return float(asset["raster:scale"]), float(asset.get("raster:offset") or 0.0)
    bands = _asset_bands(asset)
    if len(bands) == 1 and bands[0].get("raster:scale") is not None:
        return float(bands[0]["raster:scale"]), float(bands[0].get("raster:offset") or 0.0)
    return None


def _tidy(v: float) -> float:
    """``v`` rounded to an integer when it is one up to float error (1 / 0.0001 -> 10000)."""
    r = round(v)
    return float(r) if abs(v - r) <= 1e-9 * max(1.0, abs(v)) else v


def _asset_nodata(asset: Mapping[str, Any]) -> float | None:
    rb = asset.get("raster:bands")
    if isinstance(rb, list) and rb and isinstance(rb[0], Mapping) and rb[0].get("nodata") is not None:
        return float(rb[0]["nodata"])
    if asset.get("nodata") is not None:
        return float(asset["nodata"])
    return None


def _item_convention(
    item: Any, keys: Mapping[str, str], where: str
) -> tuple[float | None, dict[str, float] | None, str]:
    """``(dn_scale, offset per band, what)`` of the item's bands (``keys``: band -> asset key), from the assets'
    scale/offset or from the processing baseline; ``(None, None, why)`` when the item says neither."""
    found = {b: _scale_offset(item.assets[k].to_dict()) for b, k in keys.items()}
    have = [b for b, v in found.items() if v is not None]
    if have:
        lacking = [f"{b} ({keys[b]!r})" for b, v in found.items() if v is None]
        if lacking:
            raise ValueError(
                f"{where}: assets {', '.join(lacking)} have no raster:bands scale while "
                f"{', '.join(keys[b] for b in have)} do; refusing to mix conventions"
            )
        scales = {b: _tidy(1.0 / v[0]) for b, v in found.items() if v is not None and v[0] > 0}
        if len(scales) != len(found):
            raise ValueError(f"{where}: a raster:bands scale is not positive: {found}")
        if len(set(scales.values())) != 1:
            raise ValueError(f"{where}: the bands have different raster:bands scales ({scales}); not supported")
        scale = next(iter(scales.values()))
        offsets = {b: _tidy(v[1] * scale) for b, v in found.items() if v is not None}
        return scale, offsets, "raster:bands scale/offset"
    props = item.properties
    key = next((k for k in BASELINE_KEYS if props.get(k) is not None), None)
    if key is None:
        return None, None, f"no raster:bands scale/offset on its band assets and no {' / '.join(BASELINE_KEYS)}"
    version = baseline_version(props[key])
    if version is None:
        raise ValueError(
            f"{where}: unknown processing baseline {key} = {props[key]!r}; cannot tell whether the DN carry the "
            "radiometric offset of baseline 04.00 and later"
        )
    offset = -1000.0 if version >= OFFSET_BASELINE else 0.0
    return S2_QUANTIFICATION, {b: offset for b in keys}, f"{key} {props[key]}"


def _product_level(props: Mapping[str, Any], collection: str | None) -> str | None:
    kind, coll = str(props.get("s2:product_type", "")).upper(), (collection or "").lower()
    if kind.endswith("2A") or "l2a" in coll:
        return "L2A"
    if kind.endswith("1C") or "l1c" in coll:
        return "L1C"
    return None


class StacItemSource(RasterSource):
    """A Sentinel-2 STAC item (a path or URL of its JSON, a dict or a ``pystac.Item``) read window by window through
    ``odc.stac.load`` onto the item's 10 m grid (see the module docstring for the conventions).

    ``bands``: the bands offered (default ``MODEL_BANDS_10``). ``dn_scale``/``add_offset``: where the item gives
    none (else they must agree). Every needed asset is found here (a missing one is a ``ValueError`` naming the
    band, the keys tried and the keys present); the pixels are read per window, only those of the window. Tags:
    ``SCENE_ID`` (the item id), ``PRODUCT_LEVEL`` and ``PROCESSING_BASELINE`` where the item says."""

    def __init__(
        self,
        item: Any,
        *,
        bands: Sequence[str] | None = None,
        dn_scale: float | None = None,
        add_offset: float | None = None,
    ) -> None:
        require_rasterio("reading STAC items")
        try:
            import odc.stac  # noqa: F401
        except ImportError as err:  # pragma: no cover - depends on the install
            raise ImportError("reading STAC items needs odc-stac: pip install 's2sr[udf]'") from err
        it = load_item(item)
        where = f"STAC item {it.id}" + (f" ({it.get_self_href()})" if it.get_self_href() else "")
        names = [normalize_band_name(b) for b in (MODEL_BANDS_10 if bands is None else bands)]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"bands must name distinct bands, got {list(bands or [])}")
        assets = {k: a.to_dict() for k, a in it.assets.items()}
        keys: dict[str, str] = {}
        missing = []
        for b in dict.fromkeys(["B02", *names]):
            k = find_asset(assets, b)
            if k is None:
                native = resolution(b)
                tried = ", ".join(dict.fromkeys([b, f"{b}_{native}m", EARTH_SEARCH_KEYS[b]]))
                missing.append(f"{b} (keys {tried} or eo:bands name {b})")
            else:
                keys[b] = k
        if missing:
            raise ValueError(
                f"{where}: no asset for band(s) {'; '.join(missing)}; its assets: {', '.join(sorted(assets)) or 'none'}"
            )
        scl_key = find_asset(assets, "SCL")

        scale, offsets, how = _item_convention(it, {b: keys[b] for b in names}, where)
        ref_offset = offsets[names[0]] if offsets else None
        dn_scale, dn_offset = dn_convention(
            scale, ref_offset, dn_scale, add_offset, f"{where} ({how})", "scale", "offset"
        )

        grids = self._grids(it)
        geobox = self._grid(it, keys["B02"], where, grids)
        t10 = north_up(tuple(geobox.affine)[:6], f"{where}: asset {keys['B02']!r}")
        crs10 = geobox.crs.to_wkt() if geobox.crs.epsg is None else f"EPSG:{geobox.crs.epsg}"
        if abs(t10[0] - 10) > 1e-6 or abs(t10[4] + 10) > 1e-6:
            raise ValueError(
                f"{where}: band B02 (asset {keys['B02']!r}) has {t10[0]:g} m pixels; the 10 m grid is needed"
            )
        for b in [*names, *(["SCL"] if scl_key else [])]:
            k = scl_key if b == "SCL" else keys[b]
            gb = self._grid(it, k, where, grids)
            # an asset at another resolution than its band's native one is fine if it nests in the 10 m grid
            ratio = max(1, round(abs(gb.affine.a) / t10[0]))
            gcrs = gb.crs.to_wkt() if gb.crs.epsg is None else f"EPSG:{gb.crs.epsg}"
            check_nests(
                f"{where}: asset {k!r} (band {b})", ratio, north_up(tuple(gb.affine)[:6], k), gb.shape.yx, gcrs,
                f"asset {keys['B02']!r}", t10, geobox.shape.yx, crs10,
            )
        props = it.properties
        tags = {"SCENE_ID": str(it.id)}
        level = _product_level(props, it.collection_id)
        if level:
            tags["PRODUCT_LEVEL"] = level
        base = next((props[k] for k in BASELINE_KEYS if props.get(k) is not None), None)
        if base is not None:
            tags["PROCESSING_BASELINE"] = str(base)
        super().__init__(
            name=it.get_self_href() or str(it.id),
            height=geobox.shape.y,
            width=geobox.shape.x,
            transform=t10,
            crs=crs10,
            labels=names,
            dn_scale=dn_scale,
            add_offset=dn_offset,
            dtype="uint16",
            nodata=0.0,
            tags=tags,
        )
        self.item = it
        self.keys = keys
        self.scl_key = scl_key
        self.scl_missing = None if scl_key else "the item has no scene classification asset (scl / SCL / SCL_20m)"
        self._geobox = geobox
        self._where = where
        self._shift = {b: (offsets[b] - dn_offset) if offsets else 0.0 for b in names}
        self._invalid = {
            b: np.asarray(sorted({_asset_nodata(assets[keys[b]]) or 0.0, _SATURATED}), dtype=np.float32)
            for b in names
        }

    @staticmethod
    def _grids(item: Any) -> dict[str, Any]:
        """Asset key -> its grid (an odc-geo ``GeoBox``) where the item's ``proj:`` fields give it."""
        import odc.stac

        try:
            parsed = odc.stac.parse_item(item)
        except Exception:  # noqa: BLE001 - items odc-stac cannot describe: the grids come from the files
            return {}
        return {k: src.geobox for (k, i), src in parsed.bands.items() if i == 1 and src.geobox is not None}

    @staticmethod
    def _grid(item: Any, key: str, where: str, grids: Mapping[str, Any]) -> Any:
        """The grid of asset ``key``: from the item's ``proj:`` fields (``grids``), else from its file's header."""
        from odc.geo.geobox import GeoBox

        if grids.get(key) is not None:
            return grids[key]
        rasterio = require_rasterio("reading STAC items")
        href = item.assets[key].get_absolute_href() or item.assets[key].href
        try:
            with rasterio.open(href) as src:
                if src.crs is None:
                    raise ValueError(f"{where}: asset {key!r} ({href}) has no CRS")
                return GeoBox((src.height, src.width), src.transform, src.crs.to_wkt())
        except ValueError:
            raise
        except Exception as err:  # noqa: BLE001 - RasterioIOError: missing or corrupt file
            raise ValueError(f"{where}: cannot open asset {key!r} ({href}): {err}") from None

    @property
    def has_scl(self) -> bool:
        return self.scl_key is not None

    def _load(self, keys: list[str], window: Window) -> dict[str, np.ndarray]:
        import odc.stac

        r0, r1, c0, c1 = window
        sub = self._geobox[r0:r1, c0:c1]
        try:
            ds = odc.stac.load(
                [self.item], bands=keys, geobox=sub, resampling="nearest", groupby="id", fail_on_error=True
            )
        except Exception as err:  # noqa: BLE001 - rasterio / odc errors of a missing or corrupt asset file
            hrefs = ", ".join(f"{k!r} ({self.item.assets[k].get_absolute_href()})" for k in keys)
            raise ValueError(f"{self._where}: cannot read asset(s) {hrefs}: {err}") from None
        out = {}
        for k in keys:
            v = ds[k].values
            out[k] = v[0] if v.ndim == 3 and v.shape[0] else np.zeros((r1 - r0, c1 - c0), dtype=ds[k].dtype)
        return out

    def _read(self, idx: list[int], window: Window) -> np.ndarray:
        bands = [str(self.labels[i]) for i in idx]
        loaded = self._load(list(dict.fromkeys(self.keys[b] for b in bands)), window)
        r0, r1, c0, c1 = window
        out = np.empty((len(idx), r1 - r0, c1 - c0), dtype=np.float32)
        for j, b in enumerate(bands):
            out[j] = masked_dn(loaded[self.keys[b]], self._invalid[b], self._shift[b])
        return out

    def read_scl(self, window: Window) -> np.ndarray:
        """The scene classification in ``window`` of the 10 m grid, ``uint8``, nearest-neighbour."""
        if self.scl_key is None:
            raise ValueError(f"{self._where}: no scene classification: {self.scl_missing}")
        r0, r1, c0, c1 = self.checked_window(window)
        return np.asarray(self._load([self.scl_key], (r0, r1, c0, c1))[self.scl_key], dtype=np.uint8)


def read_stac_item(
    item: Any,
    *,
    bands: Sequence[str] | None = None,
    dn_scale: float | None = None,
    add_offset: float | None = None,
) -> xarray.DataArray:
    """A Sentinel-2 STAC item (see :class:`StacItemSource`) whole as float32 REFLECTANCE ``(bands, y, x)`` on its
    10 m grid, nodata NaN, with coordinates, CRS, transform and the attributes of
    :func:`sr_core.io.conventions.grid_dataarray`."""
    with StacItemSource(item, bands=bands, dn_scale=dn_scale, add_offset=add_offset) as src:
        dn = src.read(src.bands, (0, src.height, 0, src.width))
        refl = dn_to_reflectance(dn, dn_scale=src.dn_scale, add_offset=src.add_offset)
        return grid_dataarray(
            refl, src.bands, src.transform, src.crs, dn_scale=src.dn_scale, add_offset=src.add_offset,
            quantity="reflectance", source=src.name,
        )

