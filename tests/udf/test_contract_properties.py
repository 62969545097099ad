"""Property-based test of the super-resolution UDF (udf.contract.udf_apply, what udf/sr_udf.py runs).

Random small cubes as a back-end may hand them: both modes, any dims order (with or without ``t``), float32 /
float64 / int16 / uint16 values, nodata patterns (none, single pixels, a rectangle, everything, the NaN border
of a bounding box larger than the data), cube origins anywhere on the native 10 m / 20 m grids, with or without
coordinates, and contexts with valid values or one bad key or value. Every case either returns a cube with the
input's dims, band labels and extent whose output bands are nodata exactly where the input is (with
``dilate`` 0; at least there otherwise), or raises ``ValueError`` naming what is wrong.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from udf.contract import udf_apply
from udf.local import resample_spatial_local
from udf.testing import make_package, random_s2_cube

PROJECTED = ["B05", "B06", "B07", "B8A", "B11", "B12"]
OUT_BANDS = ["B02", "B03", "B04", "B08"] + PROJECTED
SETTINGS = settings(max_examples=120, deadline=None, derandomize=True, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# one bad entry of a context -> words its ValueError must contain
BAD_CONTEXT = [
    ({"mdoe": "upscale"}, ["mdoe", "valid keys"]),
    ({"mode": "bicubic"}, ["context['mode']", "bicubic"]),
    ({"engine": "tensorflow"}, ["context['engine']", "tensorflow"]),
    ({"threads": 0}, ["context['threads']", "1 to 1024"]),
    ({"threads": 10**12}, ["context['threads']", "1 to 1024"]),
    ({"threads": "4"}, ["context['threads']"]),
    ({"dn_scale": 0}, ["context['dn_scale']", "> 0"]),
    ({"dn_scale": float("inf")}, ["context['dn_scale']", "finite"]),
    ({"add_offset": "0"}, ["context['add_offset']"]),
    ({"nodata": float("nan") * 0 + float("inf")}, ["context['nodata']", "finite"]),
    ({"nodata": 10**400}, ["context['nodata']", "finite"]),
    ({"overlap": -1}, ["context['overlap']", ">= 0"]),
    ({"size": 0}, ["context['size']", ">= 1"]),
    ({"tile": 1.5}, ["context['tile']", "integer"]),
    ({"dilate": -2}, ["context['dilate']", "'rf'"]),
    ({"dilate": "all"}, ["context['dilate']", "'rf'"]),
    ({"model": 7}, ["context['model']"]),
]


@pytest.fixture(scope="module")
def pkg(tmp_path_factory) -> Path:
    """A tiny package with the 20 m consistency projection of the shipped models (fast, same code path)."""
    folder = tmp_path_factory.mktemp("prop_models") / "tiny-edsr-x2-proj"
    make_package(folder, arch="edsr", seed=6, postprocess={
        "coarse_projection": {"bands": PROJECTED, "factor": 2, "lam": 0.02, "taps": 4}})
    return folder


@st.composite
def cases(draw):
    mode = draw(st.sampled_from(["resampled", "resampled", "upscale"]))
    dates = draw(st.sampled_from([None, 1, 2]))
    extra = draw(st.sampled_from([(), ("SCL",)]))
    base = random_s2_cube(14, 14, dates=dates, extra=extra, seed=draw(st.integers(0, 3)))
    if mode == "resampled":
        h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
        oy, ox = draw(st.integers(-3, 6)), draw(st.integers(-3, 6))
        da = resample_spatial_local(base, 5, offset=(oy, ox), shape=(h, w))
    else:
        r0, c0 = draw(st.integers(0, 4)), draw(st.integers(0, 4))
        h, w = draw(st.integers(2, 9)), draw(st.integers(2, 9))
        da = base.isel(y=slice(r0, r0 + h), x=slice(c0, c0 + w))
    da = da.astype(np.float32).copy()
    vals = da.values  # (t?, bands, y, x)
    pattern = draw(st.sampled_from(["none", "pixels", "rectangle", "all"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    hw = vals.shape[-2:]
    if pattern == "pixels":
        for _ in range(draw(st.integers(1, 4))):
            idx = tuple(int(rng.integers(0, n)) for n in vals.shape)
            vals[idx] = np.nan
    elif pattern == "rectangle":
        r, c = int(rng.integers(0, hw[0])), int(rng.integers(0, hw[1]))
        vals[..., r : r + int(rng.integers(1, 6)), c : c + int(rng.integers(1, 6))] = np.nan
    elif pattern == "all":
        vals[:] = np.nan
    dtype = draw(st.sampled_from(["float32", "float64", "int16", "uint16"]))
    ctx: dict = {"mode": mode}
    nodata = None
    if dtype in ("int16", "uint16"):
        nodata = 0  # integers have no NaN: the nodata value stands for it
        vals[np.isnan(vals)] = 0
        ctx["nodata"] = 0
    da = da.astype(dtype)
    if draw(st.booleans()):
        da = da.drop_vars([c for c in ("x", "y") if c in da.coords])
    da = da.transpose(*draw(st.permutations(list(da.dims))))
    ctx.update(draw(st.fixed_dictionaries({}, optional={
        "engine": st.sampled_from(["onnx", "onnx", "torch"]),
        "threads": st.sampled_from([None, 1, 2]),
        "dn_scale": st.sampled_from([10000, 10000.0, 5000.5]),
        "add_offset": st.sampled_from([0, -1000.0]),
        "overlap": st.sampled_from([None, 0, 16, 48]),
        "size": st.sampled_from([None, 8, 16]),
        "tile": st.sampled_from([None, 4, 16]),
        "dilate": st.sampled_from([0, 1, "rf"]),
    })))
    bad = draw(st.sampled_from(BAD_CONTEXT)) if draw(st.integers(0, 3)) == 0 else None
    if bad is not None:
        ctx.update(bad[0])
    return da, ctx, nodata, bad[1] if bad is not None else None


def _invalid(da: xr.DataArray, nodata) -> np.ndarray:
    """(t?, y, x) in (t, bands, y, x) order: some model band holds no data."""
    v = da.sel(bands=OUT_BANDS).transpose(*[d for d in ("t", "bands", "y", "x") if d in da.dims]).values
    v = v.astype(np.float64)
    bad = ~np.isfinite(v)
    if nodata is not None:
        bad |= v == nodata
    return bad.any(axis=-3)


@SETTINGS
@given(case=cases())
def test_udf_returns_the_input_extent_and_nodata_or_names_what_is_wrong(pkg, case):
    da, ctx, nodata, words = case
    ctx = {"model": str(pkg), **ctx}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny chunks: the overlap / chunk size warnings are expected
        if words is not None:
            with pytest.raises(ValueError) as e:
                udf_apply(da, ctx)
            for w in words:
                assert w in str(e.value), (str(e.value), w)
            return
        out = udf_apply(da, ctx)
    mode = ctx.get("mode", "resampled")
    f = 2 if mode == "upscale" else 1
    assert out.dims == da.dims
    assert list(out.bands.values) == list(da.bands.values)
    assert out.dtype == (np.float64 if da.dtype == np.float64 else np.float32)
    for d in ("y", "x"):
        assert out.sizes[d] == f * da.sizes[d]
        assert (d in out.coords) == (d in da.coords)
        if d in da.coords:
            if f == 1:
                np.testing.assert_array_equal(out[d].values, da[d].values)
            else:  # the same outer bounds, pixels half as large
                step = float(da[d][1] - da[d][0])
                np.testing.assert_allclose(float(out[d][0]) - step / 4, float(da[d][0]) - step / 2)
                np.testing.assert_allclose(float(out[d][-1]) + step / 4, float(da[d][-1]) + step / 2)
    order = [d for d in ("t", "bands", "y", "x") if d in da.dims]
    bad = _invalid(da, nodata)
    if f > 1:
        bad = np.repeat(np.repeat(bad, f, -2), f, -1)
    got = np.isnan(out.sel(bands=OUT_BANDS).transpose(*order).values)  # (t?, bands, y, x)
    assert got[..., bad[..., None, :, :].repeat(len(OUT_BANDS), -3)].all()  # nodata stays nodata
    if ctx.get("dilate", 0) == 0:
        np.testing.assert_array_equal(got, np.broadcast_to(np.expand_dims(bad, -3), got.shape))  # data stays data
    if "SCL" in list(da.bands.values) and f == 1:
        np.testing.assert_array_equal(out.sel(bands="SCL").transpose(*[d for d in order if d != "bands"]).values,
                                      da.sel(bands="SCL").transpose(*[d for d in order if d != "bands"]).values)


@SETTINGS
@given(case=cases(), wrong=st.sampled_from(["spacing", "noise", "band"]))
def test_wrong_cubes_raise_a_value_error_naming_what_is_wrong(pkg, case, wrong):
    da, ctx, _, words = case
    if words is not None:
        return  # a bad context: covered above
    mode = ctx["mode"]
    if wrong == "spacing":
        if not {"x", "y"} <= set(da.coords) or min(da.sizes["x"], da.sizes["y"]) < 2:
            return
        da = da.assign_coords(x=da.x.values[0] + 2.0 * (da.x.values - da.x.values[0]))
        expect = ["dim 'x'", "spaced", "needs"]
    elif wrong == "noise":
        if mode != "resampled" or min(da.sizes["x"], da.sizes["y"]) < 4 or not np.isfinite(da.values).any():
            return
        rng = np.random.default_rng(0)
        da = da.copy(data=rng.integers(1, 5000, size=da.shape).astype(da.dtype))
        expect = ["nearest-replicated", "resample_spatial"]
    else:
        da = da.sel(bands=[b for b in da.bands.values if b != "B11"])
        expect = ["missing: B11", "bands present"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError) as e:
            udf_apply(da, {"model": str(pkg), **ctx})
    for w in expect:
        assert w in str(e.value), (str(e.value), w)
