"""sr_core.io.source: the windowed reading interface, through ArraySource."""

from __future__ import annotations

import numpy as np
import pytest

from sr_core.io import ArraySource
from sr_core.io.source import check_input_grid


def test_array_source_reads_windows_by_band_name():
    dn = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    src = ArraySource(dn, ["b8a", "SCL", "B2"], transform=(10, 0, 100, 0, -10, 200), nodata=7)
    assert src.labels == ("B8A", None, "B02") and src.bands == ("B8A", "B02")
    assert src.bounds == (100.0, 160.0, 150.0, 200.0) and src.resolution == 10.0 and src.dtype == "uint16"
    x = src.read(["B02", "B8A"], (1, 3, 0, 4))
    assert x.dtype == np.float32 and x.shape == (2, 2, 4)
    np.testing.assert_array_equal(x[0], dn[2, 1:3, :4])
    np.testing.assert_array_equal(x[1], [[5, 6, np.nan, 8], [10, 11, 12, 13]])  # the nodata value 7 -> NaN
    assert src.max_window_pixels == 8 and src.pixels_read == 8
    with pytest.raises(ValueError, match="missing: B04; bands present: B8A, B02"):
        src.read(["B04"], (0, 1, 0, 1))
    with pytest.raises(ValueError, match="empty or outside the 4x5 raster"):
        src.read(["B02"], (0, 5, 0, 1))


def test_array_source_refusals():
    dn = np.zeros((2, 4, 4), np.float32)
    with pytest.raises(ValueError, match="name the same band twice: B02"):
        ArraySource(dn, ["B02", "b2"])
    with pytest.raises(ValueError, match="array: transform must describe a north-up grid"):
        ArraySource(dn, ["B02", "B03"], transform=(10, 0, 0, 0, 10, 0))
    with pytest.raises(ValueError, match="array: dn_scale must be a positive"):
        ArraySource(dn, ["B02", "B03"], dn_scale=0)
    with pytest.raises(ValueError, match="array: add_offset must be a finite number"):
        ArraySource(dn, ["B02", "B03"], add_offset=float("nan"))
    with pytest.raises(ValueError, match="C = len"):
        ArraySource(dn, ["B02"])


# ------------------------------------------------------------------------------------------------------------
# check_input_grid: a model's input grid is a projected CRS in metres with the model's pixel size
# ------------------------------------------------------------------------------------------------------------


def _src(crs, pixel=10.0, name="in.tif"):
    return ArraySource(np.zeros((1, 4, 4), np.uint16), ["B02"], transform=(pixel, 0, 500000, 0, -pixel, 6e6),
                       crs=crs, name=name)


def test_check_input_grid_accepts_the_model_grid():
    pytest.importorskip("rasterio")
    check_input_grid(_src("EPSG:32633"), 10.0, model="'m'")
    check_input_grid(_src("EPSG:32633", 20.0), 20.0)  # a 20 m model on 20 m input
    check_input_grid(_src("EPSG:32633", 20.0), None)  # no resolution to check


@pytest.mark.parametrize(
    "crs, pixel, match",
    [
        (None, 10.0, r"in\.tif: no CRS, .*\(10 x 10 units per pixel\); model 'm' takes a projected CRS in metres "
                     r".* with 10 m pixels\. .*allow_any_crs=True \(s2sr superres --allow-any-crs\)"),
        ("EPSG:4326", 10.0, r"in\.tif: CRS EPSG:4326 is geographic \(degrees\), pixel size 10 x 10 degrees; "
                            r"model 'm' takes a projected CRS in metres .*allow_any_crs"),
        ("EPSG:4326", 1e-4, r"in\.tif: CRS EPSG:4326 is geographic \(degrees\), pixel size 0\.0001 x 0\.0001"),
        ("EPSG:2263", 10.0, r"in\.tif: CRS EPSG:2263 is in US survey foot, not metres"),
        ("EPSG:32633", 20.0, r"in\.tif: pixel size 20 x 20 m, but model 'm' .* 10 m pixels: resample"),
    ],
)
def test_check_input_grid_refuses_other_grids(crs, pixel, match):
    pytest.importorskip("rasterio")
    with pytest.raises(ValueError, match=match):
        check_input_grid(_src(crs, pixel), 10.0, model="'m'")


def test_check_input_grid_override_lets_unknown_units_through_but_not_a_wrong_metre_pixel():
    pytest.importorskip("rasterio")
    for crs in (None, "EPSG:4326", "EPSG:2263"):
        check_input_grid(_src(crs), 10.0, allow_any_crs=True)
    with pytest.raises(ValueError, match="pixel size 20 x 20 m"):
        check_input_grid(_src("EPSG:32633", 20.0), 10.0, allow_any_crs=True)
