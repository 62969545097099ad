"""Multi-image super-resolution of data-cube chunks: the ``t`` revisits of a chunk become ONE date.

The dates of a chunk ``(t, bands, y, x)`` are masked (nodata and, with an ``SCL`` band, the classes of
``scl_invalid``), the usable ones filled over time (the per-pixel median of the valid dates), ordered with the
anchor date first and fed to a multi-image predictor (:class:`sr_core.models.MISRPredictor`); the conventions
(dims, band labels, DN and reflectance, nodata, modes, coordinates) are those of :mod:`sr_core.inference.cube`,
whose chunk helpers this module shares.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from sr_core.bands import normalize_band_name
from sr_core.inference.cube import (
    _SPATIAL,
    DEFAULT_ADD_OFFSET,
    DEFAULT_DN_SCALE,
    MODES,
    _as_tbyx,
    _dilation,
    _nodata_valid,
    _other_coords,
    _out_dtype,
    _recover_grid,
    _spatial_coords,
    canonical_labels,
    check_chunk,
    check_dims,
    check_spacing,
    select_bands,
    superresolve_dataarray,
)
from sr_core.nodata import fill_nodata, finalize_output
from sr_core.radiometry import dn_to_reflectance, reflectance_to_dn
from sr_core.tiling import tiled_apply, whole_apply

if TYPE_CHECKING:  # pragma: no cover
    import xarray

    from sr_core.models.predictor import MISRPredictor

__all__ = ["SCL_INVALID_DEFAULT", "MISRWarning", "misr_dataarray", "stack_dates"]

#: SCL classes treated as invalid: 0 no data, 1 saturated/defective, 3 cloud shadow, 8 cloud medium probability,
#: 9 cloud high probability, 10 thin cirrus.
SCL_INVALID_DEFAULT = (0, 1, 3, 8, 9, 10)


def _temporal_fill(refl: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill invalid pixels of each date of ``refl`` ``(T, C, h, w)`` with the per-pixel median of the valid
    dates; pixels valid on no date are filled spatially (nearest valid pixel of that median).
    Returns ``(filled, any_valid (h, w))``."""
    masked = np.where(valid[:, None], refl, np.nan)
    any_valid = valid.any(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        med = np.nanmedian(masked, axis=0)  # (C, h, w)
    med, _ = fill_nodata(med, any_valid)
    filled = np.where(valid[:, None], refl, med[None])
    return filled.astype(np.float32, copy=False), any_valid


class MISRWarning(UserWarning):
    """A MISR chunk was handled in a degraded way (a single usable date: single-image fallback)."""


def stack_dates(das: Sequence["xarray.DataArray"], *, atol: float = 1e-6) -> "xarray.DataArray":
    """Stack per-date DataArrays ``(bands, y, x)`` (each with a scalar or length-1 ``t``) into ``(t, bands, y, x)``.

    All dates must share the grid: the same ``y``/``x`` sizes and coordinates (within ``atol`` of the pixel
    spacing) and the same band labels; otherwise ``ValueError`` names the first date that differs and how.
    """
    import xarray as xr

    if not das:
        raise ValueError("stack_dates: no DataArray given")
    ref = das[0]
    out = []
    for k, da in enumerate(das):
        lab = str(np.asarray(da.coords["t"].values).reshape(-1)[0]) if "t" in da.coords else f"#{k}"
        for d in _SPATIAL:
            if d not in da.dims or d not in ref.dims:
                raise ValueError(f"date {lab}: no {d!r} dimension")
            if da.sizes[d] != ref.sizes[d]:
                raise ValueError(f"date {lab} is on a different grid: {d} has {da.sizes[d]} pixels, the first date "
                                 f"{ref.sizes[d]}; resample all dates onto one grid first")
            if d in da.coords and d in ref.coords:
                a, b = np.asarray(da.coords[d].values, float), np.asarray(ref.coords[d].values, float)
                step = abs(float(b[1] - b[0])) if b.size > 1 else 1.0
                if np.max(np.abs(a - b)) > atol * max(step, 1.0):
                    raise ValueError(f"date {lab} is on a different grid: its {d} coordinates differ from the "
                                     f"first date's by up to {np.max(np.abs(a - b)):g}; resample all dates onto "
                                     "one grid first")
        if [str(v) for v in da.coords["bands"].values] != [str(v) for v in ref.coords["bands"].values]:
            raise ValueError(f"date {lab}: band labels differ from the first date's")
        x = da
        if "t" in x.dims:
            if x.sizes["t"] != 1:
                raise ValueError(f"date {lab}: expected one date per DataArray, got t of size {x.sizes['t']}")
        else:
            tv = x.coords["t"].values if "t" in x.coords else None
            x = x.expand_dims("t") if tv is None else x.drop_vars("t").expand_dims(t=[tv])
        x = x.assign_coords({d: (d, np.asarray(ref.coords[d].values)) for d in _SPATIAL if d in ref.coords})
        out.append(x)
    return xr.concat(out, dim="t")


def _pick_anchor(anchor: Any, labels: list[str], frac: np.ndarray, used: np.ndarray) -> int:
    """Index (into the chunk's sorted dates) of the anchor date among ``used``."""
    if anchor in (None, "clearest"):
        f = frac[used]
        best = np.flatnonzero(f == f.max())
        return int(used[best[-1]])  # ties: the latest
    if anchor == "latest":
        return int(used[-1])
    if anchor == "first":
        return int(used[0])
    if isinstance(anchor, (int, np.integer)) and not isinstance(anchor, bool):
        k = int(anchor) % len(labels) if -len(labels) <= int(anchor) < len(labels) else None
        if k is None:
            raise ValueError(f"anchor index {anchor} out of range for a chunk of {len(labels)} dates")
    else:
        matches = [i for i, lab in enumerate(labels) if lab == str(anchor) or lab.startswith(str(anchor))]
        if not matches:
            raise ValueError(f"anchor {anchor!r} matches no date of the chunk {labels}")
        k = matches[0]
    if k not in set(used.tolist()):
        raise ValueError(f"anchor date {labels[k]} has too few valid pixels to be used (min_valid)")
    return k


def misr_dataarray(
    da: "xarray.DataArray | Sequence[xarray.DataArray]",
    *,
    predictor: MISRPredictor,
    mode: str = "resampled",
    dn_scale: float = DEFAULT_DN_SCALE,
    add_offset: float = DEFAULT_ADD_OFFSET,
    nodata: float | None = None,
    scl_invalid: Sequence[int] = SCL_INVALID_DEFAULT,
    min_valid: float = 0.25,
    tile: int | None = None,
    dilate: int | str = 0,
    overlap: int | None = None,
    anchor: Any = "clearest",
    sisr: Any = None,
) -> "xarray.DataArray":
    """Multi-image super-resolution of a chunk ``(t, bands, y, x)``: the ``t`` revisits become ONE date.

    ``da`` may also be a list of per-date DataArrays (:func:`stack_dates`: all on one grid, else ``ValueError``).
    Dates are sorted by ``t`` first. Per date and pixel, valid = all model bands valid (NaN / ``nodata``) and,
    when a band labelled ``SCL`` is present, its class not in ``scl_invalid``. A date is used when at least
    ``min_valid`` of its pixels are valid (and at least one); its invalid pixels are filled with the per-pixel
    median of the valid dates. With more used dates than the model takes, the dates with the most valid pixels
    are kept (the anchor always). The anchor (``"clearest"`` (default; ties: the latest), ``"latest"``,
    ``"first"``, an index into the sorted dates or a date label / prefix such as ``"2018-05-13"``) is fed first:
    the output is on its grid and in its radiometry, and carries its ``t`` label. Pixels valid on no used date
    are NaN. Output: the model's ``out_bands`` (input labels), same grid (``resampled``) or ``scale`` times finer
    (``upscale``); other bands (SCL, ...) are dropped. Without a ``t`` dim the chunk is one revisit and the
    result has no ``t``.

    A single usable date: a :class:`MISRWarning`, and the date is super-resolved by ``sisr`` (a single-image
    :class:`sr_core.models.Predictor` whose bands the chunk holds), else by the MISR network on one frame.
    """
    import xarray as xr

    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not isinstance(da, xr.DataArray):
        da = stack_dates(list(da))
    in_dims = check_dims(da)
    check_spacing(da, predictor, mode)
    if "t" in da.dims and "t" in da.coords and da.sizes["t"] > 1:
        tv = np.asarray(da.coords["t"].values)
        order = np.argsort(tv, kind="stable")
        if (order != np.arange(tv.size)).any():
            da = da.isel(t=order)
    name = predictor.card.name
    labels = [str(v) for v in np.asarray(da.coords["bands"].values)]
    idx = select_bands(labels, predictor.bands, model=f"model {name!r}")
    canon = canonical_labels(labels)
    scl_pos = [i for i, lab in enumerate(labels) if lab.upper() == "SCL"]
    work, has_t = _as_tbyx(da)
    vals = np.asarray(work.values)
    arr = vals if has_t else vals[None]
    t, _, h, w = arr.shape
    t_labels = ([str(v) for v in np.asarray(work.coords["t"].values)] if has_t and "t" in work.coords
                else [str(k) for k in range(t)])
    check_chunk(predictor, mode, (h, w), overlap)
    s = predictor.scale
    x = arr[:, idx].astype(np.float32)
    scl = arr[:, scl_pos[0]].astype(np.float32) if scl_pos else None
    if mode == "resampled":
        grid, x = _recover_grid(x, [canon[i] for i in idx], predictor, nodata)
        if scl is not None:
            scl = grid.native(scl)
    valid = _nodata_valid(x, nodata)
    if scl is not None:
        valid &= np.isfinite(scl) & ~np.isin(scl, np.asarray(list(scl_invalid), dtype=np.float32))
    hh, ww = x.shape[-2:]
    frac = valid.reshape(t, -1).mean(axis=1)
    used = np.flatnonzero((frac >= min_valid) & (frac > 0))
    a = _pick_anchor(anchor, t_labels, frac, used) if used.size else t - 1
    if predictor.frames is not None and used.size > predictor.frames:
        rest = used[used != a]
        best = rest[np.argsort(-frac[rest], kind="stable")[: predictor.frames - 1]]
        used = np.sort(np.concatenate([[a], best]))
    c_out = len(predictor.out_bands)
    if used.size == 1:
        use_sisr = sisr is not None and all(b in set(canon) for b in sisr.bands)
        warnings.warn(
            f"MISR chunk with a single usable date ({t_labels[a]}): single-image super-resolution of that date "
            f"({'model ' + repr(sisr.card.name) if use_sisr else 'the MISR network on one frame'})",
            MISRWarning, stacklevel=2)
        if use_sisr:
            one = (work.isel(t=[a]) if has_t else work).astype(np.float32)
            if scl_pos:
                sv = np.asarray(one.values)[:, scl_pos[0]] if has_t else np.asarray(one.values)[scl_pos[0]]
                bad = ~np.isfinite(sv) | np.isin(sv, np.asarray(list(scl_invalid), dtype=np.float32))
                one = one.where(~xr.DataArray(bad, dims=[d for d in one.dims if d != "bands"]))
            y = superresolve_dataarray(one, predictor=sisr, mode=mode, dn_scale=dn_scale, add_offset=add_offset,
                                       nodata=nodata, tile=tile, dilate=dilate)
            keep = [labels[canon.index(normalize_band_name(ob))] for ob in predictor.out_bands]
            y = y.sel(bands=keep).astype(_out_dtype(vals.dtype))
            y.attrs = dict(da.attrs)
            return y.transpose(*in_dims)
    if used.size == 0:
        sr = np.full((1, c_out, s * hh, s * ww), np.nan, np.float32)
    else:
        order = [a] + [k for k in used.tolist() if k != a]
        refl = dn_to_reflectance(x[order], dn_scale=dn_scale, add_offset=add_offset)
        filled, any_valid = _temporal_fill(refl, valid[order])
        tu, c = filled.shape[:2]
        mask = np.ones((1, tu), dtype=bool)

        def fn(x4: np.ndarray) -> np.ndarray:  # (1, T*C, h, w) -> (1, C_out, sh, sw)
            return predictor(x4.reshape(x4.shape[0], tu, c, *x4.shape[-2:]), np.repeat(mask, x4.shape[0], 0))

        flat = filled.reshape(1, tu * c, hh, ww)
        if tile is None:
            y = whole_apply(fn, flat, scale=s, margin=predictor.margin)
        else:
            y = tiled_apply(fn, flat, scale=s, tile=int(tile), margin=predictor.margin)
        sr = finalize_output(np.asarray(y, np.float32), any_valid[None], s, dilate=_dilation(dilate, predictor))
    sr_dn = reflectance_to_dn(sr, dn_scale=dn_scale, add_offset=add_offset)[0]  # (C_out, sh, sw)
    if mode == "resampled":
        sr_dn = sr_dn[:, -grid.off_y : -grid.off_y + h, -grid.off_x : -grid.off_x + w]
        grid.mask_holes(sr_dn, used=used)
        f = 1
    else:
        f = s
    out_labels = []
    for ob in predictor.out_bands:
        k = canon.index(normalize_band_name(ob))
        out_labels.append(labels[k])
    odt = _out_dtype(vals.dtype)
    out = sr_dn.astype(odt, copy=False)
    coords = _other_coords(work, drop_t=True)
    coords["bands"] = out_labels
    coords.update(_spatial_coords(work, f))
    dims = [d for d in work.dims if d != "t"]
    if has_t:
        out = out[None]
        dims = ["t"] + dims
        coords["t"] = np.asarray(work.coords["t"].values)[a : a + 1] if "t" in work.coords else [0]
    res = xr.DataArray(out, dims=dims, coords=coords, name=da.name, attrs=dict(da.attrs))
    return res.transpose(*in_dims)
