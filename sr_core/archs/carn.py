"""CARN: Ahn, Kang and Sohn, "Fast, Accurate, and Lightweight Super-Resolution with Cascading Residual
Network", ECCV 2018, with the variants of the EVOLAND model family ``carn_{n}x{m}x{features}g{groups}[sw]``.

Layout: 3x3 entry conv; ``num_blocks`` cascading blocks; global cascading: after block ``k`` the entry
features and the outputs of blocks ``1..k`` are concatenated and fused by a 1x1 conv + ReLU, which feeds
block ``k + 1``; a pixel-shuffle upsampler (3x3 conv, shuffle, ReLU per stage; scale 4 = two x2 stages);
a 3x3 exit conv.  A cascading block does the same locally with ``num_units`` residual units and 1x1 fusion
convs.  Residual unit: ``groups == 1``: ``relu(x + conv3(relu(conv3(x))))``; ``groups > 1``: the efficient
residual-E unit ``relu(x + conv1(relu(gconv3(relu(gconv3(x))))))`` with grouped 3x3 convs.  With
``shared_weights`` (``sw``) the units inside a block are one unit applied recursively (CARN-M style); the
fusion convs are never shared (their input widths differ).

Residual over bicubic: ``sr = bicubic(lr[:, :out_channels]) + exit(...)``; the exit conv is initialised to
zero, so an untrained network returns the bicubic interpolation exactly.

Receptive field (LR pixels): every unit has two 3x3 convs in its chain (1x1 convs add nothing), so radius
``r = 1 (entry) + 2 * num_blocks * num_units + 2 (upsampler + exit conv, every scale)``,
``receptive_field = 2 r + 1``.  Inputs must be finite (no NaN nodata).
"""

from __future__ import annotations

import re

import torch
import torch.nn as nn

from sr_core.archs.registry import register_arch
from sr_core.archs._common import bicubic_upsample, check_channels, check_lr, check_positive_int, check_scale
from sr_core.archs._upsample import PixelShuffleUpsampler, conv, receptive_field_from_ops, upsampler_ops

__all__ = ["CARN", "CascadingBlock", "ResidualUnit", "EResidualUnit"]

_NAME_RE = re.compile(r"carn_(\d+)x(\d+)x(\d+)g(\d+)(sw)?")


class ResidualUnit(nn.Module):
    """``relu(x + conv3(relu(conv3(x))))``."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_features, num_features, 3, padding=1)
        self.conv2 = nn.Conv2d(num_features, num_features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


class EResidualUnit(nn.Module):
    """Efficient residual-E unit: ``relu(x + conv1x1(relu(gconv3(relu(gconv3(x))))))``, ``groups`` groups."""

    def __init__(self, num_features: int, groups: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_features, num_features, 3, padding=1, groups=groups)
        self.conv2 = nn.Conv2d(num_features, num_features, 3, padding=1, groups=groups)
        self.pointwise = nn.Conv2d(num_features, num_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.pointwise(torch.relu(self.conv2(torch.relu(self.conv1(x))))))


def _make_unit(num_features: int, groups: int) -> nn.Module:
    return ResidualUnit(num_features) if groups == 1 else EResidualUnit(num_features, groups)


class CascadingBlock(nn.Module):
    """Local cascading: unit ``k`` reads the fusion of the block input and the outputs of units ``1..k-1``."""

    def __init__(self, num_features: int, num_units: int, groups: int, shared_weights: bool) -> None:
        super().__init__()
        f = num_features
        self.num_units = num_units
        self.shared_weights = shared_weights
        self.units = nn.ModuleList(_make_unit(f, groups) for _ in range(1 if shared_weights else num_units))
        self.fusions = nn.ModuleList(nn.Conv2d((k + 2) * f, f, 1) for k in range(num_units))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cascade = [x]
        h = x
        for k in range(self.num_units):
            unit = self.units[0 if self.shared_weights else k]
            cascade.append(unit(h))
            h = torch.relu(self.fusions[k](torch.cat(cascade, dim=1)))
        return h


@register_arch("carn")
class CARN(nn.Module):
    """Cascading residual network, ``lr (N, in_channels, H, W) -> sr (N, out_channels, sH, sW)``.

    Args:
        in_channels: number of input bands.
        out_channels: number of output bands (default ``in_channels``; the first ``out_channels`` input
            bands are interpolated as the residual base).
        scale: 2, 3 or 4.
        num_features: feature channels (must be divisible by ``groups``).
        num_blocks: cascading blocks (``n`` of the variant name).
        num_units: residual units per block (``m``).
        groups: groups of the 3x3 convs; ``> 1`` selects residual-E units.
        shared_weights: the units inside a block share their weights (``sw``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        *,
        scale: int = 2,
        num_features: int = 64,
        num_blocks: int = 3,
        num_units: int = 3,
        groups: int = 1,
        shared_weights: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = check_channels(in_channels, out_channels)
        self.scale = check_scale(scale)
        self.num_features = check_positive_int("num_features", num_features)
        self.num_blocks = check_positive_int("num_blocks", num_blocks)
        self.num_units = check_positive_int("num_units", num_units)
        self.groups = check_positive_int("groups", groups)
        if num_features % groups:
            raise ValueError(f"num_features ({num_features}) must be divisible by groups ({groups})")
        if not isinstance(shared_weights, bool):
            raise ValueError(f"shared_weights must be a bool, got {shared_weights!r}")
        self.shared_weights = shared_weights

        f = self.num_features
        self.entry = nn.Conv2d(self.in_channels, f, 3, padding=1)
        self.blocks = nn.ModuleList(
            CascadingBlock(f, self.num_units, self.groups, shared_weights) for _ in range(self.num_blocks)
        )
        self.fusions = nn.ModuleList(nn.Conv2d((k + 2) * f, f, 1) for k in range(self.num_blocks))
        self.upsampler = PixelShuffleUpsampler(f, self.scale, act=lambda: nn.ReLU(inplace=True))
        self.exit = nn.Conv2d(f, self.out_channels, 3, padding=1)
        nn.init.zeros_(self.exit.weight)
        nn.init.zeros_(self.exit.bias)

        ops = [conv(3)] + [conv(3)] * (2 * self.num_blocks * self.num_units) + upsampler_ops(self.scale)
        self.receptive_field: int = receptive_field_from_ops(self.scale, ops + [conv(3)])

    @property
    def variant_name(self) -> str:
        """The EVOLAND-style name of this configuration, e.g. ``carn_3x3x64g4sw``."""
        sw = "sw" if self.shared_weights else ""
        return f"carn_{self.num_blocks}x{self.num_units}x{self.num_features}g{self.groups}{sw}"

    @classmethod
    def from_name(
        cls, name: str, in_channels: int, out_channels: int | None = None, *, scale: int = 2
    ) -> "CARN":
        """Build the variant ``carn_{n}x{m}x{features}g{groups}[sw]`` (e.g. ``carn_3x3x64g4sw``):
        ``n`` cascading blocks of ``m`` units, ``features`` channels, ``groups`` conv groups, ``sw`` =
        shared unit weights.  Case-insensitive; any other name raises ``ValueError``."""
        m = _NAME_RE.fullmatch(name.lower()) if isinstance(name, str) else None
        if m is None:
            raise ValueError(
                f"bad CARN variant name {name!r}: expected 'carn_{{n}}x{{m}}x{{features}}g{{groups}}' "
                "with an optional 'sw' suffix, e.g. 'carn_3x3x64g4sw'"
            )
        n, units, feats, groups = (int(v) for v in m.group(1, 2, 3, 4))
        return cls(
            in_channels,
            out_channels,
            scale=scale,
            num_features=feats,
            num_blocks=n,
            num_units=units,
            groups=groups,
            shared_weights=m.group(5) is not None,
        )

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        check_lr(lr, self.in_channels)
        h = self.entry(lr)
        cascade = [h]
        for block, fusion in zip(self.blocks, self.fusions):
            cascade.append(block(h))
            h = torch.relu(fusion(torch.cat(cascade, dim=1)))
        return bicubic_upsample(lr, self.scale, self.out_channels) + self.exit(self.upsampler(h))
