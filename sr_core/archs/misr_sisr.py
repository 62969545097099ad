"""``misr_sisr``: multi-image SR as a correction of a single-image network's output on the anchor revisit.

``forward(lr (N, T, C, H, W), mask (N, T) | None) -> sr (N, C_out, sH, sW)``; frame 0 is the anchor.

1. ``base = sisr(lr[:, 0])``: any registered single-image network (``sisr_arch``, ``sisr_kwargs``) on the anchor
   with all its ``C`` bands; the shipped package fills it with the default single-image model's weights.
2. A HighRes-net-style fusion of the first ``fuse_channels`` bands of the revisits ``1..T-1`` (each encoded next to
   the anchor, recursive pairwise fusion over the usable ones as in :class:`~sr_core.archs.highresnet.HighResNet`)
   feeds a decoder that also sees ``base`` of those bands (space-to-depth onto the LR grid), and predicts a residual
   ``r`` at the output resolution. The anchor is not fused with itself: without a usable revisit ``r = 0`` and the
   output is exactly ``base`` (a residual learnt from the anchor alone would only re-tune the single-image model on
   simulated data, which cost 0.1-0.2 dB on the real series).
3. Only the part of ``r`` that the anchor's own acquisition cannot see is kept:
   ``r - D^T M D r`` (:class:`~sr_core.projection.layer.ConsistencyProjection` towards a zero low-resolution image, with
   the band MTFs ``project_mtf``), so ``degrade(sr)`` stays (up to the regularisation) what it is for ``base``: the
   revisits add detail beyond the anchor's passband, they do not change its radiometry.

``sr = base + [projected r on the fused bands, 0 on the others]``. The last decoder conv is zero-initialised: an
untrained network returns exactly ``base`` (the single-image output), which is the fallback a trained fusion
improves on. Bands beyond ``fuse_channels`` (e.g. the 20 m bands of a 10-band model, replicated onto the 10 m grid)
come from ``base`` only; the revisits' copies of them are not read.

Receptive field (LR px, exact, impulse-tested): ``2 * (max(r_sisr, r_enc) + 3 + r_proj) + 1`` with ``r_sisr`` the
single-image radius, ``r_enc = 2 * num_blocks + 2`` the encoder's, 3 the decoder's and ``r_proj`` the projection's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from sr_core.archs.registry import get_arch, register_arch
from sr_core.archs._common import check_channels, check_lr, check_positive_int, check_scale
from sr_core.archs.highresnet import _Fuse, check_anchor_usable, fuse_recursive, revisit_encoder, revisit_mask

__all__ = ["SISRGuidedMISR"]


@register_arch("misr_sisr")
class SISRGuidedMISR(nn.Module):
    """Multi-image correction of a single-image network's output on the anchor (see the module docstring).

    Args:
        in_channels: bands ``C`` of each revisit (the single-image network's input bands).
        out_channels: output bands (default ``in_channels``; the single-image network's output bands).
        scale: 2, 3 or 4 (the single-image network's scale).
        num_features: width of the fusion encoder / decoder.
        num_blocks: residual blocks in the fusion encoder.
        fuse_channels: the first ``fuse_channels`` bands are fused over the revisits and corrected
            (``<= min(in_channels, out_channels)``).
        sisr_arch, sisr_kwargs: the registered single-image architecture and its constructor arguments.
        project_mtf: one MTF (at the input Nyquist frequency) per fused band for the projection of the residual;
            ``None``: the residual is not projected.
        project_lambda, project_taps: regularisation and LR taps of that projection.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        *,
        scale: int = 2,
        num_features: int = 32,
        num_blocks: int = 2,
        fuse_channels: int = 4,
        sisr_arch: str = "s2fast",
        sisr_kwargs: Mapping[str, Any] | None = None,
        project_mtf: Sequence[float] | None = None,
        project_lambda: float = 0.1,
        project_taps: int = 4,
    ) -> None:
        super().__init__()
        from sr_core.projection.layer import ConsistencyProjection

        self.in_channels, self.out_channels = check_channels(in_channels, out_channels)
        self.scale = check_scale(scale)
        self.num_features = check_positive_int("num_features", num_features)
        self.num_blocks = check_positive_int("num_blocks", num_blocks, minimum=0)
        self.fuse_channels = check_positive_int("fuse_channels", fuse_channels)
        if self.fuse_channels > min(self.in_channels, self.out_channels):
            raise ValueError(f"fuse_channels must be <= min(in_channels, out_channels) = "
                             f"{min(self.in_channels, self.out_channels)}, got {fuse_channels}")
        if not isinstance(sisr_arch, str) or not sisr_arch:
            raise ValueError(f"sisr_arch must be a registered architecture name, got {sisr_arch!r}")
        kw = dict(sisr_kwargs or {})
        kw.setdefault("in_channels", self.in_channels)
        kw.setdefault("scale", self.scale)
        self.sisr = get_arch(sisr_arch, **kw)
        if getattr(self.sisr, "in_channels", None) != self.in_channels:
            raise ValueError(f"sisr_kwargs: the single-image network takes {self.sisr.in_channels} bands, "
                             f"in_channels is {self.in_channels}")
        if getattr(self.sisr, "out_channels", None) != self.out_channels:
            raise ValueError(f"sisr_kwargs: the single-image network gives {self.sisr.out_channels} bands, "
                             f"out_channels is {self.out_channels}")
        if int(self.sisr.scale) != self.scale:
            raise ValueError(f"sisr_kwargs: the single-image network has scale {self.sisr.scale}, scale is {self.scale}")
        c, f, s = self.fuse_channels, self.num_features, self.scale
        self.encoder = revisit_encoder(2 * c, f, self.num_blocks)
        self.fuse = _Fuse(f)
        self.decoder = nn.Sequential(
            nn.Conv2d(f + c * s * s, f, 3, padding=1),
            nn.PReLU(f),
            nn.Conv2d(f, f, 3, padding=1),
            nn.PReLU(f),
            nn.Conv2d(f, c * s * s, 3, padding=1),
            nn.PixelShuffle(s),
        )
        last = self.decoder[4]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.projection: ConsistencyProjection | None = None
        r_proj = 0
        if project_mtf is not None:
            if isinstance(project_mtf, (str, bytes)) or len(project_mtf) != c:
                raise ValueError(f"project_mtf must list one MTF per fused band ({c}), got {project_mtf!r}")
            self.projection = ConsistencyProjection(list(project_mtf), ratio=s, lam=project_lambda, taps=project_taps)
            r_proj = self.projection.radius
        r_sisr = (int(self.sisr.receptive_field) - 1) // 2
        r_enc = 2 * self.num_blocks + 2
        self.receptive_field = 2 * (max(r_sisr, r_enc) + 3 + r_proj) + 1

    def forward(self, lr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_lr(lr, self.in_channels, ndim=5)
        valid = revisit_mask(lr, mask)
        check_anchor_usable(valid)
        c, s = self.fuse_channels, self.scale
        base = self.sisr(lr[:, 0])
        if lr.shape[1] == 1:  # the anchor alone: nothing to fuse
            return base
        # the revisits 1..T-1, each encoded next to the anchor; unusable ones are zeroed at once (their values, NaN
        # included, never reach the output) and left out of the fusion
        anchor = lr[:, :1, :c]
        valid = valid[:, 1:]
        x = torch.where(valid[:, :, None, None, None], lr[:, 1:, :c], torch.zeros_like(lr[:, 1:, :c]))
        n, t = x.shape[:2]
        pairs = torch.cat([x, anchor.expand_as(x)], dim=2)
        states = self.encoder(pairs.flatten(0, 1)).unflatten(0, (n, t))
        any_revisit = valid.any(dim=1)  # (N,): no usable revisit -> no residual, the output is base exactly
        state = fuse_recursive(self.fuse, states, valid)
        guide = F.pixel_unshuffle(base[:, :c], s)
        r = self.decoder(torch.cat([state, guide], dim=1))
        if self.projection is not None:
            r = self.projection(r, torch.zeros_like(lr[:, 0, :c]))
        r = torch.where(any_revisit[:, None, None, None], r, torch.zeros_like(r))
        if c == self.out_channels:
            return base + r
        return torch.cat([base[:, :c] + r, base[:, c:]], dim=1)
