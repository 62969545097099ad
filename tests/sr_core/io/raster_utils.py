"""Small rasters for the tests of sr_core.io: GeoTIFFs with band names and tags, scene folders of the shared layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from sr_core.bands import BANDS_10M, BANDS_20M

EPSG = "EPSG:32633"
TAGS = {"DN_SCALE": "10000", "ADD_OFFSET": "0", "PRODUCT_LEVEL": "L2A", "SCENE_ID": "tmp"}
ORIGIN = (500000.0, 4600020.0)
T10 = Affine(10, 0, 500000, 0, -10, 4600020)


def read_dn(path: Path) -> np.ndarray:
    with rasterio.open(path) as s:
        return s.read()


def write_tif(path, arr, names, transform, *, tags=None, nodata=None, crs=EPSG, descriptions=True):
    profile = {
        "driver": "GTiff",
        "dtype": arr.dtype.name,
        "count": arr.shape[0],
        "height": arr.shape[1],
        "width": arr.shape[2],
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
        if tags:
            dst.update_tags(**tags)
        for i, n in enumerate(names, start=1):
            if n is None:
                continue
            if descriptions:
                dst.set_band_description(i, n)
            else:
                dst.update_tags(i, BANDNAME=n)
    return path


def rand_dn(rng, shape, lo=1, hi=12000, dtype=np.uint16):
    return rng.integers(lo, hi, size=shape).astype(dtype)


def make_scene_folder(
    folder: Path,
    *,
    h=12,
    w=12,
    seed=0,
    json_edit=None,
    tags20=None,
    origin20=None,
    names10=BANDS_10M,
    nodata=None,
    dn10=None,
):
    """A small scene folder in the shared layout; returns (folder, dn10, dn20)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    dn10 = rand_dn(rng, (4, h, w)) if dn10 is None else dn10
    dn20 = rand_dn(rng, (6, h // 2, w // 2))
    x0, y0 = ORIGIN
    write_tif(
        folder / "bands_10m.tif", dn10, names10, Affine(10, 0, x0, 0, -10, y0), tags=TAGS, nodata=nodata
    )
    ox, oy = origin20 if origin20 is not None else ORIGIN
    write_tif(
        folder / "bands_20m.tif",
        dn20,
        BANDS_20M,
        Affine(20, 0, ox, 0, -20, oy),
        tags=tags20 if tags20 is not None else TAGS,
        nodata=nodata,
    )
    meta = {
        "id": folder.name,
        "product_level": "L2A",
        "dn_scale": 10000,
        "add_offset": 0,
        "lossy": False,
        "crs": EPSG,
        "bounds": [x0, y0 - 10 * h, x0 + 10 * w, y0],
    }
    if json_edit:
        json_edit(meta)
    (folder / "scene.json").write_text(json.dumps(meta))
    return folder, dn10, dn20
