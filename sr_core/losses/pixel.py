"""Masked pixel losses: L1 / MSE and the PROBA-V (Kelvin competition) clear-pixel corrected cL1 / cMSE.

Layout ``(N, C, H, W)``; ``mask`` bool, True = valid, broadcastable to the image shape. Results per sample
and band ``(N, C)`` with ``reduction="none"``; ``"mean"`` is the mean over all valid elements. A band or
batch with no valid pixel gives 0 (documented all-False-mask behaviour, see :mod:`sr_core.losses._utils`).
"""

from __future__ import annotations

import torch
from torch import nn

from sr_core.losses._utils import (
    apply_mask,
    check_pair,
    check_reduction,
    expand_mask,
    masked_band_mean,
    reduce_weighted,
)
from sr_core.losses.shift import check_border_shift, shift_search

__all__ = [
    "CL1Loss",
    "CMSELoss",
    "MaskedL1Loss",
    "MaskedMSELoss",
    "cl1_loss",
    "cmse_loss",
    "l1_loss",
    "mse_loss",
]


def _pixel_loss(sr, hr, mask, reduction, power: int) -> torch.Tensor:
    check_pair("sr", sr, "hr", hr)
    check_reduction(reduction)
    m = expand_mask(mask, sr.shape)
    diff = apply_mask(sr, m) - apply_mask(hr, m)
    err = diff.abs() if power == 1 else diff * diff
    values, counts = masked_band_mean(err, m)
    return reduce_weighted(values, counts, reduction)


def l1_loss(
    sr: torch.Tensor, hr: torch.Tensor, *, mask: torch.Tensor | None = None, reduction: str = "mean"
) -> torch.Tensor:
    """Mean absolute error over valid pixels: ``(N, C)`` per band (``"none"``) or a scalar (``"mean"``)."""
    return _pixel_loss(sr, hr, mask, reduction, 1)


def mse_loss(
    sr: torch.Tensor, hr: torch.Tensor, *, mask: torch.Tensor | None = None, reduction: str = "mean"
) -> torch.Tensor:
    """Mean squared error over valid pixels: ``(N, C)`` per band (``"none"``) or a scalar (``"mean"``)."""
    return _pixel_loss(sr, hr, mask, reduction, 2)


def _corrected_loss(sr, hr, mask, border, max_shift, reduction, return_shift, per_band, power: int):
    check_pair("sr", sr, "hr", hr)
    check_reduction(reduction)

    def score(corrected: torch.Tensor, hr_crop: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
        diff = apply_mask(hr_crop, m) - apply_mask(corrected, m)  # hr - (sr + b)
        return masked_band_mean(diff.abs() if power == 1 else diff * diff, m)[0]

    # per_band=False: one shift per sample, minimising the valid-pixel weighted band mean of the loss.
    best = shift_search(
        sr,
        hr,
        score,
        mask=mask,
        border=border,
        max_shift=max_shift,
        joint=not per_band,
        count_weighted=True,
    )
    out = reduce_weighted(best.values, best.counts, reduction)
    if not return_shift:
        return out
    return out, (best.shifts if per_band else best.shifts[:, 0])


def cl1_loss(
    sr: torch.Tensor,
    hr: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    border: int = 3,
    max_shift: int | None = None,
    per_band: bool = False,
    reduction: str = "mean",
    return_shift: bool = False,
):
    """Brightness-bias corrected, shift-minimised L1 (PROBA-V "cL1"): mean ``|hr_crop - (sr_crop + b)|`` over
    the valid pixels, at the best integer shift.

    Crops, shift sign, bias, mask and tie rule are those of :mod:`sr_core.losses.shift` (shared with
    :func:`sr_core.metrics.cmse`): ``sr`` cropped by ``border``; shifts ``|u|, |v| <= max_shift`` (default
    ``border``, at most ``border``); ``(u, v)`` is the translation of ``sr`` relative to ``hr``, ``sr(y, x) ~
    hr(y - u, x - v)`` (``sr = torch.roll(hr, (1, 0), (-2, -1))`` gives ``(1, 0)``); ``b = mean over valid
    pixels of (hr_crop - sr_crop)``; ``mask`` marks valid ``hr`` pixels and moves with the hr crop; ties go to
    the smallest shift; a shift without any valid pixel is never chosen.

    The shift is chosen per sample, jointly over the bands (minimum of the valid-pixel weighted band mean of the
    loss), or per sample and band with ``per_band=True`` (then ``cmse_loss`` equals ``metrics.cmse(joint=False)``).
    Differentiable: the minimum selects one shift and the gradient flows through it (and through the bias).

    Returns the loss (``(N, C)`` or scalar) and, with ``return_shift=True``, also the shifts as ``int64``
    ``(N, 2)`` (``(N, C, 2)`` with ``per_band``), ordered ``(u, v)`` = (rows, columns).
    """
    return _corrected_loss(sr, hr, mask, border, max_shift, reduction, return_shift, per_band, 1)


def cmse_loss(
    sr: torch.Tensor,
    hr: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    border: int = 3,
    max_shift: int | None = None,
    per_band: bool = False,
    reduction: str = "mean",
    return_shift: bool = False,
):
    """Brightness-bias corrected, shift-minimised MSE (PROBA-V "cMSE"); see :func:`cl1_loss` for the rules."""
    return _corrected_loss(sr, hr, mask, border, max_shift, reduction, return_shift, per_band, 2)


class MaskedL1Loss(nn.Module):
    """``nn.Module`` wrapper of :func:`l1_loss`."""

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return l1_loss(sr, hr, mask=mask, reduction=self.reduction)


class MaskedMSELoss(MaskedL1Loss):
    """``nn.Module`` wrapper of :func:`mse_loss`."""

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return mse_loss(sr, hr, mask=mask, reduction=self.reduction)


class CL1Loss(nn.Module):
    """``nn.Module`` wrapper of :func:`cl1_loss` (returns the loss only)."""

    def __init__(
        self,
        *,
        border: int = 3,
        max_shift: int | None = None,
        per_band: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.border, self.max_shift = check_border_shift(border, max_shift)
        self.per_band = bool(per_band)
        self.reduction = check_reduction(reduction)

    def _kwargs(self, mask):
        return {
            "mask": mask,
            "border": self.border,
            "max_shift": self.max_shift,
            "per_band": self.per_band,
            "reduction": self.reduction,
        }

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return cl1_loss(sr, hr, **self._kwargs(mask))


class CMSELoss(CL1Loss):
    """``nn.Module`` wrapper of :func:`cmse_loss` (returns the loss only)."""

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return cmse_loss(sr, hr, **self._kwargs(mask))
