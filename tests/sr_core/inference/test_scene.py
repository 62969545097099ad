"""sr_core.inference.scene (``s2sr superres``): streaming scene super-resolution to GeoTIFF/COG.

Checked on the bundled real sample with a tiny random package: georeferencing (bounds identical), band
descriptions, tags, DN convention, tiled == whole-scene (the UDF engine, sr_core.inference.cube), nodata (NaN and
0 holes), GeoTIFF and NetCDF inputs, bounded memory, COG layout, errors and the CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

from sr_core.bands import BANDS_10M, BANDS_20M, MODEL_BANDS_10
from sr_core.inference import cube as sc
from sr_core.inference import scene as S
from sr_core.io import (
    COMPRESSIONS,
    PREDICTORS,
    ArraySource,
    GeoTiffSource,
    GeoTiffWriter,
    SceneFolderSource,
    load_sample,
    read_geotiff,
    sample_scene_path,
)
from sr_core.models import DEFAULT_MODEL, SHARPEN_MODEL, list_models, load_card, load_predictor, sha256_file
from udf.testing import make_package

DN = 10000.0
TOL_DN = 1e-4 * DN  # 1e-4 reflectance
EPSG = "EPSG:32633"


@pytest.fixture(scope="module")
def pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("superres_models") / "tiny-edsr-x2"
    make_package(folder, arch="edsr", seed=3)
    return folder


@pytest.fixture(scope="module")
def pred(pkg):
    return load_predictor(pkg, threads=1)


@pytest.fixture(scope="module")
def sample():
    return load_sample()


def whole_reference(pred, dn: np.ndarray, *, add_offset: float = 0.0, dn_scale: float = DN) -> np.ndarray:
    """The whole scene at once through the UDF engine (sr_core.inference.cube, mode upscale): DN (C, sH, sW)."""
    da = xr.DataArray(
        np.asarray(dn, np.float32), dims=("bands", "y", "x"), coords={"bands": list(MODEL_BANDS_10)}
    )
    return sc.superresolve_dataarray(
        da, predictor=pred, mode="upscale", dn_scale=dn_scale, add_offset=add_offset
    ).values


def sample_dn(sample) -> np.ndarray:
    """The sample's DN (MODEL_BANDS_10 on the 10 m grid, 20 m bands replicated)."""
    return np.asarray(sample.to_dataarray().values, dtype=np.float32)


def write_scene(
    folder: Path, dn10: np.ndarray, dn20: np.ndarray, transform, *, nodata=None, meta=None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr, names, t in (
        ("bands_10m.tif", dn10, BANDS_10M, transform),
        (
            "bands_20m.tif",
            dn20,
            BANDS_20M,
            rasterio.Affine(transform.a * 2, 0, transform.c, 0, transform.e * 2, transform.f),
        ),
    ):
        with rasterio.open(
            folder / name,
            "w",
            driver="GTiff",
            width=arr.shape[2],
            height=arr.shape[1],
            count=arr.shape[0],
            dtype=arr.dtype,
            crs=EPSG,
            transform=t,
            nodata=nodata,
        ) as dst:
            dst.write(arr)
            dst.descriptions = tuple(names)
            dst.update_tags(DN_SCALE="10000", ADD_OFFSET="0")
    m = {"id": folder.name, "product_level": "L1C", "dn_scale": 10000, "add_offset": 0}
    m.update(meta or {})
    (folder / "scene.json").write_text(json.dumps(m))
    return folder


def write_tif(path: Path, arr: np.ndarray, names, transform, *, nodata=None, tags=None) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=arr.shape[2],
        height=arr.shape[1],
        count=arr.shape[0],
        dtype=arr.dtype,
        crs=EPSG,
        transform=transform,
        nodata=nodata,
    ) as dst:
        dst.write(arr)
        if names is not None:
            dst.descriptions = tuple(names)
        if tags:
            dst.update_tags(**tags)
    return path


def crop_scene(sample, tmp: Path, y0: int, x0: int, h: int, w: int, **kw) -> Path:
    c = sample.crop(y0, x0, h, w)
    dn10 = np.rint(c.bands10 * DN).astype(np.uint16)
    dn20 = np.rint(c.bands20 * DN).astype(np.uint16)
    return write_scene(tmp, dn10, dn20, c.affine, **kw)


# ------------------------------------------------------------------------------------------------ the sample


@pytest.mark.parametrize("compress,codec", [("deflate", "DEFLATE"), ("lzw", "LZW"), ("none", None)])
def test_compress_option_same_values(tmp_path, pred, compress, codec):
    src = sample_scene_path()
    a = S.superresolve_file(src, tmp_path / "a.tif", model=pred, tile=128)[0]
    b = S.superresolve_file(src, tmp_path / "b.tif", model=pred, tile=128, compress=compress)[0]
    with rasterio.open(a) as da, rasterio.open(b) as db:
        assert db.compression is None if codec is None else db.compression.value == codec
        np.testing.assert_array_equal(da.read(), db.read())  # lossless either way
    with pytest.raises(ValueError, match="compress must be one of"):
        S.superresolve_file(src, tmp_path / "c.tif", model=pred, compress="jpeg")


def _predictor_tag(path) -> int:
    from sr_core.io.cog import read_tiff_ifds

    tags = read_tiff_ifds(path)[0].tags
    return int(np.frombuffer(tags[317][2], dtype="<u2")[0]) if 317 in tags else 1


def test_predictor_option_same_values_and_tag(tmp_path, pred):
    src = sample_scene_path()
    auto = S.superresolve_file(src, tmp_path / "auto.tif", model=pred, tile=128)[0]
    yes = S.superresolve_file(src, tmp_path / "yes.tif", model=pred, tile=128, tiff_predictor="yes")[0]
    u16 = S.superresolve_file(src, tmp_path / "u16.tif", model=pred, tile=128, dtype="input")[0]
    u16_no = S.superresolve_file(src, tmp_path / "u16no.tif", model=pred, tile=128, dtype="input",
                                 tiff_predictor="no")[0]
    assert [_predictor_tag(p) for p in (auto, yes, u16, u16_no)] == [1, 3, 2, 1]
    with rasterio.open(auto) as a, rasterio.open(yes) as b:
        np.testing.assert_array_equal(a.read(), b.read())  # lossless either way
    with rasterio.open(u16) as a, rasterio.open(u16_no) as b:
        np.testing.assert_array_equal(a.read(), b.read())
    with pytest.raises(ValueError, match="tiff_predictor must be one of"):
        S.superresolve_file(src, tmp_path / "c.tif", model=pred, tiff_predictor="float")
    assert not (tmp_path / "c.tif").exists()


def test_write_threads_same_file_and_default_by_device(tmp_path, pred):
    """GDAL compressing the blocks on several threads changes nothing in the file, COG or not; the default is one
    thread for a CPU engine and every core for a GPU one."""
    src = sample_scene_path()
    outs = {}
    for n in (1, 3):
        for cog in (False, True):
            outs[n, cog] = S.superresolve_file(src, tmp_path / f"w{n}{cog}.tif", model=pred, tile=128, cog=cog,
                                               write_threads=n)[0]
    assert outs[1, True].read_bytes() == outs[3, True].read_bytes()  # the COG's tiles are assembled in order
    with rasterio.open(outs[1, False]) as a, rasterio.open(outs[3, False]) as b:
        np.testing.assert_array_equal(a.read(), b.read())
        pa, pb = dict(a.profile), dict(b.profile)
        assert np.isnan(pa.pop("nodata")) and np.isnan(pb.pop("nodata"))
        assert pa == pb and a.tags() == b.tags()

    class OnGpu:
        device = "cuda"

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert S.write_threads_for(pred) == 1  # pred runs on the CPU
    assert S.write_threads_for(OnGpu()) == cores
    assert S.write_threads_for(OnGpu(), 2) == S.write_threads_for(pred, 2) == 2
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="write_threads must be an integer >= 1"):
            S.superresolve_file(src, tmp_path / "bad.tif", model=pred, write_threads=bad)
    with pytest.raises(ValueError, match="compress_threads must be an integer >= 1"):
        GeoTiffWriter(tmp_path / "x.tif", height=32, width=32, transform=(1, 0, 0, 0, -1, 0), crs="EPSG:32631",
                        dtype="float32", nodata=None, band_names=["B02"], compress_threads=0)
    assert not (tmp_path / "bad.tif").exists()


def test_output_overwrites_an_existing_file(tmp_path, pred):
    src = sample_scene_path()
    out = tmp_path / "sr.tif"
    out.write_bytes(b"an older file, not a GeoTIFF")
    S.superresolve_file(src, out, model=pred, tile=128, dtype="input")
    with rasterio.open(out) as d:
        assert d.dtypes[0] == "uint16"
    S.superresolve_file(src, out, model=pred, tile=128)
    with rasterio.open(out) as d:
        assert d.dtypes[0] == "float32"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sr.tif"]  # no temporary file left

def test_sample_scene_folder_georef_bands_tags_and_values(tmp_path, pkg, pred, sample):
    src = sample_scene_path()
    out = S.superresolve_file(src, tmp_path / "sr.tif", model=pred, tile=128)
    assert out == [tmp_path / "sr.tif"]
    ref = whole_reference(pred, sample_dn(sample))
    card = load_card(pkg)
    with rasterio.open(out[0]) as d, rasterio.open(src / "bands_10m.tif") as s10:
        assert d.bounds == s10.bounds  # identical, not approximately
        assert d.crs == s10.crs
        assert (d.width, d.height) == (2 * s10.width, 2 * s10.height)
        assert d.res == (s10.res[0] / 2, s10.res[1] / 2)
        assert d.descriptions == MODEL_BANDS_10
        assert [d.tags(i + 1)["BANDNAME"] for i in range(d.count)] == list(MODEL_BANDS_10)
        tags = d.tags()
        assert d.dtypes[0] == "float32" and np.isnan(d.nodata)
        assert d.block_shapes[0] == (256, 256) and d.compression.value == "ZSTD"
        sr = d.read()
    meta = json.loads((src / "scene.json").read_text())
    assert float(tags["DN_SCALE"]) == meta["dn_scale"] and float(tags["ADD_OFFSET"]) == meta["add_offset"]
    assert tags["S2SR_MODEL"] == card.name and tags["S2SR_MODEL_VERSION"] == card.version
    assert tags["S2SR_MODEL_FILE"] == "model.onnx"
    assert tags["S2SR_MODEL_SHA256"] == sha256_file(pkg / "model.onnx")
    assert json.loads(tags["S2SR_MODEL_FILES_SHA256"]) == card.sha256
    assert tags["PRODUCT_LEVEL"] == "L1C" and tags["S2SR_SCALE"] == "2"
    # 4 tiles of 128 px == the whole scene at once (the UDF engine), within 1e-4 reflectance
    assert np.isfinite(sr).all()
    assert np.abs(sr - ref).max() <= TOL_DN
    # and the file reads back with the project's reader as reflectance (its DN convention is explicit)
    back = read_geotiff(out[0])
    np.testing.assert_allclose(back.values, ref / DN, atol=1e-4)


def test_tile_sizes_and_partial_tiles_equal_whole(tmp_path, pred, sample):
    folder = crop_scene(sample, tmp_path / "crop", 20, 40, 72, 58)
    ref = whole_reference(pred, sample_dn(sample)[:, 20:92, 40:98])
    for tile in (16, 40):  # several tiles with remainders, margin 6 crossing tile borders
        with SceneFolderSource(folder) as src:
            p = S.superresolve_source(src, tmp_path / f"t{tile}.tif", predictor=pred, tile=tile, blocksize=32)
        with rasterio.open(p) as d:
            assert int(d.tags()["S2SR_TILE"]) == S.aligned_tile(tile, 2, 32)
            assert np.abs(d.read() - ref).max() <= TOL_DN


@pytest.mark.parametrize("workers", [2, 3])
def test_tile_workers_give_the_one_tile_at_a_time_result(tmp_path, pred, sample, workers):
    # tiles computed on several threads (reads locked, writes in plan order): the same file values, NaN holes
    # and tile borders included; more tiles than the rolling window of 2 * workers
    dn = sample_dn(sample)[:, 100:196, 60:156].copy()
    dn[:, 10:20, 30:37] = np.nan
    dn[:, 40:44, 28:36] = np.nan
    c = sample.crop(100, 60, 96, 96)
    tif = write_tif(tmp_path / "in.tif", dn, MODEL_BANDS_10, c.affine, tags={"DN_SCALE": "10000", "ADD_OFFSET": "0"})
    done = []
    outs = []
    for k, wk in enumerate((1, workers)):
        with GeoTiffSource(tif) as src:
            outs.append(S.superresolve_source(src, tmp_path / f"out{k}.tif", predictor=pred, tile=16, blocksize=32,
                                              workers=wk, progress=lambda d, t: done.append((d, t))))
    with rasterio.open(outs[0]) as a, rasterio.open(outs[1]) as b:
        np.testing.assert_array_equal(a.read(), b.read())
        assert a.transform == b.transform and a.descriptions == b.descriptions
    n = done[-1][1]
    assert n > 2 * workers and done[n:] == [(i, n) for i in range(1, n + 1)]  # every tile reported once, in order
    with pytest.raises(ValueError, match="workers"):
        S.superresolve_source(GeoTiffSource(tif), tmp_path / "bad.tif", predictor=pred, workers=0)


def test_aligned_tile():
    assert S.aligned_tile(256, 2) == 256 and S.aligned_tile(100, 2) == 128 and S.aligned_tile(129, 2) == 256
    assert S.aligned_tile(10, 4) == 64 and S.aligned_tile(65, 4) == 128
    assert S.aligned_tile(1, 3) == 96  # blocks of 288 px (a multiple of 16 divisible by 3)
    with pytest.raises(ValueError, match="tile"):
        S.aligned_tile(0, 2)


def test_torch_engine_matches_onnx(tmp_path, pkg, sample):
    folder = crop_scene(sample, tmp_path / "crop", 0, 0, 48, 48)
    a = S.superresolve_file(folder, tmp_path / "onnx.tif", model=str(pkg), engine="onnx", threads=1)[0]
    b = S.superresolve_file(folder, tmp_path / "torch.tif", model=str(pkg), engine="torch", threads=1)[0]
    with rasterio.open(a) as da, rasterio.open(b) as db:
        assert np.abs(da.read() - db.read()).max() <= TOL_DN
        assert db.tags()["S2SR_MODEL_FILE"] == "model.pt" and db.tags()["S2SR_ENGINE"] == "torch"
        assert db.tags()["S2SR_MODEL_SHA256"] == sha256_file(pkg / "model.pt")


# ------------------------------------------------------------------------------------------------ nodata


def test_nan_holes_in_float_geotiff_stay_nan_and_valid_pixels_match_whole(tmp_path, pred, sample):
    dn = sample_dn(sample)[:, 100:196, 60:156].copy()  # 96 x 96
    dn[:, 10:20, 30:37] = np.nan  # a hole inside the first tile
    dn[3, 50, 50] = np.nan  # one band of one pixel: the pixel is invalid
    dn[:, :, 90:] = np.nan  # a strip along the east border
    dn[:, 40:44, 28:36] = np.nan  # straddling tile borders
    # ends at a tile border, starts at the read window of the next tile: its nearest valid pixels (col 25) lie
    # outside that read window; only the fill context makes the tile see the whole-scene fill
    dn[:, 60:70, 26:32] = np.nan
    c = sample.crop(100, 60, 96, 96)
    tif = write_tif(
        tmp_path / "in.tif", dn, MODEL_BANDS_10, c.affine, tags={"DN_SCALE": "10000", "ADD_OFFSET": "0"}
    )
    with GeoTiffSource(tif) as src:
        p = S.superresolve_source(src, tmp_path / "out.tif", predictor=pred, tile=32, blocksize=64)
    with rasterio.open(p) as d:
        sr = d.read()
        assert np.isnan(d.nodata)
    invalid = ~np.isfinite(dn).all(0)
    want_nan = np.repeat(np.repeat(invalid, 2, 0), 2, 1)
    assert np.array_equal(np.isnan(sr).any(0), want_nan) and np.array_equal(np.isnan(sr).all(0), want_nan)
    ref = whole_reference(pred, dn)  # global nearest-valid fill, one pass
    assert np.abs(sr[:, ~want_nan] - ref[:, ~want_nan]).max() <= TOL_DN


def test_zero_holes_in_scene_folder_float_and_input_dtype(tmp_path, pred, sample):
    c = sample.crop(64, 64, 64, 64)
    dn10 = np.rint(c.bands10 * DN).astype(np.uint16)
    dn20 = np.rint(c.bands20 * DN).astype(np.uint16)
    dn10[:, 5:9, 40:50] = 0
    dn10[2, 30, 3] = 0
    dn20[:, 20:22, 4:7] = 0  # 20 m holes invalidate 2 x 2 blocks of the 10 m grid
    folder = write_scene(tmp_path / "holes", dn10, dn20, c.affine, nodata=0)
    invalid = (dn10 == 0).any(0) | np.repeat(np.repeat((dn20 == 0).any(0), 2, 0), 2, 1)
    hr_bad = np.repeat(np.repeat(invalid, 2, 0), 2, 1)
    full = np.concatenate([dn10, np.repeat(np.repeat(dn20, 2, 1), 2, 2)]).astype(np.float32)
    full[:, invalid] = np.nan
    ref = whole_reference(pred, full)

    f32 = S.superresolve_file(folder, tmp_path / "f32.tif", model=pred, tile=32)[0]
    u16 = S.superresolve_file(folder, tmp_path / "u16.tif", model=pred, tile=32, dtype="input")[0]
    with rasterio.open(f32) as a, rasterio.open(u16) as b:
        fa, ub = a.read(), b.read()
        assert b.dtypes[0] == "uint16" and b.nodata == 0 and np.isnan(a.nodata)
        assert a.bounds == b.bounds
    assert np.array_equal(np.isnan(fa).all(0), hr_bad) and np.array_equal(np.isnan(fa).any(0), hr_bad)
    assert np.abs(fa[:, ~hr_bad] - ref[:, ~hr_bad]).max() <= TOL_DN
    assert (ub[:, hr_bad] == 0).all() and (ub[:, ~hr_bad] >= 1).all()
    np.testing.assert_array_equal(
        ub[:, ~hr_bad], np.clip(np.rint(fa[:, ~hr_bad]), 1, 65535).astype(np.uint16)
    )


# ------------------------------------------------------------------------------------------------ GeoTIFF and NetCDF


def test_geotiff_input_band_order_extra_bands_and_add_offset(tmp_path, pred, sample):
    dn = sample_dn(sample)[:, :48, :64]
    order = [7, 2, 0, 9, 4, 1, 8, 3, 6, 5]
    names = [MODEL_BANDS_10[i].replace("B0", "B") for i in order] + ["SCL"]  # aliases, shuffled, extra band
    arr = np.concatenate([dn[order] + 1000, np.full((1, 48, 64), 4, np.float32)]).astype(np.uint16)
    c = sample.crop(0, 0, 48, 64)
    tags = {"DN_SCALE": "10000", "ADD_OFFSET": "-1000", "PRODUCT_LEVEL": "L2A"}
    tif = write_tif(tmp_path / "l2a.tif", arr, names, c.affine, tags=tags)
    out = S.superresolve_file(tif, tmp_path / "out.tif", model=pred, tile=32)[0]
    ref = whole_reference(pred, dn + 1000, add_offset=-1000.0)
    with rasterio.open(out) as d, rasterio.open(tif) as s:
        assert d.bounds == s.bounds and d.descriptions == MODEL_BANDS_10
        assert (d.tags()["DN_SCALE"], d.tags()["ADD_OFFSET"], d.tags()["PRODUCT_LEVEL"]) == (
            "10000",
            "-1000",
            "L2A",
        )
        sr = d.read()
    assert np.abs(sr - ref).max() <= TOL_DN
    # the same scene as plain DN (offset 0) is the same reflectance: output DN differ by exactly the offset
    ref0 = whole_reference(pred, dn)
    assert np.abs((sr - 1000) - ref0).max() <= TOL_DN


def test_geotiff_input_refusals(tmp_path, pred, sample):
    dn = sample_dn(sample)[:, :32, :32].astype(np.uint16)
    c = sample.crop(0, 0, 32, 32)
    no_scale = write_tif(tmp_path / "noscale.tif", dn, MODEL_BANDS_10, c.affine)
    with pytest.raises(ValueError, match="DN_SCALE"):
        S.superresolve_file(no_scale, tmp_path / "o.tif", model=pred)
    out = S.superresolve_file(no_scale, tmp_path / "o.tif", model=pred, dn_scale=10000, add_offset=0)[0]
    assert rasterio.open(out).tags()["DN_SCALE"] == "10000"
    tags = {"DN_SCALE": "10000", "ADD_OFFSET": "0"}
    missing = write_tif(tmp_path / "missing.tif", dn[:9], MODEL_BANDS_10[:9], c.affine, tags=tags)
    with pytest.raises(ValueError, match="missing: B12"):
        S.superresolve_file(missing, tmp_path / "o2.tif", model=pred)
    unnamed = write_tif(tmp_path / "unnamed.tif", dn, None, c.affine, tags=tags)
    with pytest.raises(ValueError, match="description"):
        S.superresolve_file(unnamed, tmp_path / "o3.tif", model=pred)
    t20 = rasterio.Affine(20, 0, c.affine.c, 0, -20, c.affine.f)
    coarse = write_tif(tmp_path / "coarse.tif", dn, MODEL_BANDS_10, t20, tags=tags)
    with pytest.raises(ValueError, match="pixel size 20 x 20 m"):
        S.superresolve_file(coarse, tmp_path / "o4.tif", model=pred)
    with pytest.raises(ValueError, match="unsupported input"):
        S.superresolve_file(shutil.copy(no_scale, tmp_path / "x.png"), tmp_path / "o5.tif", model=pred)
    with pytest.raises(FileNotFoundError):
        S.superresolve_file(tmp_path / "nope.tif", tmp_path / "o6.tif", model=pred)
    with pytest.raises(ValueError, match="is the input file"):
        S.superresolve_file(out, out, model=pred)
    with pytest.raises(ValueError, match="dtype"):
        S.superresolve_file(out, tmp_path / "o7.tif", model=pred, dtype="uint8")
    assert not list(tmp_path.glob(".*.part"))  # no partial files left behind


def _netcdf_cube(sample, h, w, dates):
    c = sample.crop(0, 0, h, w)
    dn = np.stack([sample_dn(sample)[:, :h, :w] + 37 * k for k in range(dates)])  # (t, bands, y, x)
    a = c.affine
    y = a.f + a.e * (np.arange(h) + 0.5)
    x = a.c + a.a * (np.arange(w) + 0.5)
    t = np.array([np.datetime64("2024-06-01") + np.timedelta64(5 * k, "D") for k in range(dates)])
    return dn, y, x, t, c


def test_netcdf_per_band_variables_one_output_per_date(tmp_path, pred, sample):
    dn, y, x, t, c = _netcdf_cube(sample, 40, 56, 2)
    ds = xr.Dataset(
        {
            b: (("t", "y", "x"), dn[:, k], {"dn_scale": 10000, "add_offset_dn": 0})
            for k, b in enumerate(MODEL_BANDS_10)
        },
        coords={"t": t, "y": y, "x": x},
    ).rio.write_crs(EPSG)
    nc = tmp_path / "cube.nc"
    ds.to_netcdf(nc, engine="h5netcdf")
    outs = S.superresolve_file(nc, tmp_path / "sr.tif", model=pred, tile=32)
    assert [p.name for p in outs] == ["sr_2024-06-01.tif", "sr_2024-06-06.tif"]
    for k, p in enumerate(outs):
        with rasterio.open(p) as d:
            assert d.bounds == rasterio.coords.BoundingBox(*c.bounds)
            assert d.crs.to_epsg() == 32633 and d.descriptions == MODEL_BANDS_10
            assert d.tags()["DATE"] == str(t[k])[:10]
            assert np.abs(d.read() - whole_reference(pred, dn[k])).max() <= TOL_DN


def test_netcdf_stacked_variable_south_up_and_fill_value(tmp_path, pred, sample):
    dn, y, x, _, c = _netcdf_cube(sample, 40, 48, 1)
    arr = dn[0].copy()
    arr[:, 5:8, 10:14] = np.nan
    da = xr.DataArray(
        arr[:, ::-1],
        dims=("bands", "y", "x"),
        coords={"bands": list(MODEL_BANDS_10), "y": y[::-1], "x": x},
        attrs={"dn_scale": 10000.0, "add_offset_dn": 0.0},
    )  # y increasing (south-up storage), no t dim
    nc = tmp_path / "stacked.nc"
    da.to_dataset(name="data").rio.write_crs(EPSG).to_netcdf(
        nc, engine="h5netcdf", encoding={"data": {"dtype": "int16", "_FillValue": -1}}
    )
    out = S.superresolve_file(nc, tmp_path / "one.tif", model=pred, tile=32, dtype="input")
    assert out == [tmp_path / "one.tif"]
    ref = whole_reference(pred, arr)
    bad = np.repeat(np.repeat(~np.isfinite(arr).all(0), 2, 0), 2, 1)
    with rasterio.open(out[0]) as d:
        assert d.bounds == rasterio.coords.BoundingBox(*c.bounds)
        assert d.dtypes[0] == "int16" and d.nodata == -1
        sr = d.read()
    assert (sr[:, bad] == -1).all()
    assert np.abs(sr[:, ~bad] - ref[:, ~bad]).max() <= TOL_DN + 0.5  # + integer rounding


def test_netcdf_without_dn_convention_is_refused(tmp_path, pred, sample):
    dn, y, x, t, _ = _netcdf_cube(sample, 16, 16, 1)
    ds = xr.Dataset(
        {b: (("t", "y", "x"), dn[:, k]) for k, b in enumerate(MODEL_BANDS_10)},
        coords={"t": t, "y": y, "x": x},
    )
    nc = tmp_path / "plain.nc"
    ds.to_netcdf(nc, engine="h5netcdf")
    with pytest.raises(ValueError, match="dn_scale"):
        S.superresolve_file(nc, tmp_path / "o.tif", model=pred)
    out = S.superresolve_file(nc, tmp_path / "o.tif", model=pred, dn_scale=10000, add_offset=0,
                              allow_any_crs=True)  # the cube has no CRS: not what this test is about
    assert len(out) == 1 and out[0].is_file()


# ------------------------------------------------------------------------------------------------ streaming memory


def _array_source(n: int) -> ArraySource:
    rng = np.random.default_rng(n)
    dn = rng.uniform(0, 5000, (10, n, n)).astype(np.float32)
    return ArraySource(dn, MODEL_BANDS_10, transform=(10.0, 0.0, 500000.0, 0.0, -10.0, 6000000.0), crs=EPSG)


def test_memory_is_bounded_by_the_tile_not_the_scene(tmp_path, pred):
    tile, m = 64, pred.margin
    S.superresolve_source(_array_source(48), tmp_path / "warm.tif", predictor=pred, tile=tile, blocksize=128)
    peaks, windows = {}, {}
    for n in (160, 320):
        src = _array_source(n)
        tracemalloc.start()
        S.superresolve_source(src, tmp_path / f"m{n}.tif", predictor=pred, tile=tile, blocksize=128)
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        windows[n] = src.max_window_pixels
        # every read is one tile + margin + fill context (2 margins), whatever the scene size
        assert src.max_window_pixels <= (tile + 2 * 3 * m) ** 2
        assert src.pixels_read < 3 * n * n
        with rasterio.open(tmp_path / f"m{n}.tif") as d:
            assert (d.width, d.height) == (2 * n, 2 * n)
    out_bytes = 10 * 4 * (2 * 320) ** 2  # the whole output array: 16 MB
    assert windows[160] == windows[320]
    assert peaks[320] < out_bytes / 4, peaks
    assert peaks[320] < 1.5 * peaks[160] + 1e6, peaks  # 4x the pixels, (about) the same peak


# ------------------------------------------------------------------------------------------------ COG, warnings


def test_cog_layout_with_overviews(tmp_path, pred, sample, monkeypatch):
    folder = crop_scene(sample, tmp_path / "crop", 0, 0, 160, 160)
    p = S.superresolve_file(folder, tmp_path / "cog.tif", model=pred, cog=True)[0]
    with rasterio.open(p) as d, rasterio.open(folder / "bands_10m.tif") as s:
        assert d.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert d.overviews(1) == [2]
        assert d.bounds == s.bounds and d.descriptions == MODEL_BANDS_10
        assert d.tags()["S2SR_MODEL"] == pred.card.name and d.tags()["DN_SCALE"] == "10000"
        full = d.read()
    plain = S.superresolve_file(folder, tmp_path / "plain.tif", model=pred)[0]
    with rasterio.open(plain) as d:
        assert d.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") != "COG" and d.overviews(1) == []
        np.testing.assert_array_equal(d.read(), full)
    monkeypatch.setattr(S, "COG_MIN_SIZE", 300)  # auto: COG above the size threshold
    auto = S.superresolve_file(folder, tmp_path / "auto.tif", model=pred)[0]
    assert rasterio.open(auto).tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"


def test_margin_is_bounded_by_the_tile_and_the_model_margin(tmp_path, pred):
    assert S.check_margin(128, tile=128, need=40) == 128 and S.check_margin(40, tile=16, need=40) == 40
    with pytest.raises(ValueError, match=r"overlap 100000 px is larger than the tile \(128 px\) and than the 40 px "
                                         r"the model needs: each tile would read 200128 x 200128 px; give at most 128"):
        S.check_margin(100000, tile=128, need=40, name="overlap")
    with pytest.raises(ValueError, match="margin 100000 px"):  # before any allocation or file
        S.superresolve_source(_array_source(48), tmp_path / "o.tif", predictor=pred, tile=16, margin=100000)
    assert os.listdir(tmp_path) == []


def test_small_overlap_warns(tmp_path, pred, sample):
    folder = crop_scene(sample, tmp_path / "crop", 0, 0, 32, 32)
    with pytest.warns(sc.TilingWarning, match="seams"):
        S.superresolve_file(folder, tmp_path / "o.tif", model=pred, overlap=pred.margin - 1)


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_superres_quiet_and_errors(tmp_path, pkg, capsys):
    from s2sr_cli.main import main

    out = tmp_path / "cli.tif"
    rc = main(
        [
            "--quiet",
            "superres",
            str(sample_scene_path()),
            str(out),
            "--model",
            str(pkg),
            "--threads",
            "1",
            "--tile",
            "128",
            "--predictor",
            "yes",
        ]
    )
    assert rc == 0 and out.is_file()
    assert _predictor_tag(out) == 3
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == ""
    with rasterio.open(out) as d:
        assert d.tags()["S2SR_MODEL"] == "tiny-edsr-x2" and int(d.tags()["S2SR_TILE"]) == 128
    rc = main(["superres", str(tmp_path / "missing.tif"), str(tmp_path / "x.tif"), "--model", str(pkg)])
    assert rc == 2 and "s2sr superres: error" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["superres", "a", "b", "--tile", "0"])
    assert e.value.code == 2


def test_cli_superres_help(capsys):
    from s2sr_cli.commands.superres import DEFAULT_TILE
    from s2sr_cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["superres", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in (
        "INPUT",
        "OUTPUT",
        "--model",
        "--engine",
        "--device",
        "--threads",
        "--tile",
        "--overlap",
        "--quiet",
    ):
        assert opt in text
    assert DEFAULT_TILE == S.DEFAULT_TILE
    # the parser lists its choices without importing sr_core.inference.scene: they must stay those of the library
    assert "--predictor {" + ",".join(PREDICTORS) + "}" in text
    assert "--compress {" + ",".join(COMPRESSIONS) + "}" in text


# ------------------------------------------------------------------------------------------------ default model


@pytest.mark.skipif(
    DEFAULT_MODEL not in list_models(), reason=f"default model {DEFAULT_MODEL} not shipped yet"
)
def test_default_model_on_sample_crop(tmp_path, sample):
    folder = crop_scene(sample, tmp_path / "crop", 64, 64, 64, 64)
    p = S.superresolve_file(folder, tmp_path / "sr.tif", threads=1)[0]
    card = load_card(DEFAULT_MODEL)
    with rasterio.open(p) as d:
        assert d.tags()["S2SR_MODEL"] == DEFAULT_MODEL and d.tags()["S2SR_MODEL_VERSION"] == card.version
        assert d.tags()["S2SR_MODEL_SHA256"] == card.sha256[card.files["onnx"]]
        sr = d.read() / DN
    assert np.isfinite(sr).all()
    # a trained model stays close to its input: mean over 2x2 blocks within 0.05 reflectance of the input
    lr = np.concatenate(
        [
            sample.crop(64, 64, 64, 64).bands10,
            np.repeat(np.repeat(sample.crop(64, 64, 64, 64).bands20, 2, 1), 2, 2),
        ]
    )
    blocks = sr.reshape(10, 64, 2, 64, 2).mean((2, 4))
    assert np.abs(blocks - lr).mean() < 0.05


def test_onnx_sessions_do_not_spin():
    from sr_core.models import ort_session_options

    opts = ort_session_options(3)
    assert opts.intra_op_num_threads == 3 and opts.inter_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert ort_session_options().intra_op_num_threads == 0  # the runtime's default


@pytest.mark.parametrize("bands, model", [(("B02", "B03", "B04", "B08"), "s2sr-x2-rgbn"),
                                         (tuple(MODEL_BANDS_10), "s2sr-x2-10band")])
def test_without_model_the_shipped_model_whose_bands_the_geotiff_holds_runs_and_is_named(tmp_path, sample, bands,
                                                                                          model):
    c = sample.crop(0, 0, 32, 32)
    dn = sample_dn(c)
    keep = [list(MODEL_BANDS_10).index(b) for b in bands]
    src = write_tif(tmp_path / "in.tif", np.rint(dn[keep]).astype(np.uint16), bands, c.affine,
                    tags={"DN_SCALE": "10000", "ADD_OFFSET": "0"})
    said: list[str] = []
    S.superresolve_file(src, tmp_path / "auto.tif", threads=1, log=said.append)
    S.superresolve_file(src, tmp_path / "named.tif", model=model, threads=1, log=said.append)
    assert said == [f"model {model} (chosen by the input's bands: {', '.join(bands)})"]
    auto, named = read_geotiff(tmp_path / "auto.tif"), read_geotiff(tmp_path / "named.tif")
    np.testing.assert_array_equal(auto.values, named.values)
    with rasterio.open(tmp_path / "auto.tif") as ds:
        assert ds.tags()["S2SR_MODEL"] == model and ds.count == len(bands) and ds.width == 64


def test_without_model_an_input_with_neither_band_set_is_refused_naming_bands_and_models(tmp_path, sample):
    c = sample.crop(0, 0, 16, 16)
    src = write_tif(tmp_path / "in.tif", np.rint(sample_dn(c)[:3]).astype(np.uint16), ("B02", "B03", "B04"),
                    c.affine, tags={"DN_SCALE": "10000", "ADD_OFFSET": "0"})
    with pytest.raises(ValueError, match=r"input's bands \(B02, B03, B04\): s2sr-x2-10band needs .*; s2sr-x2-rgbn "
                                         r"needs B02, B03, B04, B08"):
        S.superresolve_file(src, tmp_path / "out.tif", threads=1)
    assert not (tmp_path / "out.tif").exists()


# ------------------------------------------------------------------------------------------------ 10 m product


@pytest.mark.skipif(SHARPEN_MODEL not in list_models(), reason=f"{SHARPEN_MODEL} not shipped")
def test_resolution_10_keeps_the_input_grid_and_its_10m_bands(tmp_path, sample):
    """The 20 m -> 10 m product: the sample's grid, the 10 bands named, the four 10 m bands the input's (the
    network copies them: within float32 rounding of the reflectance round trip; exactly with dtype="input")."""
    src = sample_scene_path()
    said: list[str] = []
    p = S.superresolve_file(src, tmp_path / "out_10m.tif", resolution=10, threads=1, log=said.append)[0]
    q = S.superresolve_file(src, tmp_path / "out_10m_u16.tif", resolution=10, dtype="input", threads=1)[0]
    assert said == [f"model {SHARPEN_MODEL} (chosen by the input's bands: {', '.join(MODEL_BANDS_10)})"]
    with rasterio.open(src / "bands_10m.tif") as ref, rasterio.open(p) as d, rasterio.open(q) as u:
        fine = ref.read()
        assert (d.height, d.width) == (ref.height, ref.width) == (256, 256)
        assert d.transform == ref.transform and d.crs == ref.crs and d.bounds == ref.bounds
        assert d.descriptions == tuple(MODEL_BANDS_10) and d.count == 10
        assert d.tags()["S2SR_MODEL"] == SHARPEN_MODEL and d.tags()["S2SR_SCALE"] == "1"
        out = d.read()
        assert d.dtypes[0] == "float32" and np.isfinite(out).all()
        assert np.abs(out[:4] - fine.astype(np.float64)).max() <= 1e-3
        assert u.dtypes[0] == fine.dtype.name
        np.testing.assert_array_equal(u.read(list(range(1, 5))), fine)
        # the 20 m bands are sharpened, not the input's 20 m pixels replicated: they differ within 2 x 2 blocks
        b20 = out[4:].reshape(6, 128, 2, 128, 2)
        assert np.abs(b20 - b20.mean((2, 4), keepdims=True)).max() > 1.0


def test_a_named_model_of_another_resolution_is_refused_before_any_work(tmp_path, pkg):
    out = tmp_path / "out.tif"
    with pytest.raises(ValueError, match=r"model 's2sr-x2-10band' outputs 5 m, resolution asks 10 m"):
        S.superresolve_file(sample_scene_path(), out, model="s2sr-x2-10band", resolution=10)
    with pytest.raises(ValueError, match=r"outputs 5 m, resolution asks 10 m"):  # a package folder, read the same
        S.superresolve_file(sample_scene_path(), out, model=pkg, resolution=10)
    with pytest.raises(ValueError, match=r"outputs 5 m, resolution asks 10 m"):  # a loaded predictor
        S.superresolve_file(sample_scene_path(), out, model=load_predictor(pkg, threads=1), resolution=10.0)
    for bad in (0, -5, float("nan"), "10", True):
        with pytest.raises(ValueError, match="resolution must be a positive number of metres"):
            S.superresolve_file(sample_scene_path(), out, resolution=bad)
    with pytest.raises(ValueError, match=r"no shipped model outputs 7 m: resolutions offered 5, 10"):
        S.superresolve_file(sample_scene_path(), out, resolution=7)
    assert not out.exists()


def test_a_named_model_with_its_own_resolution_gives_the_same_file(tmp_path, pkg, sample):
    folder = crop_scene(sample, tmp_path / "crop", 0, 0, 32, 32)
    a = S.superresolve_file(folder, tmp_path / "a.tif", model=pkg, threads=1)[0]
    b = S.superresolve_file(folder, tmp_path / "b.tif", model=pkg, resolution=5, threads=1)[0]
    np.testing.assert_array_equal(read_geotiff(a).values, read_geotiff(b).values)


def test_four_bands_at_10m_are_refused_naming_what_is_missing(tmp_path, sample):
    c = sample.crop(0, 0, 16, 16)
    src = write_tif(tmp_path / "in.tif", np.rint(sample_dn(c)[:4]).astype(np.uint16), ("B02", "B03", "B04", "B08"),
                    c.affine, tags={"DN_SCALE": "10000", "ADD_OFFSET": "0"})
    with pytest.raises(ValueError, match=rf"no shipped 10 m model fits the input's bands \(B02, B03, B04, B08\): "
                                         rf"{SHARPEN_MODEL} needs .* \(missing B05, B06, B07, B8A, B11, B12\)"):
        S.superresolve_file(src, tmp_path / "out.tif", resolution=10, threads=1)
    assert not (tmp_path / "out.tif").exists()
