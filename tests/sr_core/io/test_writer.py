"""sr_core.io.writer: the output format (dtype, nodata, predictor, tags, paths) of the GeoTIFF writer, and its
files: unique temporary names, the old file kept until the new one is complete, nothing left on error."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from sr_core.io.safe_output import OutputWriteError
from sr_core.io.writer import (
    PREDICTORS,
    GeoTiffWriter,
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


# ------------------------------------------------------------------------------------------------ GeoTiffWriter: owned, atomic


def _writer_kw(**extra):
    from rasterio.transform import from_origin

    return dict(height=64, width=64, transform=from_origin(300000, 5000000, 5, 5), crs="EPSG:32633",
                dtype="float32", nodata=float("nan"), band_names=["B02", "B03"], blocksize=16, **extra)


def _values(seed=0):
    return np.random.default_rng(seed).random((2, 64, 64)).astype(np.float32)


@pytest.mark.parametrize("cog", [False, True])
def test_writer_keeps_the_old_file_until_complete_and_uses_names_of_its_own(tmp_path, cog):
    import rasterio

    out = tmp_path / "sr.tif"
    out.write_bytes(b"old")
    a, b = GeoTiffWriter(out, cog=cog, **_writer_kw()), GeoTiffWriter(out, cog=cog, **_writer_kw())
    names = sorted(p.name for p in tmp_path.iterdir() if p.name != "sr.tif")
    # each writer: .sr.tif.<random>.part, and with cog its streamed level files .sr.tif.<random>.ovr<k>.part
    assert len(names) == (2 * (1 + 2) if cog else 2) and len(set(names)) == len(names)
    assert all(re.fullmatch(r"\.sr\.tif\.[0-9a-f]{8}(\.ovr\d)?\.part", n) for n in names), names
    va, vb = _values(1), _values(2)
    a.write(va, (0, 64, 0, 64))
    b.write(vb, (0, 64, 0, 64))
    assert out.read_bytes() == b"old"
    b.close()
    with rasterio.open(out) as d:
        np.testing.assert_array_equal(d.read(), vb)
    a.close()  # the last complete file wins
    with rasterio.open(out) as d:
        np.testing.assert_array_equal(d.read(), va)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sr.tif"]


def test_writer_abort_and_errors_leave_the_old_file(tmp_path, monkeypatch):
    out = tmp_path / "sr.tif"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="stop"):
        with GeoTiffWriter(out, cog=True, **_writer_kw()) as w:
            w.write(_values()[:, :32], (0, 32, 0, 64))
            raise RuntimeError("stop")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sr.tif"] and out.read_bytes() == b"old"
    # the file GDAL closes cut short (its last writes failed: GDAL only prints that): an OutputWriteError
    w = GeoTiffWriter(out, **_writer_kw())
    w.write(_values(), (0, 64, 0, 64))
    dst = w._dst

    class CutShort:
        def __getattr__(self, name):
            return getattr(dst, name)

        def close(self):
            dst.close()
            with open(dst.name, "r+b") as f:
                f.truncate(os.path.getsize(dst.name) - 10)

    w._dst = CutShort()
    with pytest.raises(OutputWriteError, match=f"cannot write {re.escape(str(out))}: .*past the end of the file"):
        w.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sr.tif"] and out.read_bytes() == b"old"


def test_writer_refuses_what_it_must_not_replace(tmp_path):
    link = tmp_path / "link.tif"
    link.symlink_to(tmp_path / "target.tif")
    (tmp_path / "dir.tif").mkdir()
    for bad, match in ((tmp_path / "x.png", "ends in '.png'"), (link, "symbolic link"), (tmp_path / "dir.tif", "directory")):
        with pytest.raises(ValueError, match=match):
            GeoTiffWriter(bad, **_writer_kw())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.tif", "link.tif"]
