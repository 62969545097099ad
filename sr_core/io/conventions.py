"""The conventions every reader of :mod:`sr_core.io` follows, and the parsing they share.

- Reflectance = ``(DN + add_offset) / dn_scale`` (:mod:`sr_core.radiometry`), always from EXPLICIT metadata
  (``scene.json``, GeoTIFF tags ``DN_SCALE``/``ADD_OFFSET``, NetCDF attributes ``dn_scale``/``add_offset_dn``)
  or explicit arguments (:func:`dn_convention`). Nothing is guessed: a missing or contradictory scale is a
  ``ValueError`` naming the file and the key.
- Arrays are band-first ``(bands, y, x)``; row 0 is the northern edge. Grids are north-up
  (:func:`north_up`): the affine transform ``(a, b, c, d, e, f)`` (GDAL/``affine`` order:
  ``x = a*col + b*row + c``, ``y = d*col + e*row + f``) has ``b = d = 0``, ``a > 0``, ``e < 0``; ``(c, f)`` is
  the upper-left CORNER of pixel (0, 0). xarray coordinates ``y``/``x`` are cell CENTRES (:func:`cell_centres`).
  ``bounds`` are ``(left, bottom, right, top)`` (:func:`bounds_of`).
- Nodata (GDAL nodata / mask, NetCDF ``_FillValue``, ``scene.json`` ``nodata``) becomes NaN and stays NaN.
- A file that cannot be read (empty, truncated, another format) is a ``ValueError`` naming it
  (:func:`open_raster`, :func:`unreadable`), never a GDAL / HDF5 exception.
- Band names are canonical (``sr_core.bands.normalize_band_name``): the whole-array readers refuse unknown
  names (:func:`band_names`); the windowed sources ignore labels that are not Sentinel-2 bands
  (:func:`band_labels`).

rasterio / rioxarray / xarray are imported when a reader runs (:func:`require_rasterio`,
:func:`require_xarray`): importing this module needs only numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sr_core.bands import normalize_band_name
from sr_core.checks import check_finite, check_positive

if TYPE_CHECKING:  # pragma: no cover
    import xarray

__all__ = [
    "Transform",
    "band_labels",
    "band_names",
    "bounds_of",
    "canonical_or_none",
    "cell_centres",
    "crs_units",
    "dn_convention",
    "grid_dataarray",
    "north_up",
    "open_raster",
    "parse_number",
    "require_rasterio",
    "require_xarray",
    "same_bounds",
    "unreadable",
]

Transform = tuple[float, float, float, float, float, float]


def require_rasterio(what: str = "reading GeoTIFFs"):
    """The ``rasterio`` module, or ``ImportError`` saying that ``what`` needs it."""
    try:
        import rasterio
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError(f"{what} needs rasterio: pip install 's2sr[udf]'") from err
    return rasterio


def require_xarray(what: str = "building DataArrays"):
    """The ``xarray`` module with rioxarray's ``.rio`` accessor registered, or ``ImportError``."""
    try:
        import rioxarray  # noqa: F401  (registers the .rio accessor)
        import xarray
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError(f"{what} needs xarray and rioxarray: pip install 's2sr[udf]'") from err
    return xarray


# ------------------------------------------------------------------------------------------------ files


def unreadable(path: Any, what: str, err: BaseException | None = None) -> ValueError:
    """The ``ValueError`` for a file that cannot be read as ``what``: naming it, saying why when it is empty, with
    the reader's own message (GDAL's underlying error when it chained one) on the same line."""
    try:
        empty = Path(path).stat().st_size == 0
    except OSError:
        empty = False
    if empty:
        return ValueError(f"{path}: empty file (0 bytes), not a {what}")
    detail = ""
    if err is not None:
        cause = err.__cause__  # rasterio: "Read failed. See previous exception" from GDAL's error
        text = str(cause) if cause is not None and str(cause) else str(err)
        detail = ": " + " ".join(text.split())
    return ValueError(f"{path}: cannot read it as a {what} (truncated, corrupt or another format){detail}")


def open_raster(path: Any, what: str = "GeoTIFF") -> Any:
    """``rasterio.open(path)``; an empty, truncated or foreign file is a ``ValueError`` naming it
    (:func:`unreadable`), a missing one ``FileNotFoundError``."""
    rasterio = require_rasterio()
    if not Path(path).is_file():
        raise FileNotFoundError(f"no such {what}: {path}")
    if Path(path).stat().st_size == 0:
        raise unreadable(path, what)
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioError as err:
        raise unreadable(path, what, err) from err


# ------------------------------------------------------------------------------------------------ numbers


def parse_number(text: Any, where: str, key: str) -> float:
    """``text`` (a metadata value) as a float; else ``ValueError`` naming ``where`` and ``key``."""
    try:
        return float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {key} = {text!r} is not a number") from None


def dn_convention(
    found_scale: Any,
    found_offset: Any,
    dn_scale: float | None,
    add_offset: float | None,
    where: str,
    scale_key: str,
    offset_key: str,
) -> tuple[float, float]:
    """``(dn_scale, add_offset)`` from the values found in a file's metadata (``None``: absent) and the explicit
    arguments: a value found and an argument given must agree; neither is a ``ValueError`` (never guessed)."""
    if found_scale is not None:
        fs = check_positive(f"{where}: {scale_key}: dn_scale", parse_number(found_scale, where, scale_key))
        if dn_scale is not None and check_positive("argument: dn_scale", dn_scale) != fs:
            raise ValueError(f"{where}: {scale_key} = {found_scale!r} contradicts dn_scale={dn_scale!r}")
        scale = fs
    elif dn_scale is not None:
        scale = check_positive("argument dn_scale: dn_scale", dn_scale)
    else:
        raise ValueError(
            f"{where}: no {scale_key} in the metadata and no dn_scale argument; refusing to guess the DN "
            "scale (Sentinel-2 L1C/L2A: dn_scale=10000)"
        )
    if found_offset is not None:
        fo = check_finite(f"{where}: {offset_key}: add_offset", parse_number(found_offset, where, offset_key))
        if add_offset is not None and check_finite("argument: add_offset", add_offset) != fo:
            raise ValueError(
                f"{where}: {offset_key} = {found_offset!r} contradicts add_offset={add_offset!r}"
            )
        offset = fo
    elif add_offset is not None:
        offset = check_finite("argument add_offset: add_offset", add_offset)
    else:
        raise ValueError(
            f"{where}: no {offset_key} in the metadata and no add_offset argument; refusing to guess "
            "(add_offset=0 before processing baseline 04.00, -1000 from 04.00 on)"
        )
    return scale, offset


# ------------------------------------------------------------------------------------------------ grids


def north_up(transform: Any, where: str | None = None) -> Transform:
    """``transform`` (6 numbers ``(a, b, c, d, e, f)`` or an ``affine.Affine``) as 6 floats if it describes a
    north-up grid; else ``ValueError`` (its message starting with ``where`` when given)."""
    try:
        return _north_up(transform)
    except ValueError as err:
        if where is None:
            raise
        raise ValueError(f"{where}: {err}") from None


def _north_up(transform: Any) -> Transform:
    try:
        t = tuple(float(v) for v in tuple(transform)[:6])
    except (TypeError, ValueError):
        raise ValueError(
            f"transform must be 6 numbers (a, b, c, d, e, f) or an affine.Affine, got {transform!r}"
        ) from None
    if len(t) != 6 or not all(math.isfinite(v) for v in t):
        raise ValueError(f"transform must be 6 finite numbers (a, b, c, d, e, f), got {transform!r}")
    a, b, _, d, e, _ = t
    if b != 0 or d != 0 or a <= 0 or e >= 0:
        raise ValueError(f"transform must describe a north-up grid (b = d = 0, a > 0, e < 0), got {t}")
    return t  # type: ignore[return-value]


def crs_units(crs: Any, where: str) -> tuple[str, float, bool]:
    """``(unit name, metres per unit, geographic)`` of a CRS (anything ``rasterio.crs.CRS.from_user_input``
    takes); an unparsable CRS is a ``ValueError`` naming ``where``."""
    require_rasterio()
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        c = CRS.from_user_input(crs)
    except CRSError as err:
        raise ValueError(f"{where}: CRS {crs!r} cannot be parsed: {err}") from None
    if c.is_geographic:
        return "degrees", float("nan"), True
    try:
        unit, factor = c.linear_units_factor
    except CRSError:  # no linear unit (e.g. an engineering CRS without one)
        return "unknown units", float("nan"), False
    return str(unit), float(factor), False


def bounds_of(transform: Sequence[float], height: int, width: int) -> tuple[float, float, float, float]:
    """``(left, bottom, right, top)`` of a north-up grid of ``height`` x ``width`` pixels."""
    a, _, c, _, e, f = transform
    return (c, f + height * e, c + width * a, f)


def same_bounds(b1: Sequence[float], b2: Sequence[float], pixel: float) -> bool:
    """Whether two bounds agree within a millionth of a ``pixel``."""
    return all(abs(float(u) - float(v)) <= 1e-6 * abs(pixel) for u, v in zip(b1, b2, strict=True))


def cell_centres(transform: Sequence[float], height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``y`` and ``x`` coordinates of the pixel centres of a north-up grid."""
    a, _, c, _, e, f = transform
    y = f + (np.arange(height, dtype=np.float64) + 0.5) * e
    x = c + (np.arange(width, dtype=np.float64) + 0.5) * a
    return y, x


def grid_dataarray(
    values: np.ndarray,
    names: Sequence[str],
    transform: Sequence[float],
    crs: str | None,
    *,
    dn_scale: float,
    add_offset: float,
    quantity: str,
    source: str,
) -> xarray.DataArray:
    """``values`` ``(bands, y, x)`` on a north-up grid as a DataArray: cell-centre coordinates, CRS and transform
    written with rioxarray, attributes ``dn_scale``, ``add_offset``, ``quantity``, ``source``."""
    xr = require_xarray()
    from affine import Affine

    _, h, w = values.shape
    y, x = cell_centres(transform, h, w)
    da = xr.DataArray(
        values,
        dims=("bands", "y", "x"),
        coords={"bands": list(names), "y": y, "x": x},
        attrs={"dn_scale": dn_scale, "add_offset": add_offset, "quantity": quantity, "source": source},
    )
    if crs is not None:
        da = da.rio.write_crs(crs)
    return da.rio.write_transform(Affine(*transform))


# ------------------------------------------------------------------------------------------------ band names


def canonical_or_none(label: Any) -> str | None:
    """The canonical band name of ``label``, or None when it names no Sentinel-2 band."""
    try:
        return normalize_band_name(str(label))
    except ValueError:
        return None


def band_names(names: Sequence[Any], where: str) -> tuple[str, ...]:
    """Canonical names of ``names``; an unknown or repeated band is a ``ValueError`` naming ``where``."""
    out = []
    for i, n in enumerate(names):
        try:
            out.append(normalize_band_name(str(n)))
        except ValueError as err:
            raise ValueError(f"{where}: band {i + 1} is named {n!r}: {err}") from None
    dup = sorted({n for n in out if out.count(n) > 1})
    if dup:
        raise ValueError(f"{where}: duplicate bands {', '.join(dup)} (names {list(names)})")
    return tuple(out)


def band_labels(labels: Sequence[Any], where: str) -> tuple[str | None, ...]:
    """Canonical name per label (None = not a Sentinel-2 band: ignored); a band named twice is a ``ValueError``."""
    out = tuple(canonical_or_none(v) for v in labels)
    names = [n for n in out if n is not None]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(
            f"{where}: band labels {[str(v) for v in labels]} name the same band twice: {', '.join(dup)}"
        )
    return out
