"""Consistency projection, numpy (sr_core.projection.filters): the filters, the numpy twin of the torch layer, the
projection of nearest-replicated coarse bands; no torch needed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_core.bands import mtf
from sr_core.degradation import degrade
from sr_core.projection.filters import (
    ProjectionFilters,
    consistency_projection_numpy,
    project_coarse_bands,
    projection_filters,
)
from sr_core.projection.layer import consistency_projection

MTF = [mtf(b) for b in ["B02", "B03", "B04", "B08"]]
MTF20 = [mtf(b) for b in ["B05", "B06", "B07", "B8A", "B11", "B12"]]


@pytest.mark.parametrize("ratio", [2, 4])
def test_filters_closed_form(ratio):
    f = projection_filters(MTF, ratio, lam=0.1, taps=8)
    assert f.psf.shape[0] == 4 and f.inverse.shape == (4, 17)
    np.testing.assert_allclose(f.psf.sum(1), 1.0, atol=1e-12)
    assert f.truncation < 1e-8
    # K = (G + lam)^-1: (g * K) + lam K = delta, checked on the kept taps (truncation is negligible)
    for h, kinv in zip(f.psf, f.inverse):
        k = len(h)
        ac = np.correlate(h, h, "full")
        g = {(i - (k - 1)) // ratio: v for i, v in enumerate(ac) if (i - (k - 1)) % ratio == 0}
        gv = np.array([g.get(t, 0.0) for t in range(-20, 21)])
        conv = np.convolve(gv, kinv)  # index 20 + 8 = lag 0
        out = conv + 0.1 * np.pad(kinv, (20, 20))
        delta = np.zeros_like(out)
        delta[28] = 1.0
        np.testing.assert_allclose(out, delta, atol=1e-5)  # the dropped tails are < 1e-5


def test_filters_bad_values():
    with pytest.raises(ValueError, match="mtf"):
        projection_filters([0.3, 1.2], 2)
    with pytest.raises(ValueError, match="lam"):
        projection_filters(MTF, 2, lam=-1.0)
    with pytest.raises(ValueError, match="taps"):
        projection_filters(MTF, 2, taps=0)
    with pytest.raises(ValueError, match="ratio"):
        projection_filters(MTF, 0)


@pytest.mark.parametrize("ratio", [2, 4])
def test_numpy_twin_equals_torch(ratio):
    f = projection_filters(MTF20, ratio, lam=0.05, taps=3)
    rng = np.random.default_rng(ratio)
    sr, lr = rng.random((2, 6, ratio * 9, ratio * 7)), rng.random((2, 6, 9, 7))
    ref = consistency_projection(torch.tensor(sr), torch.tensor(lr), mtf=MTF20, ratio=ratio, lam=0.05, taps=3)
    np.testing.assert_allclose(consistency_projection_numpy(sr, lr, f), ref.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("ratio", [2, 4])
@pytest.mark.parametrize("lr_hw", [(1, 1), (2, 3), (5, 4)])
def test_numpy_twin_small_scenes_and_float32(ratio, lr_hw):
    # scenes smaller than the PSF (edge padding folded into the banded operators, the adjoint cropped)
    f = projection_filters(MTF20, ratio, lam=0.05, taps=3)
    rng = np.random.default_rng(sum(lr_hw) + ratio)
    h, w = lr_hw
    sr, lr = rng.random((1, 6, ratio * h, ratio * w)), rng.random((1, 6, h, w))
    ref = consistency_projection(torch.tensor(sr), torch.tensor(lr), mtf=MTF20, ratio=ratio, lam=0.05, taps=3).numpy()
    np.testing.assert_allclose(consistency_projection_numpy(sr, lr, f), ref, rtol=0, atol=1e-12)
    out32 = consistency_projection_numpy(sr.astype(np.float32), lr.astype(np.float32), f)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, ref, rtol=0, atol=2e-5)  # float32 rounding of the same sums


def test_project_coarse_bands_makes_the_native_grid_consistent():
    # 20 m bands replicated (phase 1) on a 10 m grid, x2 output: afterwards degrade_x4(sr) ~= native values
    rng = np.random.default_rng(0)
    native = rng.random((1, 6, 10, 10)).cumsum(-1).cumsum(-2) / 20
    x = np.repeat(np.repeat(native, 2, -1), 2, -2)[:, :, 1:-1, 1:-1]  # 18 x 18, blocks start at row/col 1
    sr = np.repeat(np.repeat(x, 2, -1), 2, -2)  # a crude x2 output (36 x 36)
    f = projection_filters(MTF20, 4, lam=0.0, taps=10)
    out = project_coarse_bands(sr, x, channels=list(range(6)), factor=2, scale=2, filters=f)
    # whole native blocks are rows/cols 1..16 of x -> 5 m rows 2..33; compare on the interior of that region
    d = degrade(torch.tensor(out[:, :, 2:34, 2:34]), 4, mtf=MTF20).numpy()
    d0 = degrade(torch.tensor(sr[:, :, 2:34, 2:34]), 4, mtf=MTF20).numpy()
    nat = native[:, :, 1:9, 1:9]
    inner = (..., slice(2, -2), slice(2, -2))
    assert np.abs(d - nat)[inner].max() < 1e-3 * np.abs(d0 - nat)[inner].max()
    np.testing.assert_array_equal(out[:, :, :2], sr[:, :, :2])  # partial blocks untouched
    with pytest.raises(ValueError, match="ratio"):
        project_coarse_bands(sr, x, channels=list(range(6)), factor=2, scale=2, filters=projection_filters(MTF20, 2))


def test_project_coarse_bands_channel_lists_and_in_place():
    # a channel list that is not a contiguous range (fancy indexing) gives what each band gives alone; in place
    # on a writable array returns that array
    rng = np.random.default_rng(3)
    x = np.repeat(np.repeat(rng.random((1, 6, 9, 8)), 2, -1), 2, -2)
    sr = rng.random((1, 6, 36, 32))
    f2 = projection_filters([MTF20[4], MTF20[1]], 4, lam=0.05, taps=3)
    both = project_coarse_bands(sr, x, channels=[4, 1], factor=2, scale=2, filters=f2)
    for i, c in enumerate((4, 1)):  # the same band's filters alone
        fi = ProjectionFilters(psf=f2.psf[i : i + 1], inverse=f2.inverse[i : i + 1], ratio=4, lam=0.05, truncation=0.0)
        one = project_coarse_bands(sr, x, channels=[c], factor=2, scale=2, filters=fi)
        np.testing.assert_allclose(both[:, c], one[:, c], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(both[:, [0, 2, 3, 5]], sr[:, [0, 2, 3, 5]])
    assert np.abs(both[:, 4] - sr[:, 4]).max() > 1e-3  # it did something
    f = projection_filters(MTF20[:2], 4, lam=0.05, taps=3)
    work = sr.copy()
    out = project_coarse_bands(work, x, channels=[2, 3], factor=2, scale=2, filters=f, inplace=True)
    assert out is work
    np.testing.assert_array_equal(out, project_coarse_bands(sr, x, channels=[2, 3], factor=2, scale=2, filters=f))


def test_numpy_filters_use_the_degradation_psf_and_import_no_torch():
    import subprocess
    import sys

    from sr_core.degradation import gaussian_psf_1d, mtf_to_sigma

    for ratio in (2, 4):
        f = projection_filters(MTF20, ratio, lam=0.02, taps=4)
        for m, h in zip(MTF20, f.psf):
            ref = gaussian_psf_1d(mtf_to_sigma(m, ratio), ratio, size=len(h)).numpy()
            np.testing.assert_allclose(h, ref, rtol=0, atol=1e-15)
    code = ("import sys; sys.modules['torch'] = None; import numpy as np; "
            "from sr_core.projection.filters import projection_filters, project_coarse_bands; "
            "f = projection_filters([0.3], 4); x = np.repeat(np.repeat(np.random.rand(1, 1, 8, 8), 2, -1), 2, -2); "
            "project_coarse_bands(np.random.rand(1, 1, 32, 32), x, channels=[0], factor=2, scale=2, filters=f)")
    subprocess.run([sys.executable, "-c", code], check=True)
