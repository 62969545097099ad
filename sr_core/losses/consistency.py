"""Radiometric consistency with the LR input and the colour-matching objective.

``consistency_loss``: per-band L1 between the SR image degraded back to the LR grid by the sensor model of
:func:`sr_core.degradation.degrade` (Gaussian MTF PSF + decimation at the LR pixel centres) and the LR input.
``pool_consistency_loss``: the same with an adaptive average pool (block mean) as the degradation.

The colour-matching objective trains, with the SR network, a small per-pixel head that maps the SR image to
the HR target's colours: on simulated (or cross-sensor) pairs the HR target differs spectrally from what the
sensor would see, and the head absorbs this spectral / colour mismatch, while most of the weight (0.9) of the
objective goes to the consistency of the SR image with its own LR input, so that the SR network is pushed to
stay radiometrically consistent with what it was given rather than to copy the HR colours.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sr_core.checks import check_int
from sr_core.degradation import degrade
from sr_core.losses._utils import check_image, check_positive, check_reduction
from sr_core.losses.pixel import l1_loss

__all__ = [
    "ColourMatchedLoss",
    "ColourMatchingHead",
    "ConsistencyLoss",
    "PoolConsistencyLoss",
    "colour_matched_loss",
    "consistency_loss",
    "pool_consistency_loss",
]


def _check_sr_lr(sr: torch.Tensor, lr: torch.Tensor) -> None:
    check_image("sr", sr)
    check_image("lr", lr)
    if sr.shape[:2] != lr.shape[:2]:
        raise ValueError(
            f"sr and lr must have the same batch and band sizes, got {tuple(sr.shape)} and {tuple(lr.shape)}"
        )


def consistency_loss(
    sr: torch.Tensor,
    lr: torch.Tensor,
    ratio: int,
    *,
    bands=None,
    mtf=None,
    sigma=None,
    mask: torch.Tensor | None = None,
    padding: str = "reflect",
    reduction: str = "mean",
) -> torch.Tensor:
    """Per-band L1 between ``degrade(sr, ratio, bands=..., mtf=..., sigma=...)`` and ``lr``.

    ``sr`` is ``(N, C, H, W)`` with H, W multiples of ``ratio``; ``lr`` is ``(N, C, H / ratio, W / ratio)``.
    Exactly one of ``bands`` (band names, MTF from :mod:`sr_core.bands`), ``mtf`` or ``sigma`` (HR pixels) sets
    the PSF, as in :func:`sr_core.degradation.degrade` (no noise is added). ``mask`` marks the valid LR pixels
    (broadcastable to ``lr``). Differentiable in ``sr``.
    """
    _check_sr_lr(sr, lr)
    check_reduction(reduction)
    r = check_int("ratio", ratio, 1)
    h, w = sr.shape[-2:]
    if (h, w) != (lr.shape[-2] * r, lr.shape[-1] * r):
        raise ValueError(
            f"sr of size {h}x{w} is not ratio={r} times lr of size {lr.shape[-2]}x{lr.shape[-1]}"
        )
    pred = degrade(sr, r, bands=bands, mtf=mtf, sigma=sigma, padding=padding)
    return l1_loss(pred, lr, mask=mask, reduction=reduction)  # pred has lr's shape


def pool_consistency_loss(
    sr: torch.Tensor, lr: torch.Tensor, *, mask: torch.Tensor | None = None, reduction: str = "mean"
) -> torch.Tensor:
    """Per-band L1 between ``adaptive_avg_pool2d(sr, lr.shape[-2:])`` and ``lr`` (``mask``: valid LR pixels).
    For sizes that are integer multiples this is the block mean of each LR pixel's footprint."""
    _check_sr_lr(sr, lr)
    check_reduction(reduction)
    if sr.shape[-2] < lr.shape[-2] or sr.shape[-1] < lr.shape[-1]:
        raise ValueError(f"sr ({tuple(sr.shape)}) must not be smaller than lr ({tuple(lr.shape)})")
    pred = F.adaptive_avg_pool2d(sr, lr.shape[-2:])
    return l1_loss(pred, lr, mask=mask, reduction=reduction)  # pred has lr's shape


class ColourMatchingHead(nn.Module):
    """Per-pixel MLP ``x + conv1x1(act(conv1x1(x)))`` on ``(N, in_channels, H, W)``.

    The second convolution starts at zero, so the head is exactly the identity at initialisation and learns
    only a per-pixel spectral (colour) correction. ``activation``: "gelu" (default) or "relu".
    """

    def __init__(self, in_channels: int, hidden: int = 32, *, activation: str = "gelu") -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, 1)
        self.hidden = check_int("hidden", hidden, 1)
        acts = {"gelu": nn.GELU, "relu": nn.ReLU}
        if activation not in acts:
            raise ValueError(f"activation must be one of {tuple(acts)}, got {activation!r}")
        self.conv1 = nn.Conv2d(in_channels, hidden, kernel_size=1)
        self.act = acts[activation]()
        self.conv2 = nn.Conv2d(hidden, in_channels, kernel_size=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (N, {self.in_channels}, H, W), got shape {tuple(x.shape)}")
        return x + self.conv2(self.act(self.conv1(x)))


def colour_matched_loss(
    sr: torch.Tensor,
    hr: torch.Tensor,
    lr: torch.Tensor,
    head: nn.Module,
    ratio: int,
    *,
    bands=None,
    mtf=None,
    sigma=None,
    mask: torch.Tensor | None = None,
    lr_mask: torch.Tensor | None = None,
    consistency: str = "degrade",
    consistency_weight: float = 0.9,
    sr_weight: float = 0.1,
    padding: str = "reflect",
    reduction: str = "mean",
) -> torch.Tensor:
    """``consistency_weight * consistency(sr, lr) + sr_weight * L1(head(sr), hr)``.

    ``consistency`` = "degrade" (:func:`consistency_loss`, with ``ratio``/``bands``/``mtf``/``sigma``) or
    "pool" (:func:`pool_consistency_loss`). ``mask`` marks valid HR pixels (for the head term), ``lr_mask``
    valid LR pixels (for the consistency term). The head absorbs the spectral / colour mismatch between the
    simulated and the real HR, so the SR network is pushed to be consistent with its LR input (see the module
    docstring). Both terms are per band: ``"none"`` -> ``(N, C)``; ``"mean"`` combines the two scalar means.
    Gradients flow to ``sr`` and to the head's parameters.
    """
    cw = check_positive("consistency_weight", consistency_weight, allow_zero=True)
    sw = check_positive("sr_weight", sr_weight, allow_zero=True)
    if consistency == "degrade":
        cons = consistency_loss(
            sr,
            lr,
            ratio,
            bands=bands,
            mtf=mtf,
            sigma=sigma,
            mask=lr_mask,
            padding=padding,
            reduction=reduction,
        )
    elif consistency == "pool":
        cons = pool_consistency_loss(sr, lr, mask=lr_mask, reduction=reduction)
    else:
        raise ValueError(f"consistency must be 'degrade' or 'pool', got {consistency!r}")
    matched = l1_loss(head(sr), hr, mask=mask, reduction=reduction)
    return cw * cons + sw * matched


class ConsistencyLoss(nn.Module):
    """``nn.Module`` wrapper of :func:`consistency_loss`."""

    def __init__(
        self,
        ratio: int,
        *,
        bands=None,
        mtf=None,
        sigma=None,
        padding: str = "reflect",
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.ratio = check_int("ratio", ratio, 1)
        self.bands, self.mtf, self.sigma = bands, mtf, sigma
        self.padding = padding
        self.reduction = check_reduction(reduction)

    def forward(self, sr: torch.Tensor, lr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return consistency_loss(
            sr,
            lr,
            self.ratio,
            bands=self.bands,
            mtf=self.mtf,
            sigma=self.sigma,
            mask=mask,
            padding=self.padding,
            reduction=self.reduction,
        )


class PoolConsistencyLoss(nn.Module):
    """``nn.Module`` wrapper of :func:`pool_consistency_loss`."""

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, sr: torch.Tensor, lr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return pool_consistency_loss(sr, lr, mask=mask, reduction=self.reduction)


class ColourMatchedLoss(nn.Module):
    """:func:`colour_matched_loss` with its own :class:`ColourMatchingHead` (a trainable submodule: give
    this module's parameters to the optimiser together with the SR network's)."""

    def __init__(
        self,
        in_channels: int,
        ratio: int,
        *,
        hidden: int = 32,
        activation: str = "gelu",
        bands=None,
        mtf=None,
        sigma=None,
        consistency: str = "degrade",
        consistency_weight: float = 0.9,
        sr_weight: float = 0.1,
        padding: str = "reflect",
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.head = ColourMatchingHead(in_channels, hidden, activation=activation)
        self.ratio = check_int("ratio", ratio, 1)
        self.bands, self.mtf, self.sigma = bands, mtf, sigma
        if consistency not in ("degrade", "pool"):
            raise ValueError(f"consistency must be 'degrade' or 'pool', got {consistency!r}")
        self.consistency = consistency
        self.consistency_weight = check_positive("consistency_weight", consistency_weight, allow_zero=True)
        self.sr_weight = check_positive("sr_weight", sr_weight, allow_zero=True)
        self.padding = padding
        self.reduction = check_reduction(reduction)

    def forward(
        self,
        sr: torch.Tensor,
        hr: torch.Tensor,
        lr: torch.Tensor,
        mask: torch.Tensor | None = None,
        lr_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return colour_matched_loss(
            sr,
            hr,
            lr,
            self.head,
            self.ratio,
            bands=self.bands,
            mtf=self.mtf,
            sigma=self.sigma,
            mask=mask,
            lr_mask=lr_mask,
            consistency=self.consistency,
            consistency_weight=self.consistency_weight,
            sr_weight=self.sr_weight,
            padding=self.padding,
            reduction=self.reduction,
        )
