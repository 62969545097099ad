"""sr_core.io.geotiff: read_geotiff and GeoTiffSource (the same files read window by window)."""

from __future__ import annotations

import re

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
xr = pytest.importorskip("xarray")
pytest.importorskip("rioxarray")

from sr_core.io import GeoTiffSource, read_geotiff  # noqa: E402
from sr_core.radiometry import dn_to_reflectance  # noqa: E402
from tests.sr_core.io.raster_utils import EPSG, T10, TAGS, rand_dn, write_tif  # noqa: E402


def test_read_geotiff_refuses_missing_scale_and_accepts_explicit(tmp_path):
    dn = rand_dn(np.random.default_rng(1), (2, 6, 5))
    p = write_tif(tmp_path / "noscale.tif", dn, ("B04", "B8A"), T10)
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
    p2 = write_tif(tmp_path / "tagged.tif", dn, ("B04", "B8A"), T10, tags=TAGS)
    np.testing.assert_array_equal(read_geotiff(p2, dn_scale=10000).values, da.values)
    with pytest.raises(ValueError, match="contradicts"):
        read_geotiff(p2, dn_scale=1000)


def test_read_geotiff_add_offset_path(tmp_path):
    dn = rand_dn(np.random.default_rng(2), (3, 4, 4), lo=0, hi=20000)
    p = write_tif(
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
    dn = rand_dn(np.random.default_rng(4), (2, 4, 4))
    p = write_tif(tmp_path / "bad.tif", dn, ("B02", "B13"), T10, tags=TAGS)
    with pytest.raises(ValueError, match=r"bad\.tif.*band 2.*'B13'"):
        read_geotiff(p)
    p = write_tif(tmp_path / "tagsonly.tif", dn, ("b8a", "B2"), T10, tags=TAGS, descriptions=False)
    assert list(read_geotiff(p).bands.values) == ["B8A", "B02"]
    p = write_tif(tmp_path / "unnamed.tif", dn, (None, None), T10, tags=TAGS)
    with pytest.raises(ValueError, match="band 1 has neither"):
        read_geotiff(p)
    assert list(read_geotiff(p, bands=["B11", "B12"]).bands.values) == ["B11", "B12"]
    p = write_tif(tmp_path / "dup.tif", dn, ("B02", "b2"), T10, tags=TAGS)
    with pytest.raises(ValueError, match="duplicate"):
        read_geotiff(p)


def test_read_geotiff_nodata_to_nan(tmp_path):
    dn = rand_dn(np.random.default_rng(5), (2, 5, 5))
    dn[0, 1, 1] = 65535
    dn[1, 4, 2] = 65535
    p = write_tif(tmp_path / "nd.tif", dn, ("B05", "B06"), T10, tags=TAGS, nodata=65535)
    v = read_geotiff(p).values
    assert np.isnan(v).sum() == 2 and np.isnan(v[0, 1, 1]) and np.isnan(v[1, 4, 2])
    np.testing.assert_array_equal(v[dn != 65535], (dn[dn != 65535] / 10000.0).astype(np.float32))
    fl = np.array([[[0.5, np.nan], [1.5, -9999.0]]], dtype=np.float32)
    p = write_tif(tmp_path / "ndf.tif", fl, ("B02",), T10, tags=TAGS, nodata=-9999.0)
    v = read_geotiff(p).values
    assert np.isnan(v).tolist() == [[[False, True], [False, True]]]
    assert v[0, 0, 0] == np.float32(0.5 / 10000) and v[0, 1, 0] == np.float32(1.5 / 10000)


def test_geotiff_source_reads_what_read_geotiff_reads(tmp_path):
    """Whole-array reader == windowed source: band names, grid, DN convention and values (nodata as NaN), for
    the whole raster and for a window of some bands; labels that are not Sentinel-2 bands: refused by the
    reader, ignored by the source."""
    dn = rand_dn(np.random.default_rng(8), (3, 9, 7))
    dn[1, 2, 3] = 65535
    tags = {**TAGS, "ADD_OFFSET": "-1000"}
    p = write_tif(tmp_path / "w.tif", dn, ("B04", "b8a", "B02"), T10, tags=tags, nodata=65535)
    whole = read_geotiff(p)
    with GeoTiffSource(p) as src:
        assert src.bands == tuple(whole.bands.values) == ("B04", "B8A", "B02")
        assert (src.dn_scale, src.add_offset) == (whole.attrs["dn_scale"], whole.attrs["add_offset"]) == (
            10000.0,
            -1000.0,
        )
        assert src.transform == tuple(whole.rio.transform())[:6] and src.crs == whole.rio.crs.to_string()
        assert src.tags == {"PRODUCT_LEVEL": "L2A", "SCENE_ID": "tmp"}
        refl = dn_to_reflectance(src.read(src.bands, (0, 9, 0, 7)), dn_scale=10000.0, add_offset=-1000.0)
        np.testing.assert_array_equal(refl, whole.values)  # NaN at the same pixel
        part = dn_to_reflectance(src.read(["B02", "B04"], (2, 6, 1, 5)), dn_scale=10000.0, add_offset=-1000.0)
        np.testing.assert_array_equal(part, whole.sel(bands=["B02", "B04"]).values[:, 2:6, 1:5])
    assert np.isnan(whole.values[1, 2, 3])
    extra = write_tif(tmp_path / "scl.tif", dn, ("B04", "SCL", "B02"), T10, tags=TAGS)
    with pytest.raises(ValueError, match=r"band 2 is named 'SCL'"):
        read_geotiff(extra)
    with GeoTiffSource(extra) as src:
        assert src.labels == ("B04", None, "B02") and src.bands == ("B04", "B02")
        np.testing.assert_array_equal(src.read(["B02"], (0, 9, 0, 7)), dn[2:].astype(np.float32))


def _broken_tifs(tmp_path):
    """A valid tiled GeoTIFF (directory first, as in a COG) and broken ones: empty, text, cut before its
    directory, cut in its pixel data."""
    from rasterio.shutil import copy as rio_copy

    dn = rand_dn(np.random.default_rng(9), (2, 64, 64))
    plain = write_tif(tmp_path / "plain.tif", dn, ("B02", "B03"), T10, tags=TAGS)
    good = tmp_path / "good.tif"
    rio_copy(plain, good, driver="COG", compress="deflate", blocksize=16)
    data, pdata = good.read_bytes(), plain.read_bytes()
    broken = {
        "empty.tif": b"",
        "text.tif": b"hello, not a raster\n",
        "cut_directory.tif": pdata[: len(pdata) // 2],  # GDAL's plain GeoTIFF: directory at the end
        "cut_pixels.tif": data[: len(data) // 2],  # directory at the start: opens, its pixels do not read
    }
    for name, b in broken.items():
        (tmp_path / name).write_bytes(b)
    return good, {name: tmp_path / name for name in broken}


def test_unreadable_geotiffs_are_value_errors_naming_the_file(tmp_path):
    good, broken = _broken_tifs(tmp_path)
    assert read_geotiff(good).shape == (2, 64, 64)
    for name, p in broken.items():
        head = rf"^{re.escape(str(p))}: "
        with pytest.raises(ValueError, match=head + "(empty file|cannot read it as a GeoTIFF)") as err:
            read_geotiff(p)
        assert "\n" not in str(err.value)
        if name == "cut_pixels.tif":  # the source opens; its windows do not read
            with GeoTiffSource(p) as src:
                src.read(["B02"], (0, 16, 0, 16))  # the first blocks are intact
                with pytest.raises(ValueError, match=head + "cannot read it as a GeoTIFF .*IReadBlock failed"):
                    src.read(["B02", "B03"], (0, 64, 0, 64))
        else:
            with pytest.raises(ValueError, match=head + "(empty file|cannot read it as a GeoTIFF)"):
                GeoTiffSource(p)
    with pytest.raises(ValueError, match=r"empty\.tif: empty file \(0 bytes\), not a GeoTIFF"):
        read_geotiff(broken["empty.tif"])
