"""Input checks and masked means shared by the metrics (the conventions of :mod:`sr_core.metrics`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np
import torch

from sr_core.losses._utils import apply_mask, expand_mask

ArrayLike = Union[torch.Tensor, np.ndarray]
DataRange = Union[float, Sequence[float], torch.Tensor, np.ndarray]

_F64 = torch.float64


def _as_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        t = torch.from_numpy(np.array(x, copy=True))
    elif isinstance(x, torch.Tensor):
        t = x
    else:
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
    return t


def _image(x: ArrayLike, name: str) -> torch.Tensor:
    t = _as_tensor(x, name)
    if t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
    if t.ndim != 4:
        raise ValueError(f"{name} must be a 4-D (N, C, H, W) array, got shape {tuple(t.shape)}")
    return t.to(_F64)


def _image_pair(a: ArrayLike, b: ArrayLike, name_a: str, name_b: str) -> tuple[torch.Tensor, torch.Tensor]:
    ta, tb = _image(a, name_a), _image(b, name_b)
    if ta.shape != tb.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {tuple(ta.shape)} and {tuple(tb.shape)}"
        )
    return ta, tb.to(ta.device)


def _mask(
    mask: ArrayLike | None, shape: torch.Size, device: torch.device, name: str = "mask"
) -> torch.Tensor | None:


    """Boolean validity mask expanded to ``shape`` (N, C, H, W); ``None`` stays ``None``."""
    if mask is None:
        return None
    m = _as_tensor(mask, name)
    if m.dtype != torch.bool:
        raise ValueError(f"{name} must be a boolean array (True = valid), got dtype {m.dtype}")
    if m.ndim not in (2, 3, 4):
        raise ValueError(
            f"{name} must have shape (H, W), (N, H, W) or (N, C, H, W) (broadcastable), got {tuple(m.shape)}"
        )
    return expand_mask(m.to(device), shape, name)  # (N, H, W) is read as (N, 1, H, W)


def _pixel_mask(mask: ArrayLike | None, shape: torch.Size, device: torch.device) -> torch.Tensor | None:
    """Per-pixel mask (N, H, W) for spectral metrics: a pixel is valid when it is valid in every band."""
    if mask is None:
        return None
    m = _as_tensor(mask, "mask")
    if m.dtype == torch.bool and m.ndim == 4:
        if m.shape[1] == 1:
            m = m[:, 0]
        else:
            if m.shape[1] != shape[1]:
                raise ValueError(f"mask has {m.shape[1]} bands, images have {shape[1]}")
            m = m.all(dim=1)
    n, _, h, w = shape
    full = _mask(m, torch.Size((n, 1, h, w)), device)
    return None if full is None else full[:, 0]


def _data_range(data_range: DataRange, channels: int, device: torch.device) -> torch.Tensor:
    """``data_range`` as a (1, C) float64 tensor; positive and finite."""
    if isinstance(data_range, bool):
        raise ValueError(f"data_range must be a positive number or one per band, got {data_range!r}")
    if isinstance(data_range, (int, float)):
        dr = torch.full((channels,), float(data_range), dtype=_F64)
    else:
        dr = _as_tensor(data_range, "data_range") if not isinstance(data_range, (list, tuple)) else None
        if dr is None:
            dr = torch.tensor([float(v) for v in data_range], dtype=_F64)
        dr = dr.to(_F64).reshape(-1)
        if dr.numel() == 1:
            dr = dr.expand(channels)
        if dr.numel() != channels:
            raise ValueError(f"data_range has {dr.numel()} values but the images have {channels} bands")
    if not bool(torch.all(torch.isfinite(dr) & (dr > 0))):
        raise ValueError(f"data_range must be positive and finite, got {dr.tolist()}")
    return dr.to(device)[None, :]


def _masked_mean(x: torch.Tensor, m: torch.Tensor | None, dims: tuple[int, ...] = (-2, -1)) -> torch.Tensor:
    """Mean over ``dims`` of the valid entries; NaN where there is none."""
    if m is None:
        return x.mean(dim=dims)
    return apply_mask(x, m).sum(dim=dims) / m.sum(dim=dims).to(x.dtype)
