"""sr_core.io.area: ``--bbox`` (a window of a source, read alone; the result equals the same pixels cut out first),
``--mask-scl`` (pixels of the cloud / shadow classes become nodata, never filled: the result equals the input with
those pixels set to nodata) and ``--scl`` (the classification on the output grid), on the Sentinel-2 products of
tests/sr_core/io/s2_products.py."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_bounds

from s2sr_cli.main import main as cli
from sr_core.bands import MODEL_BANDS_10
from sr_core.inference.scene import superresolve_file
from sr_core.io import ArraySource
from sr_core.io.area import (
    DEFAULT_SCL_MASK,
    SclMaskedSource,
    WindowSource,
    bbox_window,
    restrict,
    scl_classes,
    scl_output_path,
    write_scl,
)
from sr_core.io.safe import SafeSource
from tests.sr_core.io.s2_products import L1C_N0301, L2A_N0509, build_product, equivalent_geotiff
from udf.testing import make_package

T = (10.0, 0.0, 500000.0, 0.0, -10.0, 4600640.0)  # a 64 x 64 grid, UTM 33N


@pytest.fixture(scope="module")
def l2a(tmp_path_factory):
    return build_product(tmp_path_factory.mktemp("area_l2a"), L2A_N0509, seed=11)


@pytest.fixture(scope="module")
def l1c(tmp_path_factory):
    return build_product(tmp_path_factory.mktemp("area_l1c"), L1C_N0301, seed=12)


@pytest.fixture(scope="module")
def pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("area_models") / "tiny-edsr-x2"
    make_package(folder, arch="edsr", seed=9)
    return folder


def array_source(h=64, w=64):
    dn = np.arange(10 * h * w, dtype=np.float32).reshape(10, h, w)
    return ArraySource(dn, MODEL_BANDS_10, transform=T, crs="EPSG:32633")


# ------------------------------------------------------------------------------------------------ bbox


def test_bbox_window_snaps_outward_to_whole_20m_pixels():
    src = array_source()
    x0, y0 = T[2], T[5]
    # cols 3.5 .. 10.5, rows 2.5 .. 13.5 -> cols 2 .. 12, rows 2 .. 14
    assert bbox_window(src, (x0 + 35, y0 - 135, x0 + 105, y0 - 25)) == (2, 14, 2, 12)
    # on pixel edges already even: unchanged; odd edges: outward
    assert bbox_window(src, (x0 + 40, y0 - 100, x0 + 100, y0 - 20)) == (2, 10, 4, 10)
    assert bbox_window(src, (x0 + 30, y0 - 110, x0 + 90, y0 - 10)) == (0, 12, 2, 10)
    assert bbox_window(src, (x0 + 30, y0 - 110, x0 + 90, y0 - 10), align=1) == (1, 11, 3, 9)
    # clipped to the raster
    assert bbox_window(src, (x0 - 1000, y0 - 5000, x0 + 55, y0 + 1000)) == (0, 64, 0, 6)


def test_bbox_in_lon_lat_covers_the_box():
    src = array_source()
    want = (10, 30, 20, 42)  # rows, cols of a window of the grid
    left, top = T[2] + want[2] * 10, T[5] - want[0] * 10
    right, bottom = T[2] + want[3] * 10, T[5] - want[1] * 10
    inset = 0.5  # metres inside the window, so that the lon/lat box maps back inside it
    lonlat = transform_bounds("EPSG:32633", "EPSG:4326", left + inset, bottom + inset, right - inset, top - inset)
    r0, r1, c0, c1 = bbox_window(src, lonlat, "EPSG:4326")
    assert r0 <= want[0] and r1 >= want[1] and c0 <= want[2] and c1 >= want[3]  # covers it
    assert want[0] - r0 <= 2 and r1 - want[1] <= 2 and want[2] - c0 <= 2 and c1 - want[3] <= 2  # and no more


@pytest.mark.parametrize(
    "bbox, crs, message",
    [
        ((1, 2, 3), None, "bbox must be 4 finite numbers"),
        ((5, 0, 1, 9), None, "must have left < right and bottom < top"),
        (("a", 0, 1, 9), None, "bbox must be 4 numbers"),
        ((0, 0, 10, 10), None, "does not overlap the raster, whose bounds are (500000.0, 4600000.0, 500640.0, "),
        ((0, 0, 10, 10), "EPSG:999999", "bbox CRS 'EPSG:999999' is not a CRS"),
    ],
)
def test_bad_bbox(bbox, crs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        bbox_window(array_source(), bbox, crs)


def test_window_source_reads_only_its_window():
    inner = array_source()
    seen = []
    read = inner._read
    inner._read = lambda idx, w: seen.append(w) or read(idx, w)
    win = (10, 30, 20, 42)
    src = WindowSource(inner, win)
    assert (src.height, src.width) == (20, 22)
    assert src.transform == (10.0, 0.0, T[2] + 200, 0.0, -10.0, T[5] - 100)
    assert src.tags["S2SR_WINDOW"] == "10,30,20,42"
    full = inner._dn
    np.testing.assert_array_equal(src.read(["B05", "B02"], (0, 20, 0, 22)), full[[4, 0], 10:30, 20:42])
    np.testing.assert_array_equal(src.read(["B03"], (3, 7, 5, 6)), full[[1], 13:17, 25:26])
    assert seen == [(10, 30, 20, 42), (13, 17, 25, 26)]
    with pytest.raises(ValueError, match="outside the 20x22 raster"):
        src.read(["B02"], (0, 21, 0, 5))


def test_superres_of_a_bbox_equals_superres_of_the_pixels_cut_out(l2a, pkg, tmp_path):
    with SafeSource(l2a.path) as src:
        x0, y0 = src.transform[2], src.transform[5]
        seen = []
        read = src._read
        src._read = lambda idx, w: seen.append(w) or read(idx, w)
        box = (x0 + 125, y0 - 475, x0 + 385, y0 - 95)  # cols 12.5 .. 38.5, rows 9.5 .. 47.5
        win = bbox_window(src, box)
        assert win == (8, 48, 12, 40)
        with restrict(src, bbox=box) as sub:
            np.testing.assert_array_equal(sub.read(sub.bands, (0, 40, 0, 28)), l2a.dn_10m()[:, 8:48, 12:40])
        assert all(8 <= w[0] and w[1] <= 48 and 12 <= w[2] and w[3] <= 40 for w in seen)
    (a,) = superresolve_file(l2a.path, tmp_path / "bbox.tif", model=pkg, threads=1, tile=16, bbox=box)
    # the same pixels cut out first, as their own GeoTIFF
    tif = equivalent_geotiff(l2a, tmp_path / "full.tif")
    with rasterio.open(tif) as s:
        profile = s.profile | {"height": 40, "width": 28, "transform": s.window_transform(((8, 48), (12, 40)))}
        cut = s.read(window=((8, 48), (12, 40)))
        tags = s.tags()
    with rasterio.open(tmp_path / "cut.tif", "w", **profile) as d:
        d.write(cut)
        d.update_tags(**tags)
        d.descriptions = tuple(MODEL_BANDS_10)
    (b,) = superresolve_file(tmp_path / "cut.tif", tmp_path / "cut_sr.tif", model=pkg, threads=1, tile=16)
    with rasterio.open(a) as sa, rasterio.open(b) as sb:
        assert sa.bounds == sb.bounds == (x0 + 120, y0 - 480, x0 + 400, y0 - 80)
        assert (sa.width, sa.height) == (56, 80)
        va, vb = sa.read(), sb.read()
        assert sa.tags()["S2SR_WINDOW"] == "8,48,12,40"
    assert np.isnan(va).any() and (np.isnan(va) == np.isnan(vb)).all()
    np.testing.assert_allclose(va / 10000, vb / 10000, rtol=0, atol=1e-4)


# ------------------------------------------------------------------------------------------------ SCL


def test_scl_classes():
    assert scl_classes(True) == DEFAULT_SCL_MASK == (0, 1, 3, 8, 9, 10)
    assert scl_classes(None) is None and scl_classes(False) is None
    assert scl_classes([9, 3, 9]) == (3, 9)
    with pytest.raises(ValueError, match="SCL class 12 is not"):
        scl_classes([12])
    with pytest.raises(ValueError, match="at least one"):
        scl_classes([])


def test_mask_scl_reads_nodata_where_clouds(l2a):
    with SafeSource(l2a.path) as src:
        masked = SclMaskedSource(src, [3, 8, 9, 10])
        x = masked.read(MODEL_BANDS_10, (0, 64, 0, 64))
        cloud = np.isin(l2a.scl_10m(), [3, 8, 9, 10])
        want = l2a.dn_10m()
        want[:, cloud] = np.nan
        np.testing.assert_array_equal(x, want)
        assert cloud.any() and masked.tags["S2SR_SCL_MASK"] == "3,8,9,10"
        np.testing.assert_array_equal(masked.read_scl((0, 64, 0, 64)), l2a.scl_10m())


def test_mask_scl_and_scl_need_a_classification(l1c):
    with SafeSource(l1c.path) as src:
        message = f"{l1c.path}: --mask-scl (masking by the scene classification) needs the SCL layer, but it is a"
        with pytest.raises(ValueError, match=re.escape(message)):
            restrict(src, mask_scl=True)
        with pytest.raises(ValueError, match=re.escape("--scl (writing the scene classification) needs the SCL")):
            restrict(src, scl=True)
    with pytest.raises(ValueError, match="not a Level-2A product with a scene classification"):
        restrict(array_source(), mask_scl=[9])


def test_superres_with_mask_scl_equals_those_pixels_as_nodata(l2a, pkg, tmp_path):
    (a,) = superresolve_file(l2a.path, tmp_path / "masked.tif", model=pkg, threads=1, tile=16, mask_scl=True)
    tif = equivalent_geotiff(l2a, tmp_path / "same.tif")
    cloud = np.isin(l2a.scl_10m(), DEFAULT_SCL_MASK)
    with rasterio.open(tif, "r+") as s:
        dn = s.read()
        dn[:, cloud] = 0
        s.write(dn)
    (b,) = superresolve_file(tif, tmp_path / "nodata.tif", model=pkg, threads=1, tile=16)
    with rasterio.open(a) as sa, rasterio.open(b) as sb:
        va, vb = sa.read(), sb.read()
        assert sa.tags()["S2SR_SCL_MASK"] == "0,1,3,8,9,10"
    out_cloud = np.repeat(np.repeat(cloud, 2, axis=0), 2, axis=1)
    assert np.isnan(va[:, out_cloud]).all()  # nodata, never filled
    assert (np.isnan(va) == np.isnan(vb)).all()
    np.testing.assert_allclose(va / 10000, vb / 10000, rtol=0, atol=1e-4)


def test_write_scl_on_the_output_grid(l2a, pkg, tmp_path):
    with SafeSource(l2a.path) as src:
        path = write_scl(WindowSource(src, (4, 36, 10, 60)), tmp_path / "x_SCL.tif", scale=4, blocksize=16)
    with rasterio.open(path) as s:
        v = s.read(1)
        assert (s.dtypes[0], s.nodata, s.descriptions, s.count) == ("uint8", 0.0, ("SCL",), 1)
        assert (s.height, s.width) == (128, 200) and s.transform.a == 2.5
        assert s.bounds.left == l2a.transform.c + 100 and s.bounds.top == l2a.transform.f - 40
    np.testing.assert_array_equal(v, np.repeat(np.repeat(l2a.scl_10m()[4:36, 10:60], 4, 0), 4, 1))
    assert scl_output_path(tmp_path / "out.tif") == tmp_path / "out_SCL.tif"


def test_superres_writes_the_scl_beside_the_output(l2a, pkg, tmp_path):
    out = tmp_path / "sr.tif"
    paths = superresolve_file(l2a.path, out, model=pkg, threads=1, tile=16, scl=True, bbox=(
        l2a.transform.c + 20, l2a.transform.f - 300, l2a.transform.c + 400, l2a.transform.f - 40))
    assert paths == [tmp_path / "sr_SCL.tif", out]
    with rasterio.open(paths[0]) as a, rasterio.open(out) as b:
        assert (a.bounds, a.shape, a.crs) == (b.bounds, b.shape, b.crs)
        np.testing.assert_array_equal(a.read(1), np.repeat(np.repeat(l2a.scl_10m()[4:30, 2:40], 2, 0), 2, 1))


def test_cli_bbox_lonlat_mask_and_scl(l2a, l1c, pkg, tmp_path, capsys):
    left, bottom, right, top = transform_bounds(
        l2a.crs, "EPSG:4326", l2a.transform.c + 100, l2a.transform.f - 500, l2a.transform.c + 500,
        l2a.transform.f - 100)
    out = tmp_path / "sr.tif"
    args = ["--quiet", "superres", str(l2a.path), str(out), "--model", str(pkg), "--threads", "1",
            "--bbox", str(left), str(bottom), str(right), str(top), "--bbox-crs", "EPSG:4326", "--mask-scl", "--scl"]
    assert cli(args) == 0, capsys.readouterr().err
    with rasterio.open(out) as s, rasterio.open(tmp_path / "sr_SCL.tif") as c:
        assert s.tags()["S2SR_SCL_MASK"] == "0,1,3,8,9,10" and s.bounds == c.bounds
        r0, r1, c0, c1 = (int(v) for v in s.tags()["S2SR_WINDOW"].split(","))
        assert 8 <= r0 <= 10 and 8 <= c0 <= 10 and 50 <= r1 <= 52 and 50 <= c1 <= 52  # rows, cols 10 .. 50
    bad = tmp_path / "l1c.tif"
    assert cli(["superres", str(l1c.path), str(bad), "--model", str(pkg), "--mask-scl"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Level-1C" in err[0] and str(l1c.path) in err[0]
    assert not bad.exists() and not scl_output_path(bad).exists()
    assert cli(["superres", str(l2a.path), str(bad), "--model", str(pkg), "--bbox", "0", "0", "1", "1"]) == 2
    assert "does not overlap" in capsys.readouterr().err and not bad.exists()
