"""Perceptual, style and task-feature losses (sr_core.losses.perceptual): closed forms, independent references, gradcheck, masks, module == function."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sr_core.losses as L
from tests.sr_core.losses.images import rand

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
