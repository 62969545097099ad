"""RRDBNet: the ESRGAN generator, Wang et al., "ESRGAN: Enhanced Super-Resolution Generative Adversarial
Networks", ECCV Workshops 2018.

Layout: 3x3 first conv, ``num_blocks`` residual-in-residual dense blocks (RRDB), a 3x3 trunk conv with a long
skip, a pixel-shuffle upsampler (3x3 conv, shuffle, LeakyReLU per stage; scale 4 = two x2 stages; the paper
uses nearest-neighbour resizing + conv instead), a 3x3 HR conv + LeakyReLU and a 3x3 last conv.  An RRDB is
three residual dense blocks (RDB) with an outer residual scaled by 0.2; an RDB is five 3x3 convs with dense
connections (conv ``k`` sees the block input and the ``num_grow_ch`` outputs of convs ``1..k-1``; convs 1-4
followed by LeakyReLU(0.2)), its output scaled by 0.2 and added to the block input.  Dense-block convs are
initialised with Kaiming-normal weights scaled by 0.1 and zero biases.

Residual over bicubic: ``sr = bicubic(lr[:, :out_channels]) + conv_last(...)``; ``conv_last`` is initialised
to zero, so an untrained network returns the bicubic interpolation exactly.

Receptive field (LR pixels): the longest chain of an RDB is its 5 convs, so radius
``r = 1 (first conv) + 15 * num_blocks + 1 (trunk conv) + 2 (upsampler, HR conv and last conv, every scale)``,
``receptive_field = 2 r + 1``.  Inputs must be finite (no NaN nodata).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from sr_core.archs.registry import register_arch
from sr_core.archs._common import bicubic_upsample, check_channels, check_lr, check_positive_int, check_scale
from sr_core.archs._upsample import PixelShuffleUpsampler, conv, receptive_field_from_ops, upsampler_ops

__all__ = ["RRDBNet", "RRDB", "ResidualDenseBlock"]

_SLOPE = 0.2
_BETA = 0.2  # residual scaling


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; ``x + 0.2 * conv5([x, x1, x2, x3, x4])``."""

    def __init__(self, num_features: int, num_grow_ch: int) -> None:
        super().__init__()
        f, g = num_features, num_grow_ch
        self.convs = nn.ModuleList(nn.Conv2d(f + k * g, g, 3, padding=1) for k in range(4))
        self.conv5 = nn.Conv2d(f + 4 * g, f, 3, padding=1)
        self.act = nn.LeakyReLU(_SLOPE, inplace=True)
        for c in [*self.convs, self.conv5]:
            nn.init.kaiming_normal_(c.weight, a=0.0, mode="fan_in")
            c.weight.data.mul_(0.1)
            nn.init.zeros_(c.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for c in self.convs:
            feats.append(self.act(c(torch.cat(feats, dim=1))))
        return x + _BETA * self.conv5(torch.cat(feats, dim=1))


class RRDB(nn.Module):
    """Residual-in-residual dense block: ``x + 0.2 * rdb3(rdb2(rdb1(x)))``."""

    def __init__(self, num_features: int, num_grow_ch: int) -> None:
        super().__init__()
        self.rdbs = nn.Sequential(*[ResidualDenseBlock(num_features, num_grow_ch) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + _BETA * self.rdbs(x)


@register_arch("rrdbnet")
class RRDBNet(nn.Module):
    """ESRGAN generator, ``lr (N, in_channels, H, W) -> sr (N, out_channels, sH, sW)``.

    Args:
        in_channels: number of input bands.
        out_channels: number of output bands (default ``in_channels``; the first ``out_channels`` input
            bands are interpolated as the residual base).
        scale: 2, 3 or 4.
        num_features: trunk feature channels (paper 64).
        num_blocks: number of RRDBs (paper 23).
        num_grow_ch: growth channels of the dense blocks (paper 32).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        *,
        scale: int = 2,
        num_features: int = 64,
        num_blocks: int = 23,
        num_grow_ch: int = 32,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = check_channels(in_channels, out_channels)
        self.scale = check_scale(scale)
        self.num_features = check_positive_int("num_features", num_features)
        self.num_blocks = check_positive_int("num_blocks", num_blocks)
        self.num_grow_ch = check_positive_int("num_grow_ch", num_grow_ch)

        f = self.num_features
        self.conv_first = nn.Conv2d(self.in_channels, f, 3, padding=1)
        self.body = nn.Sequential(*[RRDB(f, self.num_grow_ch) for _ in range(self.num_blocks)])
        self.conv_body = nn.Conv2d(f, f, 3, padding=1)
        self.upsampler = PixelShuffleUpsampler(f, self.scale, act=lambda: nn.LeakyReLU(_SLOPE, inplace=True))
        self.conv_hr = nn.Conv2d(f, f, 3, padding=1)
        self.act = nn.LeakyReLU(_SLOPE, inplace=True)
        self.conv_last = nn.Conv2d(f, self.out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_last.weight)
        nn.init.zeros_(self.conv_last.bias)

        ops = (
            [conv(3)]
            + [conv(3)] * (15 * self.num_blocks)
            + [conv(3)]
            + upsampler_ops(self.scale)
            + [conv(3), conv(3)]
        )
        self.receptive_field: int = receptive_field_from_ops(self.scale, ops)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        check_lr(lr, self.in_channels)
        feat = self.conv_first(lr)
        feat = feat + self.conv_body(self.body(feat))
        res = self.conv_last(self.act(self.conv_hr(self.upsampler(feat))))
        return bicubic_upsample(lr, self.scale, self.out_channels) + res
