"""The torch side of a model package: a network wrapped with its per-band normalisation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sr_core.archs import get_arch

__all__ = ["SRModel"]


class SRModel(nn.Module):
    """A network wrapped with its per-band normalisation: reflectance in, reflectance out.

    ``sr = net((x - mean) / std)[:, k] * std[k] + mean[k]`` for the output bands ``k``. Export this module to ONNX
    so that both engines compute exactly the same thing.
    """

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float], out_index: Sequence[int]) -> None:
        super().__init__()
        self.net = net
        c = len(mean)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, c, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, c, 1, 1))
        idx = torch.tensor(list(out_index), dtype=torch.long)
        self.register_buffer("out_mean", self.mean[:, idx].clone())
        self.register_buffer("out_std", self.std[:, idx].clone())
        self.scale = int(net.scale)
        self.receptive_field = int(net.receptive_field)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.net((lr - self.mean) / self.std) * self.out_std + self.out_mean

    @classmethod
    def from_card(cls, card, state_dict: dict[str, torch.Tensor] | None = None) -> SRModel:
        """Build the wrapped network of a :class:`sr_core.models.card.ModelCard`, optionally loading weights."""
        net = get_arch(card.arch, **card.arch_kwargs)
        out_index = [card.bands.index(b) for b in card.out_bands]
        model = cls(net, card.mean, card.std, out_index)
        if state_dict is not None:
            model.load_state_dict(state_dict)
        model.eval()
        return model
