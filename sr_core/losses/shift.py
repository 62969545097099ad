"""Brightness-bias corrected, best-integer-shift search of the PROBA-V clear scores (Maertens et al. 2019).

The project's one implementation of the rule behind :func:`sr_core.losses.cl1_loss` / ``cmse_loss`` and
:func:`sr_core.metrics.cmse` / ``cpsnr`` / ``cssim``:

* **Crops.** ``sr`` is cropped by ``border`` pixels on every side. For every integer shift ``(u, v)`` with
  ``|u|, |v| <= max_shift`` (default ``border``, at most ``border``) it faces the equally sized crop
  ``hr[..., border-u : H-border-u, border-v : W-border-v]``: sr pixel ``(i, j)`` faces hr pixel ``(i - u, j - v)``.
* **Sign.** ``(u, v)`` (rows, columns) is the translation of ``sr`` relative to ``hr``: ``sr(y, x) ~ hr(y - u,
  x - v)``, the sign of :func:`sr_core.metrics.phase_correlation_shift` ``(sr, hr)``; e.g.
  ``sr = torch.roll(hr, (1, 0), (-2, -1))`` gives ``(1, 0)``.
* **Mask.** ``mask`` (bool, True = valid) flags valid **hr** pixels and moves with the hr crop.
* **Bias.** Per sample and band ``b = mean over valid pixels of (hr_crop - sr_crop)`` (0 without a valid
  pixel); the score is taken of ``sr_crop + b`` against ``hr_crop``.
* **Selection.** Lower ``key(score)`` wins (``key`` defaults to the score itself), per sample and band, or with
  ``joint`` one shift per sample from the mean key over its bands. Keys that are undefined (NaN, or no valid
  hr pixel at that shift) never win and are left out of the band mean; if nothing is defined the first shift,
  ``(0, 0)``, is kept. **Ties** go to the smallest shift: shifts are tried in the order of
  :func:`shift_list` and the first best is kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from sr_core.checks import check_int
from sr_core.losses._utils import apply_mask, check_pair, expand_mask, masked_band_mean

__all__ = ["ShiftSearch", "check_border_shift", "shift_list", "shift_search"]

Score = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


class ShiftSearch(NamedTuple):
    """Result of :func:`shift_search`, per sample and band ``(N, C)``."""

    values: torch.Tensor  #: the score at the chosen shift (differentiable)
    counts: torch.Tensor  #: valid hr pixels of the chosen crop (in the dtype of the score)
    shifts: torch.Tensor  #: int64 ``(N, C, 2)``: the chosen ``(u, v)`` (rows, columns)


def check_border_shift(border: int, max_shift: int | None) -> tuple[int, int]:
    """``(border, max_shift)`` checked: integers ``>= 0``, ``max_shift`` defaults to and may not exceed ``border``."""
    check_int("border", border, 0)
    max_shift = border if max_shift is None else check_int("max_shift", max_shift, 0)
    if max_shift > border:
        raise ValueError(f"max_shift ({max_shift}) may not exceed border ({border})")
    return border, max_shift


def shift_list(max_shift: int) -> list[tuple[int, int]]:
    """All ``(u, v)`` with ``|u|, |v| <= max_shift``: ``(0, 0)`` first, then by increasing ``u**2 + v**2``,
    then ``u``, then ``v`` (the tie order of :func:`shift_search`)."""
    r = range(-max_shift, max_shift + 1)
    return sorted(((u, v) for u in r for v in r), key=lambda d: (d[0] ** 2 + d[1] ** 2, d[0], d[1]))


def shift_search(
    sr: torch.Tensor,
    hr: torch.Tensor,
    score: Score,
    *,
    mask: torch.Tensor | None = None,
    border: int = 3,
    max_shift: int | None = None,
    joint: bool = True,
    key: Callable[[torch.Tensor], torch.Tensor] | None = None,
    count_weighted: bool = False,
) -> ShiftSearch:
    """Best integer shift of ``sr`` against ``hr`` (N, C, H, W) after brightness-bias correction (module rules).

    ``score(sr_corrected, hr_crop, mask_crop)`` returns one value per sample and band ``(N, C)``; ``mask_crop``
    is the expanded bool crop or ``None``. ``key`` maps the stacked scores ``(N, C, S)`` (detached) to the
    selection keys, lower is better (e.g. ``lambda v: -v`` for a similarity). ``joint``: one shift per sample,
    minimising the mean key over its bands (weighted by their valid-pixel counts if ``count_weighted``).
    Pure and differentiable: the gradient flows through the chosen score and its bias; dtype of the inputs.
    """
    check_pair("sr", sr, "hr", hr)
    b, max_shift = check_border_shift(border, max_shift)
    h, w = sr.shape[-2:]
    if h - 2 * b < 1 or w - 2 * b < 1:
        raise ValueError(f"border={b} leaves nothing of an image of size {h}x{w}")
    m = expand_mask(mask, sr.shape)
    sr_crop = sr[..., b : h - b, b : w - b]
    shifts = shift_list(max_shift)
    values, counts = [], []
    for u, v in shifts:
        hr_crop = hr[..., b - u : h - b - u, b - v : w - b - v]
        m_crop = None if m is None else m[..., b - u : h - b - u, b - v : w - b - v]
        bias, count = masked_band_mean(apply_mask(hr_crop, m_crop) - apply_mask(sr_crop, m_crop), m_crop)
        values.append(score(sr_crop + bias[..., None, None], hr_crop, m_crop))
        counts.append(count.to(values[-1].dtype))
    vals = torch.stack(values, dim=-1)  # (N, C, S)
    cnts = torch.stack(counts, dim=-1)
    k = (vals if key is None else key(vals)).detach()
    defined = (cnts > 0) & ~torch.isnan(k)
    zero = torch.zeros((), dtype=k.dtype, device=k.device)
    if joint:
        weight = torch.where(defined, cnts if count_weighted else torch.ones_like(k), zero)
        mean = torch.where(defined, k * weight, zero).sum(dim=1) / weight.sum(dim=1)  # NaN: nothing defined
        k = mean[:, None, :].expand_as(k)
    else:
        k = torch.where(defined, k, torch.full_like(k, math.nan))
    k = torch.where(torch.isnan(k), torch.full_like(k, math.inf), k)
    idx = k.argmin(dim=-1, keepdim=True)  # first minimum: the smallest shift
    table = torch.tensor(shifts, dtype=torch.int64, device=sr.device)
    return ShiftSearch(vals.gather(-1, idx)[..., 0], cnts.gather(-1, idx)[..., 0], table[idx[..., 0]])
