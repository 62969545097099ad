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

from sr_core.archs.registry import register_arch
from sr_core.archs.highresnet import HighResNet, check_anchor_usable

__all__ = ["AnchorHighResNet"]


@register_arch("highresnet_anchor")
class AnchorHighResNet(HighResNet):
    """HighRes-net with the anchor (frame 0) as reference: ``forward(lr (N, T, C, H, W), mask (N, T) | None)``."""

    def _reference(self, lr: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        check_anchor_usable(valid)
        return lr[:, 0]
