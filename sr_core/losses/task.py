"""Task-driven losses: soft Dice and the Dice between a frozen task network's predictions on SR and on HR.

The task network (e.g. a segmentation model) is passed in and frozen on use, in place: eval mode and
``requires_grad=False`` on its parameters; gradients still flow through it to ``sr``. Its prediction on ``hr``
(the target) is computed under ``torch.no_grad()``. The feature-space variant is
:func:`sr_core.losses.perceptual.task_feature_loss`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sr_core.losses._utils import (
    apply_mask,
    check_image,
    check_positive,
    check_reduction,
    expand_mask,
    freeze,
    resize_mask,
)

__all__ = ["DiceLoss", "TaskDiceLoss", "dice_loss", "task_dice_loss"]

_ACTIVATIONS = ("softmax", "sigmoid", "none")


def _as_target(target: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Float target shaped like ``like`` (N, C, H, W) from probabilities/one-hot/bool of the same shape, or
    from integer class labels (N, H, W) / (N, 1, H, W) (one-hot over C; for C == 1 labels must be 0/1)."""
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
    n, c, h, w = like.shape
    if target.dtype == torch.bool or target.is_floating_point():
        if target.shape != like.shape:
            raise ValueError(
                f"a float/bool target must have the shape of pred_probs {tuple(like.shape)}, got {tuple(target.shape)}"
            )
        return target.to(like.dtype)
    labels = target
    if labels.ndim == 4 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.shape != (n, h, w):
        raise ValueError(
            f"integer labels must be (N, H, W) or (N, 1, H, W) = ({n}, {h}, {w}), got {tuple(target.shape)}"
        )
    lo, hi = int(labels.min()), int(labels.max())
    top = 1 if c == 1 else c - 1
    if lo < 0 or hi > top:
        raise ValueError(f"integer labels must lie in [0, {top}] for {c} classes, got values in [{lo}, {hi}]")
    if c == 1:
        return labels[:, None].to(like.dtype)
    return F.one_hot(labels.long(), c).permute(0, 3, 1, 2).to(like.dtype)


def dice_loss(
    pred_probs: torch.Tensor,
    target: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    eps: float = 1e-6,
    reduction: str = "mean",
    pooled: bool = False,
) -> torch.Tensor:
    """Soft Dice loss per sample and class: ``1 - (2 sum p t + eps) / (sum p + sum t + eps)`` over valid pixels.

    ``pred_probs`` ``(N, C, H, W)`` class probabilities (softmax over C, or per-class sigmoid); ``target``
    probabilities / one-hot / bool of the same shape or integer labels ``(N, H, W)``. A class absent from both
    (or with no valid pixel) gives 0. ``"none"`` -> ``(N, C)``; ``"mean"`` -> mean over samples and classes.
    ``pooled=True``: the sums run over the whole batch as well (one Dice per class, ``"none"`` -> ``(1, C)``), so a
    patch without the class does not get a Dice of its own; in a per-sample Dice such a patch can only lower its
    loss by pushing faint probabilities to 0 or (against a soft target) towards its tiny target mass.
    """
    check_image("pred_probs", pred_probs)
    check_reduction(reduction)
    eps = check_positive("eps", eps)
    if not isinstance(pooled, bool):
        raise ValueError(f"pooled must be a bool, got {pooled!r}")
    t = _as_target(target, pred_probs)
    m = expand_mask(mask, pred_probs.shape)
    p, t = apply_mask(pred_probs, m), apply_mask(t, m)
    dims = (0, -2, -1) if pooled else (-2, -1)
    inter = (p * t).sum(dim=dims, keepdim=False)
    total = p.sum(dim=dims) + t.sum(dim=dims)
    if pooled:
        inter, total = inter[None], total[None]
    loss = 1.0 - (2.0 * inter + eps) / (total + eps)
    return loss if reduction == "none" else loss.mean()


def _activate(logits: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "softmax":
        return logits.softmax(dim=1)
    if activation == "sigmoid":
        return logits.sigmoid()
    return logits


def task_dice_loss(
    sr: torch.Tensor,
    hr: torch.Tensor,
    task_model: nn.Module,
    *,
    activation: str = "softmax",
    hard: bool = False,
    threshold: float = 0.5,
    mask: torch.Tensor | None = None,
    eps: float = 1e-6,
    reduction: str = "mean",
    pooled: bool = False,
) -> torch.Tensor:
    """Dice between the frozen ``task_model``'s probabilities on ``sr`` and its prediction on ``hr``
    (``pooled``: one Dice per class over the whole batch, :func:`dice_loss`).

    ``activation`` turns the model output into probabilities: "softmax" (over dim 1), "sigmoid" or "none"
    (the model already returns probabilities). Target: soft probabilities of ``task_model(hr)`` by default;
    with ``hard=True`` the one-hot argmax ("softmax") or ``probs >= threshold`` ("sigmoid"/"none").
    ``mask`` (True = valid, on the image grid) is brought to the output size (a pixel counts only if its
    whole footprint is valid in every band).
    """
    check_image("sr", sr)
    check_image("hr", hr)
    if sr.shape != hr.shape:
        raise ValueError(f"sr and hr must have the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
    threshold = check_positive("threshold", threshold)
    freeze(task_model)
    m = expand_mask(mask, sr.shape)
    if m is not None:
        sr, hr = apply_mask(sr, m), apply_mask(hr, m)
    pred = _activate(task_model(sr), activation)
    with torch.no_grad():
        target = _activate(task_model(hr), activation)
        if hard:
            if activation == "softmax":
                target = F.one_hot(target.argmax(dim=1), target.shape[1]).permute(0, 3, 1, 2).to(pred.dtype)
            else:
                target = (target >= threshold).to(pred.dtype)
    om = None if m is None else resize_mask(m, tuple(pred.shape[-2:]))
    return dice_loss(pred, target, mask=om, eps=eps, reduction=reduction, pooled=pooled)


class DiceLoss(nn.Module):
    """``nn.Module`` wrapper of :func:`dice_loss`."""

    def __init__(self, *, eps: float = 1e-6, reduction: str = "mean", pooled: bool = False) -> None:
        super().__init__()
        self.eps = check_positive("eps", eps)
        self.reduction = check_reduction(reduction)
        self.pooled = pooled

    def forward(
        self, pred_probs: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return dice_loss(pred_probs, target, mask=mask, eps=self.eps, reduction=self.reduction, pooled=self.pooled)


class TaskDiceLoss(nn.Module):
    """``nn.Module`` wrapper of :func:`task_dice_loss`; the task model is a frozen submodule (kept in eval)."""

    def __init__(
        self,
        task_model: nn.Module,
        *,
        activation: str = "softmax",
        hard: bool = False,
        threshold: float = 0.5,
        eps: float = 1e-6,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.task_model = freeze(task_model)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        self.hard = bool(hard)
        self.threshold = check_positive("threshold", threshold)
        self.eps = check_positive("eps", eps)
        self.reduction = check_reduction(reduction)

    def train(self, mode: bool = True) -> TaskDiceLoss:
        super().train(mode)
        self.task_model.eval()
        return self

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return task_dice_loss(
            sr,
            hr,
            self.task_model,
            activation=self.activation,
            hard=self.hard,
            threshold=self.threshold,
            mask=mask,
            eps=self.eps,
            reduction=self.reduction,
        )
