"""sr_core.io.sample: the bundled real sample scene (values, band names, bounds, held-out region)."""

from __future__ import annotations

import json

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
xr = pytest.importorskip("xarray")
pytest.importorskip("rioxarray")

from sr_core.bands import BANDS_10M, BANDS_20M  # noqa: E402
from sr_core.io import SAMPLE_HOLDOUT, SAMPLE_ID, load_sample, make_sample, read_scene, sample_scene_path  # noqa: E402
from tests.sr_core.io.raster_utils import EPSG, read_dn  # noqa: E402

SRC_ID = SAMPLE_HOLDOUT[0]


def test_sample_scene_reflectance_is_dn_over_10000_exactly():
    d = sample_scene_path()
    scene = load_sample()
    dn10, dn20 = read_dn(d / "bands_10m.tif"), read_dn(d / "bands_20m.tif")
    assert dn10.dtype == np.uint16 and dn10.shape == (4, 256, 256) and dn20.shape == (6, 128, 128)
    assert scene.bands10.dtype == np.float32 and scene.bands10.shape == (4, 256, 256)
    assert scene.bands20.dtype == np.float32 and scene.bands20.shape == (6, 128, 128)
    assert scene.bands60 is None
    # float32 division is correctly rounded, as is the float64 path the reader uses
    np.testing.assert_array_equal(scene.bands10, dn10.astype(np.float32) / np.float32(10000))
    np.testing.assert_array_equal(scene.bands20, (dn20.astype(np.float64) / 10000).astype(np.float32))
    assert (scene.id, scene.product_level, scene.dn_scale, scene.add_offset, scene.lossy) == (
        SAMPLE_ID,
        "L1C",
        10000.0,
        0.0,
        False,
    )
    assert scene.crs == EPSG and scene.dn_dtype == "uint16"


def test_sample_band_names_bounds_and_holdout():
    d = sample_scene_path()
    meta = json.loads((d / "scene.json").read_text())
    with rasterio.open(d / "bands_10m.tif") as s10, rasterio.open(d / "bands_20m.tif") as s20:
        assert s10.descriptions == BANDS_10M and s20.descriptions == BANDS_20M
        assert [s20.tags(i)["BANDNAME"] for i in range(1, 7)] == list(BANDS_20M)
        assert s10.tags()["DN_SCALE"] == "10000" and s20.tags()["ADD_OFFSET"] == "0"
        assert tuple(s10.bounds) == tuple(s20.bounds) == tuple(meta["bounds"])
        assert s20.transform.a == 2 * s10.transform.a and (s20.transform.c, s20.transform.f) == (
            s10.transform.c,
            s10.transform.f,
        )
        assert s10.block_shapes[0] == (128, 128) and s10.compression.value == "DEFLATE"
    scene = load_sample()
    assert scene.bounds == tuple(meta["bounds"])
    assert scene.transform == tuple(s10.transform)[:6]
    r0, r1, c0, c1 = SAMPLE_HOLDOUT[1]
    assert meta["crop_of"] == {**meta["crop_of"], "id": SAMPLE_HOLDOUT[0], "window": [r0, r1, c0, c1]}
    assert (r1 - r0, c1 - c0) == scene.shape
    for key in (
        "license",
        "attribution",
        "credit",
        "dn_scale",
        "add_offset",
        "georef",
        "lossy",
        "notes",
        "files",
    ):
        assert key in meta, key
    assert "Contains modified Copernicus Sentinel data 2017" in meta["attribution"]
    assert "Lanaras" in meta["credit"] and "CC-BY-4.0" in meta["license"]
    assert "Contains modified Copernicus Sentinel data 2017" in (d / "ATTRIBUTION.md").read_text()


@pytest.mark.shared
def test_sample_equals_source_crop(shared_s2):
    src = shared_s2 / SRC_ID
    r0, r1, c0, c1 = SAMPLE_HOLDOUT[1]
    d = sample_scene_path()
    np.testing.assert_array_equal(
        read_dn(d / "bands_10m.tif"), read_dn(src / "bands_10m.tif")[:, r0:r1, c0:c1]
    )
    np.testing.assert_array_equal(
        read_dn(d / "bands_20m.tif"),
        read_dn(src / "bands_20m.tif")[:, r0 // 2 : r1 // 2, c0 // 2 : c1 // 2],
    )
    make_sample.verify(d, shared_s2)  # the script's own bit-for-bit check
    # the same crop through Scene.crop: identical pixels and georeferencing
    sample, crop = load_sample(), read_scene(src).crop(r0, c0, r1 - r0, c1 - c0)
    np.testing.assert_array_equal(sample.bands10, crop.bands10)
    np.testing.assert_array_equal(sample.bands20, crop.bands20)
    assert sample.transform == crop.transform and sample.bounds == crop.bounds
    assert crop.meta["crop_of"] == {"id": SRC_ID, "window": [r0, r1, c0, c1]}
    src_t = read_scene(src).transform
    assert sample.transform[2] == src_t[2] + c0 * src_t[0] and sample.transform[5] == src_t[5] + r0 * src_t[4]
