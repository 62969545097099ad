"""Nodata masks, nearest-valid fill, mask upsampling/dilation and restoration."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from sr_core.nodata import (
    band_valid_mask,
    dilate_invalid,
    fill_nodata,
    finalize_output,
    prepare_input,
    restore_nodata,
    upsample_mask,
    valid_mask,
)
from sr_core.tiling import plan_tiles, whole_apply


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ----------------------------------------------------------------------------------------------- masks


def test_valid_mask_all_bands(rng):
    x = rng.random((2, 3, 5, 6)).astype(np.float32) + 1.0
    x[0, 1, 2, 3] = np.nan  # one band NaN -> pixel invalid
    x[1, 2, 4, 0] = np.inf
    x[1, 0, 0, 5] = -9999.0
    v = valid_mask(x)
    assert v.shape == (2, 5, 6) and v.dtype == bool
    want = np.ones((2, 5, 6), bool)
    want[0, 2, 3] = want[1, 4, 0] = False
    np.testing.assert_array_equal(v, want)
    want[1, 0, 5] = False
    np.testing.assert_array_equal(valid_mask(x, nodata=-9999.0), want)
    np.testing.assert_array_equal(valid_mask(torch.from_numpy(x), nodata=-9999), want)
    bv = band_valid_mask(x, nodata=-9999.0)
    assert bv.shape == x.shape and (~bv).sum() == 3 and not bv[1, 0, 0, 5] and bv[1, 1, 0, 5]
    # band axis elsewhere: (C, N, H, W) with axis_bands=0 gives the same mask
    np.testing.assert_array_equal(valid_mask(x.transpose(1, 0, 2, 3), nodata=-9999.0, axis_bands=0), want)
    np.testing.assert_array_equal(valid_mask(x[0, 1], axis_bands=None), np.isfinite(x[0, 1]))


def test_valid_mask_errors(rng):
    x = rng.random((2, 4, 4))
    for bad in (-1, -2, 2, 3):
        with pytest.raises(ValueError, match="axis_bands"):
            valid_mask(x, axis_bands=bad)
    with pytest.raises(ValueError, match="nodata"):
        valid_mask(x, nodata="0")
    with pytest.raises(ValueError, match="3-D"):
        valid_mask(x[0])


# ------------------------------------------------------------------------------------------------ fill


@pytest.mark.parametrize("pads", [((2, 0), (0, 0)), ((0, 3), (1, 0)), ((1, 2), (3, 1)), ((0, 0), (0, 4))])
def test_fill_nan_border_strip_is_edge_pad(rng, pads):
    core = rng.random((2, 3, 5, 6)).astype(np.float32)
    (t, b), (l, r) = pads
    x = np.pad(core, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=np.nan)
    filled, v, all_invalid = prepare_input(x)
    assert not all_invalid and v.sum() == 2 * 5 * 6
    np.testing.assert_array_equal(filled, np.pad(core, ((0, 0), (0, 0), (t, b), (l, r)), mode="edge"))
    assert not np.isnan(x[..., t : t + 5, l : l + 6]).any() and np.isnan(x).any()  # x not modified


def test_fill_nearest_valid_brute_force(rng):
    h, w = 9, 11
    x = rng.random((2, 3, h, w))
    valid = rng.random((2, h, w)) < 0.12
    valid[:, 0, 0] = True  # at least one valid pixel per sample
    x_in = np.where(valid[:, None], x, np.nan)
    filled, all_invalid = fill_nodata(x_in, valid)
    assert not all_invalid and filled.dtype == x_in.dtype
    for n in range(2):
        vr, vc = np.nonzero(valid[n])
        for i in range(h):
            for j in range(w):
                d2 = (vr - i) ** 2 + (vc - j) ** 2
                nearest = np.flatnonzero(d2 == d2.min())
                got = filled[n, :, i, j]
                # equal to the (a tied) nearest valid pixel, all bands from that same pixel
                assert any(np.array_equal(got, x[n, :, vr[k], vc[k]]) for k in nearest), (n, i, j)
        # valid pixels are untouched, bit for bit
        np.testing.assert_array_equal(filled[n][:, valid[n]], x[n][:, valid[n]])


def test_fill_interior_hole_unique_nearest():
    # a 2-px-wide interior column band: column 2 takes column 1 (distance 1, column 4 is at 2), column 3
    # takes column 4; a closed 1-px hole takes one of its four equidistant neighbours
    x = np.arange(5 * 7, dtype=np.float64).reshape(1, 5, 7)
    valid = np.ones((5, 7), bool)
    valid[:, 2:4] = False
    valid[2, 5] = False
    filled, _ = fill_nodata(np.where(valid, x, np.nan), valid)
    np.testing.assert_array_equal(filled[0, :, 2], x[0, :, 1])
    np.testing.assert_array_equal(filled[0, :, 3], x[0, :, 4])
    assert filled[0, 2, 5] in (x[0, 1, 5], x[0, 3, 5], x[0, 2, 4], x[0, 2, 6])
    np.testing.assert_array_equal(filled[0][valid], x[0][valid])


def test_fill_rectangle_fast_path_equals_distance_transform(rng):
    # valid pixels forming a rectangle (a chunk NaN-padded at the cube border) are filled by edge replication
    # without the distance transform: the same values bit for bit, samples of other shapes in the same batch
    from scipy import ndimage

    h, w = 9, 10
    x = rng.random((5, 3, h, w)).astype(np.float32)
    valid = np.zeros((5, h, w), bool)
    valid[0, 2:7, 3:10] = True  # touches the right edge
    valid[1, 0:1, 4:5] = True  # a single pixel
    valid[2, 1:9, 0:6] = True
    valid[2, 4, 2] = False  # a hole inside: not a rectangle -> distance transform
    valid[3] = True  # all valid
    valid[4, 3:5, 1:8] = True
    valid[4, 0, 0] = True  # a rectangle plus an outlier: not a rectangle
    filled, all_invalid = fill_nodata(np.where(valid[:, None], x, np.nan), valid)
    assert not all_invalid
    for n in range(5):
        rows, cols = ndimage.distance_transform_edt(~valid[n], return_distances=False, return_indices=True)
        np.testing.assert_array_equal(filled[n], x[n][:, rows, cols])
    # no band axis: (N, H, W) data with an (N, H, W) mask
    f2, _ = fill_nodata(np.where(valid, x[:, 0], np.nan), valid)
    np.testing.assert_array_equal(f2, filled[:, 0])


def test_restore_nodata_broadcasts_the_mask_over_bands(rng):
    sr = rng.random((2, 3, 4, 6)).astype(np.float32)
    v = rng.random((2, 4, 6)) < 0.6
    want = sr.copy()
    for c in range(3):
        want[:, c][~v] = np.nan
    out = restore_nodata(sr, v)
    assert out is not sr and not np.isnan(sr).any()
    np.testing.assert_array_equal(out, want)
    same = restore_nodata(sr, v, inplace=True)
    assert same is sr
    np.testing.assert_array_equal(sr, want)
    np.testing.assert_array_equal(restore_nodata(sr[:, 0] * 0 + 1, v, fill=-1.0), np.where(v, 1.0, -1.0))


def test_integer_nodata_uint16():
    x = np.full((2, 4, 5), 0, np.uint16)
    x[:, 1:, 2:] = np.arange(2 * 3 * 3, dtype=np.uint16).reshape(2, 3, 3) + 100
    filled, v, all_invalid = prepare_input(x, nodata=0)
    assert not all_invalid and filled.dtype == np.uint16
    np.testing.assert_array_equal(v, np.pad(np.ones((3, 3), bool), ((1, 0), (2, 0))))
    np.testing.assert_array_equal(filled, np.pad(x[:, 1:, 2:], ((0, 0), (1, 0), (2, 0)), mode="edge"))
    sr = np.repeat(np.repeat(filled, 2, -2), 2, -1)
    out = finalize_output(sr, v, 2, fill=0)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out == 0, np.broadcast_to(~upsample_mask(v, 2), out.shape))
    with pytest.raises(ValueError, match="fill"):
        finalize_output(sr, v, 2)  # NaN cannot go into uint16


def test_all_invalid_flagged():
    x = np.full((2, 3, 4, 4), np.nan, np.float32)
    filled, v, all_invalid = prepare_input(x)
    assert all_invalid and filled is x and not v.any()
    # one sample wholly invalid, the other not: that sample is left as is, the other filled
    x[1, :, 0, 0] = 1.0
    filled, v, all_invalid = prepare_input(x)
    assert not all_invalid and np.isnan(filled[0]).all() and (filled[1] == 1.0).all()


def test_fill_errors(rng):
    x = rng.random((3, 4, 5))
    with pytest.raises(ValueError, match="bool"):
        fill_nodata(x, np.ones((4, 5)))
    with pytest.raises(ValueError, match="does not match"):
        fill_nodata(x, np.ones((5, 4), bool))
    filled, flag = fill_nodata(x, np.ones((4, 5), bool))
    assert filled is x and not flag


# ------------------------------------------------------------------------------------- masks: resample


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_upsample_then_block_reduce(rng, scale):
    v = rng.random((2, 5, 7)) < 0.6
    up = upsample_mask(v, scale)
    assert up.shape == (2, 5 * scale, 7 * scale) and up.dtype == bool
    blocks = up.reshape(2, 5, scale, 7, scale)
    np.testing.assert_array_equal(blocks.all(axis=(2, 4)), v)
    np.testing.assert_array_equal(blocks.any(axis=(2, 4)), v)
    with pytest.raises(ValueError, match="scale"):
        upsample_mask(v, 0)


@pytest.mark.parametrize("radius", [0, 1, 2, 4])
@pytest.mark.parametrize("r0, c0", [(5, 6), (0, 1), (8, 11)])
def test_dilation_single_invalid_pixel(radius, r0, c0):
    h, w = 9, 12
    v = np.ones((2, h, w), bool)
    v[0, r0, c0] = False
    d = dilate_invalid(v, radius)
    rr, cc = np.mgrid[:h, :w]
    want = np.maximum(np.abs(rr - r0), np.abs(cc - c0)) > radius
    np.testing.assert_array_equal(d[0], want)
    assert d[1].all()  # samples do not mix, the image border is not invalid
    assert v[0].sum() == h * w - 1  # input untouched
    with pytest.raises(ValueError, match="radius"):
        dilate_invalid(v, -1)


# --------------------------------------------------------------------------------------------- restore


def test_restore_nan_exactly_on_invalid_blocks(rng):
    scale = 3
    v = rng.random((2, 4, 5)) < 0.7
    sr = rng.random((2, 3, 4 * scale, 5 * scale)).astype(np.float32)
    out = finalize_output(sr, v, scale)
    want_nan = np.broadcast_to(~upsample_mask(v, scale)[:, None], sr.shape)
    np.testing.assert_array_equal(np.isnan(out), want_nan)
    np.testing.assert_array_equal(out[~want_nan], sr[~want_nan])
    assert out.dtype == np.float32 and not np.isnan(sr).any()
    # restore_nodata directly with an HR mask and a finite fill; dilation grows the NaN region
    np.testing.assert_array_equal(restore_nodata(sr, upsample_mask(v, scale), fill=-1.0) == -1.0, want_nan)
    dil = finalize_output(sr, v, scale, dilate=1)
    np.testing.assert_array_equal(
        np.isnan(dil), np.broadcast_to(~upsample_mask(dilate_invalid(v, 1), scale)[:, None], sr.shape)
    )
    with pytest.raises(ValueError, match="spatial size"):
        finalize_output(sr, v, 2)


# ------------------------------------------------------------------------------------- back-end chunks


def test_nan_padded_chunks_equal_whole_scene(gen):
    """A back-end chunk padded with NaN at the cube border, filled, run and cropped == the whole scene.

    Integer weights and inputs in float64 make every sum exact whatever the summation order, so the
    comparison is bitwise."""
    scale, margin = 2, 3  # three 3x3 convs: LR radius 3
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
        nn.Conv2d(4, 2 * scale * scale, 3, padding=1), nn.PixelShuffle(scale),
    ).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randint(-3, 4, p.shape, generator=gen, dtype=torch.float64))

    def fn(a: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(a)).numpy()

    scene = torch.randint(0, 10, (2, 10, 13), generator=gen, dtype=torch.float64).numpy()
    ref = whole_apply(fn, scene, scale=scale, margin=margin)
    nan_padded = np.pad(scene, ((0, 0), (margin, margin), (margin, margin)), constant_values=np.nan)
    canvas = np.full_like(ref, -1.0)
    for t in plan_tiles(10, 13, tile=(4, 6), margin=margin, scale=scale):
        # what the back-end hands over: core + overlap, NaN outside the cube
        chunk = nan_padded[:, t.row0 : t.row1 + 2 * margin, t.col0 : t.col1 + 2 * margin]
        filled, valid, all_invalid = prepare_input(chunk)
        assert not all_invalid
        sr = finalize_output(fn(filled[None])[0], valid, scale)
        rows, cols = t.crop
        canvas[(slice(None), *t.out)] = sr[:, rows, cols]
    np.testing.assert_array_equal(canvas, ref)
    assert np.unique(ref).size > 50  # the network is not degenerate


def test_finalize_output_inplace_and_all_valid_shortcut():
    from sr_core.nodata import finalize_output

    rng = np.random.default_rng(0)
    sr = rng.random((2, 3, 8, 8)).astype(np.float32)
    valid = np.ones((2, 4, 4), dtype=bool)
    assert finalize_output(sr, valid, 2) is sr  # nothing to restore: no copy
    valid[1, 0, 0] = False
    ref = finalize_output(sr, valid, 2)
    assert ref is not sr and np.isfinite(sr).all()  # the default never modifies its input
    out = finalize_output(sr, valid, 2, inplace=True)
    assert out is sr
    np.testing.assert_array_equal(out, ref)
    assert np.isnan(out[1, :, :2, :2]).all() and np.isfinite(out[0]).all()
    with pytest.raises(ValueError, match="scale=2"):
        finalize_output(sr, np.ones((2, 3, 3), dtype=bool), 2)
