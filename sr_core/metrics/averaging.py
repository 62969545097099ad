"""Averages of per-band results over bands or images (NaN-aware)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sr_core.metrics._common import _F64, ArrayLike, _as_tensor


def _values(values: ArrayLike) -> torch.Tensor:
    v = _as_tensor(values, "values").to(_F64)
    if v.ndim != 2:
        raise ValueError(f"values must be per-band results of shape (N, C), got {tuple(v.shape)}")
    return v


def band_mean(values: ArrayLike, *, weights: Sequence[float] | ArrayLike | None = None) -> torch.Tensor:
    """Average of per-band results ``(N, C)`` over bands -> ``(N,)``, skipping NaN bands (NaN if all are NaN).

    ``weights`` (C,) non-negative: weighted mean. Note the mean of PSNRs (dB) is not the PSNR of the mean MSE.
    """
    v = _values(values)
    if weights is None:
        return torch.nanmean(v, dim=1)
    w = weights if isinstance(weights, torch.Tensor) else torch.from_numpy(np.asarray(weights, np.float64))
    w = w.to(dtype=_F64, device=v.device).reshape(-1)
    if w.numel() != v.shape[1] or not bool(torch.all(torch.isfinite(w) & (w >= 0))):
        raise ValueError(f"weights must be {v.shape[1]} non-negative finite numbers, got {w.tolist()}")
    ok = ~torch.isnan(v)
    ww = torch.where(ok, w.expand_as(v), torch.zeros_like(v))
    return torch.where(ok, v, torch.zeros_like(v)).mul(ww).sum(dim=1) / ww.sum(dim=1)


def image_mean(values: ArrayLike) -> torch.Tensor:
    """Average of per-band results ``(N, C)`` over images -> ``(C,)``, skipping NaN entries."""
    return torch.nanmean(_values(values), dim=0)
