"""Consistency with the low-resolution input (sr_core.metrics.consistency)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sr_core import metrics as M
from tests.sr_core.metrics.images import F64, rand_images


def test_reflectance_consistency_with_custom_degradation(gen):
    sr = rand_images(gen, 1, 2, 8, 8)
    lr = F.avg_pool2d(sr, 2) + torch.tensor([0.03, -0.01], dtype=F64)[None, :, None, None]

    def pool(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2)

    out = M.reflectance_consistency(sr, lr, ratio=2, degrade_fn=pool)
    torch.testing.assert_close(out, torch.tensor([[0.03, 0.01]], dtype=F64))
    lr_bad = lr.clone()
    lr_bad[..., 0, 0] = 99.0
    mask = torch.ones(4, 4, dtype=torch.bool)
    mask[0, 0] = False
    masked = M.reflectance_consistency(sr, lr_bad, ratio=2, degrade_fn=pool, mask=mask)
    torch.testing.assert_close(masked, out)
    with pytest.raises(ValueError, match="lr has"):
        M.reflectance_consistency(sr, lr[..., :3, :], ratio=2, degrade_fn=pool)
    with pytest.raises(ValueError, match="not both"):
        M.reflectance_consistency(sr, lr, ratio=2, degrade_fn=pool, mtf=[0.3, 0.3])


def test_consistency_of_degraded_hr_is_zero(gen):
    deg = pytest.importorskip("sr_core.degradation")
    hr = rand_images(gen, 1, 4, 12, 12) + 0.1
    bands = ["B02", "B03", "B04", "B08"]
    lr = deg.degrade(hr, 2, bands=bands)
    assert M.reflectance_consistency(hr, lr, ratio=2, bands=bands).abs().max().item() < 1e-14
    assert M.spectral_consistency(hr, lr, ratio=2, bands=bands).abs().max().item() < 1e-5
    off = M.reflectance_consistency(hr, lr + 0.05, ratio=2, bands=bands)
    torch.testing.assert_close(off, torch.full((1, 4), 0.05, dtype=F64))
