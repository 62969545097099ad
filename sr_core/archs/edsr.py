"""EDSR: Lim et al., "Enhanced Deep Residual Networks for Single Image Super-Resolution", CVPRW 2017.

Head 3x3 conv, ``num_blocks`` residual blocks without batch norm (conv-ReLU-conv, scaled by ``res_scale``,
plus identity), a 3x3 body conv with a long skip from the head, a pixel-shuffle upsampler (scale 4 = two x2
stages) and a 3x3 tail conv.  No mean shift: inputs are expected already normalised.

Residual over bicubic: ``sr = bicubic(lr[:, :out_channels]) + tail(...)``; the tail conv is initialised to
zero, so an untrained network returns the bicubic interpolation exactly.

Receptive field (LR pixels): radius ``r = 1 (head) + 2 * num_blocks + 1 (body conv) + 2 (upsampler + tail)``
for every scale, ``receptive_field = 2 r + 1``.

Configurations: the paper's baseline is 16 blocks x 64 features with ``res_scale = 1`` (the defaults); EDSR
"full" is 32 x 256 with ``res_scale = 0.1``; :meth:`EDSR.baseline8` gives the lighter 8-block, 64-feature
baseline.  Inputs must be finite (no NaN nodata): masking is the caller's job.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from sr_core.archs.registry import register_arch
from sr_core.archs._common import bicubic_upsample, check_channels, check_lr, check_positive_int, check_scale
from sr_core.archs._upsample import PixelShuffleUpsampler, conv, receptive_field_from_ops, upsampler_ops

__all__ = ["EDSR", "ResBlock"]


class ResBlock(nn.Module):
    """``x + res_scale * conv(relu(conv(x)))`` (3x3 convs, no batch norm)."""

    def __init__(self, num_features: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.conv2 = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.res_scale = float(res_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.conv2(self.act(self.conv1(x)))


def _check_res_scale(res_scale: float) -> float:
    if isinstance(res_scale, bool) or not isinstance(res_scale, (int, float)) or not (
        math.isfinite(res_scale) and res_scale > 0
    ):
        raise ValueError(f"res_scale must be a finite number > 0, got {res_scale!r}")
    return float(res_scale)


@register_arch("edsr")
class EDSR(nn.Module):
    """EDSR single-image SR network, ``lr (N, in_channels, H, W) -> sr (N, out_channels, sH, sW)``.

    Args:
        in_channels: number of input bands.
        out_channels: number of output bands (default ``in_channels``); the first ``out_channels``
            input bands are the ones interpolated as the residual base.
        scale: 2, 3 or 4.
        num_features: feature channels.
        num_blocks: residual blocks (paper baseline 16; see :meth:`baseline8`).
        res_scale: residual scaling factor in each block (paper: 1.0 baseline, 0.1 large model).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        *,
        scale: int = 2,
        num_features: int = 64,
        num_blocks: int = 16,
        res_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = check_channels(in_channels, out_channels)
        self.scale = check_scale(scale)
        self.num_features = check_positive_int("num_features", num_features)
        self.num_blocks = check_positive_int("num_blocks", num_blocks)
        self.res_scale = _check_res_scale(res_scale)

        f = self.num_features
        self.head = nn.Conv2d(self.in_channels, f, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(f, self.res_scale) for _ in range(self.num_blocks)])
        self.body_conv = nn.Conv2d(f, f, 3, padding=1)
        self.upsampler = PixelShuffleUpsampler(f, self.scale)
        self.tail = nn.Conv2d(f, self.out_channels, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

        ops = [conv(3)] * (1 + 2 * self.num_blocks + 1) + upsampler_ops(self.scale) + [conv(3)]
        self.receptive_field: int = receptive_field_from_ops(self.scale, ops)

    @classmethod
    def baseline8(cls, in_channels: int, out_channels: int | None = None, *, scale: int = 2) -> "EDSR":
        """The light baseline: 8 residual blocks, 64 features, ``res_scale = 1``."""
        return cls(in_channels, out_channels, scale=scale, num_features=64, num_blocks=8, res_scale=1.0)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        check_lr(lr, self.in_channels)
        feat = self.head(lr)
        feat = feat + self.body_conv(self.body(feat))
        return bicubic_upsample(lr, self.scale, self.out_channels) + self.tail(self.upsampler(feat))
