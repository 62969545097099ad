"""``sisr_step``: the coarse bands on the grid of the fine bands, by an x2 network and the physical step down.

``forward(lr (N, C, H, W)) -> (N, C, H, W)``, the model input of every 10-band model (the ``fine_channels`` native
bands first, then the coarse bands nearest-replicated ``2 x 2`` onto the fine grid):

1. ``sr = sisr(lr)``: a registered x2 single-image network (``sisr_arch``, ``sisr_kwargs``), every band at half the
   fine pixel (5 m for Sentinel-2); the shipped package fills it with the default model's weights.
2. Its coarse bands are brought back to the fine grid by the physical step
   (:func:`sr_core.degradation.physical_step`): per band a Gaussian with ``sigma^2 = sigma_2^2 - sigma_1^2`` (the
   step from a system of pixel 1 to one of pixel 2 with the same MTF at Nyquist, ``step_mtf``), then decimation
   by 2: the image a sensor with the fine pixel and the band's optics would take of the x2 output.
3. The fine bands are the input's.

Receptive field (fine px, exact, impulse-tested): ``2 * (r_sisr + ceil((k - 1) / 4)) + 1`` with ``r_sisr`` the x2
network's radius and ``k`` the longest step kernel (HR taps).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from sr_core.archs._common import check_fine_grid, check_lr
from sr_core.archs.registry import get_arch, register_arch
from sr_core.degradation import default_psf_size, degrade, physical_step_sigma

__all__ = ["SISRStep"]


@register_arch("sisr_step")
class SISRStep(nn.Module):
    """An x2 network followed by the physical step of its coarse bands back onto the fine grid (scale 1)."""

    def __init__(
        self,
        in_channels: int = 10,
        out_channels: int | None = None,
        *,
        scale: int = 1,
        fine_channels: int = 4,
        sisr_arch: str = "s2fast",
        sisr_kwargs: Mapping[str, Any] | None = None,
        step_mtf: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = self.out_channels = check_fine_grid(in_channels, out_channels, scale, fine_channels)
        self.scale = 1
        self.fine_channels = fine_channels
        coarse = in_channels - fine_channels
        if step_mtf is None or isinstance(step_mtf, (str, bytes)) or len(step_mtf) != coarse:
            raise ValueError(f"step_mtf must list one MTF per coarse band ({coarse}), got {step_mtf!r}")
        if not all(isinstance(m, (int, float)) and not isinstance(m, bool) and 0 < m < 1 for m in step_mtf):
            raise ValueError(f"step_mtf values must lie in (0, 1), got {list(step_mtf)!r}")
        kw = dict(sisr_kwargs or {})
        kw.setdefault("in_channels", in_channels)
        self.sisr = get_arch(sisr_arch, **kw)
        if int(getattr(self.sisr, "scale", 0)) != 2 or int(getattr(self.sisr, "out_channels", 0)) != in_channels:
            raise ValueError(f"sisr_arch {sisr_arch!r} must be an x2 network with {in_channels} output bands")
        self.step_mtf = [float(m) for m in step_mtf]
        self.step_sigma = [physical_step_sigma(m, 2) for m in self.step_mtf]
        k = max(default_psf_size(s, 2) for s in self.step_sigma)
        self.receptive_field = 2 * (int(self.sisr.receptive_field) // 2 + math.ceil((k - 1) / 4)) + 1

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        check_lr(lr, self.in_channels)
        sr = self.sisr(lr)
        stepped = degrade(sr[:, self.fine_channels :], 2, sigma=self.step_sigma)
        return torch.cat([lr[:, : self.fine_channels], stepped], 1)
