"""Tiled inference == whole-scene inference, tile plans, HR coordinates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from sr_core.tiling import (
    TileWindow,
    edge_pad,
    extract_tile,
    hr_coords,
    hr_transform,
    iter_tiles,
    plan_tiles,
    required_margin,
    tiled_apply,
    whole_apply,
)

# Conv stack 3x3 -> 5x5 -> 3x3 (zero padding), then pixel shuffle: LR support radius 1 + 2 + 1 = 4.
RADIUS = 4


def make_net(gen: torch.Generator, *, channels: int = 2, scale: int = 2, features: int = 4,
             dtype: torch.dtype = torch.float32) -> nn.Module:
    net = nn.Sequential(
        nn.Conv2d(channels, features, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(features, features, 5, padding=2),
        nn.Tanh(),
        nn.Conv2d(features, channels * scale * scale, 3, padding=1),
        nn.PixelShuffle(scale),
    ).to(dtype)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen, dtype=dtype))
    return net.eval()


def numpy_fn(net: nn.Module):
    def fn(a: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(a)).numpy()

    return fn


# -------------------------------------------------------------------------------------------- planning


def test_required_margin():
    assert [required_margin(rf) for rf in (1, 3, 9, 41)] == [0, 1, 4, 20]
    for bad in (0, 2, 8, -3, 3.0, True, None):
        with pytest.raises(ValueError, match="receptive_field"):
            required_margin(bad)


@pytest.mark.parametrize(
    "h, w, tile, margin", [(13, 11, 5, 4), (7, 9, 1, 3), (10, 11, 10, 2), (5, 6, 64, 7), (9, 8, (4, 3), 0)]
)
def test_plan_tiles_partition(h, w, tile, margin):
    scale = 3
    plan = plan_tiles(h, w, tile=tile, margin=margin, scale=scale)
    th, tw = (tile, tile) if isinstance(tile, int) else tile
    count = np.zeros((h, w), int)
    for t in plan:
        count[t.core] += 1
        ch, cw = t.core_shape
        assert 1 <= ch <= th and 1 <= cw <= tw
        # read window = core grown by the margin, clipped; padding restores the full margin
        assert (t.read_row0, t.read_row1) == (max(0, t.row0 - margin), min(h, t.row1 + margin))
        assert (t.read_col0, t.read_col1) == (max(0, t.col0 - margin), min(w, t.col1 + margin))
        assert t.pad_top + (t.read_row1 - t.read_row0) + t.pad_bottom == ch + 2 * margin
        assert t.pad_left + (t.read_col1 - t.read_col0) + t.pad_right == cw + 2 * margin
        assert t.input_shape == (ch + 2 * margin, cw + 2 * margin)
        # padding only where the grown window leaves the scene
        assert (t.pad_top > 0) == (t.row0 - margin < 0) and (t.pad_right > 0) == (t.col1 + margin > w)
        assert t.out == (slice(scale * t.row0, scale * t.row1), slice(scale * t.col0, scale * t.col1))
        sm = scale * margin
        assert t.crop == (slice(sm, sm + scale * ch), slice(sm, sm + scale * cw))
    assert (count == 1).all()
    # row-major order, remainder last
    assert plan[0].row0 == plan[0].col0 == 0 and plan[-1].row1 == h and plan[-1].col1 == w


def test_plan_tiles_errors():
    with pytest.raises(ValueError, match="tile"):
        plan_tiles(4, 4, tile=0, margin=1)
    with pytest.raises(ValueError, match="tile"):
        plan_tiles(4, 4, tile=(2, 2, 2), margin=1)
    with pytest.raises(ValueError, match="margin"):
        plan_tiles(4, 4, tile=2, margin=-1)
    with pytest.raises(ValueError, match="height"):
        plan_tiles(0, 4, tile=2, margin=1)
    with pytest.raises(ValueError, match="width"):
        plan_tiles(4, 2.5, tile=2, margin=1)
    with pytest.raises(ValueError, match="scale"):
        plan_tiles(4, 4, tile=2, margin=1, scale=0)


def test_extract_tile_is_edge_padded_scene():
    lr = np.arange(2 * 6 * 5, dtype=np.float32).reshape(2, 6, 5)
    m = 3
    full = np.pad(lr, ((0, 0), (m, m), (m, m)), mode="edge")
    for t in plan_tiles(6, 5, tile=2, margin=m):
        want = full[:, t.row0 : t.row1 + 2 * m, t.col0 : t.col1 + 2 * m]
        np.testing.assert_array_equal(extract_tile(lr, t), want)
        np.testing.assert_array_equal(extract_tile(torch.from_numpy(lr), t).numpy(), want)
    with pytest.raises(ValueError, match="pad"):
        edge_pad(lr, ((-1, 0), (0, 0)))


# -------------------------------------------------------------------------------------- tiled == whole


@pytest.mark.parametrize("scale", [2, 3])
@pytest.mark.parametrize(
    "tile, margin", [(1, RADIUS), (3, RADIUS), (5, RADIUS + 2), (10, RADIUS), ((4, 7), 6)]
)
def test_tiled_equals_whole_float32(gen, scale, tile, margin):
    net = make_net(gen, scale=scale)
    lr = torch.rand(2, 13, 11, generator=gen)  # 13 x 11: non-divisible; tile 10 leaves a 1-px column
    ref = whole_apply(numpy_fn(net), lr.numpy(), scale=scale, margin=margin)
    got = tiled_apply(numpy_fn(net), lr.numpy(), scale=scale, tile=tile, margin=margin)
    assert got.shape == ref.shape == (2, 13 * scale, 11 * scale) and got.dtype == np.float32
    assert np.abs(got - ref).max() <= 1e-5


@pytest.mark.parametrize("scale", [2, 3])
def test_tiled_equals_whole_float64(gen, scale):
    net = make_net(gen, scale=scale, dtype=torch.float64)
    lr = torch.rand(1, 2, 12, 9, generator=gen, dtype=torch.float64)
    ref = whole_apply(net, lr, scale=scale, margin=RADIUS)
    for tile in (2, 5, 8):
        got = tiled_apply(net, lr, scale=scale, tile=tile, margin=RADIUS)
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
        # only the summation order of the convolutions may differ (BLAS blocking depends on the size)
        assert (got - ref).abs().max() <= 1e-12, tile


def make_integer_net(gen: torch.Generator, scale: int) -> nn.Module:
    """Integer weights, ReLU: with integer inputs every float64 sum is exact in any order."""
    net = make_net(gen, scale=scale, dtype=torch.float64)
    net[1] = nn.ReLU()
    net[3] = nn.ReLU()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randint(-3, 4, p.shape, generator=gen, dtype=torch.float64))
    return net


@pytest.mark.parametrize("scale", [2, 3])
def test_tiled_equals_whole_float64_exact(gen, scale):
    net = make_integer_net(gen, scale)
    lr = torch.randint(0, 10, (2, 2, 11, 9), generator=gen, dtype=torch.float64)
    ref = whole_apply(net, lr, scale=scale, margin=RADIUS)
    assert ref.unique().numel() > 50  # not degenerate
    for tile, margin in [(1, RADIUS), (4, RADIUS), (8, RADIUS + 1), ((3, 5), RADIUS + 4)]:
        got = tiled_apply(net, lr, scale=scale, tile=tile, margin=margin, batch_size=3)
        assert torch.equal(got, ref), (tile, margin)
    # one margin short: exact equality is lost
    assert not torch.equal(tiled_apply(net, lr, scale=scale, tile=4, margin=RADIUS - 1), ref)


def test_margin_invariance_and_too_small_margin(gen):
    scale = 2
    net = make_net(gen, scale=scale, dtype=torch.float64)
    lr = torch.rand(2, 12, 10, generator=gen, dtype=torch.float64)
    ref = whole_apply(net, lr, scale=scale, margin=RADIUS)
    # once the margin covers the receptive field, a larger one changes nothing
    assert (whole_apply(net, lr, scale=scale, margin=RADIUS + 3) - ref).abs().max() < 1e-12
    # a margin smaller than needed: tile borders see the network's zero padding
    for margin in (0, RADIUS - 1):
        got = tiled_apply(net, lr, scale=scale, tile=4, margin=margin)
        assert (got - ref).abs().max() > 1e-4, margin
        # ... and so does the whole scene: its borders differ from the replicate-padded reference
        assert (whole_apply(net, lr, scale=scale, margin=margin) - ref).abs().max() > 1e-4


def test_batching_equal_size_tiles(gen):
    scale = 2
    net = make_net(gen, scale=scale)
    lr = torch.rand(3, 2, 11, 9, generator=gen)  # N = 3 samples
    calls = []

    def fn(x):
        calls.append(x.shape[0])
        return net(x)

    ref = tiled_apply(fn, lr, scale=scale, tile=4, margin=RADIUS)
    n_tiles = len(plan_tiles(11, 9, tile=4, margin=RADIUS))
    assert calls == [3] * n_tiles
    calls.clear()
    got = tiled_apply(fn, lr, scale=scale, tile=4, margin=RADIUS, batch_size=4)
    # 3 x 3 tiles in 4 input sizes (4x4, 4x1, 3x4, 3x1): the 4 full ones go in one call
    assert sorted(calls) == sorted([12, 6, 6, 3])
    assert (got - ref).abs().max() <= 1e-5
    assert (got - whole_apply(net, lr, scale=scale, margin=RADIUS)).abs().max() <= 1e-5


def test_out_memmap_writer_and_progress(gen, tmp_path):
    scale = 3
    net = make_net(gen, scale=scale)
    lr = torch.rand(2, 7, 8, generator=gen).numpy()
    ref = whole_apply(numpy_fn(net), lr, scale=scale, margin=RADIUS)

    mm = np.lib.format.open_memmap(tmp_path / "sr.npy", mode="w+", dtype=np.float32, shape=ref.shape)
    seen = []
    res = tiled_apply(numpy_fn(net), lr, scale=scale, tile=3, margin=RADIUS, out=mm,
                      progress=lambda done, total: seen.append((done, total)))
    assert res is mm
    mm.flush()
    assert np.abs(np.load(tmp_path / "sr.npy") - ref).max() <= 1e-5
    total = len(plan_tiles(7, 8, tile=3, margin=RADIUS))
    assert seen == [(k, total) for k in range(1, total + 1)]

    class Writer:  # a rasterio-window-like adapter: records (rows, cols) windows
        def __init__(self):
            self.buf = np.full(ref.shape, np.nan, np.float32)
            self.windows = []

        def __setitem__(self, key, value):
            band, rows, cols = key
            assert band == slice(None) and isinstance(value, np.ndarray)
            self.windows.append((rows, cols))
            self.buf[:, rows, cols] = value

    wr = Writer()
    tiled_apply(lambda x: net(x), torch.from_numpy(lr), scale=scale, tile=3, margin=RADIUS, out=wr)
    assert len(wr.windows) == total and np.abs(wr.buf - ref).max() <= 1e-5

    out_t = torch.zeros(ref.shape, dtype=torch.float64)
    tiled_apply(numpy_fn(net), lr, scale=scale, tile=5, margin=RADIUS, out=out_t)
    assert (out_t - torch.from_numpy(ref).double()).abs().max() <= 1e-5


def test_iter_tiles_streams_cores(gen):
    scale = 2
    net = make_net(gen, scale=scale)
    lr = torch.rand(2, 9, 10, generator=gen)
    ref = whole_apply(net, lr, scale=scale, margin=RADIUS)
    canvas = torch.full_like(ref, float("nan"))
    n = 0
    for w, sr_tile in iter_tiles(net, lr, scale=scale, tile=4, margin=RADIUS, batch_size=2):
        assert isinstance(w, TileWindow)
        h, wd = w.core_shape
        assert sr_tile.shape == (2, scale * h, scale * wd) and not sr_tile.requires_grad
        canvas[(slice(None), *w.out)] = sr_tile
        n += 1
    assert n == len(plan_tiles(9, 10, tile=4, margin=RADIUS))
    assert (canvas - ref).abs().max() <= 1e-5


def test_bad_inputs(gen):
    net = make_net(gen, scale=2)
    lr = torch.rand(2, 6, 6, generator=gen)
    with pytest.raises(ValueError, match="fn returned shape"):
        tiled_apply(net, lr, scale=3, tile=4, margin=RADIUS)
    with pytest.raises(ValueError, match="fn returned shape"):
        whole_apply(net, lr, scale=3, margin=RADIUS)
    with pytest.raises(ValueError, match="out has shape"):
        tiled_apply(net, lr, scale=2, tile=4, margin=RADIUS, out=np.zeros((2, 12, 11), np.float32))
    with pytest.raises(ValueError, match="lr must be"):
        tiled_apply(net, lr[0], scale=2, tile=4, margin=RADIUS)
    with pytest.raises(ValueError, match="batch_size"):
        tiled_apply(net, lr, scale=2, tile=4, margin=RADIUS, batch_size=0)
    with pytest.raises(ValueError, match="numpy array or a torch tensor"):
        whole_apply(lambda x: [1], lr, scale=2, margin=1)


# ----------------------------------------------------------------------------------------- coordinates


@pytest.mark.parametrize("scale", [2, 3, 6])
@pytest.mark.parametrize("x0, dx, n", [(500_005.0, 20.0, 5), (4_200_095.0, -20.0, 4), (15.0, 60.0, 1)])
def test_hr_coords_bounds_and_spacing(scale, x0, dx, n):
    x_lr = x0 + dx * np.arange(n)
    x_hr = hr_coords(x_lr, scale, dx=dx if n == 1 else None)
    assert x_hr.shape == (scale * n,) and x_hr.dtype == np.float64
    d_hr = dx / scale
    # identical outer bounds
    assert x_hr[0] - d_hr / 2 == pytest.approx(x_lr[0] - dx / 2, abs=1e-9)
    assert x_hr[-1] + d_hr / 2 == pytest.approx(x_lr[-1] + dx / 2, abs=1e-9)
    # spacing dx / s
    if scale * n > 1:
        np.testing.assert_allclose(np.diff(x_hr), d_hr, rtol=0, atol=1e-9)
    # the s HR centres of each LR cell average to its centre
    np.testing.assert_allclose(x_hr.reshape(n, scale).mean(1), x_lr, rtol=0, atol=1e-9)


def test_hr_coords_errors():
    with pytest.raises(ValueError, match="dx"):
        hr_coords(np.array([5.0]), 2)
    with pytest.raises(ValueError, match="regularly spaced"):
        hr_coords(np.array([0.0, 1.0, 3.0]), 2)
    with pytest.raises(ValueError, match="disagrees"):
        hr_coords(np.array([0.0, 1.0]), 2, dx=2.0)
    with pytest.raises(ValueError, match="1-D"):
        hr_coords(np.zeros((2, 2)), 2)
    with pytest.raises(ValueError, match="scale"):
        hr_coords(np.array([0.0, 1.0]), 0)


def _apply(t, col, row):
    a, b, c, d, e, f = tuple(t)[:6]
    return a * col + b * row + c, d * col + e * row + f


@pytest.mark.parametrize("scale", [2, 3])
@pytest.mark.parametrize(
    "lr_t", [(20.0, 0.0, 399_960.0, 0.0, -20.0, 5_000_040.0), (20.0, 1.5, 10.0, -0.5, -20.0, 7.0)]
)
def test_hr_transform_bounds(scale, lr_t):
    h, w = 7, 5
    hr_t = hr_transform(lr_t, scale)
    assert isinstance(hr_t, tuple) and len(hr_t) == 6
    for col, row in [(0, 0), (w, 0), (0, h), (w, h)]:  # all four outer corners coincide
        np.testing.assert_allclose(
            _apply(hr_t, scale * col, scale * row), _apply(lr_t, col, row), rtol=0, atol=1e-6
        )
    # pixel size divided by scale
    assert np.allclose(np.array(hr_t)[[0, 1, 3, 4]] * scale, np.array(lr_t)[[0, 1, 3, 4]])
    if lr_t[1] == lr_t[3] == 0.0:  # north-up: HR centres from the transform == hr_coords of LR centres
        xs_lr, _ = _apply(lr_t, np.arange(w) + 0.5, 0.5)
        _, ys_lr = _apply(lr_t, 0.5, np.arange(h) + 0.5)
        xs_hr, _ = _apply(hr_t, np.arange(scale * w) + 0.5, 0.5)
        _, ys_hr = _apply(hr_t, 0.5, np.arange(scale * h) + 0.5)
        np.testing.assert_allclose(hr_coords(xs_lr, scale), xs_hr, rtol=0, atol=1e-6)
        np.testing.assert_allclose(hr_coords(ys_lr, scale), ys_hr, rtol=0, atol=1e-6)


def test_hr_transform_affine_and_errors():
    affine = pytest.importorskip("affine")
    t = affine.Affine(10.0, 0.0, 300_000.0, 0.0, -10.0, 4_000_000.0)
    hr = hr_transform(t, 2)
    assert isinstance(hr, affine.Affine)
    assert _apply(hr, 20, 30) == pytest.approx(_apply(t, 10, 15))
    assert hr.a == 5.0 and hr.e == -5.0 and (hr.c, hr.f) == (t.c, t.f)
    with pytest.raises(ValueError, match="6"):
        hr_transform((1.0, 2.0, 3.0), 2)
    with pytest.raises(ValueError, match="last row"):
        hr_transform((1, 0, 0, 0, 1, 0, 0, 1, 1), 2)
    with pytest.raises(ValueError, match="scale"):
        hr_transform(tuple(t)[:6], 1.5)


def test_in_order_keeps_order_bounds_the_window_and_cancels_the_rest():
    from concurrent.futures import Future

    from sr_core.tiling import in_order

    made: list[Future] = []

    def submit(k: int) -> Future:
        f: Future = Future()
        f.set_result(k * k)  # done at once: the order comes from in_order, not from completion
        made.append(f)
        return f

    it = in_order(submit, 6, 2)
    assert next(it) == 0 and len(made) == 3  # 2 in the window, the next submitted when one is taken
    assert list(it) == [1, 4, 9, 16, 25] and len(made) == 6
    made.clear()
    pending: list[Future] = []

    def submit_pending(k: int) -> Future:
        f: Future = Future()
        if k == 0:
            f.set_result(0)
        pending.append(f)
        return f

    it = in_order(submit_pending, 5, 3)
    assert next(it) == 0
    it.close()  # the caller stops: the futures submitted but not taken are cancelled
    assert [f.cancelled() for f in pending] == [False, True, True, True]
