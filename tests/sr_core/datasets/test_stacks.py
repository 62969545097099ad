"""Simulated revisit stacks (sr_core.datasets.stacks): closed forms, determinism, anchor, clouds, model input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_core.datasets.stacks import (
    anchor_first,
    cloud_mask,
    fill_invalid,
    shifted_degrade,
    simulate_batch,
    simulate_stack,
)
from sr_core.degradation import degrade, subpixel_shift

B4 = ["B02", "B03", "B04", "B08"]


def _hr(gen, c=4, h=24, w=24):
    return torch.rand(c, h, w, generator=gen, dtype=torch.float64)


def test_zero_shift_no_noise_every_frame_is_degrade(gen):
    hr = _hr(gen)
    st = simulate_stack(hr, generator=gen, frames=5, bands=B4, max_shift=0.0)
    ref = degrade(hr[None], 2, bands=B4)[0]
    assert st.lr.shape == (5, 4, 12, 12) and st.mask.all()
    for k in range(5):
        torch.testing.assert_close(st.lr[k], ref, rtol=0, atol=0)


def test_integer_shift_is_a_roll_and_fractional_shift_moves_a_ramp(gen):
    hr = _hr(gen, h=20, w=28)[None]
    base = shifted_degrade(hr, 2, (0, 0), bands=B4, padding="circular")
    torch.testing.assert_close(base, degrade(hr, 2, bands=B4, padding="circular"), rtol=0, atol=0)
    for dy, dx in [(1, 0), (0, -2), (3, 1)]:
        got = shifted_degrade(hr, 2, (dy, dx), bands=B4, padding="circular")
        torch.testing.assert_close(got, torch.roll(base, (dy, dx), (-2, -1)), rtol=0, atol=1e-15)
    # a ramp hr[m, n] = 0.3 m - 0.2 n: content moved by d HR px -> value at a fixed pixel drops by slope * d
    m = torch.arange(40, dtype=torch.float64)
    ramp = (0.3 * m[:, None] - 0.2 * m[None, :]).expand(1, 1, 40, 40).contiguous()
    ref = shifted_degrade(ramp, 2, (0, 0), mtf=0.3)
    for dy, dx in [(0.25, 0.0), (0.0, -0.35), (0.4, 0.15), (-0.3, 0.45)]:
        got = shifted_degrade(ramp, 2, (dy, dx), mtf=0.3)
        want = ref - 0.3 * 2 * dy + 0.2 * 2 * dx
        inner = (slice(None), slice(None), slice(5, -5), slice(5, -5))
        torch.testing.assert_close(got[inner], want[inner], rtol=0, atol=5e-3)
    # same sign convention as subpixel_shift (for a smooth image the two agree closely)
    smooth = degrade(torch.rand(1, 1, 96, 96, generator=gen, dtype=torch.float64), 4, mtf=0.2)
    smooth = torch.nn.functional.interpolate(smooth, scale_factor=4, mode="bicubic", align_corners=False)
    a = shifted_degrade(smooth, 2, (0.3, -0.2), mtf=0.3)
    b = degrade(subpixel_shift(smooth, 0.6, -0.4), 2, mtf=0.3)
    c = degrade(subpixel_shift(smooth, -0.6, 0.4), 2, mtf=0.3)
    assert (a - b)[..., 4:-4, 4:-4].abs().mean() < 0.2 * (a - c)[..., 4:-4, 4:-4].abs().mean()


def test_gain_offset_exact_and_noise_level(gen):
    hr = _hr(gen, h=64, w=64)
    st = simulate_stack(hr, generator=gen, frames=4, bands=B4, max_shift=0.0, gain_range=0.05,
                        offset_range=0.01, anchor=2)
    ref = degrade(hr[None], 2, bands=B4)[0]
    for k in range(4):
        want = st.gains[k][:, None, None] * ref + st.offsets[k][:, None, None]
        torch.testing.assert_close(st.lr[k], want, rtol=0, atol=1e-12)
    assert st.anchor == 2 and (st.gains[2] == 1).all() and (st.offsets[2] == 0).all()
    assert (st.gains[[0, 1, 3]] != 1).all() and (st.gains - 1).abs().max() <= 0.05
    noisy = simulate_stack(hr, generator=torch.Generator().manual_seed(1), frames=3, bands=B4, max_shift=0.0,
                           noise_std_range=(0.02, 0.05))
    for k in range(3):
        est = float((noisy.lr[k] - ref).std())
        assert abs(est - float(noisy.noise_std[k])) < 0.1 * float(noisy.noise_std[k])


def test_determinism_and_anchor_has_zero_shift(gen):
    hr = _hr(gen)
    kw = dict(frames=6, bands=B4, max_shift=0.5, gain_range=0.03, offset_range=0.005, noise_std_range=(0, 0.01),
              cloud_prob=0.7, cloud_cover=(0.1, 0.6))
    a = simulate_stack(hr, generator=torch.Generator().manual_seed(3), **kw)
    b = simulate_stack(hr, generator=torch.Generator().manual_seed(3), **kw)
    c = simulate_stack(hr, generator=torch.Generator().manual_seed(4), **kw)
    torch.testing.assert_close(a.lr, b.lr, equal_nan=True, rtol=0, atol=0)
    assert torch.equal(a.mask, b.mask) and a.anchor == b.anchor
    assert not torch.equal(torch.nan_to_num(a.lr), torch.nan_to_num(c.lr))
    clear = a.mask.reshape(6, -1).sum(1)
    assert clear[a.anchor] == clear.max() and (clear[: a.anchor] < clear.max()).all()  # first clearest
    assert (a.shifts[a.anchor] == 0).all() and (a.shifts.abs() <= 0.5).all()
    assert torch.isnan(a.lr).any(dim=1).eq(~a.mask).all()  # cloudy pixels are NaN in every band, clear never
    # choosing another anchor changes only the anchor's own geometry / radiometry, not the other frames
    d = simulate_stack(hr, generator=torch.Generator().manual_seed(3), **{**kw, "anchor": 0})
    others = [k for k in range(6) if k not in (0, a.anchor)]
    torch.testing.assert_close(d.lr[others], a.lr[others], equal_nan=True, rtol=0, atol=0)


def test_cloud_mask_exact_cover_blobby_and_bounds(gen):
    m = cloud_mask(32, 40, 0.3, generator=gen, sigma=3.0)
    assert m.dtype == torch.bool and int((~m).sum()) == round(0.3 * 32 * 40)
    assert cloud_mask(8, 8, 0.0, generator=gen).all() and not cloud_mask(8, 8, 1.0, generator=gen).any()
    # blobby: a cloudy pixel's right neighbour is cloudy far more often than the 30 % of independent pixels
    cl = ~m
    same = (cl[:, :-1] & cl[:, 1:]).sum() / cl[:, :-1].sum()
    assert same > 0.8
    with pytest.raises(ValueError, match="cover"):
        cloud_mask(8, 8, 1.5, generator=gen)
    with pytest.raises(ValueError, match="generator"):
        cloud_mask(8, 8, 0.5, generator=0)


def test_anchor_first_and_batch():
    lr = torch.arange(2 * 4, dtype=torch.float64).reshape(2, 4, 1, 1, 1).expand(2, 4, 1, 2, 2)
    mask = torch.ones(2, 4, 2, 2, dtype=torch.bool)
    o, _ = anchor_first(lr, mask, torch.tensor([2, 0]))
    assert o[0, :, 0, 0, 0].tolist() == [2, 0, 1, 3] and o[1, :, 0, 0, 0].tolist() == [4, 5, 6, 7]
    with pytest.raises(ValueError, match="anchor"):
        anchor_first(lr, mask, 4)
    hr = torch.rand(2, 4, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    lrb, mb, anchors = simulate_batch(hr, generator=g1, frames=3, bands=B4, cloud_prob=0.8)
    st0 = simulate_stack(hr[0], generator=g2, frames=3, bands=B4, cloud_prob=0.8)
    torch.testing.assert_close(lrb[0, 0], st0.lr[st0.anchor], equal_nan=True, rtol=0, atol=0)
    assert int(anchors[0]) == st0.anchor and lrb.shape == (2, 3, 4, 8, 8) and mb.shape == (2, 3, 8, 8)


def test_fill_invalid_is_the_temporal_median_of_the_numpy_twin(gen):
    from sr_core.inference.misr import _temporal_fill

    lr = torch.rand(1, 5, 3, 6, 7, generator=gen, dtype=torch.float64)
    mask = torch.rand(1, 5, 6, 7, generator=gen) > 0.5
    mask[0, :, 0, 0] = False  # a pixel clear in no frame
    lr_n = torch.where(mask[:, :, None], lr, torch.nan)
    filled, fv, av = fill_invalid(lr_n, mask)
    ref, ref_any = _temporal_fill(lr_n[0].numpy(), mask[0].numpy())
    assert torch.isfinite(filled).all() and not bool(av[0, 0, 0]) and np.array_equal(av[0].numpy(), ref_any)
    ok = av[0].numpy()
    np.testing.assert_allclose(filled[0].numpy()[:, :, ok], ref.astype(np.float64)[:, :, ok], rtol=0, atol=1e-6)
    torch.testing.assert_close(filled[mask[:, :, None].expand_as(lr)], lr[mask[:, :, None].expand_as(lr)])
    assert fv.all()
    # min_valid: a frame with too few clear pixels is unusable; the clearest always stays usable
    m2 = torch.zeros(1, 3, 6, 7, dtype=torch.bool)
    m2[0, 1, :2] = True
    m2[0, 2, :1] = True
    _, fv2, _ = fill_invalid(torch.where(m2[:, :, None], lr[:, :3], torch.nan), m2, min_valid=0.5)
    assert fv2.tolist() == [[False, True, False]]


def test_bad_arguments_name_the_argument(gen):
    hr = _hr(gen)
    with pytest.raises(ValueError, match="generator"):
        simulate_stack(hr, generator=None, bands=B4)
    with pytest.raises(ValueError, match="anchor"):
        simulate_stack(hr, generator=gen, bands=B4, frames=3, anchor=3)
    with pytest.raises(ValueError, match="bands= .*or mtf="):
        simulate_stack(hr, generator=gen)
    with pytest.raises(ValueError, match="noise_std_range"):
        simulate_stack(hr, generator=gen, bands=B4, noise_std_range=(0.1, 0.0))
    with pytest.raises(ValueError, match="multiple of ratio"):
        shifted_degrade(hr[None, :, :23], 2, (0, 0), bands=B4)
    with pytest.raises(ValueError, match="shift"):
        shifted_degrade(hr[None], 2, (float("nan"), 0), bands=B4)


def test_texture_change_keeps_the_levels_and_zero_shift_stacks_are_co_registered(gen):
    # a flat scene has no texture: a texture change leaves it unchanged, a content change scales it by its gain
    flat = torch.full((4, 32, 32), 0.2, dtype=torch.float64)
    kw = dict(frames=4, bands=B4, max_shift=0.0, change_prob=1.0, change_cover=(0.5, 0.5), change_gain=0.3)
    tex = simulate_stack(flat, generator=torch.Generator().manual_seed(3), change_texture_prob=1.0, **kw)
    torch.testing.assert_close(tex.lr, degrade(flat[None], 2, bands=B4).expand(4, -1, -1, -1), rtol=0, atol=1e-12)
    roll = simulate_stack(flat, generator=torch.Generator().manual_seed(3), **kw)
    assert float((roll.lr - tex.lr).abs().max()) > 1e-3
    # on a textured scene a whole-frame texture change keeps each band's level, a content change scales it
    hr = torch.rand(4, 64, 64, generator=gen, dtype=torch.float64)
    kw2 = dict(frames=3, bands=B4, max_shift=0.0, change_prob=1.0, change_cover=(1.0, 1.0), change_gain=0.3,
               anchor=0)
    st = simulate_stack(hr, generator=torch.Generator().manual_seed(4), change_texture_prob=1.0, **kw2)
    ro = simulate_stack(hr, generator=torch.Generator().manual_seed(4), **kw2)
    level = lambda x: x.mean(dim=(-2, -1))  # noqa: E731
    for k in (1, 2):
        assert float((st.lr[k] - st.lr[0]).abs().max()) > 1e-3  # other texture
        torch.testing.assert_close(level(st.lr[k]), level(st.lr[0]), rtol=2e-3, atol=0)  # same levels
        assert float((level(ro.lr[k]) / level(ro.lr[0]) - 1).abs().max()) > 0.01  # a content change: other levels
    # zero_shift_prob = 1: every revisit on the anchor's grid; 0: the draws of the default stack
    z = simulate_stack(hr, generator=torch.Generator().manual_seed(5), frames=4, bands=B4, max_shift=0.5,
                       zero_shift_prob=1.0)
    assert float(z.shifts.abs().max()) == 0
    a = simulate_stack(hr, generator=torch.Generator().manual_seed(6), frames=4, bands=B4, max_shift=0.5)
    b = simulate_stack(hr, generator=torch.Generator().manual_seed(6), frames=4, bands=B4, max_shift=0.5,
                       zero_shift_prob=0.0, change_texture_prob=0.0)
    torch.testing.assert_close(a.lr, b.lr, rtol=0, atol=0, equal_nan=True)
    assert float(a.shifts.abs().max()) > 0
