"""Dynamic loss weighting (sr_core.losses.weighting): closed forms, independent references, gradcheck, masks, module == function."""

from __future__ import annotations

import pytest
import torch

import sr_core.losses as L

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
