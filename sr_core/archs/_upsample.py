"""Pieces shared by the single-image networks: the pixel-shuffle upsampler and the exact receptive field.

Receptive-field convention (see :mod:`sr_core.archs`): ``receptive_field`` is the full width, in LR pixels,
of the input window that can influence the ``scale x scale`` HR block of one LR pixel.  It is computed by
walking back from that HR block through the network's longest chain of operations: a ``k x k`` convolution
at the current resolution widens the interval by ``k // 2`` pixels on each side; a pixel shuffle by ``f``
maps HR index ``o`` to pre-shuffle index ``floor(o / f)``.  Hence an HR ``3 x 3`` conv after a ``x s``
shuffle adds ``ceil(1 / s) = 1`` LR pixel of radius.  The bicubic base (4 taps) has radius 2.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch.nn as nn

from sr_core.archs._common import check_scale

__all__ = ["Op", "conv", "shuffle", "upsampler_ops", "receptive_field_from_ops", "PixelShuffleUpsampler"]

Op = tuple[str, int]
BICUBIC_RADIUS = 2


def conv(kernel_size: int = 3) -> Op:
    """A ``kernel_size x kernel_size`` convolution (odd kernel, 'same' padding) at the current resolution."""
    return ("conv", kernel_size)


def shuffle(factor: int) -> Op:
    """A pixel shuffle multiplying the resolution by ``factor``."""
    return ("shuffle", factor)


def shuffle_factors(scale: int) -> tuple[int, ...]:
    """Pixel-shuffle stages for ``scale``: ``(2,)``, ``(3,)`` or ``(2, 2)`` (x4 as two x2 stages)."""
    check_scale(scale)
    return (2, 2) if scale == 4 else (scale,)


def upsampler_ops(scale: int) -> list[Op]:
    """Operations of :class:`PixelShuffleUpsampler` in forward order (one 3x3 conv before each shuffle)."""
    ops: list[Op] = []
    for f in shuffle_factors(scale):
        ops += [conv(3), shuffle(f)]
    return ops


def receptive_field_from_ops(scale: int, ops: Sequence[Op]) -> int:
    """Exact receptive field (odd, LR pixels) of ``bicubic(lr) + branch(lr)``.

    ``ops`` is the longest chain of the residual branch in forward order; its shuffle factors must
    multiply to ``scale``.  Walking backwards from the HR block ``[0, scale - 1]`` of LR pixel 0 gives the
    LR interval ``[a, b]``; the radius is ``max(-a, b, 2)`` (2 = bicubic base).
    """
    check_scale(scale)
    total = 1
    for kind, v in ops:
        if kind == "shuffle":
            total *= v
        elif kind != "conv" or v % 2 != 1:
            raise ValueError(f"bad receptive-field op {(kind, v)!r}")
    if total != scale:
        raise ValueError(f"shuffle factors multiply to {total}, expected scale {scale}")
    a, b = 0, scale - 1
    for kind, v in reversed(ops):
        if kind == "conv":
            a, b = a - v // 2, b + v // 2
        else:
            a, b = a // v, b // v
    radius = max(-a, b, BICUBIC_RADIUS)
    return 2 * radius + 1


class PixelShuffleUpsampler(nn.Sequential):
    """``x scale`` upsampler: per stage a 3x3 conv ``F -> f^2 F``, a pixel shuffle by ``f`` and an
    optional activation (``act()``, a fresh module per stage).  Scale 4 uses two x2 stages."""

    def __init__(self, num_features: int, scale: int, act: Callable[[], nn.Module] | None = None) -> None:
        layers: list[nn.Module] = []
        for f in shuffle_factors(scale):
            layers.append(nn.Conv2d(num_features, num_features * f * f, 3, padding=1))
            layers.append(nn.PixelShuffle(f))
            if act is not None:
                layers.append(act())
        super().__init__(*layers)
