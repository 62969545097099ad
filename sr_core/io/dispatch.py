"""Which reader reads a path: :func:`read_cube` (the whole raster as a DataArray) and :func:`open_source`
(:class:`~sr_core.io.source.RasterSource` objects read window by window), for the same inputs: a scene
folder, a GeoTIFF, a NetCDF cube, a Sentinel-2 SAFE product (folder or zip) and a STAC item (file or URL)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sr_core.io.geotiff import GeoTiffSource, read_geotiff
from sr_core.io.netcdf import NetCDFCube, read_netcdf
from sr_core.io.safe import SafeSource, is_safe_product, read_safe
from sr_core.io.scene_folder import SCENE_FILES, SceneFolderSource, read_scene
from sr_core.io.source import RasterSource
from sr_core.io.stac import StacItemSource, is_stac_item, read_stac_item

if TYPE_CHECKING:  # pragma: no cover
    import xarray

__all__ = ["open_source", "read_cube"]


def read_cube(path: str | Path, **kwargs: Any) -> xarray.DataArray:
    """Read reflectance from a scene folder, a GeoTIFF or a NetCDF file.

    - folder with ``bands_10m.tif``: :func:`~sr_core.io.scene_folder.read_scene` then
      ``to_dataarray(reflectance=True)`` -> ``(bands, y, x)`` with all 10 bands on the 10 m grid (no keyword
      arguments accepted);
    - folder with ``series.nc`` only (a series) and ``*.nc`` files: :func:`~sr_core.io.netcdf.read_netcdf`
      -> ``(t, bands, y, x)``;
    - ``*.tif``/``*.tiff``: :func:`~sr_core.io.geotiff.read_geotiff` -> ``(bands, y, x)``;
    - a SAFE product (``*.SAFE`` folder, ``.zip``): :func:`~sr_core.io.safe.read_safe`; a STAC item (``.json``,
      URL): :func:`~sr_core.io.stac.read_stac_item` -> ``(bands, y, x)`` on the 10 m grid.

    ``kwargs`` go to the chosen reader.
    """
    if is_stac_item(path):
        return read_stac_item(path, **kwargs)
    if is_safe_product(path):
        return read_safe(path, **kwargs)
    path = Path(path)
    if path.is_dir():
        if (path / SCENE_FILES[10]).is_file():
            if kwargs:
                raise ValueError(
                    f"read_cube of a scene folder takes no keyword arguments, got {sorted(kwargs)}"
                )
            return read_scene(path).to_dataarray(reflectance=True)
        if (path / "series.nc").is_file():
            return read_netcdf(path / "series.nc", **kwargs)
        raise ValueError(
            f"{path}: neither a scene folder ({SCENE_FILES[10]}) nor a series folder (series.nc)"
        )
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        return read_geotiff(path, **kwargs)
    if suffix in (".nc", ".nc4"):
        return read_netcdf(path, **kwargs)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    raise ValueError(f"{path}: unsupported file type {suffix!r}; expected a folder, .tif/.tiff or .nc")


def open_source(
    path: str | os.PathLike,
    *,
    dn_scale: float | None = None,
    add_offset: float | None = None,
    variable: str | None = None,
) -> list[RasterSource]:
    """The rasters of ``path``: ``[SceneFolderSource]`` for a scene folder, ``[GeoTiffSource]`` for a
    ``.tif``/``.tiff``, one :class:`~sr_core.io.netcdf.NetCDFSource` per date for a ``.nc`` (``variable`` picks
    the data variable), ``[SafeSource]`` for a Sentinel-2 SAFE product (a ``.SAFE`` folder or a ``.zip`` holding
    one), ``[StacItemSource]`` for a STAC item (``.json`` or an ``http(s)://`` URL). ``dn_scale``/``add_offset``
    supply the DN convention when the file lacks it (scene folders take it from ``scene.json`` only; SAFE
    products and STAC items that state it: must agree). Close them (``close()`` or ``with``) when done."""
    if is_stac_item(path) or is_safe_product(path):
        if variable is not None:
            raise ValueError("variable is only for NetCDF input")
        if is_stac_item(path):
            return [StacItemSource(path, dn_scale=dn_scale, add_offset=add_offset)]
        return [SafeSource(path, dn_scale=dn_scale, add_offset=add_offset)]
    p = Path(path)
    if p.is_dir():
        if dn_scale is not None or add_offset is not None or variable is not None:
            raise ValueError(
                f"{p}: a scene folder takes its DN convention from scene.json; no dn_scale/add_offset/variable"
            )
        if not (p / SCENE_FILES[10]).is_file():
            raise ValueError(
                f"{p}: not a scene folder (no {SCENE_FILES[10]}) nor a SAFE product (no MTD_MSIL1C.xml / "
                "MTD_MSIL2A.xml); INPUT is a scene folder, a .SAFE folder or .zip, a .tif, .nc or STAC item .json"
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
        return NetCDFCube(p, variable=variable, dn_scale=dn_scale, add_offset=add_offset).sources()
    raise ValueError(
        f"{p}: unsupported input {suffix!r}; expected a scene folder, a .tif/.tiff or .nc file, a Sentinel-2 "
        ".SAFE folder or .zip, or a STAC item .json"
    )
