"""Dice and task-driven Dice losses (sr_core.losses.task): closed forms, independent references, gradcheck, masks, module == function."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sr_core.losses as L
from tests.sr_core.losses.images import pixel_mask, rand

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
