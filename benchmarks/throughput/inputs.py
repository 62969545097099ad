"""The benchmark's inputs: real-texture reflectance tiles, synthetic DN scenes (array, NetCDF cube, scene folder)
made from the bundled sample, the bare forward pass's tiles, and the UDF file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import udf
from sr_core.bands import BANDS, BANDS_10M, BANDS_20M, normalize_band_name
from sr_core.checks import check_int
from sr_core.io.sample import load_sample
from sr_core.tiling import extract_tile, plan_tiles

__all__ = [
    "bare_tile_inputs",
    "dn_dataarray",
    "dn_scene",
    "sample_reflectance",
    "sr_udf_path",
    "write_netcdf",
    "write_scene_folder",
]


_SAMPLE_CACHE: dict[str, Any] = {}


def _sample_stack() -> tuple[list[str], np.ndarray]:
    """Bundled real sample as float32 reflectance ``(10, 256, 256)`` on the 10 m grid (20 m bands nearest
    x2), band names in canonical order."""
    if "stack" not in _SAMPLE_CACHE:
        s = load_sample()
        b20 = np.repeat(np.repeat(s.bands20, 2, axis=-2), 2, axis=-1)
        _SAMPLE_CACHE["stack"] = (list(BANDS_10M) + list(BANDS_20M), np.concatenate([s.bands10, b20]).astype(np.float32))
    return _SAMPLE_CACHE["stack"]


def sample_reflectance(bands: Sequence[str], size: int, *, fill: Sequence[float] | None = None) -> np.ndarray:
    """Real-texture reflectance ``(len(bands), size, size)``: the bundled sample mirror-tiled to ``size``.

    Bands the sample lacks (B01, B09) are ``fill`` (per band) or 0.1. Speed does not depend on the values,
    but real values avoid denormal or constant-input artefacts."""
    size = check_int("size", size, 1)
    names, stack = _sample_stack()
    out = np.empty((len(bands), size, size), dtype=np.float32)
    for k, b in enumerate(bands):
        c = normalize_band_name(b)
        if c in names:
            a = stack[names.index(c)]
            out[k] = np.pad(a, ((0, max(0, size - a.shape[0])), (0, max(0, size - a.shape[1]))), mode="symmetric")[:size, :size]
        else:
            out[k] = fill[k] if fill is not None else 0.1
    return out


def dn_scene(bands: Sequence[str], size: int) -> np.ndarray:
    """uint16 DN ``(len(bands), size, size)`` on the 10 m grid: 20 m bands constant on aligned 2x2 blocks
    (nearest-replicated from their native grid, as openEO delivers them)."""
    if size % 2:
        raise ValueError(f"scene size must be even (20 m bands nest in 2x2 blocks), got {size}")
    refl = sample_reflectance(bands, size)
    for k, b in enumerate(bands):
        if BANDS[normalize_band_name(b)].resolution == 20:
            refl[k] = np.repeat(np.repeat(refl[k, ::2, ::2], 2, axis=0), 2, axis=1)
    return np.clip(np.round(refl * 10000.0), 0, 65535).astype(np.uint16)


def bare_tile_inputs(
    bands: Sequence[str], scene: int, *, tile: int, margin: int, scale: int
) -> tuple[list[Any], list[np.ndarray]]:
    """The bare forward pass's model inputs on the synthetic benchmark scene (:func:`dn_scene`, ``scene`` px):
    the tiles of :func:`sr_core.tiling.plan_tiles` (``tile`` core, ``margin``) as reflectance, cut as ``s2sr
    superres`` cuts them. Returns ``(tiles, inputs)``."""
    lr_refl = dn_scene(list(bands), scene).astype(np.float32) / np.float32(10000.0)
    tiles = plan_tiles(scene, scene, tile=tile, margin=margin, scale=scale)
    return tiles, [np.ascontiguousarray(extract_tile(lr_refl[None], t)) for t in tiles]


def dn_dataarray(bands: Sequence[str], size: int, factor: int = 1, res: float = 10.0) -> Any:
    """The DN scene as an ``xarray.DataArray`` ``(bands, y, x)`` (cell centres, EPSG:32633-like origin),
    nearest-resampled by ``factor`` (``resampled`` mode input)."""
    import xarray as xr

    dn = dn_scene(bands, size)
    if factor > 1:
        dn = np.repeat(np.repeat(dn, factor, axis=-2), factor, axis=-1)
    r = res / factor
    n = dn.shape[-1]
    x0, y0 = 300000.0, 6200000.0
    coords = {"bands": list(bands), "y": y0 - r * (np.arange(n) + 0.5), "x": x0 + r * (np.arange(n) + 0.5)}
    return xr.DataArray(dn, dims=("bands", "y", "x"), coords=coords, name="dn", attrs={"crs": "EPSG:32633"})


def write_netcdf(da: Any, path: Path) -> Path:
    """``da`` as the variable ``dn`` of a NetCDF file (h5netcdf, 256 px chunks), as a back-end's input cube."""
    chunks = (1, min(256, da.shape[-2]), min(256, da.shape[-1]))
    da.to_dataset(name="dn").to_netcdf(path, engine="h5netcdf", encoding={"dn": {"chunksizes": chunks}})
    return path


def write_scene_folder(size: int, folder: Path) -> Path:
    """A scene folder of the shared layout (``bands_10m.tif``, ``bands_20m.tif``, ``scene.json``) of
    ``size`` x ``size`` 10 m px made from the mirror-tiled bundled sample (DN uint16, dn_scale 10000)."""
    import rasterio
    from rasterio.transform import Affine

    folder.mkdir(parents=True, exist_ok=True)
    all_bands = list(BANDS_10M) + list(BANDS_20M)
    dn = dn_scene(all_bands, size)
    x0, y0 = 300000.0, 6200000.0
    files = {}
    for res, names, arr in ((10, BANDS_10M, dn[:4]), (20, BANDS_20M, dn[4:, ::2, ::2])):
        fname = f"bands_{res}m.tif"
        h, w = arr.shape[-2:]
        prof = {"driver": "GTiff", "width": w, "height": h, "count": len(names), "dtype": "uint16",
                "crs": "EPSG:32633", "transform": Affine(float(res), 0, x0, 0, -float(res), y0), "tiled": True,
                "blockxsize": 256, "blockysize": 256, "compress": "deflate", "predictor": 2, "BIGTIFF": "IF_SAFER"}
        with rasterio.open(folder / fname, "w", **prof) as dst:
            dst.write(arr)
            dst.update_tags(DN_SCALE="10000", ADD_OFFSET="0", PRODUCT_LEVEL="L1C")
            for i, b in enumerate(names, start=1):
                dst.set_band_description(i, b)
                dst.update_tags(i, BANDNAME=b)
        files[fname] = {"bands": list(names), "pixel_size_m": res, "width": w, "height": h, "dtype": "uint16"}
    meta = {
        "id": f"s2sr-bench-{size}", "product_level": "L1C", "dn_scale": 10000, "add_offset": 0, "lossy": False,
        "crs": "EPSG:32633", "bounds": [x0, y0 - 10.0 * size, x0 + 10.0 * size, y0], "nodata": None,
        "files": files, "georef": "synthetic",
        "notes": "benchmark input: the bundled sample mirror-tiled (Contains modified Copernicus Sentinel data 2017)",
    }
    (folder / "scene.json").write_text(json.dumps(meta, indent=2))
    del dn
    return folder


def sr_udf_path() -> Path:
    """``udf/sr_udf.py``, the UDF a back-end runs."""
    return Path(udf.__file__).resolve().parent / "sr_udf.py"
