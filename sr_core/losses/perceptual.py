"""Feature-space losses over a caller-supplied feature extractor: content (L1 between features) and style
(L1 between Gram matrices). Nothing is downloaded: the extractor (a pretrained or a task network) is passed in.

A feature extractor is any ``nn.Module`` mapping ``(N, C, H, W)`` to a tensor, a list/tuple of tensors or a dict
of tensors ``(N, C_l, H_l, W_l)``; layers are addressed by their list index or dict key. It is frozen on use
(eval mode, ``requires_grad=False`` on its parameters, in place); gradients still flow through it to ``sr``.
The ``hr`` features are computed under ``torch.no_grad()``.

Masks (True = valid) are given on the image grid, ``(N, 1|C, H, W)``; a feature pixel counts only if its whole
adaptive-pooling footprint is valid in every band (:func:`sr_core.losses._utils.resize_mask`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from sr_core.losses._utils import (
    apply_mask,
    check_pair,
    check_positive,
    check_reduction,
    expand_mask,
    features_as_dict,
    freeze,
    reduce_weighted,
    resize_mask,
)

__all__ = ["PerceptualLoss", "TaskFeatureLoss", "gram_matrix", "perceptual_loss", "task_feature_loss"]


def _layer_weights(layers: Any, available: Sequence[Any]) -> dict[Any, float]:
    if layers is None:
        weights = {k: 1.0 for k in available}
    elif isinstance(layers, Mapping):
        weights = {k: check_positive(f"weight of layer {k!r}", v, allow_zero=True) for k, v in layers.items()}
    elif isinstance(layers, (list, tuple)):
        weights = {k: 1.0 for k in layers}
    else:
        raise ValueError(
            f"layers must be None, a sequence of layer keys or a mapping key -> weight, got {layers!r}"
        )
    missing = [k for k in weights if k not in available]
    if missing:
        raise ValueError(f"unknown feature layers {missing}; the extractor returns {list(available)}")
    if not weights:
        raise ValueError("no feature layer selected")
    return weights


def _features(sr, hr, extractor, mask):
    check_pair("sr", sr, "hr", hr)
    freeze(extractor)
    m = expand_mask(mask, sr.shape)
    if m is not None:
        sr, hr = apply_mask(sr, m), apply_mask(hr, m)
    f_sr = features_as_dict(extractor(sr))
    with torch.no_grad():
        f_hr = features_as_dict(extractor(hr))
    if list(f_sr) != list(f_hr):
        raise ValueError("the feature extractor returned different layers for sr and hr")
    return f_sr, f_hr, m


def _feature_mask(m, feat: torch.Tensor):
    if m is None:
        return None
    return resize_mask(m, tuple(feat.shape[-2:])).expand(feat.shape)


def _content_per_layer(a: torch.Tensor, b: torch.Tensor, fm) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample mean |a - b| over valid feature pixels and channels; returns (values (N,), counts (N,))."""
    err = apply_mask((a - b).abs(), fm)
    if fm is None:
        counts = torch.full((a.shape[0],), float(a[0].numel()), dtype=a.dtype, device=a.device)
    else:
        counts = fm.flatten(1).sum(dim=1).to(a.dtype)
    return err.flatten(1).sum(dim=1) / counts.clamp_min(1.0), counts


def gram_matrix(features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Gram matrix ``(N, C, C)`` of ``features`` ``(N, C, H, W)``: ``sum_p f_i(p) f_j(p) / (C * P)`` over the
    ``P`` valid pixels (``mask`` bool, broadcastable to ``(N, 1, H, W)``; all pixels by default)."""
    if features.ndim != 4:
        raise ValueError(f"features must be (N, C, H, W), got shape {tuple(features.shape)}")
    n, c, h, w = features.shape
    if mask is None:
        count = torch.full((n,), float(h * w), dtype=features.dtype, device=features.device)
        f = features
    else:
        m = expand_mask(mask, (n, 1, h, w))
        f = apply_mask(features, m.expand(features.shape))
        count = m.flatten(1).sum(dim=1).to(features.dtype)
    f = f.flatten(2)
    g = torch.bmm(f, f.transpose(1, 2))
    return g / (c * count.clamp_min(1.0))[:, None, None]


def perceptual_loss(
    sr: torch.Tensor,
    hr: torch.Tensor,
    extractor: nn.Module,
    layer_weights: Mapping[Any, float] | Sequence[Any] | None = None,
    *,
    content_weight: float = 1.0,
    style_weight: float = 0.0,
    mask: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """``content_weight * sum_l w_l L1(f_l(sr), f_l(hr)) + style_weight * sum_l w_l L1(G(f_l(sr)), G(f_l(hr)))``.

    ``layer_weights``: mapping layer key -> weight, a sequence of keys (weight 1), or None (every layer the
    extractor returns, weight 1). ``G`` is :func:`gram_matrix`. ``"none"`` -> per sample ``(N,)``; ``"mean"`` ->
    per layer the mean over all valid feature elements of the batch, then the weighted sum.
    """
    check_reduction(reduction)
    cw = check_positive("content_weight", content_weight, allow_zero=True)
    sw = check_positive("style_weight", style_weight, allow_zero=True)
    f_sr, f_hr, m = _features(sr, hr, extractor, mask)
    weights = _layer_weights(layer_weights, list(f_sr))
    total = None
    for key, wl in weights.items():
        a, b = f_sr[key], f_hr[key]
        fm = _feature_mask(m, a)
        term = 0.0
        if cw > 0:
            values, counts = _content_per_layer(a, b, fm)
            term = term + cw * reduce_weighted(values, counts, reduction)
        if sw > 0:
            fm1 = None if fm is None else fm[:, :1]
            ga, gb = gram_matrix(a, fm1), gram_matrix(b, fm1)
            per_sample = (ga - gb).abs().flatten(1).mean(dim=1)
            term = term + sw * (per_sample if reduction == "none" else per_sample.mean())
        total = wl * term if total is None else total + wl * term
    if not isinstance(total, torch.Tensor):  # every weight zero
        zero = (sr * 0).flatten(1).sum(dim=1)
        total = zero if reduction == "none" else zero.sum()
    return total


def task_feature_loss(
    sr: torch.Tensor,
    hr: torch.Tensor,
    feature_extractor: nn.Module,
    layers: Mapping[Any, float] | Sequence[Any] | None = None,
    *,
    mask: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Feature-space task loss: weighted L1 between the frozen task network's features of ``sr`` and ``hr``
    (``layers`` as ``layer_weights`` of :func:`perceptual_loss`; this is its content term alone)."""
    return perceptual_loss(
        sr,
        hr,
        feature_extractor,
        layers,
        content_weight=1.0,
        style_weight=0.0,
        mask=mask,
        reduction=reduction,
    )


class PerceptualLoss(nn.Module):
    """``nn.Module`` wrapper of :func:`perceptual_loss`; the extractor is frozen (a non-trainable submodule)."""

    def __init__(
        self,
        extractor: nn.Module,
        layer_weights: Mapping[Any, float] | Sequence[Any] | None = None,
        style_weight: float = 0.0,
        *,
        content_weight: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.extractor = freeze(extractor)
        self.layer_weights = dict(layer_weights) if isinstance(layer_weights, Mapping) else layer_weights
        self.style_weight = check_positive("style_weight", style_weight, allow_zero=True)
        self.content_weight = check_positive("content_weight", content_weight, allow_zero=True)
        self.reduction = check_reduction(reduction)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.extractor.eval()  # the extractor stays frozen
        return self

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return perceptual_loss(
            sr,
            hr,
            self.extractor,
            self.layer_weights,
            content_weight=self.content_weight,
            style_weight=self.style_weight,
            mask=mask,
            reduction=self.reduction,
        )


class TaskFeatureLoss(PerceptualLoss):
    """``nn.Module`` wrapper of :func:`task_feature_loss`."""

    def __init__(
        self,
        feature_extractor: nn.Module,
        layers: Mapping[Any, float] | Sequence[Any] | None = None,
        *,
        reduction: str = "mean",
    ) -> None:
        super().__init__(feature_extractor, layers, 0.0, content_weight=1.0, reduction=reduction)
