"""Helpers for architecture tests: measured receptive field by an impulse (gradient) response."""

from __future__ import annotations

import torch


def lr_support_radius(model: torch.nn.Module, lr: torch.Tensor, scale: int, **kwargs) -> int:
    """Measured receptive-field radius (LR pixels) of ``model`` at the centre of ``lr``.

    Back-propagates from the ``scale x scale`` HR block of the central LR pixel (i, j) and returns the
    Chebyshev distance from (i, j) to the farthest LR pixel with a non-zero gradient: the impulse response
    of the linearised network. ``lr`` is ``(N, C, H, W)`` or ``(N, T, C, H, W)``; extra ``kwargs`` go to
    the forward call. The input must be large enough that the support does not reach the border.
    """
    lr = lr.detach().clone().requires_grad_(True)
    h, w = lr.shape[-2:]
    i, j = h // 2, w // 2
    sr = model(lr, **kwargs)
    block = sr[..., scale * i : scale * i + scale, scale * j : scale * j + scale]
    (g,) = torch.autograd.grad(block.sum(), lr)
    g = g.abs().reshape(-1, h, w).sum(0)
    ys, xs = torch.nonzero(g > 0, as_tuple=True)
    if ys.numel() == 0:
        raise AssertionError("output does not depend on the input at all")
    if ys.min() == 0 or xs.min() == 0 or ys.max() == h - 1 or xs.max() == w - 1:
        raise AssertionError("support reaches the input border: use a larger input for the impulse test")
    return int(max(i - ys.min(), ys.max() - i, j - xs.min(), xs.max() - j))


def assert_receptive_field(model: torch.nn.Module, lr: torch.Tensor, scale: int, **kwargs) -> None:
    """The measured support radius equals ``model.receptive_field // 2`` exactly (declared field is tight)."""
    rf = model.receptive_field
    assert isinstance(rf, int) and rf % 2 == 1, f"receptive_field must be an odd int, got {rf!r}"
    measured = lr_support_radius(model, lr, scale, **kwargs)
    assert measured == rf // 2, f"measured radius {measured} != declared receptive_field {rf} // 2"
