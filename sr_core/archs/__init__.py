"""Network architectures, one file each, behind an explicit registry.

``get_arch("carn", in_channels=10, scale=2)`` builds a network; ``list_archs()``
names them.  Every network maps ``lr`` ``(N, C, H, W)`` (multi-image networks:
``(N, T, C, H, W)``) to ``sr`` ``(N, C_out, scale*H, scale*W)`` as a learned
residual on top of a bicubic interpolation of the input, and exposes
``receptive_field``: the full width, in LR pixels, of the input window that can
influence one output pixel (an odd number; the tiling margin is ``receptive_field // 2``).
"""

from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

__all__ = ["register_arch", "get_arch", "list_archs", "arch_class"]

_REGISTRY: dict[str, type[nn.Module]] = {}


def register_arch(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator adding an architecture to the registry under ``name``."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        key = name.lower()
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise ValueError(f"architecture {name!r} is already registered")
        _REGISTRY[key] = cls
        cls.arch_name = key  # type: ignore[attr-defined]
        return cls

    return deco


def _load_all() -> None:
    # Explicit imports: the registry is filled by importing each architecture file.
    from sr_core.archs import (  # noqa: F401
        carn, edsr, highresnet, highresnet_anchor, misr_sisr, rams, rrdbnet, s2fast, shiftnet, srresnet,
    )


def list_archs() -> list[str]:
    """Names of all registered architectures, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def arch_class(name: str) -> type[nn.Module]:
    """The class registered under ``name`` (case-insensitive)."""
    _load_all()
    key = name.lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown architecture {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[key]


def get_arch(name: str, **kwargs: Any) -> nn.Module:
    """Build architecture ``name`` with constructor keyword arguments ``kwargs``."""
    return arch_class(name)(**kwargs)
