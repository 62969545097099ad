"""RAMS (Salvetti et al. 2020): residual attention multi-image SR with 3-D convolutions over (T, H, W).

Layout: ``lr`` ``(N, T, C, H, W)`` with ``T <= num_frames`` revisits, ``mask`` ``(N, T)`` (bool or 0/1,
True = usable; default all usable). Output ``sr`` ``(N, C_out, scale*H, scale*W)``.

Before the network, unusable revisits and missing ones (``T < num_frames``) are replaced by the masked
mean of the usable revisits (per pixel and band), so the 3-D convolutions always see ``num_frames``
frames, and the values of unusable revisits never reach the output (NaN included). Frame order matters
(3-D convolutions); the masked mean does not depend on it.

Network (our implementation of the published design): 3-D conv head; ``num_blocks`` residual feature
attention blocks (RFAB: 3-D conv, ReLU, 3-D conv, channel attention = pooling + 1x1 bottleneck + ReLU +
1x1 + sigmoid, residual add) with a long skip; temporal reduction blocks (RFAB + a 3-D conv with temporal
kernel 3, or 2 for the last step of an even ``num_frames``, and no temporal padding) until ``T = 1``; a 2-D
conv and pixel shuffle giving a residual.

Global residual (our call, per the project rule "learned residual over an interpolation of the input"):
``bicubic_upsample`` of the masked mean of the usable revisits, in place of the paper's learned residual
temporal attention branch. The last conv is zero-initialised: an untrained RAMS returns exactly that.

Channel attention pooling: the paper pools globally over (T, H, W), which makes every output pixel depend
on the whole tile (tiles of one image would disagree). Default ``attention="temporal"`` pools over T only
(per-pixel channel attention), so the receptive field is finite and exact; ``attention="global"`` is the
paper's pooling, with ``receptive_field = None`` (not for tiled inference).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from sr_core.archs.registry import register_arch
from sr_core.archs._common import bicubic_upsample, check_channels, check_lr, check_positive_int, check_scale
from sr_core.archs.highresnet import revisit_mask

__all__ = ["RAMS", "masked_mean", "ATTENTIONS"]

ATTENTIONS = ("temporal", "global")


def masked_mean(lr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel, per-band mean of the usable revisits: ``(N, T, C, H, W)`` -> ``(N, C, H, W)``.

    ``mask`` ``(N, T)`` bool or 0/1 (True = usable; None = all). Unusable values are never read. A sample
    with no usable revisit raises ``ValueError`` in eager mode (0 in an exported graph).
    """
    valid = revisit_mask(lr, mask)
    vb = valid[:, :, None, None, None]
    total = torch.where(vb, lr, torch.zeros_like(lr)).sum(dim=1)
    count = valid.sum(dim=1).clamp(min=1).to(lr.dtype).reshape(-1, 1, 1, 1)
    return total / count


class _RFAB(nn.Module):
    """Residual feature attention block on ``(N, F, T, H, W)``."""

    def __init__(self, channels: int, reduction: int, attention: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv3d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv3d(channels, channels, 3, padding=1),
        )
        hidden = max(1, channels // reduction)
        self.attention = nn.Sequential(
            nn.Conv3d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv3d(hidden, channels, 1),
            nn.Sigmoid(),
        )
        self.pool_dims = (2,) if attention == "temporal" else (2, 3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y * self.attention(y.mean(dim=self.pool_dims, keepdim=True))


@register_arch("rams")
class RAMS(nn.Module):
    """RAMS multi-image SR: ``forward(lr (N, T, C, H, W), mask (N, T) | None) -> sr``, ``T <= num_frames``.

    Args:
        in_channels: bands ``C`` of each revisit (all bands go through the 3-D convs together).
        out_channels: output bands (default ``in_channels``; residual over the first ``out_channels``).
        scale: 2, 3 or 4.
        num_features: width of the 3-D feature maps.
        num_blocks: RFABs in the main body.
        num_frames: ``T`` the network is built for; fewer revisits are completed with the masked mean.
        reduction: channel-attention bottleneck ratio (hidden width ``max(1, num_features // reduction)``).
        attention: ``"temporal"`` (pool over T, default) or ``"global"`` (pool over T, H, W as in the paper).

    ``receptive_field`` (LR px, exact) is ``2 * (2 * num_blocks + 3 * (num_frames // 2) + 3) + 1`` for
    ``attention="temporal"`` and ``None`` for ``"global"``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        scale: int = 3,
        num_features: int = 32,
        num_blocks: int = 12,
        num_frames: int = 9,
        reduction: int = 8,
        attention: str = "temporal",
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = check_channels(in_channels, out_channels)
        self.scale = check_scale(scale)
        self.num_features = check_positive_int("num_features", num_features)
        self.num_blocks = check_positive_int("num_blocks", num_blocks, minimum=0)
        self.num_frames = check_positive_int("num_frames", num_frames)
        self.reduction = check_positive_int("reduction", reduction)
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
        self.attention = attention
        c, f, s = self.in_channels, self.num_features, self.scale
        self.head = nn.Conv3d(c, f, 3, padding=1)
        self.body = nn.Sequential(
            *[_RFAB(f, self.reduction, attention) for _ in range(self.num_blocks)],
            nn.Conv3d(f, f, 3, padding=1),
        )
        stages: list[nn.Module] = []
        t = self.num_frames
        while t > 1:
            kt = min(3, t)
            stages += [_RFAB(f, self.reduction, attention), nn.Conv3d(f, f, (kt, 3, 3), padding=(0, 1, 1))]
            t -= kt - 1
        self.temporal_reduction = nn.Sequential(*stages)
        self.tail = nn.Sequential(nn.Conv2d(f, self.out_channels * s * s, 3, padding=1), nn.PixelShuffle(s))
        nn.init.zeros_(self.tail[0].weight)
        nn.init.zeros_(self.tail[0].bias)
        # Radius: head 1, 2 per RFAB, body conv 1, 3 per reduction stage (RFAB + conv), tail 1.
        # Bicubic(mean) has radius 2 <= that; the masked mean is pointwise.
        radius = 1 + 2 * self.num_blocks + 1 + 3 * (len(stages) // 2) + 1
        self.receptive_field: int | None = 2 * radius + 1 if attention == "temporal" else None

    def forward(self, lr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_lr(lr, self.in_channels, ndim=5)
        t = lr.shape[1]
        if t > self.num_frames:
            raise ValueError(f"lr has T = {t} revisits, more than num_frames = {self.num_frames}")
        valid = revisit_mask(lr, mask)
        mean = masked_mean(lr, valid)
        x = torch.where(valid[:, :, None, None, None], lr, mean.unsqueeze(1).expand_as(lr))
        if t < self.num_frames:
            x = torch.cat([x, mean.unsqueeze(1).expand(-1, self.num_frames - t, -1, -1, -1)], dim=1)
        x = self.head(x.transpose(1, 2))  # (N, F, T, H, W)
        x = x + self.body(x)
        x = self.temporal_reduction(x)  # (N, F, 1, H, W)
        return self.tail(x.squeeze(2)) + bicubic_upsample(mean, self.scale, self.out_channels)
