"""HighRes-net (Deudon et al. 2020): multi-image super-resolution by recursive pairwise fusion.

Layout: ``lr`` ``(N, T, C, H, W)`` holds ``T`` revisits of the same place, ``mask`` ``(N, T)`` says which
revisits are usable (bool, or float 0/1; True/1 = usable; default all usable). The output ``sr`` is
``(N, C_out, scale*H, scale*W)``.

Pipeline (our own implementation of the published design):

1. reference = per-pixel median of the valid revisits (:func:`masked_median`);
2. a shared encoder embeds each pair ``(revisit, reference)``, concatenated on channels;
3. recursive pairwise fusion: at each step the states ``k`` and ``k + T/2`` are fused by one shared residual
   block, halving ``T``; ``T`` is first padded to a power of two with invalid dummy states. A fused state is
   valid if either input is; when one partner is invalid the other passes through unchanged (selection by
   the mask, so the values of an invalid revisit never reach the output, NaN included);
4. decoder: conv + pixel shuffle giving a residual added to ``bicubic_upsample(reference)``. The last conv
   is zero-initialised: an untrained network returns exactly the bicubic interpolation of the reference.

Deviation from the paper: the fusion block uses 1x1 convolutions. The encoder already sees each revisit
next to the reference (that is where local alignment is learnt), and a pointwise fusion keeps the receptive
field independent of ``T``, so the tiling margin does not depend on the number of revisits.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from sr_core.archs.registry import register_arch
from sr_core.archs._common import bicubic_upsample, check_channels, check_lr, check_positive_int, check_scale

__all__ = ["HighResNet", "masked_median", "revisit_mask"]


def _tracing() -> bool:
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


def revisit_mask(lr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Validate ``mask`` against ``lr`` ``(N, T, C, H, W)`` and return it as a bool ``(N, T)`` tensor.

    ``mask`` may be bool or floating with values 0/1 (True/1 = usable revisit); ``None`` means all usable.
    In eager mode a sample without any usable revisit raises ``ValueError`` naming the sample; the value
    checks are skipped while tracing for ONNX export (the graph cannot raise).
    """
    if lr.ndim != 5:
        raise ValueError(f"lr must be (N, T, C, H, W), got shape {tuple(lr.shape)}")
    n, t = lr.shape[:2]
    if mask is None:
        return torch.ones(n, t, dtype=torch.bool, device=lr.device)
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"mask must be a torch.Tensor or None, got {type(mask).__name__}")
    if mask.ndim != 2 or tuple(mask.shape) != (n, t):
        raise ValueError(f"mask must have shape (N, T) = {(n, t)}, got {tuple(mask.shape)}")
    if mask.dtype == torch.bool:
        valid = mask
    elif not mask.is_complex():
        if not _tracing() and not bool(((mask == 0) | (mask == 1)).all()):
            values = torch.unique(mask).tolist()
            raise ValueError(f"mask must be bool or contain only 0/1, got values {values}")
        valid = mask != 0
    else:
        raise ValueError(f"mask must be bool or real 0/1, got dtype {mask.dtype}")
    if not _tracing():
        empty = (~valid.any(dim=1)).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"mask: no usable revisit in sample(s) {empty} of the batch")
    return valid


def masked_median(lr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel, per-band median over the usable revisits: ``(N, T, C, H, W)`` -> ``(N, C, H, W)``.

    ``mask`` ``(N, T)`` (bool or 0/1, True = usable; None = all). With an even number ``k`` of usable
    revisits the median is the mean of the two middle values (numpy's convention). Values of unusable
    revisits are never read (NaN there is harmless). A sample with no usable revisit raises ``ValueError``
    in eager mode; in an exported graph its reference is 0. Differentiable (the gradient goes to the
    selected revisit(s)). The result does not depend on the order of the revisits.
    """
    valid = revisit_mask(lr, mask)
    t = lr.shape[1]
    vb = valid[:, :, None, None, None]
    x = torch.where(vb, lr, torch.full_like(lr, float("inf")))
    s = torch.sort(x, dim=1).values  # usable values first, +inf (unusable) last
    k = valid.sum(dim=1)  # (N,) int64
    lo = ((k - 1).clamp(min=0) // 2).clamp(max=t - 1)
    hi = (k // 2).clamp(max=t - 1)
    shape = (-1, 1, 1, 1, 1)
    lo_idx = lo.reshape(shape).expand(-1, 1, *s.shape[2:])
    hi_idx = hi.reshape(shape).expand(-1, 1, *s.shape[2:])
    med = 0.5 * (torch.gather(s, 1, lo_idx) + torch.gather(s, 1, hi_idx))
    med = med.squeeze(1)
    return torch.where((k > 0).reshape(-1, 1, 1, 1), med, torch.zeros_like(med))


class _ResBlock(nn.Module):
    """``x + conv(prelu(conv(x)))`` with ``kernel_size`` x ``kernel_size`` convolutions."""

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        p = kernel_size // 2
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size, padding=p),
            nn.PReLU(channels),
            nn.Conv2d(channels, channels, kernel_size, padding=p),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _Fuse(nn.Module):
    """Pointwise residual fusion of two states: ``(a + b) / 2 + R([a, b])``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(2 * channels, channels, 1),
            nn.PReLU(channels),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return 0.5 * (a + b) + self.body(torch.cat([a, b], dim=1))


def check_anchor_usable(valid: torch.Tensor) -> None:
    """``ValueError`` naming the samples whose anchor (frame 0) is unusable in ``valid`` ``(N, T)`` (eager mode
    only: an exported graph cannot raise)."""
    if not _tracing() and not bool(valid[:, 0].all()):
        bad = (~valid[:, 0]).nonzero().flatten().tolist()
        raise ValueError(f"mask: the anchor (frame 0) must be usable, it is not in sample(s) {bad}")


def revisit_encoder(in_channels: int, num_features: int, num_blocks: int) -> nn.Sequential:
    """The shared pair encoder of HighRes-net: ``in_channels`` (a revisit next to its reference) to
    ``num_features``: 3x3 conv, PReLU, ``num_blocks`` residual blocks, 3x3 conv (radius ``2 * num_blocks + 2``)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, num_features, 3, padding=1),
        nn.PReLU(num_features),
        *[_ResBlock(num_features) for _ in range(num_blocks)],
        nn.Conv2d(num_features, num_features, 3, padding=1),
    )


def fuse_recursive(fuse: nn.Module, states: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Recursive pairwise fusion of ``states`` ``(N, T, F, H, W)`` with usable flags ``valid`` ``(N, T)`` into one
    state ``(N, F, H, W)``: ``T`` is padded to a power of two with unusable dummies, then states ``k`` and
    ``k + T/2`` are fused by ``fuse(a, b)`` when both are usable, else the usable one passes through unchanged."""
    n, t = states.shape[:2]
    t_pad = 1
    while t_pad < t:
        t_pad *= 2
    if t_pad > t:
        # (x * 0, not zeros_like: the ONNX exporter would fold zeros_like into a constant of the example's size)
        dummy = (states[:, :1] * 0).expand(-1, t_pad - t, -1, -1, -1)
        states = torch.cat([states, dummy], dim=1)
        valid = torch.cat([valid, torch.zeros_like(valid[:, :1]).expand(-1, t_pad - t)], dim=1)
    while t_pad > 1:
        half = t_pad // 2
        a, b = states[:, :half], states[:, half:]
        va, vb = valid[:, :half], valid[:, half:]
        fused = fuse(a.flatten(0, 1), b.flatten(0, 1)).unflatten(0, (n, half))
        both = (va & vb)[:, :, None, None, None]
        states = torch.where(both, fused, torch.where(va[:, :, None, None, None], a, b))
        valid = va | vb
        t_pad = half
    return states[:, 0]


@register_arch("highresnet")
class HighResNet(nn.Module):
    """HighRes-net multi-image SR: ``forward(lr (N, T, C, H, W), mask (N, T) | None) -> sr``.

    Args:
        in_channels: bands ``C`` of each revisit.
        out_channels: output bands (default ``in_channels``; the residual is over the bicubic
            interpolation of the first ``out_channels`` bands of the reference).
        scale: 2, 3 or 4.
        num_features: width of the encoder / fusion / decoder.
        num_blocks: residual blocks (two 3x3 convs each) in the encoder.

    Any ``T >= 1`` is accepted (non-powers of two are padded with invalid dummy states). In an ONNX export
    ``T`` is fixed to the example's ``T`` (the number of fusion steps is unrolled); batch and spatial size
    stay dynamic. ``receptive_field`` (LR px, exact) is ``4 * num_blocks + 9`` whatever ``T``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        scale: int = 3,
        num_features: int = 64,
        num_blocks: int = 2,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = check_channels(in_channels, out_channels)
        self.scale = check_scale(scale)
        self.num_features = check_positive_int("num_features", num_features)
        self.num_blocks = check_positive_int("num_blocks", num_blocks, minimum=0)
        c, f, s = self.in_channels, self.num_features, self.scale
        self.encoder = revisit_encoder(2 * c, f, self.num_blocks)
        self.fuse = _Fuse(f)
        self.decoder = nn.Sequential(
            nn.Conv2d(f, f, 3, padding=1),
            nn.PReLU(f),
            nn.Conv2d(f, self.out_channels * s * s, 3, padding=1),
            nn.PixelShuffle(s),
        )
        last = self.decoder[2]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        # Radius: encoder in-conv 1 + 2 per residual block + out-conv 1, fusion 0 (1x1), decoder 2 (two 3x3
        # at LR). Bicubic(reference) has radius 2 <= that; the median is pointwise.
        self.receptive_field = 2 * (2 * self.num_blocks + 4) + 1

    def _reference(self, lr: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The reference every revisit is encoded against (and the base of the residual): the masked median."""
        return masked_median(lr, valid)

    def forward(self, lr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_lr(lr, self.in_channels, ndim=5)
        valid = revisit_mask(lr, mask)
        # Unusable revisits are replaced by zeros at once: their values (NaN included) never reach the output.
        lr = torch.where(valid[:, :, None, None, None], lr, torch.zeros_like(lr))
        ref = self._reference(lr, valid)
        n, t = lr.shape[:2]
        pairs = torch.cat([lr, ref.unsqueeze(1).expand_as(lr)], dim=2)  # (N, T, 2C, H, W)
        states = self.encoder(pairs.flatten(0, 1))
        states = states.unflatten(0, (n, t))  # (N, T, F, H, W)
        residual = self.decoder(fuse_recursive(self.fuse, states, valid))
        return residual + bicubic_upsample(ref, self.scale, self.out_channels)
