"""``highresnet_anchor``: HighRes-net whose reference is the anchor revisit (frame 0) instead of the median.

Same layers, constructor and receptive field as :class:`sr_core.archs.highresnet.HighResNet`; only the reference
changes: each revisit is encoded next to the anchor ``lr[:, 0]`` (not the per-pixel median), and the output is a
residual over ``bicubic_upsample(anchor)``. The anchor fixes the grid and the radiometry of the output, and the
encoder can learn to trust a revisit only where it agrees with the anchor (temporal change, residual clouds).
An untrained network (zero-initialised last conv) returns exactly the bicubic interpolation of the anchor.
Frame 0 must be usable (``mask[:, 0]`` True): ``ValueError`` otherwise (eager mode).

Registered in :mod:`sr_core.archs` like every architecture (``get_arch("highresnet_anchor", ...)``).
"""

from __future__ import annotations

import torch

from . import register_arch
from ._common import bicubic_upsample, check_lr
from .highresnet import HighResNet, _tracing, revisit_mask

__all__ = ["AnchorHighResNet"]


@register_arch("highresnet_anchor")
class AnchorHighResNet(HighResNet):
    """HighRes-net with the anchor (frame 0) as reference: ``forward(lr (N, T, C, H, W), mask (N, T) | None)``."""

    def forward(self, lr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_lr(lr, self.in_channels, ndim=5)
        valid = revisit_mask(lr, mask)
        if not _tracing() and not bool(valid[:, 0].all()):
            bad = (~valid[:, 0]).nonzero().flatten().tolist()
            raise ValueError(f"mask: the anchor (frame 0) must be usable, it is not in sample(s) {bad}")
        lr = torch.where(valid[:, :, None, None, None], lr, torch.zeros_like(lr))
        ref = lr[:, 0]
        n, t = lr.shape[:2]
        pairs = torch.cat([lr, ref.unsqueeze(1).expand_as(lr)], dim=2)
        states = self.encoder(pairs.flatten(0, 1)).unflatten(0, (n, t))
        t_pad = 1
        while t_pad < t:
            t_pad *= 2
        if t_pad > t:
            dummy = torch.zeros_like(states[:, :1]).expand(-1, t_pad - t, -1, -1, -1)
            states = torch.cat([states, dummy], dim=1)
            valid = torch.cat([valid, torch.zeros_like(valid[:, :1]).expand(-1, t_pad - t)], dim=1)
        while t_pad > 1:
            half = t_pad // 2
            a, b = states[:, :half], states[:, half:]
            va, vb = valid[:, :half], valid[:, half:]
            fused = self.fuse(a.flatten(0, 1), b.flatten(0, 1)).unflatten(0, (n, half))
            both = (va & vb)[:, :, None, None, None]
            states = torch.where(both, fused, torch.where(va[:, :, None, None, None], a, b))
            valid = va | vb
            t_pad = half
        return self.decoder(states[:, 0]) + bicubic_upsample(ref, self.scale, self.out_channels)
