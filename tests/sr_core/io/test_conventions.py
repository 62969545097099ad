"""sr_core.io.conventions: the DN convention, north-up grids and band names shared by every reader."""

from __future__ import annotations

import numpy as np
import pytest

from sr_core.io.conventions import (
    band_labels,
    band_names,
    bounds_of,
    cell_centres,
    dn_convention,
    north_up,
    same_bounds,
)


def test_dn_convention_from_metadata_or_arguments():
    assert dn_convention("10000", "-1000", None, None, "f", "DN_SCALE", "ADD_OFFSET") == (10000.0, -1000.0)
    assert dn_convention(None, None, 10000, 0, "f", "DN_SCALE", "ADD_OFFSET") == (10000.0, 0.0)
    assert dn_convention("10000", None, 10000.0, 0, "f", "DN_SCALE", "ADD_OFFSET") == (10000.0, 0.0)
    with pytest.raises(ValueError, match="f: no DN_SCALE in the metadata and no dn_scale argument"):
        dn_convention(None, "0", None, None, "f", "DN_SCALE", "ADD_OFFSET")
    with pytest.raises(ValueError, match="f: no ADD_OFFSET in the metadata and no add_offset argument"):
        dn_convention("10000", None, None, None, "f", "DN_SCALE", "ADD_OFFSET")
    with pytest.raises(ValueError, match=r"f: DN_SCALE = '10000' contradicts dn_scale=1000"):
        dn_convention("10000", "0", 1000, None, "f", "DN_SCALE", "ADD_OFFSET")
    with pytest.raises(ValueError, match=r"f: DN_SCALE = 'x' is not a number"):
        dn_convention("x", "0", None, None, "f", "DN_SCALE", "ADD_OFFSET")
    with pytest.raises(ValueError, match="f: DN_SCALE: dn_scale must be a positive finite number"):
        dn_convention("-1", "0", None, None, "f", "DN_SCALE", "ADD_OFFSET")


def test_north_up_grids_bounds_and_centres():
    t = north_up((10, 0, 100, 0, -10, 200))
    assert t == (10.0, 0.0, 100.0, 0.0, -10.0, 200.0)
    assert bounds_of(t, 2, 3) == (100.0, 180.0, 130.0, 200.0)
    y, x = cell_centres(t, 2, 3)
    np.testing.assert_array_equal(y, [195.0, 185.0])
    np.testing.assert_array_equal(x, [105.0, 115.0, 125.0])
    assert same_bounds((100, 180, 130, 200), (100 + 1e-6, 180, 130, 200), 10)
    assert not same_bounds((100, 180, 130, 200), (101, 180, 130, 200), 10)
    with pytest.raises(ValueError, match=r"^transform must describe a north-up grid"):
        north_up((10, 0, 100, 0, 10, 200))
    with pytest.raises(ValueError, match=r"^a.tif: transform must be 6 finite numbers"):
        north_up((10, 0, 100, 0, -10, float("inf")), "a.tif")
    with pytest.raises(ValueError, match="transform must be 6 numbers"):
        north_up("abc")


def test_band_names_strict_and_band_labels_lenient():
    assert band_names(["b2", "B8A"], "f") == ("B02", "B8A")
    with pytest.raises(ValueError, match="f: band 2 is named 'SCL'"):
        band_names(["B02", "SCL"], "f")
    with pytest.raises(ValueError, match="f: duplicate bands B02"):
        band_names(["B02", "b2"], "f")
    assert band_labels(["b2", "SCL", "B8A"], "f") == ("B02", None, "B8A")
    with pytest.raises(ValueError, match="f: band labels .* name the same band twice: B02"):
        band_labels(["B02", "b2"], "f")


# ------------------------------------------------------------------------------------------------------------
# unreadable files and CRS units
# ------------------------------------------------------------------------------------------------------------


def test_open_raster_names_empty_truncated_and_foreign_files(tmp_path):
    pytest.importorskip("rasterio")
    from affine import Affine

    from sr_core.io.conventions import open_raster
    from tests.sr_core.io.raster_utils import TAGS, write_tif

    good = write_tif(tmp_path / "good.tif", np.ones((1, 8, 8), np.uint16), ("B02",), Affine(10, 0, 0, 0, -10, 0),
                     tags=TAGS)
    data = good.read_bytes()
    (tmp_path / "empty.tif").write_bytes(b"")
    (tmp_path / "cut.tif").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.tif").write_text("not a raster\n")
    with open_raster(good) as src:
        assert src.count == 1
    with pytest.raises(ValueError, match=r"empty\.tif: empty file \(0 bytes\), not a GeoTIFF$"):
        open_raster(tmp_path / "empty.tif")
    for name in ("cut.tif", "text.tif"):
        with pytest.raises(ValueError, match=rf"{name}: cannot read it as a GeoTIFF \(truncated, corrupt"):
            open_raster(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="no such GeoTIFF"):
        open_raster(tmp_path / "missing.tif")


def test_crs_units():
    pytest.importorskip("rasterio")
    from sr_core.io.conventions import crs_units

    assert crs_units("EPSG:32633", "f") == ("metre", 1.0, False)
    unit, _, geographic = crs_units("EPSG:4326", "f")
    assert (unit, geographic) == ("degrees", True)
    unit, factor, geographic = crs_units("EPSG:2263", "f")  # NAD83 / New York Long Island (ftUS)
    assert "foot" in unit.lower() and abs(factor - 0.3048006) < 1e-6 and not geographic
    with pytest.raises(ValueError, match="f: CRS 'EPSG:0' cannot be parsed"):
        crs_units("EPSG:0", "f")
