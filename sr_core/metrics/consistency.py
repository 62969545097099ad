"""Consistency with the low-resolution input (opensr-test): the super-resolved image degraded back onto the
input grid against the input, per band (reflectance) and across bands (spectral angle)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from sr_core.degradation import degrade
from sr_core.metrics._common import _F64, ArrayLike, _image
from sr_core.metrics.fidelity import mae, sam


def _degraded_pair(
    sr: ArrayLike,
    lr: ArrayLike,
    ratio: float,
    bands: Sequence[str] | None,
    mtf: Sequence[float] | None,
    sigma: Sequence[float] | float | None,
    degrade_fn: Callable[[torch.Tensor], torch.Tensor] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(degrade(sr), lr)`` in float64 on ``sr``'s device; ``ValueError`` when their shapes differ."""
    s, lo = _image(sr, "sr"), _image(lr, "lr")
    lo = lo.to(s.device)
    if degrade_fn is not None:
        if bands is not None or mtf is not None or sigma is not None:
            raise ValueError("give either degrade_fn or bands/mtf/sigma, not both")
        d = degrade_fn(s).to(_F64)
    else:
        d = degrade(s, ratio, bands=bands, mtf=mtf, sigma=sigma).to(_F64)
    if d.shape != lo.shape:
        raise ValueError(
            f"degraded sr has shape {tuple(d.shape)} but lr has {tuple(lo.shape)}: "
            "check ratio and the sr size"
        )
    return d, lo


def reflectance_consistency(
    sr: ArrayLike,
    lr: ArrayLike,
    *,
    ratio: int,
    bands: Sequence[str] | None = None,
    mtf: Sequence[float] | None = None,
    sigma: Sequence[float] | float | None = None,
    mask: ArrayLike | None = None,
    degrade_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Per-band mean ``|degrade(sr) - lr|`` over valid LR pixels, ``(N, C)`` (data units).

    ``degrade`` is :func:`sr_core.degradation.degrade` (MTF-matched Gaussian PSF + decimation by ``ratio``)
    with exactly one of ``bands`` / ``mtf`` / ``sigma``; or pass your own ``degrade_fn(sr) -> lr-shaped``.
    ``mask`` is on the LR grid.
    """
    d, lo = _degraded_pair(sr, lr, ratio, bands, mtf, sigma, degrade_fn)
    return mae(d, lo, mask=mask)


def spectral_consistency(
    sr: ArrayLike,
    lr: ArrayLike,
    *,
    ratio: int,
    bands: Sequence[str] | None = None,
    mtf: Sequence[float] | None = None,
    sigma: Sequence[float] | float | None = None,
    mask: ArrayLike | None = None,
    degrade_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:


    """Mean spectral angle (degrees) between ``degrade(sr)`` and ``lr``, ``(N,)`` (see
    :func:`reflectance_consistency` for the degradation arguments, :func:`sam` for the angle)."""
    d, lo = _degraded_pair(sr, lr, ratio, bands, mtf, sigma, degrade_fn)
    return sam(d, lo, mask=mask)
