"""Pixel losses (sr_core.losses.pixel): masked L1 / MSE and the PROBA-V cL1 / cMSE: closed forms, independent references, gradcheck, masks, module == function."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import sr_core.losses as L
from tests.sr_core.losses.images import pixel_mask, rand

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
