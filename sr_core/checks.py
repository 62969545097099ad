"""Argument checks shared by the library: one home for the messages users see on bad values."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["check_finite", "check_int", "check_positive"]


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an ``int`` if it is an integer (Python or numpy, not ``bool``) ``>= minimum``; else
    ``ValueError`` naming ``name``, the bound and the value."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _real(name: str, value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return float(value)


def check_finite(name: str, value: Any) -> float:
    """``value`` as a ``float`` if it is a finite real number (not ``bool``); else ``ValueError`` naming ``name``."""
    v = _real(name, value, "a finite number")
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return v


def check_positive(name: str, value: Any) -> float:
    """``value`` as a ``float`` if it is a finite real number ``> 0``; else ``ValueError`` naming ``name``."""
    v = _real(name, value, "a positive number")
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v
