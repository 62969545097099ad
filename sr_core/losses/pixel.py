"""Masked pixel losses: L1 / MSE and the PROBA-V (Kelvin competition) clear-pixel corrected cL1 / cMSE.

Layout ``(N, C, H, W)``; ``mask`` bool, True = valid, broadcastable to the image shape. Results per sample
and band ``(N, C)`` with ``reduction="none"``; ``"mean"`` is the mean over all valid elements. A band or
batch with no valid pixel gives 0 (documented all-False-mask behaviour, see :mod:`sr_core.losses._utils`).
"""

from __future__ import annotations

import torch
from torch import nn

from ._utils import (
    apply_mask,
    check_int,
    check_pair,
    check_reduction,
    expand_mask,
    masked_band_mean,
    reduce_weighted,
)

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


def _check_border_shift(border: int, max_shift: int | None, h: int, w: int) -> tuple[int, int]:
    check_int("border", border, 0)
    if max_shift is None:
        max_shift = border
    check_int("max_shift", max_shift, 0)
    if max_shift > border:
        raise ValueError(f"max_shift ({max_shift}) may not exceed border ({border})")
    if h - 2 * border < 1 or w - 2 * border < 1:
        raise ValueError(f"border={border} leaves nothing of an image of size {h}x{w}")
    return border, max_shift


def _shift_list(max_shift: int) -> list[tuple[int, int]]:
    # (0, 0) first, then by increasing distance: ties go to the smallest shift (as in sr_core.metrics).
    r = range(-max_shift, max_shift + 1)
    return sorted(((u, v) for u in r for v in r), key=lambda d: (d[0] ** 2 + d[1] ** 2, d[0], d[1]))


def _corrected_loss(sr, hr, mask, border, max_shift, reduction, return_shift, per_band, power: int):
    check_pair("sr", sr, "hr", hr)
    check_reduction(reduction)
    n, c, h, w = sr.shape
    b, max_shift = _check_border_shift(border, max_shift, h, w)
    m = expand_mask(mask, sr.shape)
    sr_crop = sr[..., b : h - b, b : w - b]
    shifts = _shift_list(max_shift)
    per_shift = []
    per_count = []
    for u, v in shifts:
        # sr pixel (i, j) faces hr pixel (i - u, j - v): sr ~ hr translated by (+u, +v); the mask moves with hr.
        mc = None if m is None else m[..., b - u : h - b - u, b - v : w - b - v]
        diff = apply_mask(hr[..., b - u : h - b - u, b - v : w - b - v], mc) - apply_mask(sr_crop, mc)
        bias, _ = masked_band_mean(diff, mc)  # b = mean over valid of (hr - sr)
        corr = apply_mask(diff - bias[..., None, None], mc)  # hr - (sr + b)
        err = corr.abs() if power == 1 else corr * corr
        values, counts = masked_band_mean(err, mc)
        per_shift.append(values)
        per_count.append(counts)
    stack = torch.stack(per_shift, dim=-1)  # (N, C, S)
    cstack = torch.stack(per_count, dim=-1)  # (N, C, S): valid pixels at each shift
    if per_band:
        idx = stack.detach().argmin(dim=-1)  # (N, C); first minimum = smallest shift
    else:
        # One shift per sample, chosen jointly over the bands: the valid-pixel weighted band mean is minimised.
        score = (stack * cstack).sum(dim=1) / cstack.sum(dim=1).clamp_min(1.0)  # (N, S)
        idx = score.detach().argmin(dim=-1)[:, None].expand(n, c)  # (N, C)
    best = stack.gather(-1, idx[..., None]).squeeze(-1)
    counts = cstack.gather(-1, idx[..., None]).squeeze(-1)
    out = reduce_weighted(best, counts, reduction)
    if not return_shift:
        return out
    table = torch.tensor(shifts, dtype=torch.long, device=sr.device)
    sh = table[idx]  # (N, C, 2)
    return out, (sh if per_band else sh[:, 0])


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
    """Brightness-bias corrected, shift-minimised L1 (PROBA-V "cL1").

    ``sr`` is cropped by ``border`` on every side; for each integer shift ``(u, v)`` in ``[-max_shift,
    max_shift]^2`` (``max_shift`` defaults to ``border`` and may not exceed it) it is compared with the equally
    sized crop ``hr[..., border-u : H-border-u, border-v : W-border-v]`` (sr pixel ``(i, j)`` faces hr pixel
    ``(i - u, j - v)``) after adding, per sample and band, the bias ``b = mean over valid pixels of (hr - sr)``;
    the loss is the minimum over the shifts. ``mask`` marks the valid pixels of the ``hr`` grid and moves with
    the ``hr`` crop. Same crops, shifts, sign and tie rule (smallest shift first) as :func:`sr_core.metrics.cmse`.

    The shift is chosen per sample, jointly over the bands (minimum of the valid-pixel weighted band mean of the
    loss), or per sample and band with ``per_band=True`` (then ``cmse_loss`` equals ``metrics.cmse(joint=False)``).
    Shift sign: ``(u, v)`` is the translation of ``sr`` relative to ``hr``: ``sr(y, x) ~ hr(y - u, x - v)``; e.g.
    ``sr = torch.roll(hr, (1, 0), (-2, -1))`` gives ``(1, 0)``. Differentiable: the minimum selects one shift
    and the gradient flows through it (and through the bias).

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
        self.border = check_int("border", border, 0)
        self.max_shift = border if max_shift is None else check_int("max_shift", max_shift, 0)
        if self.max_shift > self.border:
            raise ValueError(f"max_shift ({self.max_shift}) may not exceed border ({self.border})")
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
