"""Consistency with the input and colour matching (sr_core.losses.consistency): closed forms, independent references, gradcheck, masks, module == function."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import sr_core.losses as L
from tests.sr_core.losses.images import pixel_mask, rand

# --------------------------------------------------------------------------------------------- consistency


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


def test_colour_matched_loss_with_degradation(gen):
    lr = rand(gen, 1, 2, 4, 4, dtype=torch.float64)
    sr = rand(gen, 1, 2, 8, 8, dtype=torch.float64)
    hr = rand(gen, 1, 2, 8, 8, dtype=torch.float64)
    head = L.ColourMatchingHead(2).double()
    expected = 0.9 * L.consistency_loss(sr, lr, 2, bands=["B05", "B06"]) + 0.1 * L.l1_loss(sr, hr)
    torch.testing.assert_close(L.colour_matched_loss(sr, hr, lr, head, 2, bands=["B05", "B06"]), expected)
