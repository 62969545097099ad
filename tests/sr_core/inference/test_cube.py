"""Single-image super-resolution of chunks (sr_core.inference.cube): modes, layouts, values, nodata, bad inputs."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from sr_core.bands import MODEL_BANDS_10
from sr_core.inference import cube as sc
from udf.testing import make_package, nearest_resample, random_s2_cube

DN = 10000.0
# the tiny test chunks are smaller than the receptive field on purpose; the warning itself is tested below
pytestmark = pytest.mark.filterwarnings("ignore::sr_core.inference.cube.TilingWarning")


@pytest.fixture(scope="session")
def pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("udf_models") / "tiny-edsr-x2"
    make_package(folder, arch="edsr", seed=1)
    return folder


@pytest.fixture(scope="session")
def pred(pkg):
    from sr_core.models import load_predictor

    return load_predictor(pkg)


@pytest.fixture(scope="session")
def torch_model(pkg):
    from sr_core.models import load_torch_model

    return load_torch_model(pkg)[0]


@pytest.fixture(autouse=True)
def _fresh_warnings():
    sc.reset_warnings()
    yield
    sc.reset_warnings()


def reference_sr(torch_model, dn: np.ndarray, margin: int, scale: int = 2) -> np.ndarray:
    """Independent reference: torch model on the edge-padded reflectance of the 10 model bands, back to DN."""
    import torch

    refl = dn.astype(np.float64) / DN
    pad = np.pad(refl, [(0, 0)] * (refl.ndim - 2) + [(margin, margin), (margin, margin)], mode="edge")
    x = torch.from_numpy(pad.astype(np.float32))
    if x.ndim == 3:
        x = x[None]
    with torch.no_grad():
        y = torch_model(x).numpy().astype(np.float64)
    m = margin * scale
    y = y[..., m:-m, m:-m] * DN
    return y[0] if dn.ndim == 3 else y


# ------------------------------------------------------------------------------------------------ values


def test_upscale_values_bands_by_alias_and_coordinates(pred, torch_model):
    da = random_s2_cube(14, 12, seed=2)
    # shuffled order and alias labels; B05 given as "b5"
    alias = {"B02": "B2", "B05": "b5", "B8A": "B8A"}
    order = ["SCL", "B8A", "B02", "B12", "B03", "B04", "B05", "B06", "B07", "B08", "B11"]
    shuffled = da.sel(bands=order)
    shuffled = shuffled.assign_coords(bands=[alias.get(b, b) for b in order])
    out = sc.superresolve_dataarray(shuffled, predictor=pred, mode="upscale")
    assert out.dims == ("bands", "y", "x") and out.shape == (11, 28, 24) and out.dtype == np.float32
    assert list(out.bands.values) == [alias.get(b, b) for b in order]
    ref = reference_sr(torch_model, da.sel(bands=list(MODEL_BANDS_10)).values, pred.margin)
    for k, b in enumerate(order):
        if b == "SCL":  # pass-through, nearest-upsampled, untouched values
            np.testing.assert_array_equal(out.values[k], np.repeat(np.repeat(da.sel(bands="SCL").values, 2, 0), 2, 1))
        else:
            diff = np.abs(out.values[k] - ref[list(MODEL_BANDS_10).index(b)]).max()
            assert diff <= 1e-4 * DN, (b, diff)
    # x_hr[k] = x_lr[0] - dx/2 + dx/4 + k dx/2 with dx = 10 (x) and -10 (y)
    x0, y0 = float(da.x[0]), float(da.y[0])
    np.testing.assert_allclose(out.x.values[:3], [x0 - 2.5, x0 + 2.5, x0 + 7.5])
    np.testing.assert_allclose(out.y.values[:3], [y0 + 2.5, y0 - 2.5, y0 - 7.5])
    assert float(out.x[-1]) == pytest.approx(float(da.x[-1]) + 2.5)


def test_resampled_equals_upscale_on_the_native_grid(pred):
    da = random_s2_cube(12, 10, seed=3)
    up = sc.superresolve_dataarray(da, predictor=pred, mode="upscale")
    hr_in = nearest_resample(da, 2)
    res = sc.superresolve_dataarray(hr_in, predictor=pred, mode="resampled")
    assert res.shape == hr_in.shape and res.dims == hr_in.dims
    np.testing.assert_array_equal(res.values[:10], up.values[:10])
    np.testing.assert_array_equal(res.values[10], hr_in.values[10])  # SCL unchanged
    np.testing.assert_array_equal(res.x.values, hr_in.x.values)


@pytest.mark.parametrize("dy, dx", [(1, 0), (3, 1), (2, 3)])
def test_resampled_detects_the_block_phase(pred, dy, dx):
    """A chunk that does not start on a block boundary: the native grid is found with its phase; away from the
    chunk border (where the two runs see different edges) the pixels equal those of the aligned run."""
    da = random_s2_cube(16, 16, seed=4)
    hr_in = nearest_resample(da, 2)
    full = sc.superresolve_dataarray(hr_in, predictor=pred, mode="resampled")
    sub = hr_in.isel(y=slice(dy, None), x=slice(dx, None))
    out = sc.superresolve_dataarray(sub, predictor=pred, mode="resampled")
    assert out.shape == sub.shape
    m = 2 * pred.margin + 4
    np.testing.assert_array_equal(
        out.values[:, m:-m, m:-m], full.isel(y=slice(dy, None), x=slice(dx, None)).values[:, m:-m, m:-m]
    )


def test_time_and_no_time_layouts(pred):
    da = random_s2_cube(10, 10, dates=2, seed=5)
    out = sc.superresolve_dataarray(da, predictor=pred, mode="upscale")
    assert out.dims == ("t", "bands", "y", "x") and out.shape == (2, 11, 20, 20)
    np.testing.assert_array_equal(out.t.values, da.t.values)
    for i in range(2):
        single = sc.superresolve_dataarray(da.isel(t=i), predictor=pred, mode="upscale")
        assert single.dims == ("bands", "y", "x")
        np.testing.assert_allclose(out.values[i], single.values, atol=1e-4 * DN)
    # any input dim order is accepted and kept
    swapped = sc.superresolve_dataarray(da.transpose("y", "bands", "x", "t"), predictor=pred, mode="upscale")
    assert swapped.dims == ("y", "bands", "x", "t")
    np.testing.assert_array_equal(swapped.transpose("t", "bands", "y", "x").values, out.values)


def test_integer_dtypes_are_computed_in_float32(pred):
    da = random_s2_cube(8, 8, seed=6)
    ref = sc.superresolve_dataarray(da, predictor=pred, mode="upscale")
    for dt in (np.uint16, np.int16):
        out = sc.superresolve_dataarray(da.astype(dt), predictor=pred, mode="upscale")
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out.values, ref.values)
    out64 = sc.superresolve_dataarray(da.astype(np.float64), predictor=pred, mode="upscale")
    assert out64.dtype == np.float64
    np.testing.assert_allclose(out64.values, ref.values, atol=1e-3)


class NearestStub:
    """A 'model' that nearest-upsamples its input: makes the data path visible (no clipping, no offsets)."""

    scale, margin, receptive_field = 2, 0, 1
    bands = tuple(MODEL_BANDS_10)
    out_bands = tuple(MODEL_BANDS_10)

    def __init__(self):
        self.calls = 0

    def __call__(self, lr):
        self.calls += 1
        return np.repeat(np.repeat(lr, 2, -2), 2, -1)


def test_negative_and_bright_values_are_not_clipped():
    stub = NearestStub()
    da = random_s2_cube(4, 4, extra=(), seed=7)
    da[0, 0, 0] = -150.0  # negative DN (offset products)
    da[1, 1, 1] = 18000.0  # reflectance 1.8 (snow, specular)
    out = sc.superresolve_dataarray(da, predictor=stub, mode="upscale", add_offset=-1000.0)
    np.testing.assert_allclose(out.values, np.repeat(np.repeat(da.values, 2, 1), 2, 2), atol=1e-3)
    assert out.values[0, 0, 0] == pytest.approx(-150.0, abs=1e-3)
    assert out.values[1, 2, 2] == pytest.approx(18000.0, abs=1e-2)


def test_nodata_is_masked_filled_and_restored(pred):
    da = random_s2_cube(12, 12, seed=8)
    da[:, 3:5, 4:7] = np.nan  # a hole in every band
    da[2, 8, 8] = np.nan  # one band missing: the whole pixel is nodata
    da[:10, 0, 11] = 0.0  # nodata value
    out = sc.superresolve_dataarray(da, predictor=pred, mode="upscale", nodata=0.0)
    bad = np.zeros((12, 12), bool)
    bad[3:5, 4:7] = True
    bad[8, 8] = True
    bad[0, 11] = True
    bad_hr = np.repeat(np.repeat(bad, 2, 0), 2, 1)
    sr = out.values[:10]
    assert np.isnan(sr[:, bad_hr]).all()
    assert np.isfinite(sr[:, ~bad_hr]).all()
    # a filled hole gives the same valid pixels as the hand-filled input (nearest valid pixel)
    # and dilate="rf" also drops pixels whose receptive field touched the hole
    out_d = sc.superresolve_dataarray(da, predictor=pred, mode="upscale", nodata=0.0, dilate="rf")
    from scipy import ndimage

    grown = ndimage.binary_dilation(bad, np.ones((2 * pred.margin + 1,) * 2, bool))
    grown_hr = np.repeat(np.repeat(grown, 2, 0), 2, 1)
    assert np.isnan(out_d.values[:10][:, grown_hr]).all() and np.isfinite(out_d.values[:10][:, ~grown_hr]).all()


def test_all_nodata_chunk_returns_nodata_without_running_the_model():
    stub = NearestStub()
    da = random_s2_cube(6, 6, seed=9)
    da[:10] = np.nan
    out = sc.superresolve_dataarray(da, predictor=stub, mode="upscale")
    assert stub.calls == 0
    assert np.isnan(out.values[:10]).all()
    np.testing.assert_array_equal(out.values[10], np.repeat(np.repeat(da.values[10], 2, 0), 2, 1))


def test_tiles_inside_a_chunk_equal_the_whole_chunk(pred):
    da = random_s2_cube(18, 14, seed=10)
    whole = sc.superresolve_dataarray(da, predictor=pred, mode="upscale")
    for tile in (4, 7, 32):
        tiled = sc.superresolve_dataarray(da, predictor=pred, mode="upscale", tile=tile)
        assert np.abs(tiled.values - whole.values).max() <= 1e-4 * DN


# ------------------------------------------------------------------------------------------------ bad input


def test_missing_model_band_names_missing_and_present(pred):
    da = random_s2_cube(6, 6, seed=12).drop_sel(bands=["B05", "B12"])
    with pytest.raises(ValueError) as e:
        sc.superresolve_dataarray(da, predictor=pred, mode="upscale")
    msg = str(e.value)
    assert "missing: B05, B12" in msg and "bands present: B02, B03, B04, B08, B06, B07, B8A, B11, SCL" in msg


@pytest.mark.parametrize(
    "dims, words",
    [
        (("band", "y", "x"), ["missing dim(s) bands", "unknown dim(s) band"]),
        (("bands", "lat", "lon"), ["missing dim(s) y, x", "lat, lon"]),
        (("t", "bands", "y", "x", "z"), ["unknown dim(s) z"]),
    ],
)
def test_bad_dims_are_named(pred, dims, words):
    shape = tuple(10 if d in ("bands", "band") else 1 if d in ("t", "z") else 4 for d in dims)
    coords = {d: list(MODEL_BANDS_10) for d in dims if d in ("bands", "band")}
    da = xr.DataArray(np.zeros(shape, np.float32), dims=dims, coords=coords)
    with pytest.raises(ValueError) as e:
        sc.superresolve_dataarray(da, predictor=pred, mode="upscale")
    for w in words:
        assert w in str(e.value)


def test_duplicate_band_aliases_are_an_error(pred):
    da = random_s2_cube(4, 4, seed=13)
    da = da.assign_coords(bands=["B2"] + list(da.bands.values[1:10]) + ["B02"])
    with pytest.raises(ValueError, match="same band twice: B02"):
        sc.superresolve_dataarray(da, predictor=pred, mode="upscale")


def test_resampled_mode_refuses_data_that_is_not_nearest_resampled(pred):
    da = random_s2_cube(8, 8, seed=14)
    smooth = da.interp(y=nearest_resample(da, 2).y, x=nearest_resample(da, 2).x, method="linear",
                       kwargs={"fill_value": "extrapolate"})
    with pytest.raises(ValueError) as e:
        sc.superresolve_dataarray(smooth, predictor=pred, mode="resampled")
    msg = str(e.value)
    assert "not 2x2 nearest-replicated" in msg and 'resample_spatial(resolution=5, method="near")' in msg
    # 10 m bands fine, but a 20 m band only 2x2 (bilinear onto 10 m first): named, with the fix
    hr_in = nearest_resample(da, 2)
    hr_in.loc[dict(bands="B11")] = nearest_resample(random_s2_cube(8, 8, bands=("B02",), extra=(), seed=15), 2).values[0]
    with pytest.raises(ValueError) as e:
        sc.superresolve_dataarray(hr_in, predictor=pred, mode="resampled")
    assert "B11 (20 m: not 4x4 replicated)" in str(e.value) and 'method="near"' in str(e.value)


def test_small_chunk_and_small_overlap_warn_once_with_the_overlap_to_use(pred):
    da = random_s2_cube(6, 6, seed=16)  # 6 px < receptive field 13
    with pytest.warns(sc.TilingWarning) as rec:
        out = sc.superresolve_dataarray(da, predictor=pred, mode="upscale", overlap=2)
    assert out.shape == (11, 12, 12) and np.isfinite(out.values).all()
    msgs = [str(w.message) for w in rec]
    assert any("overlap 2 px is smaller than the 6 px" in m and "overlap=16" in m for m in msgs)
    assert any("smaller than the receptive field (13 px)" in m for m in msgs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once: no second warning
        sc.superresolve_dataarray(da, predictor=pred, mode="upscale", overlap=2)
    # resampled mode: the chunk is on the 5 m grid, the need doubles
    with pytest.warns(sc.TilingWarning, match="overlap 8 px is smaller than the 12 px.*overlap=16"):
        sc.superresolve_dataarray(nearest_resample(random_s2_cube(16, 16, seed=17), 2), predictor=pred,
                                  mode="resampled", overlap=8)


# ------------------------------------------------------------------------------------------------ any grid phase

PROJECTED = ["B05", "B06", "B07", "B8A", "B11", "B12"]


@pytest.fixture(scope="session")
def pred_proj(tmp_path_factory):
    """A tiny package with the 20 m consistency projection of the shipped models."""
    from sr_core.models import load_predictor

    folder = tmp_path_factory.mktemp("udf_models") / "tiny-edsr-x2-proj"
    make_package(folder, arch="edsr", seed=1, postprocess={
        "coarse_projection": {"bands": PROJECTED, "factor": 2, "lam": 0.02, "taps": 4}})
    return load_predictor(folder)


def cube_at(da10: xr.DataArray, ky: int, kx: int) -> xr.DataArray:
    """The 5 m cube of an area of interest starting ky, kx 5 m px into ``da10`` (20 m blocks at phase 0 there)."""
    from udf.local import resample_spatial_local

    return resample_spatial_local(da10, 5, offset=(ky, kx))


@pytest.mark.parametrize("ky, kx", [(0, 1), (1, 0), (1, 1), (2, 0), (0, 2), (2, 3), (3, 2), (3, 3), (1, 2)])
def test_resampled_accepts_any_phase_of_the_10m_and_20m_blocks(pred_proj, ky, kx):
    """Any origin on the native grids: odd 5 m px (10 m blocks cut), odd 10 m px (20 m blocks cut: the first
    20 m block 2 px wide), both. The result equals the upscale run on the 10 m pixels the cube touches (the
    same model input, hence the same 20 m projection blocks), cropped to the cube: exactly."""
    da10 = random_s2_cube(18, 16, dates=2, seed=21)
    cube = cube_at(da10, ky, kx)
    out = sc.superresolve_dataarray(cube, predictor=pred_proj, mode="resampled")
    assert out.shape == cube.shape and out.dims == cube.dims
    np.testing.assert_array_equal(out.x.values, cube.x.values)
    np.testing.assert_array_equal(out.y.values, cube.y.values)
    lr = da10.isel(y=slice(ky // 2, None), x=slice(kx // 2, None))
    up = sc.superresolve_dataarray(lr, predictor=pred_proj, mode="upscale")
    want = up.values[..., ky % 2 : ky % 2 + cube.sizes["y"], kx % 2 : kx % 2 + cube.sizes["x"]]
    np.testing.assert_array_equal(out.values[:, :10], want[:, :10])
    np.testing.assert_array_equal(out.sel(bands="SCL").values, cube.sel(bands="SCL").values)


def test_the_20m_projection_runs_on_off_grid_cubes(pred, pred_proj):
    """Same network with and without the card's projection: the 10 m bands agree, the 20 m bands move (the
    projection found its native blocks in a cube that starts on an odd 10 m and an odd 5 m pixel)."""
    cube = cube_at(random_s2_cube(18, 16, seed=22), 3, 2)
    a = sc.superresolve_dataarray(cube, predictor=pred, mode="resampled")
    b = sc.superresolve_dataarray(cube, predictor=pred_proj, mode="resampled")
    np.testing.assert_array_equal(a.sel(bands=["B02", "B03", "B04", "B08"]).values,
                                  b.sel(bands=["B02", "B03", "B04", "B08"]).values)
    assert np.abs(a.sel(bands=PROJECTED).values - b.sel(bands=PROJECTED).values).max() > 1.0


@pytest.mark.parametrize("nodata", [None, 0.0])
def test_isolated_nodata_pixels_stay_nodata_and_change_nothing_else(pred_proj, nodata):
    """Single nodata 5 m pixels (on the pixel a block is read from, and elsewhere; a 10 m and a 20 m band):
    accepted; exactly those pixels become nodata in every output band, every other value is unchanged."""
    cube = cube_at(random_s2_cube(16, 16, seed=23), 1, 2)
    clean = sc.superresolve_dataarray(cube, predictor=pred_proj, mode="resampled", nodata=nodata)
    bad = cube.copy()
    fill = np.nan if nodata is None else nodata
    holes = [("B02", 0, 0), ("B02", 6, 9), ("B11", 11, 4), ("B05", 20, 21)]
    for band, r, c in holes:
        bad.values[list(bad.bands.values).index(band), r, c] = fill
    out = sc.superresolve_dataarray(bad, predictor=pred_proj, mode="resampled", nodata=nodata)
    mask = np.zeros(cube.shape[-2:], bool)
    for _, r, c in holes:
        mask[r, c] = True
    assert np.isnan(out.values[:10][:, mask]).all()
    np.testing.assert_array_equal(out.values[:10][:, ~mask], clean.values[:10][:, ~mask])
    np.testing.assert_array_equal(out.sel(bands="SCL").values, cube.sel(bands="SCL").values)


@pytest.mark.parametrize("top, left", [(3, 5), (1, 2), (6, 7)])
def test_nan_padded_border_chunk_off_the_20m_grid(pred, top, left):
    """A border chunk as a back-end hands it: NaN padding whose edge is not a 10 m or 20 m block edge. The padding
    stays NaN, the data pixels equal the run on the data alone (the NaN strips are filled by edge replication)."""
    data = cube_at(random_s2_cube(14, 14, seed=24), 3, 1)
    ref = sc.superresolve_dataarray(data, predictor=pred, mode="resampled")
    h, w = data.sizes["y"], data.sizes["x"]
    padded = np.full((11, h + top, w + left), np.nan, np.float32)
    padded[:, top:, left:] = data.values
    chunk = xr.DataArray(padded, dims=data.dims, coords={"bands": data.bands.values})
    out = sc.superresolve_dataarray(chunk, predictor=pred, mode="resampled")
    assert np.isnan(out.values[:, :top]).all() and np.isnan(out.values[:, :, :left]).all()
    assert np.abs(out.values[:, top:, left:] - ref.values).max() <= 1e-4 * DN


def test_resampled_mode_refuses_non_nearest_data_despite_nodata(pred):
    """Nodata never makes bilinear data pass: with a NaN border off the blocks and NaN pixels, smooth data is
    still refused, and so is a 20 m band that is only 2x2 replicated, and 20 m blocks that do not nest in the
    10 m blocks."""
    da = random_s2_cube(8, 8, seed=14)
    smooth = da.interp(y=nearest_resample(da, 2).y, x=nearest_resample(da, 2).x, method="linear",
                       kwargs={"fill_value": "extrapolate"}).copy()
    smooth.values[:, :3] = np.nan
    smooth.values[:, 7, 5] = np.nan
    with pytest.raises(ValueError, match="not 2x2 nearest-replicated along y"):
        sc.superresolve_dataarray(smooth, predictor=pred, mode="resampled")
    hr_in = cube_at(random_s2_cube(10, 10, seed=14), 1, 1)
    hr_in.loc[dict(bands="B11")] = cube_at(random_s2_cube(20, 20, bands=("B02",), extra=(), seed=15), 1, 1).values[
        0, :19, :19]
    hr_in.values[:, :, :3] = np.nan
    with pytest.raises(ValueError, match=r"B11 \(20 m: not 4x4 replicated\)"):
        sc.superresolve_dataarray(hr_in, predictor=pred, mode="resampled")
    shifted = cube_at(random_s2_cube(10, 10, seed=16), 2, 2)
    b05 = list(shifted.bands.values).index("B05")
    shifted.values[b05] = np.roll(shifted.values[b05], 1, axis=-1)  # 20 m blocks one 5 m px off the 10 m blocks
    with pytest.raises(ValueError) as e:
        sc.superresolve_dataarray(shifted, predictor=pred, mode="resampled")
    assert "B05 (phase 1)" in str(e.value) and "along x" in str(e.value) and "nest" in str(e.value)


# ------------------------------------------------------------------------------------------------ coordinate spacing


@pytest.mark.parametrize("mode, res, want", [("upscale", 20.0, 10), ("upscale", 5.0, 10), ("resampled", 10.0, 5),
                                             ("resampled", 20.0, 5)])
def test_coordinate_spacing_is_checked_in_both_modes(pred, mode, res, want):
    """A chunk on another grid than the mode needs (upscale: the model's 10 m; resampled: 10 m / scale = 5 m)
    is refused naming the dim, the spacing found and the one needed."""
    da = random_s2_cube(8, 8, seed=30, resolution=res)
    with pytest.raises(ValueError) as e:
        sc.superresolve_dataarray(da, predictor=pred, mode=mode)
    msg = str(e.value)
    assert msg.startswith("dim 'y'") and f"spaced {res:g}," in msg and f"needs {want:g} " in msg and mode in msg
    # x alone off (y right): named as x; float32 coordinates at UTM magnitudes pass
    ok = random_s2_cube(8, 8, seed=30, resolution=float(want))
    bad_x = ok.assign_coords(x=ok.x.values[0] + res * np.arange(8))
    with pytest.raises(ValueError, match=rf"dim 'x'.*spaced {res:g}, .*needs {want:g} "):
        sc.superresolve_dataarray(bad_x, predictor=pred, mode=mode)
    if mode == "resampled":
        ok = nearest_resample(random_s2_cube(8, 8, seed=30), 2)
    f32 = ok.assign_coords(x=ok.x.values.astype(np.float32), y=ok.y.values.astype(np.float32))
    assert sc.superresolve_dataarray(f32, predictor=pred, mode=mode).shape[-2:] == (16, 16)


def test_irregular_coordinates_and_chunks_without_coordinates(pred):
    da = random_s2_cube(8, 8, seed=31)
    x = da.x.values.copy()
    x[5:] += 3.0
    with pytest.raises(ValueError, match=r"dim 'x'.*spaced 10 to 13, .*needs 10 "):
        sc.superresolve_dataarray(da.assign_coords(x=x), predictor=pred, mode="upscale")
    bare = da.drop_vars(["x", "y"])
    out = sc.superresolve_dataarray(bare, predictor=pred, mode="upscale")
    ref = sc.superresolve_dataarray(da, predictor=pred, mode="upscale")
    np.testing.assert_array_equal(out.values, ref.values)
    assert "x" not in out.coords and "y" not in out.coords
