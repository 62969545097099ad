"""Multi-band GeoTIFFs (any GDAL raster): read whole (:func:`read_geotiff`) or window by window
(:class:`GeoTiffSource`), with one parser of band names and DN convention for both.

Band names come from the band descriptions or the per-band ``BANDNAME`` tags (:func:`tif_band_labels`), the DN
convention from the dataset tags ``DN_SCALE``/``ADD_OFFSET`` or explicit arguments
(:func:`sr_core.io.conventions.dn_convention`). GDAL nodata / masked pixels become NaN.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sr_core.io.conventions import (
    Transform,
    band_labels,
    band_names,
    canonical_or_none,
    dn_convention,
    grid_dataarray,
    north_up,
    open_raster,
    require_rasterio,
    unreadable,
)
from sr_core.io.source import RasterSource, Window
from sr_core.radiometry import dn_to_reflectance

if TYPE_CHECKING:  # pragma: no cover
    import xarray

__all__ = [
    "GeoTiffSource",
    "TifContent",
    "needs_masks",
    "read_geotiff",
    "read_tif",
    "read_tif_window",
    "tif_band_labels",
    "tif_dn_convention",
]


def tif_band_labels(src: Any, where: str, bands: Sequence[str] | None = None) -> list[Any]:
    """The label of each band of the open rasterio dataset ``src``: ``bands`` when given (one per band), else
    the band description or, without one, the ``BANDNAME`` tag (both given: they must name the same band)."""
    if bands is not None:
        if len(bands) != src.count:
            raise ValueError(f"{where}: bands names {len(bands)} bands, the file has {src.count}")
        return list(bands)
    given = []
    for i, desc in enumerate(src.descriptions):
        tag = src.tags(i + 1).get("BANDNAME")
        if desc and tag and canonical_or_none(desc) != canonical_or_none(tag):
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
    return given


def tif_dn_convention(
    tags: dict[str, str], where: str, dn_scale: float | None, add_offset: float | None
) -> tuple[float, float]:
    """``(dn_scale, add_offset)`` of a GeoTIFF from its dataset tags and the explicit arguments."""
    return dn_convention(
        tags.get("DN_SCALE"), tags.get("ADD_OFFSET"), dn_scale, add_offset, where, "DN_SCALE", "ADD_OFFSET"
    )


# ------------------------------------------------------------------------------------------------ whole


@dataclass
class TifContent:
    """A GeoTIFF read whole: DN float64 ``(bands, H, W)`` (NaN where nodata), canonical band names, stored
    dtype, north-up transform, CRS, dataset tags and the GDAL nodata value (None: none set)."""

    path: Path
    dn: np.ndarray
    names: tuple[str, ...]
    dtype: str
    transform: Transform
    crs: str | None
    tags: dict[str, str]
    nodata: float | None = None


def read_tif(path: Path, bands: Sequence[str] | None = None) -> TifContent:
    """Read the whole GeoTIFF ``path``; every band must be a Sentinel-2 band (:func:`band_names`)."""
    rasterio = require_rasterio()
    where = str(path)
    with open_raster(path) as src:
        labels = tif_band_labels(src, where, bands)
        try:
            raw = src.read()
            masks = src.read_masks()  # 0 = nodata (GDAL nodata value, internal mask, alpha)
        except rasterio.errors.RasterioError as err:
            raise unreadable(path, "GeoTIFF", err) from err
        tags = dict(src.tags())
        transform = north_up(src.transform, where)
        crs = src.crs.to_string() if src.crs is not None else None
        dtype = src.dtypes[0]
        nodata = src.nodata
    names = band_names(labels, where if bands is None else f"{where} (argument bands)")
    dn = raw.astype(np.float64)
    dn[masks == 0] = np.nan
    return TifContent(path, dn, names, str(dtype), transform, crs, tags, nodata)


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
    path = Path(path)
    tif = read_tif(path, bands)
    scale, offset = tif_dn_convention(tif.tags, str(path), dn_scale, add_offset)
    refl = dn_to_reflectance(tif.dn, dn_scale=scale, add_offset=offset)
    return grid_dataarray(
        refl, tif.names, tif.transform, tif.crs, dn_scale=scale, add_offset=offset, quantity="reflectance",
        source=str(path),
    )


# ------------------------------------------------------------------------------------------------ windowed


def needs_masks(src: Any) -> bool:
    """Whether the open rasterio dataset ``src`` can have invalid pixels (a nodata value or a mask)."""
    from rasterio.enums import MaskFlags

    return src.nodata is not None or any(flags != [MaskFlags.all_valid] for flags in src.mask_flag_enums)


def read_tif_window(src: Any, idx: Sequence[int], window: Window, check_masks: bool) -> np.ndarray:
    """Bands ``idx`` (0-based) of ``window`` ``(row0, row1, col0, col1)`` as float32, NaN where masked (when
    ``check_masks``)."""
    import rasterio
    from rasterio.windows import Window as RWindow

    r0, r1, c0, c1 = window
    win = RWindow(c0, r0, c1 - c0, r1 - r0)
    indexes = [i + 1 for i in idx]
    try:
        x = src.read(indexes, window=win).astype(np.float32)
        if check_masks:
            m = src.read_masks(indexes, window=win)
            x[m == 0] = np.nan
    except rasterio.errors.RasterioError as err:
        raise unreadable(src.name, "GeoTIFF", err) from err
    return x


class GeoTiffSource(RasterSource):
    """A multi-band GeoTIFF (any GDAL raster) read window by window.

    Band names: descriptions or ``BANDNAME`` tags (or ``bands``); labels that are not Sentinel-2 bands are
    ignored. Scale: tags ``DN_SCALE``/``ADD_OFFSET`` or the explicit arguments (both given: they must agree;
    neither: ``ValueError``). The dataset tags ``PRODUCT_LEVEL`` and ``SCENE_ID`` are kept in ``tags``."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        dn_scale: float | None = None,
        add_offset: float | None = None,
        bands: Sequence[str] | None = None,
    ) -> None:
        require_rasterio("s2sr superres")
        path = Path(path)
        self._src = src = open_raster(path)
        try:
            where = str(path)
            labels = band_labels(tif_band_labels(src, where, bands), where)
            tags = dict(src.tags())
            scale, offset = tif_dn_convention(tags, where, dn_scale, add_offset)
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
            self._masks = needs_masks(src)
        except BaseException:
            src.close()
            raise

    def _read(self, idx: list[int], window: Window) -> np.ndarray:
        return read_tif_window(self._src, idx, window, self._masks)

    def close(self) -> None:
        self._src.close()
