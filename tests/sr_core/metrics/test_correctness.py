"""Correctness classes and fractions (sr_core.metrics.correctness)."""

from __future__ import annotations

import pytest
import torch

from sr_core import metrics as M
from tests.sr_core.metrics.images import F64, rand_images

# ------------------------------------------------------------------------------------------------------------
# improvement / omission / hallucination
# ------------------------------------------------------------------------------------------------------------


def test_correctness_classes_hand_made_pixels():
    hr = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.5, 1.0], dtype=F64).reshape(1, 1, 1, 6)
    lr = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.5, 0.0], dtype=F64).reshape(1, 1, 1, 6)
    # sr == hr -> improvement; sr == lr -> omission; far from both -> hallucination;
    # slightly towards hr -> still omission; lr == hr -> excluded; mostly towards hr -> improvement
    sr = torch.tensor([1.0, 0.0, 4.0, 0.1, 0.9, 0.9], dtype=F64).reshape(1, 1, 1, 6)
    cls = M.correctness_classes(sr, lr, hr)
    I, O, H, X = M.IMPROVEMENT, M.OMISSION, M.HALLUCINATION, M.EXCLUDED  # noqa: E741
    assert cls.flatten().tolist() == [I, O, H, O, X, I]
    fr = M.hallucination_omission_improvement(sr, lr, hr)
    torch.testing.assert_close(fr.improvement, torch.tensor([[2 / 5]], dtype=F64))
    torch.testing.assert_close(fr.omission, torch.tensor([[2 / 5]], dtype=F64))
    torch.testing.assert_close(fr.hallucination, torch.tensor([[1 / 5]], dtype=F64))
    mask = torch.tensor([[True, False, False, True, True, True]])
    fr = M.hallucination_omission_improvement(sr, lr, hr, mask=mask)
    torch.testing.assert_close(torch.stack(list(fr)).flatten(), torch.tensor([0.0, 1 / 3, 2 / 3], dtype=F64))


def test_correctness_fractions_sum_to_one(gen):
    hr = rand_images(gen, 2, 3, 8, 8)
    lr_up = hr + 0.2 * (rand_images(gen, 2, 3, 8, 8) - 0.5)
    sr = hr + 0.3 * (rand_images(gen, 2, 3, 8, 8) - 0.5)
    fr = M.hallucination_omission_improvement(sr, lr_up, hr, min_reference_distance=0.01)
    total = fr.hallucination + fr.omission + fr.improvement
    torch.testing.assert_close(total, torch.ones(2, 3, dtype=F64))
    assert (fr.improvement > 0).all() and (fr.hallucination + fr.omission > 0).any()
    assert torch.isnan(M.hallucination_omission_improvement(hr, hr, hr).improvement).all()  # nothing to judge
    sr[0, 0, 0, 0] = torch.nan
    with pytest.raises(ValueError, match="finite"):
        M.hallucination_omission_improvement(sr, lr_up, hr)
    mask = torch.ones(8, 8, dtype=torch.bool)
    mask[0, 0] = False
    fr = M.hallucination_omission_improvement(sr, lr_up, hr, mask=mask)
    assert torch.isfinite(fr.improvement).all()
