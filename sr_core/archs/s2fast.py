"""S2Fast: the project's CPU-first single-image network (EDSR-style residual body, sub-pixel tail).

Why another network: on one CPU core the cost of EDSR/CARN-style models at x2 is dominated by what runs at
the HIGH resolution (the upsampler conv with ``num_features * scale**2`` outputs and the HR exit conv). S2Fast
keeps every convolution at the LR resolution, as ESPCN (Shi et al., CVPR 2016) does: a 3x3 head
(``in_channels -> num_features``), ``num_blocks`` residual blocks (conv3x3-ReLU-conv3x3, scaled by
``res_scale``, plus identity; no batch norm, as EDSR), a long skip from the head, and a 3x3 tail producing
``out_channels * scale**2`` channels that a pixel shuffle turns into the residual over the bicubic
interpolation of the input (``sr = bicubic(lr[:, :out_channels]) + shuffle(tail(...))``). The tail starts
at zero, so an untrained network equals bicubic.

FLOPs per LR pixel: ``18 * (C*F + 2*B*F*F + F*C_out*s*s)`` (multiply-adds x 2), e.g. F=32, B=6, C=C_out=10,
s=2: 0.26 MFLOP, about 65 kFLOP per output pixel.

Receptive field (LR pixels): radius ``r = 1 (head) + 2 * num_blocks + 1 (tail)``, every output pixel of the
``s x s`` block of an LR pixel depends on the tail output at that pixel only; the bicubic base has radius 2.
``receptive_field = 2 * r + 1`` (r >= 4 > 2 since num_blocks >= 1).

Optional flat-field gate (``flat_gate = eps``): the residual of each LR pixel is multiplied by
:func:`~sr_core.archs._common.contrast_gate` of the input (local range over 3 x 3 LR pixels, averaged over the bands,
``s / (s + eps)``): a flat field comes out exactly as bicubic leaves it, flat, whatever the weights. Its reach (1)
is inside the residual's radius.

Optional consistency projection (``project_mtf``, one MTF at the input Nyquist frequency for each of the first
``len(project_mtf)`` output bands): the output of those bands is corrected towards ``degrade(sr) == lr`` by
:class:`~sr_core.projection.layer.ConsistencyProjection` (regularisation ``project_lambda``, ``project_taps`` LR taps
per side). It widens the radius by the projection's own reach (:attr:`ConsistencyProjection.radius`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sr_core.archs.registry import register_arch
from sr_core.projection.layer import ConsistencyProjection
from sr_core.archs._common import (
    bicubic_upsample,
    check_channels,
    check_flat_gate,
    check_lr,
    check_positive_int,
    check_scale,
    contrast_gate,
)

__all__ = ["S2Fast"]


class _Block(nn.Module):
    def __init__(self, num_features: int, res_scale: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.conv2 = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.conv2(torch.relu(self.conv1(x)))


@register_arch("s2fast")
class S2Fast(nn.Module):
    """S2Fast: residual conv body at LR resolution with a sub-pixel (ESPCN) tail, residual over bicubic."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        *,
        scale: int = 2,
        num_features: int = 32,
        num_blocks: int = 6,
        res_scale: float = 1.0,
        project_mtf: Sequence[float] | None = None,
        project_lambda: float = 0.1,
        project_taps: int = 4,
        flat_gate: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = check_channels(in_channels, out_channels)
        self.scale = check_scale(scale)
        self.num_features = check_positive_int("num_features", num_features)
        self.num_blocks = check_positive_int("num_blocks", num_blocks)
        if not isinstance(res_scale, (int, float)) or isinstance(res_scale, bool) or not 0 < res_scale <= 1:
            raise ValueError(f"res_scale must be a number in (0, 1], got {res_scale!r}")
        self.res_scale = float(res_scale)
        self.flat_gate = check_flat_gate(flat_gate)
        self.head = nn.Conv2d(self.in_channels, num_features, 3, padding=1)
        self.body = nn.Sequential(*[_Block(num_features, self.res_scale) for _ in range(num_blocks)])
        self.tail = nn.Conv2d(num_features, self.out_channels * scale * scale, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)
        radius = 1 + 2 * num_blocks + 1
        self.projection: ConsistencyProjection | None = None
        if project_mtf is not None:
            if isinstance(project_mtf, (str, bytes)) or not 1 <= len(project_mtf) <= self.out_channels:
                raise ValueError(
                    f"project_mtf must list one MTF per projected band (1 to out_channels={self.out_channels}), "
                    f"got {project_mtf!r}"
                )
            self.projection = ConsistencyProjection(
                list(project_mtf), ratio=self.scale, lam=project_lambda, taps=project_taps
            )
            radius += self.projection.radius
        self.receptive_field = 2 * radius + 1

    def flops_per_lr_pixel(self) -> int:
        """Floating-point operations (2 per multiply-add) per input pixel, convolutions only."""
        c, f, co, s, b = self.in_channels, self.num_features, self.out_channels, self.scale, self.num_blocks
        return 18 * (c * f + 2 * b * f * f + f * co * s * s) + 2 * 25 * co * s * s

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        check_lr(lr, self.in_channels)
        feat = self.head(lr)
        res = self.tail(self.body(feat) + feat)
        if self.flat_gate is not None:
            res = res * contrast_gate(lr, self.flat_gate)
        sr = bicubic_upsample(lr, self.scale, self.out_channels) + F.pixel_shuffle(res, self.scale)
        if self.projection is not None:
            sr = self.projection(sr, lr[:, : self.out_channels])
        return sr
