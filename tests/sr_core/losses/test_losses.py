"""Tests of sr_core.losses: closed forms, independent references, gradcheck, masks, module == function."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sr_core.losses as L
from sr_core.losses.filters import gaussian_kernel1d

HAS_DEGRADATION = importlib.util.find_spec("sr_core.degradation") is not None
needs_degradation = pytest.mark.skipif(not HAS_DEGRADATION, reason="sr_core.degradation is not available yet")


def rand(gen, *shape, dtype=torch.float32):
    return torch.rand(*shape, generator=gen, dtype=dtype)


def pixel_mask(gen, n, h, w, p=0.7):
    return torch.rand(n, 1, h, w, generator=gen) < p


# --------------------------------------------------------------------------------------------- L1 / MSE


def test_constant_offset_gives_l1_d_and_mse_d2(gen):
    hr = rand(gen, 2, 3, 9, 11)
    d = torch.tensor([0.1, -0.25, 0.5]).view(1, 3, 1, 1)
    sr = hr + d
    l1 = L.l1_loss(sr, hr, reduction="none")
    mse = L.mse_loss(sr, hr, reduction="none")
    assert l1.shape == (2, 3) and mse.shape == (2, 3)
    torch.testing.assert_close(l1, d.abs().view(1, 3).expand(2, 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(mse, (d**2).view(1, 3).expand(2, 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(L.l1_loss(sr, hr), d.abs().mean(), atol=1e-6, rtol=0)
    torch.testing.assert_close(L.mse_loss(sr, hr), F.mse_loss(sr, hr), atol=1e-7, rtol=1e-6)


def test_masked_l1_mse_values_and_invariance(gen):
    hr = rand(gen, 2, 3, 8, 8, dtype=torch.float64)
    sr = rand(gen, 2, 3, 8, 8, dtype=torch.float64)
    mask = pixel_mask(gen, 2, 8, 8)
    m = mask.expand_as(sr)
    # hand reference: per (n, c) mean over valid pixels; "mean" = mean over every valid element
    ref = torch.stack(
        [torch.stack([(sr[i, c] - hr[i, c])[m[i, c]].abs().mean() for c in range(3)]) for i in range(2)]
    )
    torch.testing.assert_close(L.l1_loss(sr, hr, mask=mask, reduction="none"), ref)
    torch.testing.assert_close(L.l1_loss(sr, hr, mask=mask), (sr - hr)[m].abs().mean())
    torch.testing.assert_close(L.mse_loss(sr, hr, mask=mask), ((sr - hr)[m] ** 2).mean())
    torch.testing.assert_close(L.mse_loss(sr, hr, mask=mask[:, 0]), ((sr - hr)[m] ** 2).mean())  # (N, H, W)
    # masked-out pixels (even NaN nodata) change neither value nor gradient
    hr2 = hr.clone()
    hr2[~m] = float("nan")
    sr1 = sr.clone().requires_grad_(True)
    sr2 = sr.clone()
    sr2[~m] = 123.0
    sr2.requires_grad_(True)
    for fn in (L.l1_loss, L.mse_loss):
        a = fn(sr1, hr, mask=mask)
        b = fn(sr2, hr2, mask=mask)
        torch.testing.assert_close(a, b)
        (ga,) = torch.autograd.grad(a, sr1)
        (gb,) = torch.autograd.grad(b, sr2)
        assert torch.isfinite(gb).all()
        torch.testing.assert_close(ga, gb)
        assert (gb[~m] == 0).all()


def test_all_false_mask_gives_zero_and_zero_gradient(gen):
    sr = rand(gen, 1, 2, 6, 6).requires_grad_(True)
    hr = rand(gen, 1, 2, 6, 6)
    mask = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
    for fn in (L.l1_loss, L.mse_loss):
        loss = fn(sr, hr, mask=mask)
        assert loss.item() == 0.0
        (g,) = torch.autograd.grad(loss, sr)
        assert (g == 0).all()
        assert (fn(sr, hr, mask=mask, reduction="none") == 0).all()
    # a band with no valid pixel contributes 0 and does not dilute the others
    mask = torch.ones(1, 2, 6, 6, dtype=torch.bool)
    mask[:, 1] = False
    torch.testing.assert_close(L.l1_loss(sr, hr, mask=mask), (sr - hr)[:, 0].abs().mean())


def test_gradcheck_masked_l1_and_mse(gen):
    sr = rand(gen, 1, 2, 5, 5, dtype=torch.float64).requires_grad_(True)
    hr = rand(gen, 1, 2, 5, 5, dtype=torch.float64)
    mask = pixel_mask(gen, 1, 5, 5)
    assert torch.autograd.gradcheck(lambda x: L.l1_loss(x, hr, mask=mask, reduction="none"), (sr,))
    assert torch.autograd.gradcheck(lambda x: L.mse_loss(x, hr, mask=mask), (sr,))


def test_pixel_modules_equal_functions(gen):
    sr, hr = rand(gen, 2, 3, 7, 7), rand(gen, 2, 3, 7, 7)
    mask = pixel_mask(gen, 2, 7, 7)
    for red in ("mean", "none"):
        torch.testing.assert_close(
            L.MaskedL1Loss(reduction=red)(sr, hr, mask), L.l1_loss(sr, hr, mask=mask, reduction=red)
        )
        torch.testing.assert_close(
            L.MaskedMSELoss(reduction=red)(sr, hr, mask), L.mse_loss(sr, hr, mask=mask, reduction=red)
        )


def test_pixel_bad_arguments(gen):
    sr, hr = rand(gen, 1, 2, 4, 4), rand(gen, 1, 2, 4, 4)
    with pytest.raises(ValueError, match="same shape"):
        L.l1_loss(sr, hr[..., :3])
    with pytest.raises(ValueError, match="reduction"):
        L.l1_loss(sr, hr, reduction="sum")
    with pytest.raises(ValueError, match="bool"):
        L.l1_loss(sr, hr, mask=torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match="broadcast"):
        L.l1_loss(sr, hr, mask=torch.ones(1, 3, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="4-D"):
        L.mse_loss(sr[0], hr[0])
    with pytest.raises(ValueError, match="reduction"):
        L.MaskedL1Loss(reduction="sum")


# --------------------------------------------------------------------------------------------- cL1 / cMSE


def _brute_cmse_per_band(sr, hr, mask, border, max_shift, power):
    """Independent numpy reference: per band, min over shifts of the bias-corrected error (hr crop moves)."""
    sr, hr, mask = sr.numpy(), hr.numpy(), np.broadcast_to(mask.numpy(), sr.shape)
    n, c, h, w = sr.shape
    b = border
    out = np.zeros((n, c))
    for i in range(n):
        for k in range(c):
            best = None
            for u in range(-max_shift, max_shift + 1):
                for v in range(-max_shift, max_shift + 1):
                    s = sr[i, k, b : h - b, b : w - b]
                    t = hr[i, k, b - u : h - b - u, b - v : w - b - v]
                    m = mask[i, k, b - u : h - b - u, b - v : w - b - v]
                    bias = (t[m] - s[m]).mean()
                    e = np.abs(t[m] - s[m] - bias) ** power
                    val = e.mean()
                    best = val if best is None else min(best, val)
            out[i, k] = best
    return out


def test_brightness_bias_gives_zero_cmse_and_cl1(gen):
    hr = rand(gen, 2, 3, 14, 14, dtype=torch.float64)
    sr = hr + torch.tensor([0.3, -0.1, 0.05], dtype=torch.float64).view(1, 3, 1, 1)
    assert L.l1_loss(sr, hr) > 0.1
    for fn in (L.cmse_loss, L.cl1_loss):
        loss, shift = fn(sr, hr, return_shift=True)
        assert loss.item() == pytest.approx(0.0, abs=1e-12)
        assert shift.tolist() == [[0, 0], [0, 0]]


@pytest.mark.parametrize("applied", [(1, 0), (0, -1), (-2, 3)])
def test_integer_shift_is_recovered(gen, applied):
    hr = rand(gen, 2, 2, 16, 16, dtype=torch.float64)
    sr = torch.roll(hr, applied, dims=(-2, -1)) + 0.2  # translated and brightness-biased
    loss, shift = L.cl1_loss(sr, hr, return_shift=True)
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    assert shift.tolist() == [list(applied)] * 2
    loss, shift = L.cmse_loss(sr, hr, per_band=True, return_shift=True, reduction="none")
    assert loss.shape == (2, 2) and shift.shape == (2, 2, 2)
    assert (loss.abs() < 1e-12).all()
    assert (shift == torch.tensor(applied)).all()
    # a shift beyond max_shift is not found
    if max(map(abs, applied)) > 1:
        assert L.cl1_loss(sr, hr, max_shift=1).item() > 0.05


def test_cmse_cl1_match_bruteforce_with_mask(gen):
    sr = rand(gen, 2, 2, 10, 11, dtype=torch.float64)
    hr = rand(gen, 2, 2, 10, 11, dtype=torch.float64)
    mask = pixel_mask(gen, 2, 10, 11, p=0.8)
    for fn, power in ((L.cmse_loss, 2), (L.cl1_loss, 1)):
        got = fn(sr, hr, mask=mask, border=2, per_band=True, reduction="none")
        ref = _brute_cmse_per_band(sr, hr, mask, 2, 2, power)
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10, atol=1e-12)
        # joint selection: never better than the per-band minimum, and it is one of the per-shift values
        joint = fn(sr, hr, mask=mask, border=2, reduction="none")
        assert (joint >= got - 1e-12).all()
    # masked-out hr pixels (NaN) do not matter
    hr2 = hr.clone()
    hr2[~mask.expand_as(hr)] = float("nan")
    torch.testing.assert_close(
        L.cmse_loss(sr, hr2, mask=mask, border=2), L.cmse_loss(sr, hr, mask=mask, border=2)
    )


def test_cmse_agrees_with_metrics_per_band(gen):
    metrics = pytest.importorskip("sr_core.metrics")
    sr = rand(gen, 2, 3, 12, 12, dtype=torch.float64)
    hr = torch.roll(sr, (1, -1), dims=(-2, -1)) + 0.1 * rand(gen, 2, 3, 12, 12, dtype=torch.float64)
    mask = pixel_mask(gen, 2, 12, 12, p=0.9)
    ours, s1 = L.cmse_loss(sr, hr, mask=mask, per_band=True, reduction="none", return_shift=True)
    theirs, s2 = metrics.cmse(sr, hr, mask=mask, joint=False, return_shift=True)
    torch.testing.assert_close(ours, theirs.to(ours.dtype))
    assert torch.equal(s1, s2)


def test_gradcheck_cmse(gen):
    sr = rand(gen, 1, 2, 7, 7, dtype=torch.float64).requires_grad_(True)
    hr = rand(gen, 1, 2, 7, 7, dtype=torch.float64)
    mask = pixel_mask(gen, 1, 7, 7, p=0.8)
    assert torch.autograd.gradcheck(lambda x: L.cmse_loss(x, hr, mask=mask, border=1), (sr,))
    assert torch.autograd.gradcheck(
        lambda x: L.cmse_loss(x, hr, border=1, per_band=True, reduction="none"), (sr,)
    )


def test_corrected_modules_and_errors(gen):
    sr, hr = rand(gen, 2, 2, 12, 12), rand(gen, 2, 2, 12, 12)
    mask = pixel_mask(gen, 2, 12, 12)
    torch.testing.assert_close(
        L.CL1Loss(border=2, max_shift=1)(sr, hr, mask), L.cl1_loss(sr, hr, mask=mask, border=2, max_shift=1)
    )
    torch.testing.assert_close(
        L.CMSELoss(per_band=True, reduction="none")(sr, hr),
        L.cmse_loss(sr, hr, per_band=True, reduction="none"),
    )
    with pytest.raises(ValueError, match="max_shift"):
        L.cl1_loss(sr, hr, border=1, max_shift=2)
    with pytest.raises(ValueError, match="border"):
        L.cmse_loss(sr, hr, border=6)
    with pytest.raises(ValueError, match="border"):
        L.cmse_loss(sr, hr, border=-1)
    with pytest.raises(ValueError, match="max_shift"):
        L.CMSELoss(border=1, max_shift=3)


def test_shift_without_valid_pixel_is_never_chosen(gen):
    # valid hr pixels only in row 0: with border 1 only the hr crops of the shifts u = 1 (rows 0..3) hold one
    sr = rand(gen, 1, 2, 6, 7, dtype=torch.float64)
    hr = rand(gen, 1, 2, 6, 7, dtype=torch.float64)
    mask = torch.zeros(1, 1, 6, 7, dtype=torch.bool)
    mask[..., 0, :] = True
    s = sr[:, :, 1, 1:6]  # the valid sr pixels: sr row 1 faces hr row 0
    for fn, power in ((L.cmse_loss, 2), (L.cl1_loss, 1)):
        per_v = []
        for v in (-1, 0, 1):
            t = hr[:, :, 0, 1 - v : 6 - v]
            d = t - s - (t - s).mean(dim=-1, keepdim=True)
            per_v.append((d.abs() ** power).mean(dim=-1))
        want, v_idx = torch.stack(per_v, dim=-1).min(dim=-1)
        loss, shift = fn(sr, hr, mask=mask, border=1, per_band=True, reduction="none", return_shift=True)
        torch.testing.assert_close(loss, want)
        assert shift[..., 0].tolist() == [[1, 1]] and shift[..., 1].tolist() == (v_idx - 1).tolist()
        joint, js = fn(sr, hr, mask=mask, border=1, return_shift=True)
        assert js[0, 0].item() == 1 and joint.item() > 0.0
    metrics = pytest.importorskip("sr_core.metrics")
    ours, s1 = L.cmse_loss(sr, hr, mask=mask, border=1, per_band=True, reduction="none", return_shift=True)
    theirs, s2 = metrics.cmse(sr, hr, mask=mask, border=1, joint=False, return_shift=True)
    torch.testing.assert_close(ours, theirs)
    assert torch.equal(s1, s2)


def test_shift_search_order_ties_key_and_joint_weighting():
    from sr_core.losses.shift import shift_list, shift_search

    assert shift_list(1) == [(0, 0), (-1, 0), (0, -1), (0, 1), (1, 0), (-1, -1), (-1, 1), (1, -1), (1, 1)]
    # constant images: the bias makes every shift exact, the tie goes to (0, 0)
    sr, hr = torch.full((1, 2, 8, 8), 0.25), torch.full((1, 2, 8, 8), 0.75)
    res = shift_search(sr, hr, lambda a, b, m: (b - a).abs().mean(dim=(-2, -1)), border=1)
    assert res.values.tolist() == [[0.0, 0.0]] and res.shifts.tolist() == [[[0, 0], [0, 0]]]
    assert res.counts.tolist() == [[36.0, 36.0]]
    # scripted scores (one call per shift, in shift_list order): band 0 has 36 valid pixels, band 1 only 4
    mask = torch.ones(1, 2, 8, 8, dtype=torch.bool)
    mask[:, 1] = False
    mask[:, 1, 3:5, 3:5] = True  # inside every hr crop
    table = torch.full((9, 1, 2), 10.0)
    table[1] = torch.tensor([[1.0, 0.0]])  # shift (-1, 0): band means 0.5 (uniform), 0.9 (count weighted)
    table[2] = torch.tensor([[0.0, 2.0]])  # shift (0, -1): band means 1.0 (uniform), 0.2 (count weighted)
    table[0, 0, 0] = math.nan  # an undefined score never wins

    def run(**kw):
        calls = iter(table)
        return shift_search(sr, hr, lambda a, b, m: next(calls), mask=mask, border=1, **kw)

    assert run(joint=False).shifts.tolist() == [[[0, -1], [-1, 0]]]
    assert run(joint=False).values.tolist() == [[0.0, 0.0]]
    assert run(joint=True).shifts.tolist() == [[[-1, 0], [-1, 0]]]
    best = run(joint=True, count_weighted=True)
    assert best.shifts.tolist() == [[[0, -1], [0, -1]]] and best.counts.tolist() == [[36.0, 4.0]]
    # key=torch.neg: the highest score wins; band 0 skips the NaN at (0, 0) and takes the first 10
    assert run(joint=False, key=torch.neg).shifts.tolist() == [[[0, 1], [0, 0]]]


# --------------------------------------------------------------------------------------------- SSIM


def _ssim_bruteforce(x, y, data_range, ws, sigma):
    """Independent reference: explicit loop over every valid window of every band (numpy, float64)."""
    t = np.arange(ws) - (ws - 1) / 2
    g = np.exp(-(t**2) / (2 * sigma**2))
    w2 = np.outer(g, g)
    w2 /= w2.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    n, c, h, w = x.shape
    out = np.zeros((n, c, h - ws + 1, w - ws + 1))
    for i in range(n):
        for k in range(c):
            for r in range(h - ws + 1):
                for q in range(w - ws + 1):
                    a, b = x[i, k, r : r + ws, q : q + ws], y[i, k, r : r + ws, q : q + ws]
                    ma, mb = (w2 * a).sum(), (w2 * b).sum()
                    va, vb = (w2 * (a - ma) ** 2).sum(), (w2 * (b - mb) ** 2).sum()
                    cov = (w2 * (a - ma) * (b - mb)).sum()
                    out[i, k, r, q] = ((2 * ma * mb + c1) * (2 * cov + c2)) / (
                        (ma**2 + mb**2 + c1) * (va + vb + c2)
                    )
    return out


def test_ssim_identical_is_one_and_loss_zero(gen):
    x = rand(gen, 2, 3, 16, 16, dtype=torch.float64)
    smap = L.ssim_map(x, x, 1.0)
    assert smap.shape == (2, 3, 6, 6)
    torch.testing.assert_close(smap, torch.ones_like(smap))
    torch.testing.assert_close(
        L.ssim_loss(x, x, data_range=1.0, reduction="none"), torch.zeros(2, 3, dtype=torch.float64)
    )


def test_ssim_constant_images_closed_form():
    a, b, dr = 0.3, 0.7, 1.0
    x = torch.full((1, 1, 12, 12), a, dtype=torch.float64)
    y = torch.full((1, 1, 12, 12), b, dtype=torch.float64)
    c1 = (0.01 * dr) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)  # zero variances: the structure factor is 1
    torch.testing.assert_close(L.ssim_map(x, y, dr), torch.full((1, 1, 2, 2), expected, dtype=torch.float64))
    torch.testing.assert_close(
        L.ssim_loss(x, y, data_range=dr), torch.tensor(1 - expected, dtype=torch.float64)
    )


def test_ssim_map_matches_bruteforce(gen):
    x = rand(gen, 1, 2, 13, 12, dtype=torch.float64)
    y = (x + 0.2 * rand(gen, 1, 2, 13, 12, dtype=torch.float64)) * 1.5
    got = L.ssim_map(x, y, 2.0, window_size=7, sigma=1.2)
    np.testing.assert_allclose(
        got.numpy(), _ssim_bruteforce(x.numpy(), y.numpy(), 2.0, 7, 1.2), rtol=1e-10, atol=1e-12
    )


def test_ssim_loss_agrees_with_metrics(gen):
    metrics = pytest.importorskip("sr_core.metrics")
    x = rand(gen, 2, 2, 20, 20, dtype=torch.float64)
    y = x + 0.1 * rand(gen, 2, 2, 20, 20, dtype=torch.float64)
    mask = torch.ones(2, 1, 20, 20, dtype=torch.bool)
    mask[0, :, 2:5, 3:9] = False
    ours = 1 - L.ssim_loss(x, y, data_range=1.0, mask=mask, reduction="none")
    theirs = metrics.ssim(x, y, data_range=1.0, mask=mask)
    torch.testing.assert_close(ours, theirs.to(ours.dtype))
    torch.testing.assert_close(L.ssim_map(x, y, 1.0), metrics.ssim_map(x, y, data_range=1.0).to(x.dtype))


def test_ssim_mask_excludes_windows(gen):
    x = rand(gen, 1, 2, 16, 16, dtype=torch.float64)
    y = rand(gen, 1, 2, 16, 16, dtype=torch.float64)
    mask = torch.ones(1, 1, 16, 16, dtype=torch.bool)
    mask[..., :4, :] = False
    # a map pixel counts only if its whole 5x5 window is valid: map rows 4.. of the valid-mode map
    full = L.ssim_map(x, y, 1.0, window_size=5)
    expected = (1 - full[..., 4:, :]).mean(dim=(-2, -1))
    got = L.ssim_loss(x, y, data_range=1.0, mask=mask, window_size=5, reduction="none")
    torch.testing.assert_close(got, expected)
    y2 = y.clone()
    y2[..., :4, :] = float("nan")
    torch.testing.assert_close(
        L.ssim_loss(x, y2, data_range=1.0, mask=mask, window_size=5, reduction="none"), got
    )
    none_valid = torch.zeros_like(mask)
    assert L.ssim_loss(x, y, data_range=1.0, mask=none_valid).item() == 0.0


def test_gradcheck_ssim(gen):
    x = rand(gen, 1, 2, 8, 8, dtype=torch.float64).requires_grad_(True)
    y = rand(gen, 1, 2, 8, 8, dtype=torch.float64)
    mask = torch.ones(1, 1, 8, 8, dtype=torch.bool)
    mask[..., 0, 0] = False
    assert torch.autograd.gradcheck(
        lambda a: L.ssim_loss(a, y, data_range=1.0, mask=mask, window_size=5, sigma=1.0, reduction="none"),
        (x,),
    )


def test_ssim_module_and_errors(gen):
    x, y = rand(gen, 2, 2, 12, 12), rand(gen, 2, 2, 12, 12)
    mask = pixel_mask(gen, 2, 12, 12, p=0.95)
    torch.testing.assert_close(
        L.SSIMLoss(data_range=1.0, window_size=7, reduction="none")(x, y, mask),
        L.ssim_loss(x, y, data_range=1.0, window_size=7, mask=mask, reduction="none"),
    )
    with pytest.raises(ValueError, match="data_range"):
        L.ssim_loss(x, y, data_range=0)
    with pytest.raises(ValueError, match="window_size"):
        L.ssim_map(x, y, 1.0, window_size=13)
    with pytest.raises(ValueError, match="odd"):
        L.ssim_map(x, y, 1.0, window_size=4)


def test_ssim_per_band_data_range_dtype_and_masked_map(gen):
    x = rand(gen, 1, 2, 12, 12, dtype=torch.float64)
    y = x + 0.2 * rand(gen, 1, 2, 12, 12, dtype=torch.float64)
    both = L.ssim_map(x, y, torch.tensor([1.0, 3.0]))
    for c, dr in enumerate((1.0, 3.0)):
        torch.testing.assert_close(both[:, c : c + 1], L.ssim_map(x[:, c : c + 1], y[:, c : c + 1], dr))
    f32 = L.ssim_map(x.float(), y.float(), [1.0, 3.0])
    assert f32.dtype == torch.float32
    torch.testing.assert_close(f32, both.float(), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="data_range has 3"):
        L.ssim_map(x, y, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="data_range"):
        L.ssim_map(x, y, [1.0, -2.0])
    # masked map: zero-filled inputs, a map pixel is valid iff its whole window is
    mask = torch.ones(1, 1, 12, 12, dtype=torch.bool)
    mask[..., 5, 7] = False
    y_bad = y.clone()
    y_bad[..., 5, 7] = float("nan")
    smap, valid = L.masked_ssim_map(x, y_bad, 1.0, mask=mask, window_size=5)
    want_valid = torch.ones(1, 2, 8, 8, dtype=torch.bool)
    want_valid[..., 1:6, 3:8] = False  # windows with top-left (i, j), i in 1..5, j in 3..7, hold (5, 7)
    assert torch.equal(valid, want_valid)
    full = L.ssim_map(x, y, 1.0, window_size=5)
    torch.testing.assert_close(smap[valid], full[valid])
    assert L.masked_ssim_map(x, y, 1.0, window_size=5)[1] is None


# --------------------------------------------------------------------------------------------- consistency


@needs_degradation
def test_consistency_of_upsampled_constant_closed_form():
    # sr = an upsampled per-band constant: every degradation keeps it, so the loss is |c - lr| per band
    c = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64).view(1, 3, 1, 1)
    d = torch.tensor([0.05, -0.1, 0.0], dtype=torch.float64).view(1, 3, 1, 1)
    lr_c = c.expand(2, 3, 4, 5)
    sr = F.interpolate(lr_c, scale_factor=2, mode="nearest")
    lr = lr_c + d
    got = L.consistency_loss(sr, lr, 2, bands=["B02", "B03", "B04"], reduction="none")
    torch.testing.assert_close(got, d.abs().view(1, 3).expand(2, 3), atol=1e-12, rtol=0)
    got = L.consistency_loss(sr, lr, 2, sigma=1.3, reduction="none")
    torch.testing.assert_close(got, d.abs().view(1, 3).expand(2, 3), atol=1e-12, rtol=0)
    torch.testing.assert_close(
        L.pool_consistency_loss(sr, lr, reduction="none"), d.abs().view(1, 3).expand(2, 3)
    )


@needs_degradation
def test_consistency_equals_l1_of_degraded_and_masks(gen):
    from sr_core.degradation import degrade

    sr = rand(gen, 2, 2, 12, 12, dtype=torch.float64)
    lr = rand(gen, 2, 2, 4, 4, dtype=torch.float64)
    mask = pixel_mask(gen, 2, 4, 4)
    ref = L.l1_loss(degrade(sr, 3, mtf=[0.3, 0.25]), lr, mask=mask, reduction="none")
    got = L.consistency_loss(sr, lr, 3, mtf=[0.3, 0.25], mask=mask, reduction="none")
    torch.testing.assert_close(got, ref)
    lr2 = lr.clone()
    lr2[~mask.expand_as(lr)] = float("nan")
    torch.testing.assert_close(
        L.consistency_loss(sr, lr2, 3, mtf=[0.3, 0.25], mask=mask, reduction="none"), got
    )
    mod = L.ConsistencyLoss(3, mtf=[0.3, 0.25], reduction="none")
    torch.testing.assert_close(mod(sr, lr, mask), got)
    with pytest.raises(ValueError, match="ratio"):
        L.consistency_loss(sr, lr, 2, mtf=[0.3, 0.25])


@needs_degradation
def test_gradcheck_consistency(gen):
    sr = rand(gen, 1, 2, 8, 8, dtype=torch.float64).requires_grad_(True)
    lr = rand(gen, 1, 2, 4, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x: L.consistency_loss(x, lr, 2, sigma=[0.8, 1.1], reduction="none"), (sr,)
    )


def test_pool_consistency_values_module_gradcheck(gen):
    lr = rand(gen, 2, 3, 4, 5, dtype=torch.float64)
    sr = lr.repeat_interleave(3, dim=-2).repeat_interleave(3, dim=-1)
    assert L.pool_consistency_loss(sr, lr).item() == pytest.approx(0.0, abs=1e-15)
    # a perturbation of one HR pixel by e changes its LR block mean by e / 9
    sr2 = sr.clone()
    sr2[0, 1, 4, 7] += 0.9
    got = L.pool_consistency_loss(sr2, lr, reduction="none")
    expected = torch.zeros(2, 3, dtype=torch.float64)
    expected[0, 1] = 0.1 / 20
    torch.testing.assert_close(got, expected)
    mask = pixel_mask(gen, 2, 4, 5)
    torch.testing.assert_close(
        L.PoolConsistencyLoss()(sr2, lr, mask), L.pool_consistency_loss(sr2, lr, mask=mask)
    )
    x = rand(gen, 1, 2, 6, 9, dtype=torch.float64).requires_grad_(True)  # random: away from |0|
    lr_small, m_small = lr[:1, :2, :2, :3], mask[:1, :, :2, :3]
    assert torch.autograd.gradcheck(lambda a: L.pool_consistency_loss(a, lr_small, mask=m_small), (x,))
    with pytest.raises(ValueError, match="batch and band"):
        L.pool_consistency_loss(sr[:, :2], lr)


# --------------------------------------------------------------------------------------------- colour matching


def test_colour_head_starts_as_identity_and_is_per_pixel(gen):
    head = L.ColourMatchingHead(4, hidden=8)
    x = rand(gen, 2, 4, 6, 6)
    assert torch.equal(head(x), x)
    opt = torch.optim.SGD(head.parameters(), lr=0.5)
    target = x * 0.8 + 0.1
    for _ in range(3):
        opt.zero_grad()
        F.l1_loss(head(x), target).backward()
        opt.step()
    y = head(x)
    assert not torch.allclose(y, x)
    # per-pixel: changing one pixel's spectrum changes only that pixel of the output
    x2 = x.clone()
    x2[1, :, 2, 3] += 0.5
    diff = (head(x2) - y).abs().sum(dim=1)
    assert diff[1, 2, 3] > 0
    diff[1, 2, 3] = 0
    assert (diff == 0).all()
    with pytest.raises(ValueError, match="activation"):
        L.ColourMatchingHead(4, activation="tanh")
    with pytest.raises(ValueError, match="in_channels"):
        L.ColourMatchingHead(0)


def test_colour_matched_loss_closed_form_and_gradients(gen):
    lr = rand(gen, 2, 3, 4, 4, dtype=torch.float64)
    sr = (lr.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1) + 0.05).requires_grad_(True)
    hr = sr.detach() - 0.2
    head = L.ColourMatchingHead(3, hidden=4).double()
    # identity head: 0.9 * 0.05 (consistency) + 0.1 * 0.2 (L1 to hr)
    loss = L.colour_matched_loss(sr, hr, lr, head, 2, consistency="pool")
    assert loss.item() == pytest.approx(0.9 * 0.05 + 0.1 * 0.2, abs=1e-12)
    loss.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert head.conv2.weight.grad is not None and head.conv2.weight.grad.abs().sum() > 0
    # weights are parameters
    loss = L.colour_matched_loss(
        sr, hr, lr, head, 2, consistency="pool", consistency_weight=0.5, sr_weight=2.0
    )
    assert loss.item() == pytest.approx(0.5 * 0.05 + 2.0 * 0.2, abs=1e-12)
    mod = L.ColourMatchedLoss(3, 2, hidden=4, consistency="pool", reduction="none").double()
    mod.head.load_state_dict(head.state_dict())
    torch.testing.assert_close(
        mod(sr, hr, lr), L.colour_matched_loss(sr, hr, lr, head, 2, consistency="pool", reduction="none")
    )
    with pytest.raises(ValueError, match="consistency"):
        L.colour_matched_loss(sr, hr, lr, head, 2, consistency="bogus")
    with pytest.raises(ValueError, match="sr_weight"):
        L.colour_matched_loss(sr, hr, lr, head, 2, consistency="pool", sr_weight=-1)


@needs_degradation
def test_colour_matched_loss_with_degradation(gen):
    lr = rand(gen, 1, 2, 4, 4, dtype=torch.float64)
    sr = rand(gen, 1, 2, 8, 8, dtype=torch.float64)
    hr = rand(gen, 1, 2, 8, 8, dtype=torch.float64)
    head = L.ColourMatchingHead(2).double()
    expected = 0.9 * L.consistency_loss(sr, lr, 2, bands=["B05", "B06"]) + 0.1 * L.l1_loss(sr, hr)
    torch.testing.assert_close(L.colour_matched_loss(sr, hr, lr, head, 2, bands=["B05", "B06"]), expected)


# --------------------------------------------------------------------------------------------- Dice / task


def test_dice_closed_forms():
    t = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
    t[:, 0, :2] = 1
    t[:, 1, 2:] = 1
    assert L.dice_loss(t, t).item() == pytest.approx(0.0, abs=1e-12)
    assert L.dice_loss(1 - t, t, eps=1e-9).item() == pytest.approx(1.0, abs=1e-9)
    p = torch.full_like(t, 0.5)
    eps = 0.5
    # per class: sum p t = 0.5 * 8, sum p = 8, sum t = 8
    expected = 1 - (2 * 4 + eps) / (8 + 8 + eps)
    torch.testing.assert_close(
        L.dice_loss(p, t, eps=eps, reduction="none"), torch.full((1, 2), expected, dtype=torch.float64)
    )
    labels = t.argmax(dim=1)
    torch.testing.assert_close(L.dice_loss(p, labels, eps=eps), L.dice_loss(p, t, eps=eps))
    # a class absent from prediction and target gives 0
    empty = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    assert L.dice_loss(empty, empty).item() == 0.0


def test_pooled_dice_is_one_dice_over_the_batch(gen):
    # sample 0 holds the class, sample 1 does not: per-sample Dice punishes the faint prediction of sample 1 with
    # a loss of 1; pooled, it only adds its small mass to the denominator of one Dice per class
    t = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    t[0, 0, :2] = 1
    p = t.clone()
    p[1] = 0.01
    eps = 1e-9
    per = L.dice_loss(p, t, eps=eps, reduction="none")
    assert per[0, 0].item() == pytest.approx(0.0, abs=1e-9) and per[1, 0].item() == pytest.approx(1.0, abs=1e-6)
    pooled = L.dice_loss(p, t, eps=eps, reduction="none", pooled=True)
    assert pooled.shape == (1, 1)
    assert pooled.item() == pytest.approx(1 - 2 * 8 / (8 + 0.16 + 8), abs=1e-9)  # closed form
    # pooled == the per-sample Dice of the batch laid side by side as one image
    q = rand(gen, 3, 2, 5, 5, dtype=torch.float64)
    u = rand(gen, 3, 2, 5, 5, dtype=torch.float64)
    side = lambda x: x.permute(1, 2, 0, 3).reshape(1, 2, 5, 15)  # noqa: E731
    torch.testing.assert_close(L.dice_loss(q, u, pooled=True), L.dice_loss(side(q), side(u)))
    torch.testing.assert_close(L.DiceLoss(pooled=True)(q, u), L.dice_loss(q, u, pooled=True))
    with pytest.raises(ValueError, match="pooled"):
        L.dice_loss(q, u, pooled=1)


def test_dice_mask_and_gradcheck(gen):
    p = rand(gen, 2, 3, 5, 5, dtype=torch.float64).softmax(dim=1)
    labels = torch.randint(0, 3, (2, 5, 5), generator=gen)
    mask = pixel_mask(gen, 2, 5, 5)
    t = F.one_hot(labels, 3).permute(0, 3, 1, 2).double()
    m = mask.expand_as(p)
    inter = (p * t * m).sum(dim=(-2, -1))
    ref = 1 - (2 * inter + 1e-6) / ((p * m).sum(dim=(-2, -1)) + (t * m).sum(dim=(-2, -1)) + 1e-6)
    torch.testing.assert_close(L.dice_loss(p, labels, mask=mask, reduction="none"), ref)
    p2 = p.clone()
    p2[~m] = float("nan")
    torch.testing.assert_close(L.dice_loss(p2, labels, mask=mask), ref.mean())
    torch.testing.assert_close(L.DiceLoss(reduction="none")(p, labels, mask), ref)
    x = p.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: L.dice_loss(a, t, mask=mask, reduction="none"), (x,))
    with pytest.raises(ValueError, match="labels"):
        L.dice_loss(p, labels + 3)
    with pytest.raises(ValueError, match="shape"):
        L.dice_loss(p, t[:, :2])


class _TinyTask(nn.Module):
    def __init__(self, cin=3, classes=2):
        super().__init__()
        self.conv = nn.Conv2d(cin, classes, 3, padding=1)
        self.bn = nn.BatchNorm2d(classes)

    def forward(self, x):
        return self.bn(self.conv(x))


def test_task_dice_loss_freezes_model_and_matches_dice(gen):
    torch.manual_seed(0)
    task = _TinyTask().double()
    task.train()
    sr = rand(gen, 2, 3, 8, 8, dtype=torch.float64).requires_grad_(True)
    hr = rand(gen, 2, 3, 8, 8, dtype=torch.float64)
    loss = L.task_dice_loss(sr, hr, task, reduction="none")
    assert not task.training and all(not p.requires_grad for p in task.parameters())
    with torch.no_grad():
        ref = L.dice_loss(task(sr).softmax(1), task(hr).softmax(1), reduction="none")
    torch.testing.assert_close(loss, ref)
    loss.mean().backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    # hard targets: one-hot argmax (softmax) / thresholded probabilities (sigmoid)
    with torch.no_grad():
        hard = F.one_hot(task(hr).argmax(1), 2).permute(0, 3, 1, 2).double()
        ref_hard = L.dice_loss(task(sr).softmax(1), hard)
        ref_sig = L.dice_loss(task(sr).sigmoid(), (task(hr).sigmoid() >= 0.6).double())
    torch.testing.assert_close(L.task_dice_loss(sr, hr, task, hard=True), ref_hard)
    torch.testing.assert_close(
        L.task_dice_loss(sr, hr, task, activation="sigmoid", hard=True, threshold=0.6), ref_sig
    )
    # an identity "task" on probabilities: task_dice_loss is the Dice of sr against hr (or hr >= threshold)
    p_sr, p_hr = sr.detach().clamp(0, 1), hr
    torch.testing.assert_close(
        L.task_dice_loss(p_sr, p_hr, nn.Identity(), activation="none"), L.dice_loss(p_sr, p_hr)
    )
    torch.testing.assert_close(
        L.task_dice_loss(p_sr, p_hr, nn.Identity(), activation="none", hard=True, threshold=0.5),
        L.dice_loss(p_sr, (p_hr >= 0.5).double()),
    )
    mod = L.TaskDiceLoss(task, activation="sigmoid", reduction="none")
    mod.train()
    assert not mod.task_model.training
    torch.testing.assert_close(
        mod(sr, hr), L.task_dice_loss(sr, hr, task, activation="sigmoid", reduction="none")
    )
    with pytest.raises(ValueError, match="activation"):
        L.task_dice_loss(sr, hr, task, activation="relu")


def test_task_dice_loss_mask(gen):
    task = _TinyTask().double()
    sr = rand(gen, 1, 3, 8, 8, dtype=torch.float64)
    hr = rand(gen, 1, 3, 8, 8, dtype=torch.float64)
    mask = torch.ones(1, 1, 8, 8, dtype=torch.bool)
    mask[..., :, :2] = False
    a = L.task_dice_loss(sr, hr, task, mask=mask)
    sr2, hr2 = sr.clone(), hr.clone()
    sr2[..., :, :2] = float("nan")
    hr2[..., :, :2] = 5.0
    torch.testing.assert_close(L.task_dice_loss(sr2, hr2, task, mask=mask), a)


# --------------------------------------------------------------------------------------------- perceptual


class _Pyramid(nn.Module):
    """A fixed 'extractor' with known outputs: the image and its 2x2 block mean."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Conv2d(1, 1, 1)  # a parameter, to check freezing

    def forward(self, x):
        return {"full": x, "half": F.avg_pool2d(x, 2)}


def test_feature_loss_closed_form_and_freezing(gen):
    ext = _Pyramid()
    hr = rand(gen, 2, 3, 8, 8, dtype=torch.float64)
    d = 0.25
    sr = (hr + d).requires_grad_(True)
    got = L.task_feature_loss(sr, hr, ext, {"full": 1.0, "half": 2.0})
    assert got.item() == pytest.approx(3 * d, abs=1e-12)
    assert L.task_feature_loss(hr, hr, ext).item() == 0.0
    assert not ext.training and not ext.dummy.weight.requires_grad
    got.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    torch.testing.assert_close(
        L.TaskFeatureLoss(ext, ["half"], reduction="none")(sr, hr), torch.full((2,), d, dtype=torch.float64)
    )
    with pytest.raises(ValueError, match="unknown feature layers"):
        L.task_feature_loss(sr, hr, ext, ["nope"])


def test_gram_and_style_closed_form():
    a = torch.tensor([0.2, 0.4, 0.6], dtype=torch.float64).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    b = torch.tensor([0.1, 0.3, 0.9], dtype=torch.float64).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    ga = L.gram_matrix(a)
    av = torch.tensor([0.2, 0.4, 0.6], dtype=torch.float64)
    bv = torch.tensor([0.1, 0.3, 0.9], dtype=torch.float64)
    torch.testing.assert_close(ga[0], torch.outer(av, av) / 3)
    style = (torch.outer(av, av) - torch.outer(bv, bv)).abs().mean() / 3
    ext = _Pyramid()
    got = L.perceptual_loss(a, b, ext, {"full": 1.0}, content_weight=0.0, style_weight=1.0)
    torch.testing.assert_close(got, style)
    got = L.perceptual_loss(a, b, ext, {"full": 0.5, "half": 1.0}, content_weight=2.0, style_weight=3.0)
    content = (av - bv).abs().mean()
    torch.testing.assert_close(got, 1.5 * (2.0 * content + 3.0 * style))
    # a masked Gram matrix only sums over valid pixels
    x = a.clone()
    x[..., 0, 0] = 9.0
    mask = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    mask[..., 0, 0] = False
    torch.testing.assert_close(L.gram_matrix(x, mask), ga)


def test_perceptual_module_and_mask(gen):
    ext = _Pyramid()
    sr, hr = rand(gen, 2, 2, 8, 8), rand(gen, 2, 2, 8, 8)
    mask = torch.ones(2, 1, 8, 8, dtype=torch.bool)
    mask[:, :, :2, :2] = False
    mod = L.PerceptualLoss(ext, {"full": 1.0, "half": 0.5}, style_weight=0.3)
    mod.train()
    assert not mod.extractor.training
    torch.testing.assert_close(
        mod(sr, hr, mask),
        L.perceptual_loss(sr, hr, ext, {"full": 1.0, "half": 0.5}, style_weight=0.3, mask=mask),
    )
    hr2 = hr.clone()
    hr2[:, :, :2, :2] = float("nan")
    torch.testing.assert_close(mod(sr, hr2, mask), mod(sr, hr, mask))


# --------------------------------------------------------------------------------------------- GAN


def test_ragan_equal_logits_give_log2_per_term():
    log2 = math.log(2.0)
    for c in (-3.0, 0.0, 2.5):
        z = torch.full((4, 1, 5, 5), c)
        assert L.ragan_discriminator_loss(z, z.clone()).item() == pytest.approx(2 * log2, rel=1e-6)
        assert L.ragan_generator_loss(z, z.clone()).item() == pytest.approx(2 * log2, rel=1e-6)
    # constant logits: only the difference matters
    r, f = torch.full((3, 1), 1.5), torch.full((3, 1), -0.5)
    assert L.ragan_discriminator_loss(r, f).item() == pytest.approx(2 * math.log1p(math.exp(-2.0)), rel=1e-6)
    assert L.ragan_generator_loss(r, f).item() == pytest.approx(2 * math.log1p(math.exp(2.0)), rel=1e-6)


def test_ragan_hand_numbers_mask_and_modules():
    real = torch.tensor([[1.0], [3.0]], dtype=torch.float64)  # E = 2
    fake = torch.tensor([[0.0], [2.0]], dtype=torch.float64)  # E = 1
    d = L.ragan_discriminator_loss(real, fake)
    g = L.ragan_generator_loss(real, fake)
    assert d.item() == pytest.approx(math.log(2) + math.log1p(math.exp(-2)), abs=1e-12)
    assert g.item() == pytest.approx(math.log(2) + math.log1p(math.exp(2)), abs=1e-12)
    # per sample: sample 0 -> softplus(0) + softplus(-2); sample 1 -> softplus(-2) + softplus(0)
    torch.testing.assert_close(
        L.ragan_discriminator_loss(real, fake, reduction="none"),
        torch.full((2,), math.log(2) + math.log1p(math.exp(-2)), dtype=torch.float64),
    )
    # masked entries (even NaN) do not count: add a third, masked sample
    real3 = torch.cat([real, torch.tensor([[float("nan")]], dtype=torch.float64)])
    fake3 = torch.cat([fake, torch.tensor([[50.0]], dtype=torch.float64)])
    mask = torch.tensor([[True], [True], [False]])
    torch.testing.assert_close(L.ragan_discriminator_loss(real3, fake3, mask=mask), d)
    torch.testing.assert_close(L.RaGANGeneratorLoss()(real3, fake3, mask), g)
    torch.testing.assert_close(
        L.RaGANDiscriminatorLoss(reduction="none")(real, fake),
        L.ragan_discriminator_loss(real, fake, reduction="none"),
    )
    with pytest.raises(ValueError, match="same shape"):
        L.ragan_generator_loss(real, fake[:1])


def test_ragan_gradients_flow_through_fake_only_for_generator(gen):
    real = rand(gen, 3, 1, 4, 4, dtype=torch.float64)
    fake = rand(gen, 3, 1, 4, 4, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f: L.ragan_generator_loss(real, f), (fake,))
    assert torch.autograd.gradcheck(lambda f: L.ragan_discriminator_loss(real, f, reduction="none"), (fake,))


def test_highpass_removes_low_frequencies():
    x = torch.full((1, 2, 20, 20), 3.7, dtype=torch.float64)
    for pad in ("reflect", "replicate", "circular"):
        torch.testing.assert_close(L.highpass(x, 1.0, padding=pad), torch.zeros_like(x), atol=1e-12, rtol=0)
    yy, xx = torch.meshgrid(
        torch.arange(24.0, dtype=torch.float64), torch.arange(24.0, dtype=torch.float64), indexing="ij"
    )
    ramp = (0.3 * yy - 0.2 * xx)[None, None]
    torch.testing.assert_close(
        L.highpass(ramp, 1.2)[..., 4:-4, 4:-4],
        torch.zeros(1, 1, 16, 16, dtype=torch.float64),
        atol=1e-12,
        rtol=0,
    )
    # Nyquist checkerboard: exact discrete response 1 - H(pi)^2, H(pi) = sum_k g_k (-1)^k
    sigma = 1.0
    g = gaussian_kernel1d(7, sigma)
    h_pi = (g * torch.tensor([(-1.0) ** k for k in range(7)], dtype=torch.float64)).sum()
    checker = ((-1.0) ** (yy + xx))[None, None]
    torch.testing.assert_close(
        L.highpass(checker, sigma)[..., 4:-4, 4:-4], (1 - h_pi**2) * checker[..., 4:-4, 4:-4]
    )
    # a slow sinusoid (1/24 cycles per pixel, periodic on the 24 px image) is scaled by exactly
    # 1 - H(2 pi f) = 1 - sum_k g_k cos(2 pi f (k - 3)) ~ 1 - exp(-2 pi^2 sigma^2 f^2) (continuous Gaussian)
    f = 1 / 24
    slow = torch.sin(2 * math.pi * f * xx)[None, None]
    taps = torch.arange(7, dtype=torch.float64) - 3
    gain = 1 - (g * torch.cos(2 * math.pi * f * taps)).sum()
    torch.testing.assert_close(L.highpass(slow, sigma, padding="circular"), gain * slow, atol=1e-12, rtol=0)
    assert gain.item() == pytest.approx(1 - math.exp(-2 * math.pi**2 * sigma**2 * f**2), abs=2e-3)
    assert gain < 0.04 and (1 - h_pi**2) > 0.99
    torch.testing.assert_close(L.HighPass(1.0)(checker), L.highpass(checker, 1.0))
    with pytest.raises(ValueError, match="sigma"):
        L.highpass(x, 0.0)


def test_unet_discriminator_shapes_highpass_and_spectral_norm(gen):
    torch.manual_seed(0)
    disc = L.UNetDiscriminator(3, num_features=8)
    x = rand(gen, 2, 3, 16, 16)
    assert disc(x).shape == (2, 1, 16, 16)
    assert disc(rand(gen, 1, 3, 13, 19)).shape == (1, 1, 13, 19)
    disc.eval()
    shift = torch.tensor([0.5, -1.0, 2.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(disc(x + shift), disc(x), atol=1e-5, rtol=1e-4)
    raw = L.UNetDiscriminator(3, num_features=8, highpass=False).eval()
    assert not torch.allclose(raw(x + shift), raw(x))
    disc.train()
    with torch.no_grad():
        for _ in range(30):
            disc(x)
    w = disc.down2.weight  # spectrally normalised weight
    sv = torch.linalg.matrix_norm(w.detach().flatten(1), ord=2)
    assert sv.item() == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match="H, W >= 8"):
        disc(rand(gen, 1, 3, 6, 16))
    with pytest.raises(ValueError, match="expected"):
        disc(rand(gen, 1, 2, 16, 16))


# --------------------------------------------------------------------------------------------- weighting


def test_dynamic_loss_weighting_closed_form():
    w = L.DynamicLossWeighting(reference="l1", proportions={"dice": 0.1, "ssim": 0.5})
    assert w.weights == {"l1": 1.0, "dice": 0.1, "ssim": 0.5}
    w.update({"l1": torch.tensor(1.0), "dice": torch.tensor(0.5), "ssim": 4.0})
    w.update({"l1": torch.tensor([3.0, 3.0]), "dice": 1.5})
    means = w.epoch_means()
    assert means == {"l1": 2.0, "dice": 1.0, "ssim": 4.0}
    new = w.epoch_end()
    assert new["dice"] == pytest.approx(0.1 * 2.0 / 1.0)
    assert new["ssim"] == pytest.approx(0.5 * 2.0 / 4.0)
    for k, p in (("dice", 0.1), ("ssim", 0.5)):
        assert new[k] * means[k] == pytest.approx(p * means["l1"])
    assert w.epoch_means() == {}  # reset
    losses = {"l1": torch.tensor(0.7, requires_grad=True), "dice": torch.tensor(0.3, requires_grad=True)}
    total = w.total(losses)
    assert total.item() == pytest.approx(0.7 + 0.2 * 0.3)
    total.backward()
    assert losses["dice"].grad.item() == pytest.approx(0.2)
    # a term not seen in an epoch keeps its weight; an unmanaged term has weight 1 (rejected when strict)
    w.update({"l1": 1.0, "gan": 5.0})
    assert w.epoch_end() == new
    assert w.total({"gan": torch.tensor(2.0)}).item() == 2.0
    with pytest.raises(ValueError, match="unknown loss terms"):
        L.DynamicLossWeighting("l1", {"dice": 0.1}, strict=True).update({"gan": 1.0})


def test_dynamic_loss_weighting_state_dict_and_errors():
    a = L.DynamicLossWeighting("l1", {"dice": 0.2}, initial_weights={"dice": 3.0})
    assert a.weights["dice"] == 3.0
    a.update({"l1": 0.4, "dice": 0.1})
    b = L.DynamicLossWeighting("l1", {"dice": 0.2})
    b.load_state_dict(a.state_dict())
    assert b.weights == a.weights
    a.update({"l1": 0.8, "dice": 0.3})
    b.update({"l1": 0.8, "dice": 0.3})
    assert a.epoch_end() == b.epoch_end()
    assert b.weights["dice"] == pytest.approx(0.2 * 0.6 / 0.2)
    with pytest.raises(ValueError, match="reference"):
        L.DynamicLossWeighting("l1", {"l1": 0.5})
    with pytest.raises(ValueError, match="proportions"):
        L.DynamicLossWeighting("l1", {"dice": -0.1})
    with pytest.raises(ValueError, match="initial_weights"):
        L.DynamicLossWeighting("l1", {"dice": 0.1}, initial_weights={"ssim": 1.0})
    with pytest.raises(ValueError, match="state_dict"):
        L.DynamicLossWeighting("l1", {"ssim": 0.1}).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="not finite"):
        a.update({"l1": float("nan")})
