"""sr_core.io.writer: the output format (dtype, nodata, predictor, tags, paths) of the GeoTIFF writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sr_core.io.writer import (
    PREDICTORS,
    cast_output,
    dn_convention_tags,
    output_format,
    output_paths,
    predictor_code,
)


def test_predictor_code_table():
    assert [predictor_code(p, np.float32) for p in PREDICTORS] == [1, 3, 1]
    assert [predictor_code(p, np.uint16) for p in PREDICTORS] == [2, 2, 1]
    assert [predictor_code(p, "int16") for p in PREDICTORS] == [2, 2, 1]
    with pytest.raises(ValueError, match="tiff_predictor must be one of auto, yes, no, got 'float'"):
        predictor_code("float", np.float32)


def test_cast_to_integer_closed_form():
    dn = np.array([np.nan, -3.0, 0.4, 0.6, 1.5, 70000.0, 12.49], np.float32)
    np.testing.assert_array_equal(cast_output(dn, np.dtype("uint16"), 0.0), [0, 1, 1, 1, 2, 65535, 12])
    np.testing.assert_array_equal(cast_output(dn, np.dtype("uint16"), 65535.0), [65535, 0, 0, 1, 2, 65534, 12])
    np.testing.assert_array_equal(cast_output(dn, np.dtype("int16"), -1.0), [-1, -3, 0, 1, 2, 32767, 12])
    np.testing.assert_array_equal(cast_output(dn, np.dtype("int16"), 1.0), [1, -3, 0, 2, 2, 32767, 12])  # 1 -> 2
    f = cast_output(dn, np.dtype("float32"), -9999.0)
    assert f[0] == -9999.0 and f[1] == -3.0
    assert np.isnan(dn[0]) and dn[2] == np.float32(0.4)  # not in place: dn untouched


@pytest.mark.parametrize("dtype,nodata", [("uint16", 0.0), ("int16", -1.0), ("float32", float("nan")),
                                          ("float32", -9999.0)])
def test_cast_in_place_equals_copy(dtype, nodata):
    rng = np.random.default_rng(1)
    dn = (rng.normal(0, 30000, (3, 40, 40))).astype(np.float32)
    dn[rng.random(dn.shape) < 0.1] = np.nan
    dn[0, 0, :3] = [np.inf, -np.inf, nodata if np.isfinite(nodata) else 5.0]
    ref = cast_output(dn, np.dtype(dtype), nodata)
    scratch = dn.copy()
    got = cast_output(scratch, np.dtype(dtype), nodata, inplace=True)
    np.testing.assert_array_equal(got, ref)
    assert got.dtype == np.dtype(dtype)
    if np.dtype(dtype).kind == "f" and np.isnan(nodata):
        assert got is scratch  # nothing to convert: no copy at all


def test_output_format_and_paths():
    assert output_format("float32", input_dtype="uint16", input_nodata=None, where="x")[0] == np.float32
    assert output_format("input", input_dtype="uint16", input_nodata=None, where="x") == (np.dtype("uint16"), 0.0)
    assert output_format("input", input_dtype="int16", input_nodata=-1, where="x") == (np.dtype("int16"), -1.0)
    dt, nodata = output_format("input", input_dtype="float64", input_nodata=None, where="x")
    assert dt == np.float64 and np.isnan(nodata)
    with pytest.raises(ValueError, match="dtype must be one of float32, input"):
        output_format("uint8", input_dtype="uint16", input_nodata=None, where="x")
    with pytest.raises(ValueError, match="in.tif: nodata 70000.0 does not fit the dtype uint16"):
        output_format("input", input_dtype="uint16", input_nodata=70000.0, where="in.tif")
    assert output_paths("o/sr.tif", [""]) == [Path("o/sr.tif")]
    assert output_paths("o/sr.tif", ["2024-06-01", "t1"]) == [Path("o/sr_2024-06-01.tif"), Path("o/sr_t1.tif")]
    assert dn_convention_tags(10000.0, -1000.0) == {"DN_SCALE": "10000", "ADD_OFFSET": "-1000"}
    assert dn_convention_tags(1e4, 0.5) == {"DN_SCALE": "10000", "ADD_OFFSET": "0.5"}
