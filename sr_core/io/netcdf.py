"""openEO NetCDF cubes: read whole (:func:`read_netcdf`) or one date window by window (:class:`NetCDFSource`),
with one parser of the band layout and of the DN convention for both.

The data are either one variable with a ``bands`` (or ``band``) dimension, or one variable per band (named
``B02``, ... as openEO writes them). The time dimension is ``t`` (or ``time``). CF packing
(``scale_factor``/``add_offset``) and ``_FillValue`` are decoded by xarray (fill -> NaN); the result is DN and
needs ``dn_scale`` and ``add_offset_dn`` (or ``DN_SCALE``/``ADD_OFFSET``) attributes on the variable or the file,
or the explicit arguments (:func:`sr_core.io.conventions.dn_convention`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sr_core.io.conventions import (
    band_labels,
    band_names,
    canonical_or_none,
    dn_convention,
    require_xarray,
    unreadable,
)
from sr_core.io.source import RasterSource, Window
from sr_core.radiometry import dn_to_reflectance

if TYPE_CHECKING:  # pragma: no cover
    import xarray

__all__ = ["NetCDFCube", "NetCDFSource", "read_netcdf"]

_SCALE_KEYS = ("dn_scale", "DN_SCALE")
_OFFSET_KEYS = ("add_offset_dn", "ADD_OFFSET", "add_offset_DN")


def _first_attr(attrs: Mapping[str, Any], keys: Sequence[str]) -> tuple[str | None, Any]:
    for k in keys:
        if k in attrs:
            return k, attrs[k]
    return None, None


def _band_dims(ds: Any) -> dict[str, str | None]:
    """The bands dimension (``bands`` or ``band``) of each data variable, None where it has none."""
    return {v: next((d for d in ("bands", "band") if d in ds[v].dims), None) for v in ds.data_vars}


def _per_band_attrs(ds: Any, names: Sequence[str], where: str) -> dict[str, Any]:
    """The DN convention attributes of per-band variables ``names``: they must all agree."""
    attrs = {}
    for keys in (_SCALE_KEYS, _OFFSET_KEYS):
        vals = {repr(_first_attr(ds[v].attrs, keys)[1]) for v in names}
        if len(vals) > 1:
            raise ValueError(f"{where}: the band variables disagree on {keys[0]}: {sorted(vals)}")
        k, val = _first_attr(ds[names[0]].attrs, keys)
        if k is not None:
            attrs[k] = val
    return attrs


def _cube_dn_convention(
    attrs: Mapping[str, Any], ds: Any, dn_scale: float | None, add_offset: float | None, where: str
) -> tuple[float, float]:
    """``(dn_scale, add_offset)`` from the variable's attributes, else the file's, and the explicit arguments."""
    skey, sval = _first_attr(attrs, _SCALE_KEYS)
    okey, oval = _first_attr(attrs, _OFFSET_KEYS)
    if skey is None:
        skey, sval = _first_attr(ds.attrs, _SCALE_KEYS)
    if okey is None:
        okey, oval = _first_attr(ds.attrs, _OFFSET_KEYS)
    return dn_convention(sval, oval, dn_scale, add_offset, where, skey or "dn_scale", okey or "add_offset_dn")


def _crs(da: Any, ds: Any, where: str) -> str | None:
    """The CRS of data variable ``da``: its grid mapping, else the one grid-mapping variable of ``ds`` (a variable
    with a ``crs_wkt`` or ``spatial_ref`` attribute, which some writers leave unreferenced); None without one."""
    crs = da.rio.crs
    if crs is not None:
        return crs.to_string()
    wkts = {
        str(v.attrs.get("crs_wkt") or v.attrs["spatial_ref"])
        for v in ds.variables.values()
        if v.attrs.get("crs_wkt") or v.attrs.get("spatial_ref")
    }
    if len(wkts) > 1:
        raise ValueError(f"{where}: several grid-mapping variables and the data variable names none of them")
    if not wkts:
        return None
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        return CRS.from_wkt(wkts.pop()).to_string()
    except CRSError as err:
        raise ValueError(f"{where}: the grid-mapping variable's CRS cannot be parsed: {err}") from None


def _open_dataset(xr: Any, path: Path) -> Any:
    """``xr.open_dataset(path)`` (lazy); an empty, truncated or foreign file is a ``ValueError`` naming it."""
    if not path.is_file():
        raise FileNotFoundError(f"no such NetCDF file: {path}")
    if path.stat().st_size == 0:
        raise unreadable(path, "NetCDF file")
    try:
        return xr.open_dataset(path, decode_coords="all")
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as err:  # h5py/h5netcdf/xarray backends
        raise unreadable(path, "NetCDF file", _first_sentence(err)) from err


def _first_sentence(err: BaseException) -> BaseException:
    """``err`` with its message cut after the first sentence (xarray appends installation advice)."""
    text = " ".join(str(err).split())
    cut = text.find(". ")
    return type(err)(text[: cut + 1]) if cut > 0 else err


# ------------------------------------------------------------------------------------------------ whole


def read_netcdf(
    path: str | Path,
    *,
    variable: str | None = None,
    dn_scale: float | None = None,
    add_offset: float | None = None,
) -> xarray.DataArray:
    """Read a NetCDF cube as float32 REFLECTANCE ``(t, bands, y, x)``.

    The data are either one variable with a ``bands`` (or ``band``) dimension, or one variable per band (named
    ``B02``, ... as openEO writes them; stacked in file order). ``variable`` picks one when several qualify.
    The time dimension is ``t`` (``time`` is renamed); without one a length-1 ``t`` is added. CF packing
    (``scale_factor``/``add_offset``) and ``_FillValue`` are decoded by xarray first (fill -> NaN); the result
    is DN and must then come with ``dn_scale`` and ``add_offset_dn`` (or ``DN_SCALE``/``ADD_OFFSET``)
    attributes on the variable or the file, or the explicit arguments (both: they must agree; neither:
    ``ValueError``). Band names are normalised (unknown names are an error); CRS (grid mapping) is kept via
    rioxarray.
    """
    xr = require_xarray()
    path = Path(path)
    where = str(path)
    with _open_dataset(xr, path) as ds:
        try:
            ds = ds.load()
        except (OSError, ValueError, RuntimeError) as err:
            raise unreadable(path, "NetCDF file", err) from err
    band_dim_of = _band_dims(ds)
    if variable is not None:
        if variable not in ds.data_vars:
            raise ValueError(f"{where}: no variable {variable!r}; variables: {list(ds.data_vars)}")
        candidates = [variable] if band_dim_of[variable] else []
        if not candidates and canonical_or_none(variable) is None:
            raise ValueError(
                f"{where}: variable {variable!r} has no 'bands' dimension and is not a band name"
            )
    else:
        candidates = [v for v, d in band_dim_of.items() if d]
    if len(candidates) > 1:
        raise ValueError(f"{where}: several variables with a bands dimension {candidates}; pass variable=...")
    if candidates:
        da = ds[candidates[0]]
        if band_dim_of[candidates[0]] == "band":
            da = da.rename(band="bands")
        if "bands" not in da.coords:
            raise ValueError(
                f"{where}: variable {candidates[0]!r} has no 'bands' coordinate naming the bands"
            )
        names = band_names(list(da.coords["bands"].values), f"{where}: variable {candidates[0]!r}")
        da = da.assign_coords(bands=list(names))
        attrs = dict(da.attrs)
    else:
        per_band = [variable] if variable is not None else [v for v in ds.data_vars if ds[v].ndim >= 2]
        if not per_band or any(canonical_or_none(str(v)) is None for v in per_band):
            raise ValueError(
                f"{where}: no variable with a 'bands' dimension and the variables {list(ds.data_vars)} are "
                "not all band names"
            )
        names = band_names([str(v) for v in per_band], where)
        attrs = _per_band_attrs(ds, per_band, where)
        da = xr.concat([ds[v] for v in per_band], dim="bands").assign_coords(bands=list(names))
    if "time" in da.dims and "t" not in da.dims:
        da = da.rename(time="t")
    if "t" not in da.dims:
        da = da.expand_dims("t")
    extra = [d for d in da.dims if d not in ("t", "bands", "y", "x")]
    if extra or "y" not in da.dims or "x" not in da.dims:
        raise ValueError(f"{where}: expected dimensions (t, bands, y, x), got {da.dims}")
    da = da.transpose("t", "bands", "y", "x")

    scale, offset = _cube_dn_convention(attrs, ds, dn_scale, add_offset, where)
    crs = _crs(da, ds, where)
    out = xr.DataArray(
        dn_to_reflectance(da.values, dn_scale=scale, add_offset=offset),
        dims=da.dims,
        coords={k: v for k, v in da.coords.items() if k in ("t", "bands", "y", "x")},
        attrs={"dn_scale": scale, "add_offset": offset, "quantity": "reflectance", "source": where},
    )
    if crs is not None:
        out = out.rio.write_crs(crs)
    return out


# ------------------------------------------------------------------------------------------------ windowed


class NetCDFCube:
    """A lazily opened NetCDF cube shared by its per-date :class:`NetCDFSource` objects (variables named like
    no Sentinel-2 band, and labels that are not Sentinel-2 bands, are ignored)."""

    def __init__(
        self, path: Path, *, variable: str | None, dn_scale: float | None, add_offset: float | None
    ) -> None:
        xr = require_xarray("reading NetCDF")
        where = str(path)
        self.path = path
        self.ds = ds = _open_dataset(xr, path)  # lazy: windows are read on demand
        self._closed = False
        try:
            bdim = _band_dims(ds)
            if variable is not None and variable not in ds.data_vars:
                raise ValueError(f"{where}: no variable {variable!r}; variables: {list(ds.data_vars)}")
            stacked = [v for v in ([variable] if variable else ds.data_vars) if bdim.get(v)]
            if len(stacked) > 1:
                raise ValueError(
                    f"{where}: several variables with a bands dimension {stacked}; pass variable=..."
                )
            if stacked:
                v = stacked[0]
                self.layout = [(v, k) for k in range(ds[v].sizes[bdim[v]])]
                self.bdim = bdim[v]
                if bdim[v] not in ds[v].coords:
                    raise ValueError(
                        f"{where}: variable {v!r} has no {bdim[v]!r} coordinate naming the bands"
                    )
                labels = [str(b) for b in ds[v].coords[bdim[v]].values]
                attrs = dict(ds[v].attrs)
                ref = ds[v]
            else:
                cands = [variable] if variable else [str(v) for v in ds.data_vars]
                names = [v for v in cands if ds[v].ndim >= 2 and canonical_or_none(v) is not None]
                if not names:
                    raise ValueError(
                        f"{where}: no variable with a 'bands' dimension and no variable named like a band "
                        f"(B02, ...): variables {list(ds.data_vars)}"
                    )
                self.layout = [(v, None) for v in names]
                self.bdim = None
                labels = names
                attrs = _per_band_attrs(ds, names, where)
                ref = ds[names[0]]
            self.labels = band_labels(labels, where)
            dims = [d for d in ref.dims if d != self.bdim]
            self.tdim = next((d for d in ("t", "time") if d in dims), None)
            extra = [d for d in dims if d not in ("y", "x", self.tdim)]
            if extra or "y" not in dims or "x" not in dims:
                raise ValueError(f"{where}: expected dimensions (t, bands, y, x), got {ref.dims}")
            self.dn_scale, self.add_offset = _cube_dn_convention(attrs, ds, dn_scale, add_offset, where)
            self.transform, self.flip_y = self._grid(ref, where)
            self.height, self.width = int(ref.sizes["y"]), int(ref.sizes["x"])
            self.crs = _crs(ref, ds, where)
            enc = ref.encoding
            self.dtype = str(np.dtype(enc.get("dtype", ref.dtype)))
            fill = enc.get("_FillValue", enc.get("missing_value"))
            self.nodata = None if fill is None or not np.isfinite(fill) else float(fill)
            self.dates = self._dates()
        except BaseException:
            ds.close()
            raise

    @staticmethod
    def _grid(ref: Any, where: str) -> tuple[tuple[float, ...], bool]:
        out = {}
        for d in ("y", "x"):
            if d not in ref.coords:
                raise ValueError(f"{where}: no {d!r} coordinate: the grid is unknown")
            v = np.asarray(ref.coords[d].values, dtype=np.float64)
            if v.size < 2:
                raise ValueError(
                    f"{where}: the {d!r} axis has {v.size} pixel(s): its pixel spacing is unknown"
                )
            step = float(v[1] - v[0])
            if step == 0 or np.abs(np.diff(v) - step).max() > 1e-6 * abs(step):
                raise ValueError(f"{where}: coordinate {d!r} is not regularly spaced")
            out[d] = (v, step)
        (y, dy), (x, dx) = out["y"], out["x"]
        if dx < 0:
            raise ValueError(f"{where}: x decreases to the right; only x-increasing grids are supported")
        top = max(y[0], y[-1]) + abs(dy) / 2
        return (dx, 0.0, float(x[0] - dx / 2), 0.0, -abs(dy), float(top)), dy > 0

    def _dates(self) -> list[str]:
        if self.tdim is None:
            return [""]
        vals = (
            np.asarray(self.ds[self.tdim].values)
            if self.tdim in self.ds.coords
            else np.arange(self.ds.sizes[self.tdim])
        )
        if np.issubdtype(vals.dtype, np.datetime64):
            labels = [str(np.datetime_as_string(v, unit="D")) for v in vals]
            if len(set(labels)) < len(labels):
                labels = [str(np.datetime_as_string(v, unit="s")).replace(":", "") for v in vals]
        else:
            labels = [str(v) for v in vals]
        if len(set(labels)) < len(labels):
            labels = [f"t{i}" for i in range(len(vals))]
        return labels

    def read(self, t: int | None, idx: list[int], window: Window) -> np.ndarray:
        r0, r1, c0, c1 = window
        ys = slice(self.height - r1, self.height - r0) if self.flip_y else slice(r0, r1)
        out = np.empty((len(idx), r1 - r0, c1 - c0), dtype=np.float32)
        for k, i in enumerate(idx):
            var, b = self.layout[i]
            sel: dict[str, Any] = {"y": ys, "x": slice(c0, c1)}
            if self.tdim is not None:
                sel[self.tdim] = t
            if b is not None:
                sel[self.bdim] = b
            try:
                band = self.ds[var].isel(sel).transpose("y", "x").values
            except (OSError, ValueError, RuntimeError) as err:
                raise unreadable(self.path, "NetCDF file", err) from err
            out[k] = band[::-1] if self.flip_y else band
        return out

    def sources(self) -> list[NetCDFSource]:
        """One :class:`NetCDFSource` per date (one without a date when the cube has no time dimension)."""
        if self.tdim is None:
            return [NetCDFSource(self, None, "")]
        return [NetCDFSource(self, i, d) for i, d in enumerate(self.dates)]

    def close(self) -> None:
        """Close the file (once, however many of its sources are closed)."""
        if not self._closed:
            self._closed = True
            self.ds.close()


class NetCDFSource(RasterSource):
    """One date of an openEO NetCDF cube (:meth:`NetCDFCube.sources`); ``date`` is its label (``""`` without a
    time dimension) and the output tag ``DATE``. Closing it closes the cube, shared by every date."""

    def __init__(self, cube: NetCDFCube, t: int | None, date: str) -> None:
        tags = {"DATE": date} if date else {}
        super().__init__(
            name=f"{cube.path}" + (f" (t={date})" if date else ""),
            height=cube.height,
            width=cube.width,
            transform=cube.transform,
            crs=cube.crs,
            labels=cube.labels,
            dn_scale=cube.dn_scale,
            add_offset=cube.add_offset,
            dtype=cube.dtype,
            nodata=cube.nodata,
            tags=tags,
        )
        self._cube, self._t, self.date = cube, t, date

    def _read(self, idx: list[int], window: Window) -> np.ndarray:
        return self._cube.read(self._t, idx, window)

    def close(self) -> None:
        self._cube.close()
