"""SRResNet: Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial
Network", CVPR 2017 (the generator of SRGAN), **without batch normalisation**.

Design choice: the paper's BatchNorm layers are left out (as in EDSR and ESRGAN's MSRResNet).  BN statistics
differ between training batches and large Sentinel-2 scenes with very different band statistics, and
without BN the network is batch-independent in train and eval mode alike and exports to ONNX unchanged.

Layout: 9x9 head conv + PReLU, ``num_blocks`` residual blocks (3x3 conv, PReLU, 3x3 conv, plus identity),
a 3x3 body conv with a long skip from the head, a pixel-shuffle upsampler with PReLU per stage (scale 4 =
two x2 stages) and a 9x9 tail conv.  PReLU slopes are per channel (initial 0.25).

Residual over bicubic: ``sr = bicubic(lr[:, :out_channels]) + tail(...)``; the tail conv is initialised to
zero, so an untrained network returns the bicubic interpolation exactly.

Receptive field (LR pixels): radius ``r = 4 (9x9 head) + 2 * num_blocks + 1 (body conv) + 3``, where 3 is
the upsampler and the HR 9x9 tail walked back through the shuffles (scale 2 and 3: LR conv 1 + tail
``ceil(4 / s) = 2``; scale 4: the same total through the x2 stages); ``receptive_field = 2 r + 1``.
Inputs must be finite (no NaN nodata).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from sr_core.archs.registry import register_arch
from sr_core.archs._common import bicubic_upsample, check_channels, check_lr, check_positive_int, check_scale
from sr_core.archs._upsample import PixelShuffleUpsampler, conv, receptive_field_from_ops, upsampler_ops

__all__ = ["SRResNet", "PReLUResBlock"]


class PReLUResBlock(nn.Module):
    """``x + conv(prelu(conv(x)))`` (3x3 convs, no batch norm)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.act = nn.PReLU(num_features)
        self.conv2 = nn.Conv2d(num_features, num_features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


@register_arch("srresnet")
class SRResNet(nn.Module):
    """SRResNet (no BN) single-image SR network, ``lr (N, in_channels, H, W) -> sr (N, out_channels, sH, sW)``

    Args:
        in_channels: number of input bands.
        out_channels: number of output bands (default ``in_channels``; the first ``out_channels`` input
            bands are interpolated as the residual base).
        scale: 2, 3 or 4.
        num_features: feature channels (paper 64).
        num_blocks: residual blocks (paper 16).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        *,
        scale: int = 2,
        num_features: int = 64,
        num_blocks: int = 16,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = check_channels(in_channels, out_channels)
        self.scale = check_scale(scale)
        self.num_features = check_positive_int("num_features", num_features)
        self.num_blocks = check_positive_int("num_blocks", num_blocks)

        f = self.num_features
        self.head = nn.Sequential(nn.Conv2d(self.in_channels, f, 9, padding=4), nn.PReLU(f))
        self.body = nn.Sequential(*[PReLUResBlock(f) for _ in range(self.num_blocks)])
        self.body_conv = nn.Conv2d(f, f, 3, padding=1)
        self.upsampler = PixelShuffleUpsampler(f, self.scale, act=lambda: nn.PReLU(f))
        self.tail = nn.Conv2d(f, self.out_channels, 9, padding=4)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

        ops = [conv(9)] + [conv(3)] * (2 * self.num_blocks + 1) + upsampler_ops(self.scale) + [conv(9)]
        self.receptive_field: int = receptive_field_from_ops(self.scale, ops)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        check_lr(lr, self.in_channels)
        feat = self.head(lr)
        feat = feat + self.body_conv(self.body(feat))
        return bicubic_upsample(lr, self.scale, self.out_channels) + self.tail(self.upsampler(feat))
