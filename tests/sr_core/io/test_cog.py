"""sr_core.io.cog: overview levels built in bounded memory, and the COG assembled from them."""

from __future__ import annotations

import errno
import os
import re
import warnings

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from rasterio import shutil as rio_shutil  # noqa: E402
from rasterio.enums import Resampling  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402

from sr_core.io import GeoTiffWriter, cog  # noqa: E402

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


@pytest.mark.parametrize("dtype,nodata", [("uint16", 0), ("int16", -32768), ("uint8", 255)])
def test_average_halve_small_integers_exact(dtype, nodata):
    """2 x 2 blocks of 8/16-bit integers (computed in float32): the exact mean of the valid pixels of each
    block, rounded half up, for every count of valid pixels and values up to the dtype's limits."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(3)
    v = rng.integers(info.min, info.max, (4, 64, 64), endpoint=True).astype(dtype)
    v[rng.random(v.shape) < 0.4] = nodata
    v[0, :2, :2] = info.max if nodata != info.max else info.max - 1  # sums at the top of the range
    out = cog.average_halve(v, nodata)
    blocks = v.astype(np.int64).reshape(4, 32, 2, 32, 2)
    ok = blocks != nodata
    n = ok.sum(axis=(2, 4))
    total = np.where(ok, blocks, 0).sum(axis=(2, 4))
    expect = np.where(n > 0, (2 * total + n) // np.maximum(2 * n, 1), nodata)  # floor(total / n + 1 / 2)
    np.testing.assert_array_equal(out.astype(np.int64), expect)
    assert {1, 2, 3, 4} <= set(np.unique(n).tolist())


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


def _tiles(path, ifd):
    """The compressed bytes of every tile of one IFD of ``path``."""
    with open(path, "rb") as f:
        out = []
        for off, n in zip(ifd.offsets.tolist(), ifd.bytecounts.tolist()):
            f.seek(off)
            out.append(f.read(n))
    return out


def _valid_cog(path):
    cog_validate = pytest.importorskip("rio_cogeo.cogeo").cog_validate
    ok, errors, warnings = cog_validate(str(path), strict=True)
    return ok, errors, warnings


@pytest.mark.parametrize("dtype,nodata,compress", [("float32", NAN, "zstd"), ("uint16", 0, "deflate"),
                                                   ("int16", -1, "lzw")])
def test_assemble_cog_copies_the_tiles_and_matches_gdal(tmp_path, dtype, nodata, compress):
    v = _random((3, 128, 96), dtype, nodata, seed=5)  # even at every level: GDAL's sizes too
    opts = dict(compress=compress, predictor=3 if dtype == "float32" else 2)
    src = _write(tmp_path / "s.tif", v, nodata, **opts)
    levels = cog.build_overviews(src, blocksize=16, window=16, creation_options=opts)
    out = cog.assemble_cog(src, tmp_path / "ours.tif", levels)
    ref = tmp_path / "gdal.tif"
    rio_shutil.copy(src, ref, driver="COG", blocksize=16, overviews="AUTO", resampling="AVERAGE",
                    compress=compress, predictor="YES")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["s.tif", "ours.tif", "gdal.tif"]
                                                                  + [p.name for p in levels])  # nothing else left
    assert _valid_cog(out) == (True, [], [])
    with rasterio.open(out) as d, rasterio.open(src) as s, rasterio.open(ref) as g:
        assert d.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert d.block_shapes[0] == (16, 16) and d.overviews(1) == g.overviews(1) != []
        assert d.bounds == s.bounds and d.crs == s.crs and d.descriptions == s.descriptions
        assert d.tags()["S2SR_MODEL"] == "m" and d.tags(1)["BANDNAME"] == "B0"
        assert d.compression == s.compression
        assert d.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == s.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR")
        assert d.dtypes[0] == dtype and (d.nodata == nodata or (np.isnan(d.nodata) and np.isnan(nodata)))
        np.testing.assert_array_equal(d.read(), v)
    # byte for byte: the full resolution tiles are those of src, each level's those of its file
    ours = cog.read_tiff_ifds(out)
    assert len(ours) == 1 + len(levels)
    assert _tiles(out, ours[0]) == _tiles(src, cog.read_tiff_ifds(src)[0])
    for ifd, lvl in zip(ours[1:], levels):
        assert _tiles(out, ifd) == _tiles(lvl, cog.read_tiff_ifds(lvl)[0])
        assert 254 in ifd.tags and 34735 not in ifd.tags and 42112 not in ifd.tags  # reduced resolution, no georef
    for i, lvl in enumerate(levels):
        with rasterio.open(out, overview_level=i) as d, rasterio.open(lvl) as o, \
                rasterio.open(ref, overview_level=i) as g:
            got = d.read()
            np.testing.assert_array_equal(got, o.read())
            gdal = g.read()
        if np.dtype(dtype).kind == "f":  # GDAL's own generation: the same values up to float rounding
            np.testing.assert_allclose(got, gdal, rtol=1e-5, equal_nan=True)
        else:
            assert np.abs(got.astype(int) - gdal.astype(int)).max() <= 1


def test_assemble_cog_layout(tmp_path):
    """IFDs first, then the tiles coarsest level first; each tile preceded by its size and followed by its last
    4 bytes (GDAL's block leader and trailer)."""
    import struct

    v = _random((2, 100, 70), "float32", NAN, seed=8)
    src = _write(tmp_path / "s.tif", v, NAN, compress="zstd", predictor=3)
    levels = cog.build_overviews(src, blocksize=16, window=16, creation_options=dict(compress="zstd", predictor=3))
    out = cog.assemble_cog(src, tmp_path / "o.tif", levels)
    raw = out.read_bytes()
    assert raw[8:50].startswith(b"GDAL_STRUCTURAL_METADATA_SIZE=")
    ifds = cog.read_tiff_ifds(out)
    firsts = [int(i.offsets.min()) for i in ifds]
    assert firsts == sorted(firsts, reverse=True)  # full resolution last
    for i in ifds:
        assert (np.diff(i.offsets.astype(np.int64)) > 0).all()  # row-major, in order
        for off, n in zip(i.offsets.tolist(), i.bytecounts.tolist()):
            assert struct.unpack("<I", raw[off - 4 : off])[0] == n
            assert raw[off + n : off + n + 4] == raw[off + n - 4 : off + n]
    assert max(int(i.offsets.max() + i.bytecounts[i.offsets.argmax()]) for i in ifds) + 4 == len(raw)



@pytest.mark.parametrize("sparse", [False, True])
def test_assemble_cog_bytes_do_not_depend_on_the_copy_threads(tmp_path, sparse):
    """Each thread writes its own contiguous run of tiles: any number of threads makes the same file. Empty
    tiles (GDAL's sparse tiles: offset and size 0) stay empty, and the others keep GDAL's block leader and
    trailer, so GDAL still reads the file as a COG."""
    v = _random((2, 100, 70), "float32", NAN, seed=11)
    if sparse:
        v[:, :32, :32] = NAN  # whole blocks of nodata, not written with SPARSE_OK
    opts = dict(compress="zstd", predictor=3)
    src = _write(tmp_path / "s.tif", v, NAN, **opts, **({"sparse_ok": True} if sparse else {}))
    levels = cog.build_overviews(src, blocksize=16, window=16, creation_options=opts)
    assert (cog.read_tiff_ifds(src)[0].bytecounts == 0).any() == sparse
    outs = [cog.assemble_cog(src, tmp_path / f"o{t}.tif", levels, threads=t).read_bytes() for t in (1, 2, 3, 64)]
    assert all(o == outs[0] for o in outs[1:])
    assert b"BLOCK_LEADER=SIZE_AS_UINT4" in outs[0][:400]
    assert _valid_cog(tmp_path / "o3.tif") == (True, [], [])
    with rasterio.open(tmp_path / "o3.tif") as d:
        np.testing.assert_array_equal(d.read(), v)
        assert d.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads must be an integer >= 1"):
            cog.assemble_cog(src, tmp_path / "x.tif", levels, threads=bad)


def test_assemble_cog_truncated_source_is_an_error(tmp_path, monkeypatch):
    v = _random((3, 90, 75), "uint16", 0, seed=9)
    src = _write(tmp_path / "s.tif", v, 0, compress="zstd", predictor=2)
    levels = cog.build_overviews(src, blocksize=16, window=16, creation_options=dict(compress="zstd", predictor=2))
    # cut the source inside its last tile (after GDAL's IFD is read: GDAL writes it after the tiles)
    read = {str(p): cog.read_tiff_ifds(p) for p in [src, *levels]}
    monkeypatch.setattr(cog, "read_tiff_ifds", lambda p: read[str(p)])
    with open(src, "r+b") as f:
        f.truncate(int(read[str(src)][0].offsets.max()) + 2)
    with pytest.raises(ValueError, match="s.tif: tile at .* is truncated"):
        cog.assemble_cog(src, tmp_path / "cut.tif", levels)
    assert not (tmp_path / "cut.tif").exists() and not list(tmp_path.glob(".cut.tif*"))

def test_assemble_cog_bigtiff_either_way(tmp_path):
    v = _random((2, 64, 48), "uint16", 0, seed=9)
    src = _write(tmp_path / "s.tif", v, 0, compress="zstd", predictor=2, bigtiff="YES")
    levels = cog.build_overviews(src, blocksize=16, window=16, creation_options=dict(compress="zstd", predictor=2))
    for big in (None, True):
        out = cog.assemble_cog(src, tmp_path / f"o{big}.tif", levels, bigtiff=big)
        assert out.read_bytes()[2:4] == (b"\x2b\x00" if big else b"\x2a\x00")  # classic unless asked (or > 4 GiB)
        assert _valid_cog(out) == (True, [], [])
        with rasterio.open(out) as d:
            assert d.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            np.testing.assert_array_equal(d.read(), v)
            assert len(d.overviews(1)) == len(levels)


def test_assemble_cog_rejects_what_it_cannot_copy(tmp_path):
    v = _random((2, 64, 64), "float32", NAN, seed=2)
    src = _write(tmp_path / "s.tif", v, NAN, compress="zstd", predictor=3)
    other = cog.build_overviews(src, blocksize=16, window=16, creation_options=dict(compress="deflate"))
    with pytest.raises(ValueError, match=r"not encoded as those of .*tags \[259, 317\]"):
        cog.assemble_cog(src, tmp_path / "o.tif", other)
    striped = tmp_path / "striped.tif"
    with rasterio.open(striped, "w", driver="GTiff", width=64, height=64, count=1, dtype="uint8") as d:
        d.write(np.zeros((1, 64, 64), np.uint8))
    with pytest.raises(ValueError, match="not tiled"):
        cog.assemble_cog(striped, tmp_path / "o.tif")
    (tmp_path / "x.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(ValueError, match="not a TIFF"):
        cog.read_tiff_ifds(tmp_path / "x.tif")
    assert not (tmp_path / "o.tif").exists() and not list(tmp_path.glob(".o.tif*"))


def test_cog_validator_catches_a_non_cog(tmp_path):
    """The validator the tests trust rejects a tiled GeoTIFF whose overviews were added after its data."""
    v = _random((1, 128, 128), "float32", NAN, seed=4)
    src = _write(tmp_path / "s.tif", v, NAN)
    with rasterio.open(src, "r+") as d:
        d.build_overviews([2, 4], Resampling.average)
    ok, errors, _ = _valid_cog(src)
    assert not ok and errors


@pytest.mark.parametrize("shape", [(64, 48), (40, 96)])
def test_halving_writer_windows_equal_whole(tmp_path, shape):
    v = _random((3, *shape), "float32", NAN, seed=6)
    hw = cog.HalvingWriter(tmp_path / "l1.tif", height=shape[0], width=shape[1], count=3, dtype="float32",
                           nodata=NAN, blocksize=16, creation_options=dict(compress="zstd", predictor=3))
    for r0 in range(0, shape[0], 32):  # windows of 32 x 16 px, in any order
        for c0 in range(shape[1] - 16, -1, -16):
            r1, c1 = min(r0 + 32, shape[0]), c0 + 16
            hw.write(v[:, r0:r1, c0:c1], (r0, r1, c0, c1))
    with pytest.raises(ValueError, match="odd edge"):
        hw.write(v[:, :3, :4], (0, 3, 0, 4))
    path = hw.close()
    with rasterio.open(path) as d:
        assert d.shape == (shape[0] // 2, shape[1] // 2) and d.block_shapes[0] == (16, 16)
        assert d.crs is None and d.transform.is_identity  # no georeferencing asked for
        np.testing.assert_allclose(d.read(), cog.average_halve(v, NAN), rtol=1e-6, equal_nan=True)
    with pytest.raises(ValueError, match="even height and width"):
        cog.HalvingWriter(tmp_path / "x.tif", height=31, width=32, count=1, dtype="uint8", nodata=0, blocksize=16)
    # georeferenced: the raster's bounds, pixels twice as large
    t = from_origin(300000, 5000000, 5, 5)
    geo = cog.HalvingWriter(tmp_path / "g.tif", height=shape[0], width=shape[1], count=3, dtype="float32",
                            nodata=NAN, blocksize=16, transform=t, crs="EPSG:32631")
    geo.write(v, (0, shape[0], 0, shape[1]))
    with rasterio.open(geo.close()) as d:
        assert d.crs == "EPSG:32631" and d.transform == from_origin(300000, 5000000, 10, 10)
        assert tuple(d.bounds) == rasterio.transform.array_bounds(shape[0], shape[1], t)


def test_geotiff_writer_cog_leaves_no_scratch_files(tmp_path, monkeypatch):
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
    monkeypatch.setattr(cog, "assemble_cog", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk full")))
    wr = GeoTiffWriter(tmp_path / "bad.tif", **kw)
    wr.write(v, (0, 70, 0, 45))
    with pytest.raises(RuntimeError, match="disk full"):
        wr.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]


@pytest.mark.parametrize("windows,made_from", [
    ([(0, 32, 0, 64), (0, 32, 64, 96), (32, 64, 0, 96)], r"/\.out\.tif\.[0-9a-f]{8}\.ovr3\.part$"),  # 3 levels streamed
    ([(0, 36, 0, 96), (36, 64, 0, 96)], r"/\.out\.tif\.[0-9a-f]{8}\.ovr2\.part$"),  # level 3 windows: odd edge
    ([(0, 31, 0, 96), (31, 64, 0, 96)], r"/\.out\.tif\.[0-9a-f]{8}\.part$"),  # an odd edge: all from the raster
])
def test_geotiff_writer_cog_levels_streamed_or_not(tmp_path, monkeypatch, windows, made_from):
    v = _random((2, 64, 96), "uint16", 0, seed=11)
    sources = []
    real = cog.build_overviews

    def spy(path, **k):
        sources.append(str(path))
        return real(path, **k)

    monkeypatch.setattr(cog, "build_overviews", spy)
    kw = dict(height=64, width=96, transform=from_origin(0, 64, 1, 1), crs="EPSG:32631", dtype="uint16",
              nodata=0, band_names=["B02", "B03"], cog=True, blocksize=16, compress="deflate")
    with warnings.catch_warnings():  # the streamed level files are georeferenced: rasterio does not warn on them
        warnings.simplefilter("error", rasterio.errors.NotGeoreferencedWarning)
        with GeoTiffWriter(tmp_path / "out.tif", **kw) as wr:
            for r0, r1, c0, c1 in windows:
                wr.write(v[:, r0:r1, c0:c1], (r0, r1, c0, c1))
    assert len(sources) == 1 and re.search(made_from, sources[0]), sources
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]
    assert _valid_cog(tmp_path / "out.tif") == (True, [], [])
    with rasterio.open(tmp_path / "out.tif") as d:
        assert d.compression.name == "deflate" and d.descriptions == ("B02", "B03") and d.nodata == 0
        np.testing.assert_array_equal(d.read(), v)
    expect = v
    for i in range(len(cog.overview_shapes(64, 96, 16))):
        expect = cog.average_halve(expect, 0)
        with rasterio.open(tmp_path / "out.tif", overview_level=i) as o:
            np.testing.assert_array_equal(o.read(), expect)


def test_check_tiles_complete_catches_a_file_cut_short(tmp_path):
    v = _random((2, 40, 50), "uint16", 0, seed=5)
    src = _write(tmp_path / "src.tif", v, 0, compress="deflate")
    ifds = cog.check_tiles_complete(src)
    assert len(ifds) == 1 and len(ifds[0].offsets) == 3 * 4
    data = src.read_bytes()
    end = int((ifds[0].offsets + ifds[0].bytecounts).max())
    for cut in (end - 1, len(data) - 2, 20, 9):  # the last tile, the directory (written last), the header
        (tmp_path / "cut.tif").write_bytes(data[:cut])
        with pytest.raises(cog.IncompleteTiffError):
            cog.check_tiles_complete(tmp_path / "cut.tif")
    # tiles never written (GDAL's SPARSE_OK): an error unless sparse files are expected
    with rasterio.open(tmp_path / "sparse.tif", "w", driver="GTiff", width=64, height=64, count=1, dtype="uint8",
                       crs="EPSG:32631", transform=from_origin(0, 64, 1, 1), tiled=True, blockxsize=16,
                       blockysize=16, sparse_ok=True) as d:
        d.write(np.ones((1, 16, 16), np.uint8), window=rasterio.windows.Window(0, 0, 16, 16))
    with pytest.raises(cog.IncompleteTiffError, match="15 of 16 tiles never written"):
        cog.check_tiles_complete(tmp_path / "sparse.tif")
    assert len(cog.check_tiles_complete(tmp_path / "sparse.tif", sparse=True)[0].offsets) == 16


def test_assemble_cog_replaces_dst_only_when_complete(tmp_path, monkeypatch):
    v = _random((2, 64, 64), "float32", NAN, seed=6)
    src = _write(tmp_path / "src.tif", v, NAN)
    levels = cog.build_overviews(src, blocksize=16)
    dst = tmp_path / "out" / "cog.tif"
    dst.parent.mkdir()
    dst.write_bytes(b"old")
    real = cog._copy_tiles

    def full(dst_tmp, *a, **k):
        assert dst.read_bytes() == b"old"  # the old file is there while the new one is written
        real(dst_tmp, *a, **k)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cog, "_copy_tiles", full)
    with pytest.raises(OSError, match="No space left"):
        cog.assemble_cog(src, dst, levels)
    assert os.listdir(dst.parent) == ["cog.tif"] and dst.read_bytes() == b"old"
    monkeypatch.setattr(cog, "_copy_tiles", real)
    assert cog.assemble_cog(src, dst, levels) == dst and os.listdir(dst.parent) == ["cog.tif"]
    with rasterio.open(dst) as d:
        np.testing.assert_array_equal(d.read(), v)
