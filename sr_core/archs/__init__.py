"""Network architectures, one file each, behind an explicit registry.

``get_arch("carn", in_channels=10, scale=2)`` builds a network; ``list_archs()``
names them.  Every network maps ``lr`` ``(N, C, H, W)`` (multi-image networks:
``(N, T, C, H, W)``) to ``sr`` ``(N, C_out, scale*H, scale*W)`` as a learned
residual on top of a bicubic interpolation of the input, and exposes
``receptive_field``: the full width, in LR pixels, of the input window that can
influence one output pixel (an odd number; the tiling margin is ``receptive_field // 2``).

The registry lives in :mod:`sr_core.archs.registry`; the architecture files below
register themselves there when this package imports them.
"""

from __future__ import annotations

from sr_core.archs import (  # noqa: F401  (each file registers its architectures)
    carn,
    edsr,
    highresnet,
    highresnet_anchor,
    misr_sisr,
    rams,
    rrdbnet,
    s2fast,
    s2sharpen,
    shiftnet,
    sisr_step,
    srresnet,
)
from sr_core.archs.registry import arch_class, get_arch, list_archs

__all__ = ["get_arch", "list_archs", "arch_class"]
