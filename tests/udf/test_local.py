"""The local apply_neighborhood emulator (udf/local.py): hand-computed chunking, crop, parallel and on-disk runs,
chunked == whole for the super-resolution UDF, parity with openeo's execute_local_udf."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from sr_core.inference import cube as sc
from udf.contract import udf_apply
from udf.local import apply_neighborhood_local, parse_neighborhood, resample_spatial_local
from udf.testing import make_package, nearest_resample, random_s2_cube

UDF_FILE = Path(__file__).resolve().parents[2] / "udf" / "sr_udf.py"
DN = 10000.0
pytestmark = pytest.mark.filterwarnings("ignore::sr_core.inference.cube.TilingWarning")  # tiny chunks on purpose

MEAN_UDF = """
import numpy as np
import xarray
def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    return xarray.full_like(cube, float(np.nanmean(cube.values)))
"""

# value = x coordinate of the chunk's first column, + 1000 * its first y coordinate; checks dims/dtype too
COORD_UDF = """
import numpy as np
import xarray
def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    assert cube.dtype == np.float32, cube.dtype
    assert cube.dims == tuple(context["dims"]), cube.dims
    return xarray.full_like(cube, float(cube.x.values[0]) + 1000 * float(cube.y.values[0]))
"""

REPEAT_UDF = """
import numpy as np
import xarray
def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    v = np.repeat(np.repeat(cube.values, 2, axis=-1), 2, axis=-2) + 0.5
    return xarray.DataArray(v, dims=cube.dims, coords={"bands": cube.bands.values})
"""


@pytest.fixture(scope="session")
def pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("local_models") / "tiny-edsr-x2"
    make_package(folder, arch="edsr", seed=2)
    return folder


@pytest.fixture(autouse=True)
def _fresh_warnings():
    sc.reset_warnings()
    yield


def tiny() -> xr.DataArray:
    a = np.arange(8, dtype=np.float32).reshape(1, 2, 4)
    return xr.DataArray(a, dims=("bands", "y", "x"), coords={"bands": ["B02"], "y": [15.0, 5.0], "x": [5.0, 15.0, 25.0, 35.0]})


def test_hand_computed_window_means():
    """2x4 cube, size 2, overlap 1: chunk (0,0) sees rows -1..2, cols -1..2 -> {0,1,2,4,5,6}, mean 3;
    chunk (0,1) sees cols 1..4 -> {1,2,3,5,6,7}, mean 4; the NaN padding is not counted."""
    out = apply_neighborhood_local(tiny(), MEAN_UDF, size=2, overlap=1)
    np.testing.assert_array_equal(out.values, [[[3, 3, 4, 4], [3, 3, 4, 4]]])
    assert out.dtype == np.float32 and out.dims == ("bands", "y", "x")
    # without overlap each 2x2 block sees only itself: means 2.5 and 4.5
    out = apply_neighborhood_local(tiny(), MEAN_UDF, size=2)
    np.testing.assert_array_equal(out.values, [[[2.5, 2.5, 4.5, 4.5], [2.5, 2.5, 4.5, 4.5]]])
    # size 3 on a 2x4 cube: the last block sticks out and is NaN-padded; means of cols 0..3 and 2..3 (+ overlap)
    out = apply_neighborhood_local(tiny(), MEAN_UDF, size={"x": 3, "y": 2}, overlap={"x": 0, "y": 0})
    np.testing.assert_array_equal(out.values, [[[3, 3, 3, 5], [3, 3, 3, 5]]])


def test_chunk_coordinates_continue_into_the_padding_and_dims_come_in_backend_order():
    da = random_s2_cube(5, 7, dates=2, extra=(), seed=1, x0=100.0, y0=900.0).astype(np.int16)
    da = da.transpose("x", "t", "y", "bands")  # the back-end hands (t, bands, y, x) whatever the cube order
    out = apply_neighborhood_local(da, COORD_UDF, size=3, overlap=1, context={"dims": ["t", "bands", "y", "x"]})
    assert out.dims == ("t", "bands", "y", "x") and out.shape == (2, 10, 5, 7)
    # block (i, j) covers rows 3i..3i+2, cols 3j..3j+2; its window starts one pixel before
    x_first = {0: 100 + 10 * (-1 + 0.5), 1: 100 + 10 * (2 + 0.5), 2: 100 + 10 * (5 + 0.5)}
    y_first = {0: 900 - 10 * (-1 + 0.5), 1: 900 - 10 * (2 + 0.5)}
    expect = np.empty((5, 7))
    for r in range(5):
        for c in range(7):
            expect[r, c] = x_first[c // 3] + 1000 * y_first[r // 3]
    np.testing.assert_allclose(out.values[1, 4], expect)
    np.testing.assert_array_equal(out.t.values, np.sort(da.t.values))


def test_resolution_change_is_cropped_and_rescaled_like_geopyspark():
    out = apply_neighborhood_local(tiny(), REPEAT_UDF, size=2, overlap=1, runtime="Python-Jep")
    np.testing.assert_array_equal(out.values[0], np.repeat(np.repeat(tiny().values[0], 2, 0), 2, 1) + 0.5)
    np.testing.assert_allclose(out.x.values, [2.5, 7.5, 12.5, 17.5, 22.5, 27.5, 32.5, 37.5])
    np.testing.assert_allclose(out.y.values, [17.5, 12.5, 7.5, 2.5])
    with pytest.raises(ValueError, match="only runtime 'Python-Jep'"):
        apply_neighborhood_local(tiny(), REPEAT_UDF, size=2, overlap=1)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="size for x and y must be an integer >= 1"):
        apply_neighborhood_local(tiny(), MEAN_UDF, size=0)
    with pytest.raises(ValueError, match="overlap for x and y must be an integer >= 0"):
        apply_neighborhood_local(tiny(), MEAN_UDF, size=2, overlap=-1)
    with pytest.raises(ValueError, match="unknown"):
        apply_neighborhood_local(tiny().rename(bands="band"), MEAN_UDF, size=2)
    with pytest.raises(ValueError, match="runtime must be one of"):
        apply_neighborhood_local(tiny(), MEAN_UDF, size=2, runtime="R")
    assert parse_neighborhood(
        [{"dimension": "x", "value": 64, "unit": "px"}, {"dimension": "y", "value": 32, "unit": "px"},
         {"dimension": "t", "value": None}], "size", minimum=1) == (32, 64)
    with pytest.raises(ValueError, match="pixels"):
        parse_neighborhood([{"dimension": "x", "value": 64, "unit": "m"}], "size", minimum=1)


def test_streaming_to_netcdf_and_process_scheduler_give_the_same_result(tmp_path):
    da = random_s2_cube(9, 11, dates=2, extra=(), seed=3)
    ref = apply_neighborhood_local(da, REPEAT_UDF, size=4, overlap=2, runtime="Python-Jep", scheduler="synchronous")
    disk = apply_neighborhood_local(da, REPEAT_UDF, size=4, overlap=2, runtime="Python-Jep", max_pending=1,
                                    out_path=tmp_path / "out.nc")
    assert (tmp_path / "out.nc").is_file()
    np.testing.assert_array_equal(disk.values, ref.values)
    np.testing.assert_array_equal(disk.t.values, ref.t.values)
    assert list(disk.bands.values) == list(ref.bands.values)
    proc = apply_neighborhood_local(da, REPEAT_UDF, size=4, overlap=2, runtime="Python-Jep", scheduler="processes",
                                    num_workers=2)
    np.testing.assert_array_equal(proc.values, ref.values)


@pytest.mark.parametrize("workers, pending", [(1, 1), (2, None), (3, 2)])
def test_thread_workers_in_a_rolling_window_give_the_synchronous_result(tmp_path, workers, pending):
    # 3 x 3 chunks; with more chunks than the rolling window, chunks finish out of order on the workers but
    # are placed by their block position
    da = random_s2_cube(11, 12, dates=2, extra=(), seed=5)
    ref = apply_neighborhood_local(da, REPEAT_UDF, size=4, overlap=2, runtime="Python-Jep", scheduler="synchronous")
    par = apply_neighborhood_local(da, REPEAT_UDF, size=4, overlap=2, runtime="Python-Jep", scheduler="threads",
                                   num_workers=workers, max_pending=pending, out_path=tmp_path / "out.nc")
    np.testing.assert_array_equal(par.values, ref.values)
    assert list(par.bands.values) == list(ref.bands.values)


def test_a_failing_chunk_stops_the_run_with_its_error():
    calls = []

    def udf(cube, context):
        calls.append(float(cube.x.values[0]))
        if len(calls) == 3:
            raise RuntimeError("chunk 3 failed")
        return cube

    da = random_s2_cube(16, 16, dates=1, extra=(), seed=1)
    for scheduler in ("synchronous", "threads"):
        calls.clear()
        with pytest.raises(RuntimeError, match="chunk 3 failed"):
            apply_neighborhood_local(da, udf, size=4, overlap=0, scheduler=scheduler, num_workers=1, max_pending=1)
        assert len(calls) == 3  # the run stopped there: no chunk after the failing one was started


@pytest.mark.parametrize("with_size", [False, True], ids=["whole-chunk", "context-band"])
@pytest.mark.parametrize("size, overlap", [(16, 12), (24, 16), (32, 12)])
def test_sr_udf_chunked_equals_whole_scene_resampled(pkg, size, overlap, with_size):
    """The back-end path: 5 m nearest-resampled cube, chunks with NaN-padded borders, crop; against the UDF
    on the whole scene at once (no seams, nothing lost at the borders). With ``size`` in the context the
    network skips the chunks' overlap band (which the back-end discards): same result."""
    da = nearest_resample(random_s2_cube(22, 20, dates=1, seed=4), 2)  # 44 x 40 px at 5 m
    ctx = {"model": str(pkg), "overlap": overlap, **({"size": size} if with_size else {})}
    whole = udf_apply(da, {"model": str(pkg)})
    chunked = apply_neighborhood_local(da, UDF_FILE, size=size, overlap=overlap, context=ctx)
    assert chunked.shape == whole.shape and chunked.dims == whole.dims
    assert np.isfinite(chunked.values).all()
    assert np.abs(chunked.values - whole.values).max() <= 1e-4 * DN


@pytest.mark.parametrize("with_size", [False, True], ids=["whole-chunk", "context-band"])
@pytest.mark.parametrize("size, overlap", [(8, 6), (12, 8)])
def test_sr_udf_chunked_equals_whole_scene_upscale(pkg, size, overlap, with_size):
    da = random_s2_cube(20, 18, seed=5)
    ctx = {"model": str(pkg), "mode": "upscale", "overlap": overlap, **({"size": size} if with_size else {})}
    whole = udf_apply(da, ctx)  # the whole scene is not size + 2 * overlap: processed whole
    assert np.isfinite(whole.values).all()
    chunked = apply_neighborhood_local(da, UDF_FILE, size=size, overlap=overlap, context=ctx, runtime="Python-Jep")
    assert chunked.shape == whole.shape == (11, 40, 36)
    np.testing.assert_allclose(chunked.x.values, whole.x.values)
    np.testing.assert_allclose(chunked.y.values, whole.y.values)
    assert np.abs(chunked.values - whole.values).max() <= 1e-4 * DN


def test_too_small_overlap_warns_once_and_shows_seams(pkg):
    da = nearest_resample(random_s2_cube(16, 16, seed=6), 2)
    whole = udf_apply(da, {"model": str(pkg)})
    with pytest.warns(sc.TilingWarning, match="overlap 2 px is smaller than the 12 px.*use overlap=16") as rec:
        chunked = apply_neighborhood_local(da, UDF_FILE, size=16, overlap=2, context={"model": str(pkg), "overlap": 2},
                                           scheduler="synchronous")
    assert sum("overlap 2 px" in str(w.message) for w in rec) == 1
    assert np.abs(chunked.values - whole.values).max() > 1e-2 * DN  # the seams the warning is about


def test_emulator_matches_execute_local_udf(pkg):
    import openeo
    from openeo.udf.run_code import execute_local_udf

    da = nearest_resample(random_s2_cube(12, 14, dates=2, seed=7), 2)
    udf = openeo.UDF(UDF_FILE.read_text(), context={"model": str(pkg), "overlap": 12})
    local = execute_local_udf(udf, da).get_datacube_list()[0].get_array()
    emulated = apply_neighborhood_local(da, udf, size=16, overlap=12)
    assert emulated.dims == local.dims == ("t", "bands", "y", "x")
    assert np.abs(emulated.values - local.values).max() <= 1e-4 * DN


def test_real_sample_through_the_backend_path(pkg):
    """The bundled real L1C crop, nearest-resampled to 5 m as the graph does: the replication check accepts the
    real 10/20 m structure and the chunked result equals the whole scene."""
    from sr_core.io.sample import load_sample

    da = load_sample().to_dataarray().isel(y=slice(100, 124), x=slice(60, 84))  # even offsets: 20 m blocks intact
    hr = nearest_resample(da, 2)
    ctx = {"model": str(pkg), "dn_scale": float(da.attrs["dn_scale"]), "add_offset": float(da.attrs["add_offset"])}
    whole = udf_apply(hr, ctx)
    chunked = apply_neighborhood_local(hr, UDF_FILE, size=16, overlap=12, context={**ctx, "overlap": 12})
    assert np.isfinite(chunked.values).all()
    assert np.abs(chunked.values - whole.values).max() <= 1e-4 * float(da.attrs["dn_scale"])


def test_context_band_is_nearest_filler_and_core_is_exact(pkg):
    """A chunk of exactly size + 2 * overlap: the core equals the whole-chunk run, the band is the input
    nearest-upsampled (the back-end discards it); any other shape is processed whole."""
    da = random_s2_cube(20, 20, seed=9)
    ov = 6
    full = udf_apply(da, {"model": str(pkg), "mode": "upscale", "overlap": ov})
    fast = udf_apply(da, {"model": str(pkg), "mode": "upscale", "overlap": ov, "size": 8})
    core = (slice(None), slice(2 * ov, -2 * ov), slice(2 * ov, -2 * ov))
    assert np.abs(fast.values[core] - full.values[core]).max() <= 1e-4 * DN
    band = fast.sel(bands="B02").values[: 2 * ov]
    nearest = np.repeat(np.repeat(da.sel(bands="B02").values[:ov], 2, axis=0), 2, axis=1)
    np.testing.assert_allclose(band, nearest, rtol=1e-6)
    other = udf_apply(da, {"model": str(pkg), "mode": "upscale", "overlap": ov, "size": 10})
    np.testing.assert_array_equal(other.values, full.values)


def test_geotiff_out_path_streams_the_same_values(pkg, tmp_path):
    import rasterio

    da = nearest_resample(random_s2_cube(22, 20, dates=1, seed=4), 2).isel(t=0, drop=True)
    da.attrs["crs"] = "EPSG:32633"
    ctx = {"model": str(pkg), "overlap": 16, "size": 24}
    mem = apply_neighborhood_local(da, UDF_FILE, size=24, overlap=16, context=ctx)
    tif = apply_neighborhood_local(da, UDF_FILE, size=24, overlap=16, context=ctx, out_path=tmp_path / "o.tif")
    assert (tmp_path / "o.tif").is_file() and tif.dims == mem.dims
    assert list(tif.bands.values) == list(mem.bands.values)
    np.testing.assert_array_equal(tif.values, mem.values)
    np.testing.assert_allclose(tif.x.values, mem.x.values)
    np.testing.assert_allclose(tif.y.values, mem.y.values)
    with rasterio.open(tmp_path / "o.tif") as d:
        assert d.crs.to_epsg() == 32633 and d.descriptions == tuple(str(b) for b in mem.bands.values)
        assert d.compression.value == "ZSTD"
    two = nearest_resample(random_s2_cube(22, 20, dates=2, seed=4), 2)
    with pytest.raises(ValueError, match="one date"):
        apply_neighborhood_local(two, UDF_FILE, size=24, overlap=16, context=ctx, out_path=tmp_path / "p.tif")
    assert not (tmp_path / "p.tif").exists()


# ------------------------------------------------------------------------------------------------ cube origin


@pytest.fixture(scope="session")
def pkg_proj(tmp_path_factory) -> Path:
    """A tiny package with the 20 m consistency projection of the shipped models."""
    folder = tmp_path_factory.mktemp("local_models") / "tiny-edsr-x2-proj"
    make_package(folder, arch="edsr", seed=2, postprocess={
        "coarse_projection": {"bands": ["B05", "B06", "B07", "B8A", "B11", "B12"], "factor": 2, "lam": 0.02,
                              "taps": 4}})
    return folder


def test_resample_spatial_local_places_the_origin_anywhere():
    """Offset k (5 m px) into a 10 m cube whose 20 m blocks start at its corner: the 10 m blocks start at phase
    k mod 2, the 20 m blocks at k mod 4 (the first ones cut), coordinates are the new cell centres, NaN before
    the cube (negative offsets) and past it."""
    da = random_s2_cube(6, 8, seed=1)
    np.testing.assert_array_equal(resample_spatial_local(da, 5).values, nearest_resample(da, 2).values)
    out = resample_spatial_local(da, 5, offset=(3, -2), shape=(10, 20))
    assert out.shape == (11, 10, 20) and out.dims == da.dims
    np.testing.assert_allclose(out.x.values, float(da.x[0]) - 5 + 2.5 - 10 + 5 * np.arange(20))
    np.testing.assert_allclose(out.y.values, float(da.y[0]) + 5 - 2.5 - 15 - 5 * np.arange(10))
    b02, b05 = da.sel(bands="B02").values, da.sel(bands="B05").values
    assert np.isnan(out.values[:, :, :2]).all() and np.isnan(out.values[:, 9:, :]).all()
    np.testing.assert_array_equal(out.sel(bands="B02").values[0, 2:6], [b02[1, 0], b02[1, 0], b02[1, 1], b02[1, 1]])
    # 20 m: rows 3.. of the 5 m grid -> one row of the first 20 m block, then four of the next
    np.testing.assert_array_equal(out.sel(bands="B05").values[:5, 2], [b05[0, 0]] + [b05[2, 0]] * 4)
    with pytest.raises(ValueError, match="offset must be an integer"):
        resample_spatial_local(da, 5, offset=0.5)
    with pytest.raises(ValueError, match="'y' coordinate"):
        resample_spatial_local(da.drop_vars("y"), 5)


@pytest.mark.parametrize("with_size", [False, True], ids=["whole-chunk", "context-band"])
@pytest.mark.parametrize("offset", [(1, 2), (2, 1), (3, 3), (-3, 5), (6, -7)])
def test_sr_udf_chunked_equals_whole_scene_off_grid(pkg_proj, offset, with_size):
    """Cubes whose origin is off the 10 m and 20 m grids (and, for negative offsets, with NaN borders inside the
    cube): every border chunk's NaN padding ends off the blocks. Chunked == whole, the NaN borders stay NaN and
    every data pixel has a value."""
    da = resample_spatial_local(random_s2_cube(22, 20, dates=1, seed=4), 5, offset=offset, shape=(46, 41))
    ctx = {"model": str(pkg_proj), "overlap": 48, **({"size": 16} if with_size else {})}
    whole = udf_apply(da, {"model": str(pkg_proj)})
    chunked = apply_neighborhood_local(da, UDF_FILE, size=16, overlap=48, context=ctx)
    assert chunked.shape == whole.shape == da.shape
    nodata = np.isnan(da.values).any(axis=1, keepdims=True)
    np.testing.assert_array_equal(np.isnan(chunked.values), np.broadcast_to(nodata, da.shape))
    np.testing.assert_array_equal(np.isnan(whole.values), np.isnan(chunked.values))
    assert np.nanmax(np.abs(chunked.values - whole.values)) <= 1e-4 * DN


@pytest.mark.parametrize("mode, runtime", [("resampled", "Python"), ("upscale", "Python-Jep")])
def test_resolution_10_on_the_sample_keeps_the_10m_grid(mode, runtime):
    """The bundled real crop on its 10 m grid through the emulated back-end with context {"resolution": 10}: the
    output is on the input's grid (coordinates, shape, labels), the 10 m bands are the input's, the chunked result
    equals the whole scene (overlap 16 covers the sharpening model's margin of 14 px)."""
    from sr_core.io.sample import load_sample

    da = load_sample().to_dataarray()  # (bands, y, x): 256 x 256 at 10 m, the 20 m bands replicated 2 x 2
    ctx = {"resolution": 10, "mode": mode, "dn_scale": float(da.attrs["dn_scale"]),
           "add_offset": float(da.attrs["add_offset"])}
    whole = udf_apply(da, ctx)
    chunked = apply_neighborhood_local(da, UDF_FILE, size=96, overlap=16, context={**ctx, "overlap": 16},
                                       runtime=runtime)
    assert chunked.dims == da.dims and chunked.shape == da.shape == (10, 256, 256)
    np.testing.assert_allclose(chunked.x.values, da.x.values)
    np.testing.assert_allclose(chunked.y.values, da.y.values)
    assert list(chunked.bands.values) == list(da.bands.values)
    fine = ["B02", "B03", "B04", "B08"]
    assert np.abs(chunked.sel(bands=fine).values - da.sel(bands=fine).values).max() <= 1e-3
    assert np.isfinite(chunked.values).all()
    assert np.abs(chunked.values - whole.values).max() <= 1e-4 * float(da.attrs["dn_scale"])
