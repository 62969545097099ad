"""The multi-image UDF (udf/misr_udf.py, sr_core.cube.misr_dataarray): t reduced to one date, per-date masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sr_core import cube as sc
from udf.testing import make_package, nearest_resample, random_s2_cube

UDF_FILE = Path(__file__).resolve().parents[1] / "udf" / "misr_udf.py"
DN = 10000.0
pytestmark = pytest.mark.filterwarnings("ignore::sr_core.cube.TilingWarning")  # tiny chunks on purpose


@pytest.fixture(scope="session")
def hrn(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("misr_models") / "tiny-highresnet-x2"
    make_package(folder, arch="highresnet", seed=5, frames=4)
    return folder


@pytest.fixture(scope="session")
def rams(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("misr_models") / "tiny-rams-x2"
    make_package(folder, arch="rams", seed=6, frames=2, arch_kwargs={"num_blocks": 0}, onnx=False)
    return folder


def cube(seed: int, dates: int = 3, h: int = 10, w: int = 10):
    da = random_s2_cube(h, w, dates=dates, seed=seed)
    da.loc[dict(bands="SCL")] = 4.0  # vegetation: valid everywhere unless a test says otherwise
    return da


def test_misr_reduces_t_to_the_latest_date_and_engines_agree(hrn):
    da = cube(1)
    a = sc.misr_udf_apply(da, {"model": str(hrn), "mode": "upscale"})
    b = sc.misr_udf_apply(da, {"model": str(hrn), "mode": "upscale", "engine": "torch"})
    assert a.dims == ("t", "bands", "y", "x") and a.shape == (1, 10, 20, 20)
    assert a.t.values[0] == da.t.values[-1]
    assert list(a.bands.values) == list(da.bands.values[:10])  # SCL dropped
    assert np.isfinite(a.values).all()
    assert np.abs(a.values - b.values).max() <= 1e-4 * DN  # ONNX with fixed T=4 (one padded revisit) == torch
    # the revisits really are fused: the result depends on every date
    c = sc.misr_udf_apply(da.isel(t=[0, 1]), {"model": str(hrn), "mode": "upscale", "engine": "torch"})
    assert np.abs(c.values - b.values).max() > 1.0


def test_resampled_mode_keeps_the_grid(hrn):
    da = cube(2)
    up = sc.misr_udf_apply(da, {"model": str(hrn), "mode": "upscale", "engine": "torch"})
    res = sc.misr_udf_apply(nearest_resample(da, 2), {"model": str(hrn), "engine": "torch"})
    assert res.shape == (1, 10, 20, 20)
    np.testing.assert_array_equal(res.values, up.values)


def test_scl_clouds_are_filled_with_the_median_of_the_valid_dates(hrn):
    da = cube(3)
    ctx = {"model": str(hrn), "mode": "upscale", "engine": "torch"}
    cloudy = da.copy()
    cloudy[1, :10, 2:6, 3:7] = 9999.0  # garbage under a cloud on date 1
    cloudy[1, 10, 2:6, 3:7] = 9.0  # SCL: cloud high probability
    filled = da.copy()
    med = np.median(da.values[[0, 2], :10, 2:6, 3:7], axis=0)
    filled[1, :10, 2:6, 3:7] = med
    a = sc.misr_udf_apply(cloudy, ctx)
    b = sc.misr_udf_apply(filled, ctx)
    np.testing.assert_allclose(a.values, b.values, atol=1e-4 * DN)
    # the same cloud left unflagged changes the result
    unflagged = cloudy.copy()
    unflagged[1, 10] = 4.0
    assert np.abs(sc.misr_udf_apply(unflagged, ctx).values - b.values).max() > 10.0


def test_mostly_invalid_dates_are_left_out(hrn):
    da = cube(4)
    ctx = {"model": str(hrn), "mode": "upscale", "engine": "torch", "min_valid": 0.5}
    bad = da.copy()
    bad[2, :10, :8, :] = np.nan  # date 2 is 80 % nodata
    a = sc.misr_udf_apply(bad, ctx)
    b = sc.misr_udf_apply(da.isel(t=[0, 1]), ctx)
    np.testing.assert_allclose(a.values, b.values, atol=1e-4 * DN)
    assert a.t.values[0] == da.t.values[-1]


def test_pixels_invalid_on_every_date_stay_nodata_and_all_invalid_skips_the_model(hrn):
    da = cube(5)
    ctx = {"model": str(hrn), "mode": "upscale", "engine": "torch"}
    da[:, 10, 4:6, 4:6] = 3.0  # cloud shadow on every date
    out = sc.misr_udf_apply(da, ctx).values[0]
    hole = np.zeros((20, 20), bool)
    hole[8:12, 8:12] = True
    assert np.isnan(out[:, hole]).all() and np.isfinite(out[:, ~hole]).all()
    da[:, 10] = 8.0
    assert np.isnan(sc.misr_udf_apply(da, ctx).values).all()


def test_rams_keeps_the_dates_with_most_valid_pixels(rams):
    """RAMS built for 2 revisits gets 3: the one with fewest valid pixels (date 0) is left out."""
    da = cube(6)
    ctx = {"model": str(rams), "mode": "upscale", "engine": "torch", "min_valid": 0.0}
    da[0, 10, :3, :] = 9.0
    a = sc.misr_udf_apply(da, ctx)
    b = sc.misr_udf_apply(da.isel(t=[1, 2]), ctx)
    np.testing.assert_allclose(a.values, b.values, atol=1e-4 * DN)


def test_misr_udf_file_through_openeo_and_bad_context(hrn):
    import openeo
    from openeo.udf.run_code import execute_local_udf

    da = cube(7)
    udf = openeo.UDF(UDF_FILE.read_text(), context={"model": str(hrn), "mode": "upscale"})
    res = execute_local_udf(udf, da).get_datacube_list()[0].get_array()
    direct = sc.misr_udf_apply(da, {"model": str(hrn), "mode": "upscale"})
    assert res.shape == direct.shape and np.abs(res.values - direct.values).max() <= 1e-4 * DN
    with pytest.raises(ValueError, match="scl_invalid.*0..11"):
        sc.misr_udf_apply(da, {"model": str(hrn), "scl_invalid": [42]})
    with pytest.raises(ValueError, match="min_valid.*\\[0, 1\\]"):
        sc.misr_udf_apply(da, {"model": str(hrn), "min_valid": 2})


def test_misr_apply_metadata_keeps_the_output_bands_and_divides_the_step(hrn):
    from openeo.metadata import Band, BandDimension, CubeMetadata, SpatialDimension

    ns: dict = {}
    exec(UDF_FILE.read_text(), ns)
    labels = ["B2", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12", "SCL"]
    md = CubeMetadata(dimensions=[
        BandDimension(name="bands", bands=[Band(b) for b in labels]),
        SpatialDimension(name="x", extent=[0, 100], crs=32631, step=10),
        SpatialDimension(name="y", extent=[0, 100], crs=32631, step=10),
    ])
    up = ns["apply_metadata"](md, {"model": str(hrn), "mode": "upscale"})
    assert up.band_names == labels[:10] and [d.step for d in up.spatial_dimensions] == [5.0, 5.0]
    same = ns["apply_metadata"](md, {"model": str(hrn)})
    assert same.band_names == labels[:10] and [d.step for d in same.spatial_dimensions] == [10, 10]
