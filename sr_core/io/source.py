"""The windowed reading interface: :class:`RasterSource` (a 2-D multi-band raster read window by window) and
:class:`ArraySource` (an in-memory array behind it). The formats implement it in
:mod:`sr_core.io.scene_folder`, :mod:`sr_core.io.geotiff` and :mod:`sr_core.io.netcdf`;
:func:`sr_core.io.dispatch.open_source` picks one for a path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sr_core.bands import normalize_band_name
from sr_core.checks import check_finite, check_int, check_positive
from sr_core.io.conventions import band_labels, bounds_of, crs_units, north_up

__all__ = ["ArraySource", "RasterSource", "Window", "check_input_grid", "masked_dn"]

Window = tuple[int, int, int, int]  # (row0, row1, col0, col1), half-open


class RasterSource:
    """A 2-D multi-band raster read window by window: ``read(bands, window) -> DN float32 (C, h, w)``.

    Attributes: ``name`` (for messages), ``height``, ``width``, ``transform`` (6 numbers ``(a, b, c, d, e, f)``,
    north-up, ``(c, f)`` = upper-left corner), ``crs`` (string or None), ``labels`` (canonical band name per
    stored band, None for non-Sentinel-2 labels), ``dn_scale``, ``add_offset``, ``dtype`` (stored dtype),
    ``nodata`` (stored nodata value or None), ``tags`` (dict passed to the output: ``PRODUCT_LEVEL``, ...).
    Subclasses implement :meth:`_read`; invalid pixels must come back as NaN.
    """

    def __init__(
        self,
        *,
        name: str,
        height: int,
        width: int,
        transform: Any,
        crs: str | None,
        labels: Sequence[str | None],
        dn_scale: float,
        add_offset: float,
        dtype: str,
        nodata: float | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.height = check_int("height", height, 1)
        self.width = check_int("width", width, 1)
        self.transform = north_up(transform, name)
        self.crs = crs
        self.labels = tuple(labels)
        self.dn_scale = check_positive(f"{name}: dn_scale", dn_scale)
        self.add_offset = check_finite(f"{name}: add_offset", add_offset)
        self.dtype = str(np.dtype(dtype))
        self.nodata = None if nodata is None else float(nodata)
        self.tags = dict(tags or {})
        #: largest window (pixels) read so far: the streaming memory bound, for tests and benchmarks
        self.max_window_pixels = 0
        self.pixels_read = 0

    # -- geometry
    @property
    def bands(self) -> tuple[str, ...]:
        """The Sentinel-2 bands present (canonical names, stored order)."""
        return tuple(n for n in self.labels if n is not None)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` of the grid."""
        return bounds_of(self.transform, self.height, self.width)

    @property
    def resolution(self) -> float:
        return float(self.transform[0])

    # -- reading
    def band_indices(self, bands: Sequence[str], *, model: str = "the model") -> list[int]:
        """Positions of ``bands`` among the stored bands; missing bands raise ``ValueError`` naming them."""
        pos = {n: i for i, n in enumerate(self.labels) if n is not None}
        want = [normalize_band_name(b) for b in bands]
        missing = [b for b in want if b not in pos]
        if missing:
            raise ValueError(
                f"{self.name}: {model} needs bands {', '.join(want)}; missing: {', '.join(missing)}; "
                f"bands present: {', '.join(self.bands) or 'none'}"
            )
        return [pos[b] for b in want]

    def checked_window(self, window: Window) -> tuple[int, int, int, int]:
        """``window`` ``(row0, row1, col0, col1)`` as ints; ``ValueError`` when it is empty or leaves the raster."""
        r0, r1, c0, c1 = (int(v) for v in window)
        if not (0 <= r0 < r1 <= self.height and 0 <= c0 < c1 <= self.width):
            raise ValueError(
                f"{self.name}: window {window} is empty or outside the {self.height}x{self.width} raster"
            )
        return r0, r1, c0, c1

    def read(self, bands: Sequence[str], window: Window) -> np.ndarray:
        """DN of ``bands`` (names) in ``window`` ``(row0, row1, col0, col1)`` as float32 ``(C, h, w)``, NaN =
        nodata. The window must lie inside the raster."""
        r0, r1, c0, c1 = self.checked_window(window)
        idx = self.band_indices(bands)
        out = np.asarray(self._read(idx, (r0, r1, c0, c1)), dtype=np.float32)
        if out.shape != (len(idx), r1 - r0, c1 - c0):
            raise ValueError(f"{self.name}: read {out.shape} for window {window} and {len(idx)} bands")
        self.max_window_pixels = max(self.max_window_pixels, (r1 - r0) * (c1 - c0))
        self.pixels_read += (r1 - r0) * (c1 - c0)
        return out

    def _read(self, idx: list[int], window: Window) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> RasterSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ArraySource(RasterSource):
    """An in-memory DN array ``(C, H, W)`` (NaN or ``nodata`` = invalid) as a :class:`RasterSource`."""

    def __init__(
        self,
        dn: np.ndarray,
        bands: Sequence[str],
        *,
        transform: Any = (10.0, 0.0, 0.0, 0.0, -10.0, 0.0),
        crs: str | None = None,
        dn_scale: float = 10000.0,
        add_offset: float = 0.0,
        nodata: float | None = None,
        name: str = "array",
    ) -> None:
        a = np.asarray(dn)
        if a.ndim != 3 or a.shape[0] != len(bands):
            raise ValueError(f"dn must be (C, H, W) with C = len(bands) = {len(bands)}, got shape {a.shape}")
        super().__init__(
            name=name,
            height=a.shape[1],
            width=a.shape[2],
            transform=transform,
            crs=crs,
            labels=band_labels(bands, name),
            dn_scale=dn_scale,
            add_offset=add_offset,
            dtype=str(a.dtype),
            nodata=nodata,
        )
        self._dn = a

    def _read(self, idx: list[int], window: Window) -> np.ndarray:
        r0, r1, c0, c1 = window
        x = self._dn[idx, r0:r1, c0:c1].astype(np.float32)
        if self.nodata is not None:
            x[x == np.float32(self.nodata)] = np.nan
        return x


def check_input_grid(
    source: RasterSource, resolution_m: float | None, *, allow_any_crs: bool = False, model: str = "the model"
) -> None:
    """Refuse (``ValueError`` naming the file, what was found and what is expected) a ``source`` whose grid is not
    a model's input grid: no CRS, a geographic CRS (degrees) or one whose unit is not the metre, or, in a metre
    CRS, a pixel size other than ``resolution_m`` (None: not checked). ``allow_any_crs`` lets a missing or
    non-metre CRS through, pixel size unchecked (the output is then placed and scaled as the input says, which
    may be wrong); a metre CRS with the wrong pixel size is refused even so."""
    px = (abs(source.transform[0]), abs(source.transform[4]))
    want = (
        f"model {model} takes a projected CRS in metres (UTM, as Sentinel-2 is delivered)"
        + (f" with {float(resolution_m):g} m pixels" if resolution_m else "")
    )
    override = (
        "; to process it anyway, at the risk of a wrong result (the model takes its pixels for "
        + (f"{float(resolution_m):g} m ones" if resolution_m else "metre-sized ones")
        + "), pass allow_any_crs=True (s2sr superres --allow-any-crs)"
    )
    if source.crs is None:
        if allow_any_crs:
            return
        raise ValueError(
            f"{source.name}: no CRS, so its position and pixel size in metres are unknown ({px[0]:g} x {px[1]:g} "
            f"units per pixel); {want}. Write the CRS into the file{override}"
        )
    units, factor, geographic = crs_units(source.crs, source.name)
    if geographic or factor != 1.0:
        if allow_any_crs:
            return
        kind = "geographic (degrees)" if geographic else f"in {units}, not metres"
        raise ValueError(
            f"{source.name}: CRS {source.crs} is {kind}, pixel size {px[0]:g} x {px[1]:g} {units}; {want}. "
            f"Reproject the input (e.g. gdalwarp -t_srs EPSG:326NN -tr 10 10){override}"
        )
    if resolution_m and any(abs(p - float(resolution_m)) > 0.01 * float(resolution_m) for p in px):
        raise ValueError(
            f"{source.name}: pixel size {px[0]:g} x {px[1]:g} m, but {want}: resample the input onto the "
            f"{float(resolution_m):g} m grid first (all bands, coarser ones nearest-resampled onto it)"
        )


def masked_dn(x: np.ndarray, invalid: Sequence[float], shift: float) -> np.ndarray:
    """Stored DN ``x`` as float32 with ``shift`` added and NaN where the stored value is one of ``invalid``
    (the product's nodata and saturated values)."""
    out = np.asarray(x).astype(np.float32)
    bad = np.isin(out, invalid)
    if shift:
        out += np.float32(shift)
    out[bad] = np.nan
    return out
