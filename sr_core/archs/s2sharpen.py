"""S2Sharpen: the coarse bands sharpened onto the grid of the fine bands (20 m -> 10 m, scale 1).

The input is the model input of every 10-band model: the ``fine_channels`` native bands first, then the coarse
bands nearest-replicated ``2 x 2`` onto the fine grid (:func:`sr_core.degradation.model_input_10band`). The output
is on the same grid: the fine bands copied unchanged, each coarse band the bicubic interpolation of its native
values plus a learned residual (DSen2's task: Lanczos et al., ISPRS 2018, with an S2Fast-style body).

The bicubic base needs no knowledge of where the ``2 x 2`` blocks start: bicubic x2 upsampling (a = -0.75,
half-pixel centres) of a signal equals one fixed symmetric 7-tap filter applied to its nearest x2 replication
(:func:`replicated_bicubic_taps`), whatever the phase of the tile. The residual is a 3x3 head, ``num_blocks``
residual blocks (conv3x3-ReLU-conv3x3 plus identity), a long skip and a 3x3 tail that starts at zero, so an
untrained network equals the bicubic base. With ``flat_gate = eps`` the residual is multiplied by
:func:`~sr_core.archs._common.contrast_gate` of the input (local range over 3 x 3 pixels, averaged over the bands):
a flat field comes out exactly flat whatever the weights.

FLOPs per pixel: ``18 * (C*F + 2*B*F*F + F*C_c) + 2 * 14 * C_c`` (multiply-adds x 2; ``C_c`` coarse bands).

Receptive field (pixels): residual radius ``1 (head) + 2 * num_blocks + 1 (tail)`` (>= 4), base radius 3:
``receptive_field = 2 * (2 * num_blocks + 2) + 1``.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from sr_core.archs._common import (
    _cubic,
    check_fine_grid,
    check_flat_gate,
    check_lr,
    check_positive_int,
    contrast_gate,
)
from sr_core.archs.registry import register_arch

__all__ = ["S2Sharpen", "replicated_bicubic_taps"]


@functools.cache
def replicated_bicubic_taps() -> tuple[float, ...]:
    """The 7 taps ``(f3, f2, f1, f0, f1, f2, f3)`` that turn a nearest x2 replication into bicubic x2 upsampling.

    Output pixel ``2k`` lies at coarse coordinate ``k - 1/4``; bicubic weighs the coarse samples ``k-2 .. k+1`` by
    ``w(1.75), w(0.75), w(0.25), w(1.25)``. On the replication ``x[2j] = x[2j+1] = a_j`` the filter gives them
    ``f3, f2 + f1, f0 + f1, f2 + f3``, so ``f3 = w(1.75)``, ``f2 = w(1.25) - f3``, ``f1 = w(0.75) - f2``,
    ``f0 = w(0.25) - f1``; output pixel ``2k + 1`` is the mirror image, so the same filter serves both phases."""
    f3 = _cubic(1.75)
    f2 = _cubic(1.25) - f3
    f1 = _cubic(0.75) - f2
    f0 = _cubic(0.25) - f1
    return (f3, f2, f1, f0, f1, f2, f3)


class _Block(nn.Module):
    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.conv2 = nn.Conv2d(num_features, num_features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


@register_arch("s2sharpen")
class S2Sharpen(nn.Module):
    """Coarse bands sharpened onto the fine grid (scale 1): bicubic base of their replicated values + residual."""

    def __init__(
        self,
        in_channels: int = 10,
        out_channels: int | None = None,
        *,
        scale: int = 1,
        fine_channels: int = 4,
        factor: int = 2,
        num_features: int = 32,
        num_blocks: int = 6,
        flat_gate: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = self.out_channels = check_fine_grid(in_channels, out_channels, scale, fine_channels)
        self.fine_channels = fine_channels
        if isinstance(factor, bool) or factor != 2:
            raise ValueError(f"factor (coarse / fine pixel size) must be 2, got {factor!r}")
        self.factor = 2
        self.scale = 1
        self.num_features = check_positive_int("num_features", num_features)
        self.num_blocks = check_positive_int("num_blocks", num_blocks)
        self.flat_gate = check_flat_gate(flat_gate)
        coarse = in_channels - fine_channels
        self.head = nn.Conv2d(in_channels, num_features, 3, padding=1)
        self.body = nn.Sequential(*[_Block(num_features) for _ in range(num_blocks)])
        self.tail = nn.Conv2d(num_features, coarse, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)
        taps = torch.tensor(replicated_bicubic_taps(), dtype=torch.float32)
        self.register_buffer("base_kernel", torch.outer(taps, taps).expand(coarse, 1, 7, 7).clone(), persistent=False)
        self.receptive_field = 2 * (2 * num_blocks + 2) + 1

    def flops_per_lr_pixel(self) -> int:
        """Floating-point operations (2 per multiply-add) per pixel, convolutions only."""
        c, f, b = self.in_channels, self.num_features, self.num_blocks
        cc = c - self.fine_channels
        return 18 * (c * f + 2 * b * f * f + f * cc) + 2 * 14 * cc

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        check_lr(lr, self.in_channels)
        fine, coarse = lr[:, : self.fine_channels], lr[:, self.fine_channels :]
        base = F.conv2d(F.pad(coarse, (3, 3, 3, 3), mode="replicate"), self.base_kernel, groups=coarse.shape[1])
        feat = self.head(lr)
        res = self.tail(self.body(feat) + feat)
        if self.flat_gate is not None:
            res = res * contrast_gate(lr, self.flat_gate)
        return torch.cat([fine, base + res], 1)
