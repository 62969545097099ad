"""The architecture registry: names to network classes.

Each architecture file decorates its class with :func:`register_arch`; the package ``sr_core.archs`` imports
every architecture file, so the registry is complete whenever ``sr_core.archs`` (or any module in it) has been
imported. Names are case-insensitive.
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


def list_archs() -> list[str]:
    """Names of all registered architectures, sorted."""
    return sorted(_REGISTRY)


def arch_class(name: str) -> type[nn.Module]:
    """The class registered under ``name`` (case-insensitive)."""
    key = name.lower()
    if key not in _REGISTRY:
        raise ValueError(f"unknown architecture {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[key]


def get_arch(name: str, **kwargs: Any) -> nn.Module:
    """Build architecture ``name`` with constructor keyword arguments ``kwargs``."""
    return arch_class(name)(**kwargs)
