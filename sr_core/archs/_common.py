"""Pieces shared by the architectures: argument checks and the interpolation base."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

SUPPORTED_SCALES = (2, 3, 4)


def check_scale(scale: int) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in SUPPORTED_SCALES:
        raise ValueError(f"scale must be one of {SUPPORTED_SCALES}, got {scale!r}")
    return scale


def check_positive_int(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_channels(in_channels: int, out_channels: int | None) -> tuple[int, int]:
    """Validate channel counts. ``out_channels`` defaults to ``in_channels`` and may not exceed it:
    the output is a residual over the interpolation of the first ``out_channels`` input bands."""
    check_positive_int("in_channels", in_channels)
    if out_channels is None:
        out_channels = in_channels
    check_positive_int("out_channels", out_channels)
    if out_channels > in_channels:
        raise ValueError(
            f"out_channels ({out_channels}) may not exceed in_channels ({in_channels}): the output is a "
            "residual over the interpolation of the first out_channels input bands"
        )
    return in_channels, out_channels


def bicubic_upsample(lr: torch.Tensor, scale: int, out_channels: int | None = None) -> torch.Tensor:
    """Bicubic (a=-0.75, half-pixel centres, edge replicate) upsampling of the first ``out_channels`` bands."""
    x = lr if out_channels is None or out_channels == lr.shape[1] else lr[:, :out_channels]
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


def check_lr(lr: torch.Tensor, in_channels: int, ndim: int = 4) -> None:
    if lr.ndim != ndim:
        layout = "(N, C, H, W)" if ndim == 4 else "(N, T, C, H, W)"
        raise ValueError(f"expected a {ndim}-D tensor {layout}, got shape {tuple(lr.shape)}")
    c = lr.shape[-3]
    if c != in_channels:
        raise ValueError(f"expected {in_channels} input bands (dim -3), got {c} (shape {tuple(lr.shape)})")


class BicubicUpsample(nn.Module):
    """``nn.Module`` wrapper of :func:`bicubic_upsample`."""

    def __init__(self, scale: int, out_channels: int | None = None) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        self.out_channels = out_channels

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return bicubic_upsample(lr, self.scale, self.out_channels)
