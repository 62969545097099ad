"""``s2sr superres`` on inputs it must refuse (s2sr_cli/commands/superres.py, sr_core.io): a grid that is not the
model's (no CRS, degrees, another pixel size) unless ``--allow-any-crs``, and files that cannot be read (empty,
truncated, text named ``.tif``, truncated ``.nc``): one line naming the file, exit status 2, no output."""

from __future__ import annotations

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
xr = pytest.importorskip("xarray")
pytest.importorskip("rioxarray")

from affine import Affine  # noqa: E402

from s2sr_cli.main import main  # noqa: E402
from sr_core.bands import MODEL_BANDS_10  # noqa: E402
from tests.sr_core.io.raster_utils import TAGS, write_tif  # noqa: E402

DN = np.random.default_rng(0).integers(1, 5000, (10, 32, 32)).astype(np.uint16)


def _tif(path, *, crs="EPSG:32633", pixel=10.0):
    return write_tif(path, DN, MODEL_BANDS_10, Affine(pixel, 0, 500000, 0, -pixel, 4600000), tags=TAGS, crs=crs)


def _run(capsys, *args):
    rc = main(["superres", *map(str, args), "--threads", "1", "--quiet"])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize(
    "name, crs, pixel, expect",
    [
        ("deg.tif", "EPSG:4326", 10.0, "CRS EPSG:4326 is geographic (degrees), pixel size 10 x 10 degrees"),
        ("deg_small.tif", "EPSG:4326", 1e-4, "CRS EPSG:4326 is geographic (degrees)"),
        ("nocrs.tif", None, 10.0, "no CRS"),
    ],
)
def test_an_input_off_a_metre_grid_is_refused_unless_allowed(tmp_path, capsys, name, crs, pixel, expect):
    src = _tif(tmp_path / name, crs=crs, pixel=pixel)
    out = tmp_path / "out.tif"
    rc, stdout, err = _run(capsys, src, out)
    assert rc == 2 and stdout == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"s2sr superres: error: {src}: {expect}")
    assert "projected CRS in metres" in err and "10 m pixels" in err and "--allow-any-crs" in err
    assert not out.exists()
    rc, _, err = _run(capsys, src, out, "--allow-any-crs")
    assert rc == 0 and err == "" and out.is_file()
    with rasterio.open(out) as d:
        assert d.shape == (64, 64) and (d.crs is None) == (crs is None)


def test_a_metre_grid_of_another_pixel_size_is_refused_even_when_any_crs_is_allowed(tmp_path, capsys):
    src = _tif(tmp_path / "px20.tif", pixel=20.0)
    for extra in ((), ("--allow-any-crs",)):
        rc, _, err = _run(capsys, src, tmp_path / "out.tif", *extra)
        assert rc == 2 and err.startswith(f"s2sr superres: error: {src}: pixel size 20 x 20 m")
    assert not (tmp_path / "out.tif").exists()


def _broken_inputs(tmp_path):
    from rasterio.shutil import copy as rio_copy

    good = _tif(tmp_path / "good.tif")
    cog = tmp_path / "cog.tif"
    rio_copy(good, cog, driver="COG", compress="deflate", blocksize=16)
    da = xr.DataArray(DN[None].astype(np.int16), dims=("t", "bands", "y", "x"), coords={
        "t": np.array(["2024-06-01"], dtype="datetime64[ns]"), "bands": list(MODEL_BANDS_10),
        "y": 4600000 - 10 * np.arange(32) - 5.0, "x": 500000 + 10 * np.arange(32) + 5.0},
        attrs={"dn_scale": 10000, "add_offset_dn": 0}).rio.write_crs("EPSG:32633")
    nc = tmp_path / "good.nc"
    da.to_dataset(name="data").to_netcdf(nc, engine="h5netcdf")
    g, c, n = good.read_bytes(), cog.read_bytes(), nc.read_bytes()
    files = {"empty.tif": b"", "text.tif": b"hello\n", "cut.tif": g[: len(g) // 2], "cut_cog.tif": c[: len(c) // 2],
             "cut.nc": n[: len(n) // 2], "empty.nc": b"", "text.nc": b"hello\n"}
    for name, b in files.items():
        (tmp_path / name).write_bytes(b)
    return [tmp_path / name for name in files]


def test_unreadable_inputs_are_one_line_naming_the_file(tmp_path, capsys):
    for src in _broken_inputs(tmp_path):
        out = tmp_path / f"out_{src.stem}.tif"
        rc, stdout, err = _run(capsys, src, out)
        assert rc == 2 and stdout == "", err
        assert err.startswith(f"s2sr superres: error: {src}: ") and err.count("\n") == 1, err
        assert "Traceback" not in err and "unexpected" not in err and ("empty file" in err or "cannot read" in err)
        assert not out.exists() and not list(tmp_path.glob(f"*out_{src.stem}*"))
