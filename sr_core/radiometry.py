"""Digital numbers <-> reflectance: ``reflectance = (DN + add_offset) / dn_scale`` and its inverse.

Sentinel-2 L1C/L2A products store reflectance as integers scaled by ``dn_scale`` (the product's quantification
value, 10000) with an offset (``add_offset``, -1000 from processing baseline 04.00 on; CDSE cubes have it
compensated already: 0). Both directions run in float32 on whole arrays; NaN stays NaN and nothing is clipped.
"""

from __future__ import annotations

import numpy as np

__all__ = ["dn_to_reflectance", "reflectance_to_dn"]


def dn_to_reflectance(dn: np.ndarray, *, dn_scale: float, add_offset: float) -> np.ndarray:
    """``(dn + add_offset) / dn_scale`` as float32 (NaN stays NaN, nothing is clipped); a new array (``dn`` is
    cast to float32 first, then both operations run in float32 into that one array)."""
    out = np.empty(np.shape(dn), dtype=np.float32)
    np.add(dn, np.float32(add_offset), out=out, dtype=np.float32, casting="unsafe")
    np.divide(out, np.float32(dn_scale), out=out)
    return out if out.ndim else out[()]


def reflectance_to_dn(refl: np.ndarray, *, dn_scale: float, add_offset: float, inplace: bool = False) -> np.ndarray:
    """``refl * dn_scale - add_offset`` as float32 (the inverse of :func:`dn_to_reflectance`); with
    ``inplace=True`` and a writable float32 ``refl``, computed into ``refl`` itself (no temporary arrays)."""
    if inplace and isinstance(refl, np.ndarray) and refl.dtype == np.float32 and refl.flags.writeable:
        np.multiply(refl, np.float32(dn_scale), out=refl)
        if add_offset:
            np.subtract(refl, np.float32(add_offset), out=refl)
        return refl
    return (np.asarray(refl, dtype=np.float32) * np.float32(dn_scale) - np.float32(add_offset)).astype(
        np.float32, copy=False
    )
