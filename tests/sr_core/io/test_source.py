"""sr_core.io.source: the windowed reading interface, through ArraySource."""

from __future__ import annotations

import numpy as np
import pytest

from sr_core.io import ArraySource


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
