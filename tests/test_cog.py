"""sr_core.cog: overview levels built in bounded memory, and the COG assembled from them."""

from __future__ import annotations

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from rasterio import shutil as rio_shutil  # noqa: E402
from rasterio.enums import Resampling  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402

from sr_core import cog  # noqa: E402

NAN = float("nan")


def _write(path, values, nodata, blocksize=16, **extra):
    c, h, w = values.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=w, height=h, count=c, dtype=values.dtype.name, nodata=nodata,
        crs="EPSG:32631", transform=from_origin(300000, 5000000, 5, 5), tiled=True, blockxsize=blocksize,
        blockysize=blocksize, **extra,
    ) as d:
        d.write(values)
        d.descriptions = tuple(f"B{i}" for i in range(c))
        d.update_tags(S2SR_MODEL="m", DN_SCALE="10000")
        d.update_tags(1, BANDNAME="B0")
    return path


def _gdal_level(path, values, nodata):
    """GDAL's own AVERAGE overview (factor 2) of ``values``: the reference."""
    c, h, w = values.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=c, dtype=values.dtype.name,
                       nodata=nodata, crs="EPSG:32631", transform=from_origin(0, 0, 1, 1)) as d:
        d.write(values)
    with rasterio.open(path, "r+") as d:
        d.build_overviews([2], Resampling.average)
    with rasterio.open(path, overview_level=0) as d:
        return d.read()


def _random(shape, dtype, nodata, seed=0, frac=0.3):
    rng = np.random.default_rng(seed)
    v = (rng.random(shape) * 1000 + 1).astype(dtype)
    if nodata is not None:
        v[rng.random(shape) < frac] = nodata
        v[..., :3, :3] = nodata  # whole 2 x 2 blocks of nodata
    return v


# ------------------------------------------------------------------------------------------------ weights


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 10, 37, 255, 10980])
def test_halving_weights_partition_the_axis(n):
    idx, wt = cog.halving_weights(n)
    m = -(-n // 2)
    assert idx.shape == wt.shape == (m, 3)
    assert idx.min() >= 0 and idx.max() == n - 1
    np.testing.assert_allclose(wt.sum(axis=1), n / m)  # each overview pixel covers n / m source pixels
    per_source = np.zeros(n)
    np.add.at(per_source, idx.ravel(), wt.ravel())
    np.testing.assert_allclose(per_source, 1.0)  # and every source pixel is used exactly once in all
    np.testing.assert_array_equal(idx[:, 0], (np.arange(m) * n) // m)  # starts where the interval starts
    assert (np.diff(idx[:, 0]) >= 0).all()
    if n % 2 == 0:
        np.testing.assert_array_equal(idx[:, :2], np.stack([2 * np.arange(m), 2 * np.arange(m) + 1], 1))
        np.testing.assert_array_equal(wt, np.tile([1.0, 1.0, 0.0], (m, 1)))


def test_overview_shapes_match_gdal_auto(tmp_path):
    assert cog.overview_shapes(10980, 10980, 256) == [(5490, 5490), (2745, 2745), (1373, 1373), (687, 687),
                                                     (344, 344), (172, 172)]
    assert cog.overview_shapes(256, 100, 256) == []
    assert cog.overview_shapes(257, 3, 256) == [(129, 2)]
    with pytest.raises(ValueError, match="height"):
        cog.overview_shapes(0, 5, 256)
    # sizes rounded up, as GDAL's BuildOverviews (gdaladdo) makes them; as many levels as GDAL's COG driver
    # (OVERVIEWS=AUTO) makes, which rounds down: (35, 16), (17, 8), (8, 4) here
    src = _write(tmp_path / "s.tif", np.zeros((1, 70, 33), np.float32), NAN)
    out = tmp_path / "gdal_cog.tif"
    rio_shutil.copy(src, out, driver="COG", blocksize=16, overviews="AUTO")
    with rasterio.open(out) as d:
        assert len(d.overviews(1)) == len(cog.overview_shapes(70, 33, 16)) == 3
    with rasterio.open(src, "r+") as d:
        d.build_overviews([2, 4, 8], Resampling.average)
    shapes = []
    for i in range(3):
        with rasterio.open(src, overview_level=i) as d:
            shapes.append(d.shape)
    assert shapes == cog.overview_shapes(70, 33, 16)


# ------------------------------------------------------------------------------------------------ average


def test_average_halve_closed_forms():
    v = np.arange(2 * 4 * 6, dtype=np.float32).reshape(2, 4, 6)
    np.testing.assert_array_equal(cog.average_halve(v, NAN), v.reshape(2, 2, 2, 3, 2).mean(axis=(2, 4)))
    const = np.full((3, 7, 9), 1234.0, np.float32)
    np.testing.assert_allclose(cog.average_halve(const, NAN), np.full((3, 4, 5), 1234.0), rtol=1e-6)
    # odd axis: 3 pixels -> 2, each covering 1.5 source pixels
    a = np.array([[0.0, 10.0, 20.0]], np.float64)
    np.testing.assert_allclose(cog.average_halve(a, None), [[(0 + 0.5 * 10) / 1.5, (0.5 * 10 + 20) / 1.5]])
    # nodata: excluded from the mean; all-nodata block -> nodata
    b = np.array([[[1.0, NAN], [3.0, NAN]]], np.float32)
    np.testing.assert_array_equal(cog.average_halve(b, NAN), [[[2.0]]])
    assert np.isnan(cog.average_halve(np.full((1, 2, 2), NAN, np.float32), NAN)).all()
    c = np.array([[[-9999.0, -9999.0], [-9999.0, -9999.0]]], np.float32)
    np.testing.assert_array_equal(cog.average_halve(c, -9999.0), c[:, :1, :1])
    # integers: rounded half up, nodata kept
    i = np.array([[[1, 2], [2, 2]], [[0, 0], [0, 0]], [[0, 5], [0, 0]]], np.uint16).reshape(3, 2, 2)
    np.testing.assert_array_equal(cog.average_halve(i, 0)[:, 0, 0], [2, 0, 5])  # 1.75 -> 2


@pytest.mark.parametrize("dtype,nodata", [("float32", NAN), ("float32", -9999.0), ("uint16", 0), ("int16", -1)])
@pytest.mark.parametrize("shape", [(36, 50), (37, 51), (5, 4), (3, 1)])
def test_average_halve_matches_gdal_average(tmp_path, dtype, nodata, shape):
    v = _random((3, *shape), dtype, nodata)
    ref = _gdal_level(tmp_path / "ref.tif", v, nodata)
    out = cog.average_halve(v, nodata)
    assert out.dtype == v.dtype and out.shape == ref.shape
    if np.dtype(dtype).kind == "f":
        np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
        np.testing.assert_allclose(out, ref, rtol=1e-6, equal_nan=True)
    else:  # rounding of x.5 may differ by the float summation order
        assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
        np.testing.assert_array_equal(out == nodata, ref == nodata)


def test_average_halve_errors():
    with pytest.raises(ValueError, match="shape"):
        cog.average_halve(np.zeros(5), NAN)
    with pytest.raises(ValueError, match="dtype"):
        cog.average_halve(np.zeros((2, 2), bool), None)
    with pytest.raises(ValueError, match="NaN for integer"):
        cog.average_halve(np.zeros((2, 2), np.uint16), NAN)
    idx, wt = cog.halving_weights(8)
    with pytest.raises(ValueError, match="outside"):
        cog.average_halve(np.zeros((4, 4), np.float32), NAN, rows=(idx, wt))


# ------------------------------------------------------------------------------------------------ levels, COG


@pytest.mark.parametrize("shape", [(150, 97), (64, 64)])
def test_build_overviews_windowed_equals_whole(tmp_path, shape, monkeypatch):
    v = _random((4, *shape), "float32", NAN, seed=3)
    src = _write(tmp_path / "s.tif", v, NAN, compress="zstd")
    seen = []
    real = cog.average_halve

    def spy(values, *a, **k):
        seen.append(values.shape[-2:])
        return real(values, *a, **k)

    monkeypatch.setattr(cog, "average_halve", spy)
    levels = cog.build_overviews(src, blocksize=16, window=16, threads=2, creation_options={"compress": "zstd"})
    assert [p.name for p in levels] == [f"s.tif.ovr{k}" for k in range(1, len(levels) + 1)]
    assert max(max(s) for s in seen) <= 2 * 16 + 2  # every read is one window, whatever the raster size
    expect = v
    for lvl, (h, w) in zip(levels, cog.overview_shapes(*shape, 16)):
        expect = real(expect, NAN)
        with rasterio.open(lvl) as d, rasterio.open(src) as s:
            assert d.shape == (h, w) and d.nodata is not None and np.isnan(d.nodata)
            assert d.bounds == pytest.approx(s.bounds) and d.crs == s.crs
            got = d.read()
        np.testing.assert_allclose(got, expect, rtol=1e-6, equal_nan=True)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expect))
    with pytest.raises(ValueError, match="multiple of blocksize"):
        cog.build_overviews(src, blocksize=16, window=24)


def test_build_overviews_removes_levels_on_error(tmp_path, monkeypatch):
    src = _write(tmp_path / "s.tif", _random((2, 80, 80), "float32", NAN), NAN)

    def boom(values, *a, **k):
        if values.shape[-1] < 40:  # fail on the second level
            raise RuntimeError("boom")
        return np.zeros((values.shape[0], -(-values.shape[1] // 2), -(-values.shape[2] // 2)), np.float32)

    monkeypatch.setattr(cog, "average_halve", boom)
    with pytest.raises(RuntimeError, match="boom"):
        cog.build_overviews(src, blocksize=16, window=16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.tif"]


@pytest.mark.parametrize("dtype,nodata", [("float32", NAN), ("uint16", 0)])
def test_write_cog_copies_our_levels_and_matches_gdal(tmp_path, dtype, nodata):
    v = _random((3, 128, 96), dtype, nodata, seed=5)  # even at every level: GDAL's sizes too
    src = _write(tmp_path / "s.tif", v, nodata)
    levels = cog.build_overviews(src, blocksize=16, window=16)
    opts = {"compress": "ZSTD", "predictor": "YES", "level": 1}
    out = cog.write_cog(src, tmp_path / "ours.tif", levels, blocksize=16, creation_options=opts)
    ref = tmp_path / "gdal.tif"
    rio_shutil.copy(src, ref, driver="COG", blocksize=16, overviews="AUTO", resampling="AVERAGE", **opts)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["s.tif", "ours.tif", "gdal.tif"]
                                                                  + [p.name for p in levels])  # no VRT left
    with rasterio.open(out) as d, rasterio.open(src) as s, rasterio.open(ref) as g:
        assert d.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert d.block_shapes[0] == (16, 16) and d.overviews(1) == g.overviews(1) != []
        assert d.bounds == s.bounds and d.crs == s.crs and d.descriptions == s.descriptions
        assert d.tags()["S2SR_MODEL"] == "m" and d.tags(1)["BANDNAME"] == "B0"
        assert d.dtypes[0] == dtype and (d.nodata == nodata or (np.isnan(d.nodata) and np.isnan(nodata)))
        np.testing.assert_array_equal(d.read(), v)
    for i, lvl in enumerate(levels):
        with rasterio.open(out, overview_level=i) as d, rasterio.open(lvl) as o, \
                rasterio.open(ref, overview_level=i) as g:
            got = d.read()
            np.testing.assert_array_equal(got, o.read())  # copied, not regenerated
            gdal = g.read()
        if np.dtype(dtype).kind == "f":  # GDAL's own generation: the same values up to float rounding
            np.testing.assert_allclose(got, gdal, rtol=1e-5, equal_nan=True)
        else:
            assert np.abs(got.astype(int) - gdal.astype(int)).max() <= 1


def test_geotiff_writer_cog_leaves_no_scratch_files(tmp_path, monkeypatch):
    from sr_core.superres import GeoTiffWriter

    v = _random((3, 70, 45), "float32", NAN, seed=7)
    kw = dict(height=70, width=45, transform=from_origin(0, 70, 1, 1), crs="EPSG:32631", dtype="float32",
              nodata=NAN, band_names=["B02", "B03", "B04"], tags={"S2SR_MODEL": "m"}, cog=True, blocksize=16)
    with GeoTiffWriter(tmp_path / "out.tif", **kw) as wr:
        wr.write(v[:, :32], (0, 32, 0, 45))
        wr.write(v[:, 32:], (32, 70, 0, 45))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]
    with rasterio.open(tmp_path / "out.tif") as d:
        assert d.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and d.descriptions == ("B02", "B03", "B04")
        np.testing.assert_array_equal(d.read(), v)
        assert len(d.overviews(1)) == len(cog.overview_shapes(70, 45, 16))
        with rasterio.open(tmp_path / "out.tif", overview_level=0) as o:
            np.testing.assert_allclose(o.read(), cog.average_halve(v, NAN), rtol=1e-6, equal_nan=True)
    # a failure while assembling the COG removes every scratch file, and no output appears
    monkeypatch.setattr(cog, "write_cog", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk full")))
    wr = GeoTiffWriter(tmp_path / "bad.tif", **kw)
    wr.write(v, (0, 70, 0, 45))
    with pytest.raises(RuntimeError, match="disk full"):
        wr.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]
