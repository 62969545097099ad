"""Correctness of super-resolved pixels (opensr-test): improvement, omission, hallucination."""

from __future__ import annotations

from typing import NamedTuple

import torch

from sr_core.losses._utils import check_positive
from sr_core.metrics._common import _F64, ArrayLike, _image_pair, _mask

IMPROVEMENT, OMISSION, HALLUCINATION, EXCLUDED = 0, 1, 2, -1


class CorrectnessFractions(NamedTuple):
    """Fractions of valid pixels per class, each ``(N, C)``; they sum to 1 where a band has valid pixels."""

    hallucination: torch.Tensor
    omission: torch.Tensor
    improvement: torch.Tensor


def correctness_classes(
    sr: ArrayLike,
    lr_upsampled: ArrayLike,
    hr: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    min_reference_distance: float = 0.0,
    im_lambda: float = 0.8,
    om_lambda: float = 0.8,
    ha_lambda: float = 0.4,
) -> torch.Tensor:
    """Per-pixel, per-band class (int64 ``(N, C, H, W)``): :data:`IMPROVEMENT` (0), :data:`OMISSION` (1),
    :data:`HALLUCINATION` (2), or :data:`EXCLUDED` (-1), following the opensr-test correctness scores.

    Rule (distances are absolute differences per pixel and band; harmonise sr to hr beforehand if wanted):

    * ``d_ref = |lr_up - hr|``; pixels with ``d_ref <= min_reference_distance`` (nothing to super-resolve: the
      relative distances are undefined) or masked out are EXCLUDED;
    * relative distances ``d_im = |sr - hr| / d_ref`` (to the target) and ``d_om = |sr - lr_up| / d_ref`` (to
      the LR interpolation); with ``H = d_im + d_om - 1``:
      ``improvement = d_im + d_om (1 - exp(-im_lambda H))``,
      ``omission = d_om + d_im (1 - exp(-om_lambda H))``,
      ``hallucination = exp(-ha_lambda d_im d_om)``;
    * the class is the smallest score (ties: improvement, then omission). So sr == hr is an improvement, sr ==
      lr_up an omission, and sr far from both (``d_im d_om`` large) a hallucination. The lambdas are the
      opensr-test defaults. Non-finite values on pixels that are not masked out raise ``ValueError``.
    """
    s, lo = _image_pair(sr, lr_upsampled, "sr", "lr_upsampled")
    _, h = _image_pair(s, hr, "sr", "hr")
    check_positive("min_reference_distance", min_reference_distance, allow_zero=True)
    lam_im = check_positive("im_lambda", im_lambda)
    lam_om = check_positive("om_lambda", om_lambda)
    lam_ha = check_positive("ha_lambda", ha_lambda)
    m = _mask(mask, s.shape, s.device)
    d_ref = (lo - h).abs()
    valid = d_ref > min_reference_distance
    if m is not None:
        valid = valid & m
    finite = torch.isfinite(s) & torch.isfinite(lo) & torch.isfinite(h)
    if bool((~finite if m is None else ~finite & m).any()):
        raise ValueError("sr, lr_upsampled and hr must be finite on valid pixels: mask nodata out")
    ref = torch.where(valid, d_ref, torch.ones_like(d_ref))
    d_im = (s - h).abs() / ref
    d_om = (s - lo).abs() / ref
    big_h = d_im + d_om - 1.0
    improvement = d_im + d_om * (1.0 - torch.exp(-lam_im * big_h))
    omission = d_om + d_im * (1.0 - torch.exp(-lam_om * big_h))
    hallucination = torch.exp(-lam_ha * d_im * d_om)
    cls = torch.stack([improvement, omission, hallucination]).argmin(dim=0)
    return torch.where(valid, cls, torch.full_like(cls, EXCLUDED))


def hallucination_omission_improvement(
    sr: ArrayLike,
    lr_upsampled: ArrayLike,
    hr: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    min_reference_distance: float = 0.0,
    im_lambda: float = 0.8,
    om_lambda: float = 0.8,
    ha_lambda: float = 0.4,
) -> CorrectnessFractions:


    """Fractions of hallucination / omission / improvement pixels per band (each ``(N, C)``, summing to 1 over
    the non-excluded pixels; NaN for a band without any). Classification rule: :func:`correctness_classes`."""
    cls = correctness_classes(
        sr,
        lr_upsampled,
        hr,
        mask=mask,
        min_reference_distance=min_reference_distance,
        im_lambda=im_lambda,
        om_lambda=om_lambda,
        ha_lambda=ha_lambda,
    )
    total = (cls != EXCLUDED).sum(dim=(-2, -1)).to(_F64)
    frac = [(cls == k).sum(dim=(-2, -1)).to(_F64) / total for k in (HALLUCINATION, OMISSION, IMPROVEMENT)]
    return CorrectnessFractions(*frac)
