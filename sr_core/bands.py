"""Sentinel-2 MSI band constants: the one table every other module reads.

Values: native ground sampling distance (m), central wavelength (nm, S2A, ESA
Sentinel-2 MSI technical guide) and the modulation transfer function at
Nyquist used by the Wald-protocol degradation (MTF values as used by the
CESBIO / EVOLAND super-resolution work).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Iterable, Mapping

__all__ = [
    "Band",
    "BANDS",
    "BANDS_10M",
    "BANDS_20M",
    "BANDS_60M",
    "MODEL_BANDS_10",
    "normalize_band_name",
    "normalize_band_names",
    "band",
    "bands_at_resolution",
    "mtf",
    "resolution",
]


@dataclass(frozen=True)
class Band:
    """One Sentinel-2 MSI spectral band."""

    name: str
    resolution: int  # native ground sampling distance in metres
    wavelength: float  # central wavelength in nanometres (S2A)
    mtf: float  # modulation transfer function at the Nyquist frequency


_TABLE = (
    Band("B01", 60, 442.7, 0.32),
    Band("B02", 10, 492.4, 0.26),
    Band("B03", 10, 559.8, 0.28),
    Band("B04", 10, 664.6, 0.24),
    Band("B05", 20, 704.1, 0.38),
    Band("B06", 20, 740.5, 0.34),
    Band("B07", 20, 782.8, 0.34),
    Band("B08", 10, 832.8, 0.26),
    Band("B8A", 20, 864.7, 0.33),
    Band("B09", 60, 945.1, 0.26),
    Band("B10", 60, 1373.5, 0.26),
    Band("B11", 20, 1613.7, 0.22),
    Band("B12", 20, 2202.4, 0.23),
)

#: All bands by canonical name, in spectral (ESA) order.
BANDS: Mapping[str, Band] = MappingProxyType({b.name: b for b in _TABLE})

#: Canonical orders.
BANDS_10M: tuple[str, ...] = ("B02", "B03", "B04", "B08")
BANDS_20M: tuple[str, ...] = ("B05", "B06", "B07", "B8A", "B11", "B12")
BANDS_60M: tuple[str, ...] = ("B01", "B09", "B10")
#: Band order of the 10-band models: the 10 m bands, then the 20 m bands.
MODEL_BANDS_10: tuple[str, ...] = BANDS_10M + BANDS_20M

_NAME_RE = re.compile(r"^B0*([0-9]{1,2})(A?)$")


def normalize_band_name(name: str) -> str:
    """Return the canonical name of a band: ``"B2"``/``"b02"``/``"B02"`` -> ``"B02"``, ``"b8a"`` -> ``"B8A"``.

    Raises ``ValueError`` naming the input for anything that is not a Sentinel-2 MSI band.
    """
    if not isinstance(name, str):
        raise TypeError(f"band name must be a str, got {type(name).__name__}: {name!r}")
    m = _NAME_RE.match(name.strip().upper())
    if m is not None:
        canon = f"B{int(m.group(1)):02d}{m.group(2)}" if not m.group(2) else f"B{int(m.group(1))}A"
        if canon in BANDS:
            return canon
    raise ValueError(
        f"unknown Sentinel-2 band {name!r}; known bands: {', '.join(BANDS)}"
    )


def normalize_band_names(names: Iterable[str]) -> tuple[str, ...]:
    """Normalise several names; duplicates (after normalisation) are an error."""
    out = tuple(normalize_band_name(n) for n in names)
    dup = sorted({n for n in out if out.count(n) > 1})
    if dup:
        raise ValueError(f"duplicate bands after normalisation: {', '.join(dup)}")
    return out


def band(name: str) -> Band:
    """The :class:`Band` record of ``name`` (aliases accepted)."""
    return BANDS[normalize_band_name(name)]


def mtf(name: str) -> float:
    """MTF at Nyquist of band ``name``."""
    return band(name).mtf


def resolution(name: str) -> int:
    """Native resolution in metres of band ``name``."""
    return band(name).resolution


def bands_at_resolution(res: int) -> tuple[str, ...]:
    """Canonical order of the bands whose native resolution is ``res`` metres."""
    orders = {10: BANDS_10M, 20: BANDS_20M, 60: BANDS_60M}
    if res not in orders:
        raise ValueError(f"Sentinel-2 has no {res} m bands; choose one of 10, 20, 60")
    return orders[res]
