"""Multi-image super-resolution of chunks (sr_core.inference.misr): per-date DataArrays and their grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sr_core.inference.misr import misr_dataarray, stack_dates
from sr_core.models import load_misr_predictor
from udf.contract import misr_udf_apply
from udf.testing import make_package, random_s2_cube

pytestmark = pytest.mark.filterwarnings("ignore::sr_core.inference.cube.TilingWarning")  # tiny chunks on purpose


@pytest.fixture(scope="session")
def hrn(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("misr_models") / "tiny-highresnet-x2"
    make_package(folder, arch="highresnet", seed=5, frames=4)
    return folder


def cube(seed: int, dates: int = 3, h: int = 10, w: int = 10):
    da = random_s2_cube(h, w, dates=dates, seed=seed)
    da.loc[dict(bands="SCL")] = 4.0  # vegetation: valid everywhere unless a test says otherwise
    return da


def test_frames_on_different_grids_are_refused(hrn):
    da = cube(15, dates=2)
    d0, d1 = da.isel(t=0), da.isel(t=1)
    ok = stack_dates([d0, d1])
    np.testing.assert_array_equal(ok.values, da.values)
    shifted = d1.assign_coords(x=d1.x + 10.0)
    with pytest.raises(ValueError, match="different grid.*x coordinates"):
        misr_udf_apply(stack_dates([d0, shifted]), {"model": str(hrn)})
    with pytest.raises(ValueError, match="different grid: y has 8 pixels"):
        stack_dates([d0, d1.isel(y=slice(0, 8))])
    out = misr_dataarray([d0, d1], predictor=load_misr_predictor(hrn, engine="torch"), mode="upscale")
    assert out.shape == (1, 10, 20, 20)


@pytest.mark.parametrize("mode, res, want", [("upscale", 20.0, 10), ("resampled", 10.0, 5)])
def test_misr_checks_the_coordinate_spacing_in_both_modes(hrn, mode, res, want):
    da = random_s2_cube(8, 8, dates=2, seed=40, resolution=res)
    with pytest.raises(ValueError, match=rf"dim 'y': the chunk's coordinates are spaced {res:g}, .*needs {want:g} "):
        misr_udf_apply(da, {"model": str(hrn), "mode": mode, "engine": "torch"})
