"""Nodata handling around a super-resolution model: mask, fill, run, restore.

Conventions
-----------
* Layout ``(..., C, H, W)`` (bands on axis -3); masks are bool ``(..., H, W)``, ``True`` = valid.
* A pixel is valid when ALL its bands are finite and differ from ``nodata`` (if given). One bad band
  invalidates the pixel: the model mixes bands, so a partial pixel cannot be super-resolved honestly.
* Invalid pixels are filled with the values of the nearest valid pixel (Euclidean, per sample, all bands
  from the same pixel). Where the valid region is a rectangle (a back-end chunk padded with NaN at the cube
  border) this is exactly edge replication, the project's canonical border treatment, so a chunk gives the
  same result as the whole scene.
* After the model, invalid LR pixels (optionally grown by ``dilate`` LR pixels) become ``fill`` on their
  ``scale x scale`` HR blocks. Nodata stays nodata.

numpy first: torch tensors are accepted and converted to numpy at the boundary; results are numpy.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from scipy import ndimage

from sr_core.checks import check_int

__all__ = [
    "valid_mask",
    "band_valid_mask",
    "fill_nodata",
    "upsample_mask",
    "dilate_invalid",
    "restore_nodata",
    "prepare_input",
    "finalize_output",
]


def _to_numpy(x: Any, name: str) -> np.ndarray:
    tensor = getattr(sys.modules.get("torch"), "Tensor", None)  # None while another thread imports torch
    if tensor is not None and isinstance(x, tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - defensive
        raise ValueError(f"{name} must be array-like, got {type(x).__name__}") from exc




def _check_nodata(nodata: Any) -> None:
    if nodata is None:
        return
    if isinstance(nodata, bool) or not isinstance(nodata, (int, float, np.integer, np.floating)):
        raise ValueError(f"nodata must be a number or None, got {nodata!r}")


def _check_mask_layout(x: np.ndarray, valid: np.ndarray, xname: str, vname: str) -> bool:
    """True when ``x`` has a band axis (-3) beside the mask; raises on a mismatch."""
    if valid.ndim < 2:
        raise ValueError(f"{vname} must be at least 2-D (..., H, W), got shape {valid.shape}")
    if x.shape == valid.shape:
        return False
    if x.ndim == valid.ndim + 1 and x.shape[:-3] + x.shape[-2:] == valid.shape:
        return True
    raise ValueError(
        f"{vname} shape {valid.shape} does not match {xname} shape {x.shape}: expected {xname} "
        f"(..., C, H, W) with {vname} (..., H, W)"
    )


# ----------------------------------------------------------------------------------------------- masks


def band_valid_mask(x: Any, *, nodata: float | int | None = None) -> np.ndarray:
    """Per-band validity, same shape as ``x``: finite and ``!= nodata`` (NaN nodata = the finite test)."""
    _check_nodata(nodata)
    a = _to_numpy(x, "x")
    if a.dtype.kind not in "biuf":
        raise ValueError(f"x must have a numeric dtype, got {a.dtype}")
    v = np.isfinite(a)
    if nodata is not None and not (isinstance(nodata, (float, np.floating)) and np.isnan(nodata)):
        v &= a != nodata
    return v


def valid_mask(x: Any, *, nodata: float | int | None = None, axis_bands: int | None = -3) -> np.ndarray:
    """Pixel validity ``(..., H, W)`` of ``x`` ``(..., C, H, W)``: ALL bands finite and ``!= nodata``.

    ``axis_bands`` is the band axis (reduced with "all"; it may not be one of the two spatial axes);
    ``None`` means ``x`` has no band axis and the mask has the shape of ``x``.
    """
    v = band_valid_mask(x, nodata=nodata)
    if axis_bands is None:
        if v.ndim < 2:
            raise ValueError(f"x must be at least 2-D (..., H, W), got shape {v.shape}")
        return v
    if isinstance(axis_bands, bool) or not isinstance(axis_bands, (int, np.integer)):
        raise ValueError(f"axis_bands must be an int or None, got {axis_bands!r}")
    if v.ndim < 3:
        raise ValueError(f"x must be at least 3-D (..., C, H, W) with a band axis, got shape {v.shape}")
    ax = int(axis_bands)
    if not -v.ndim <= ax < v.ndim or ax % v.ndim >= v.ndim - 2:
        raise ValueError(f"axis_bands={axis_bands} must name a non-spatial axis of x with shape {v.shape}")
    return v.all(axis=ax)


def upsample_mask(valid: Any, scale: int) -> np.ndarray:
    """Nearest upsampling of a mask ``(..., H, W)``: each LR pixel becomes a ``scale x scale`` HR block."""
    scale = check_int("scale", scale, 1)
    v = _to_numpy(valid, "valid").astype(bool, copy=False)
    if v.ndim < 2:
        raise ValueError(f"valid must be at least 2-D (..., H, W), got shape {v.shape}")
    return np.repeat(np.repeat(v, scale, axis=-2), scale, axis=-1)


def dilate_invalid(valid: Any, radius: int) -> np.ndarray:
    """Grow the invalid region of ``valid`` ``(..., H, W)`` by ``radius`` pixels (square element).

    A pixel stays valid only if every pixel within Chebyshev distance ``radius`` (inside the image) is
    valid; outside the image counts as valid. ``radius = 0`` returns a copy. Per sample (leading axes
    untouched).
    """
    radius = check_int("radius", radius, 0)
    v = _to_numpy(valid, "valid").astype(bool, copy=True)
    if v.ndim < 2:
        raise ValueError(f"valid must be at least 2-D (..., H, W), got shape {v.shape}")
    if radius == 0 or v.all():
        return v
    size = (1,) * (v.ndim - 2) + (2 * radius + 1, 2 * radius + 1)
    return ndimage.minimum_filter(v.astype(np.uint8), size=size, mode="constant", cval=1).astype(bool)


# -------------------------------------------------------------------------------------- fill / restore


def fill_nodata(x: Any, valid: Any) -> tuple[np.ndarray, bool]:
    """Fill invalid pixels of ``x`` ``(..., C, H, W)`` (or ``(..., H, W)``) with their nearest valid pixel.

    ``valid`` is ``(..., H, W)``. Nearest = Euclidean distance (``scipy.ndimage.distance_transform_edt``),
    per sample, every band taken from that one pixel; valid pixels are copied bit for bit. For a NaN strip
    along the border this equals ``np.pad(..., mode="edge")``. Returns ``(filled, all_invalid)``:
    ``all_invalid`` is True when no pixel at all is valid, and then ``x`` is returned as is (the caller must
    short-circuit); a single sample with no valid pixel is left unchanged. ``filled`` is ``x`` itself when
    every pixel is valid, else a new array of ``x``'s dtype. ``x`` is never modified.
    """
    a = _to_numpy(x, "x")
    v = _to_numpy(valid, "valid")
    if v.dtype != bool:
        raise ValueError(f"valid must be a bool mask (True = valid), got dtype {v.dtype}")
    banded = _check_mask_layout(a, v, "x", "valid")
    if not v.any():
        return a, True
    if v.all():
        return a, False
    h, w = v.shape[-2:]
    vf = v.reshape(-1, h, w)
    af = a.reshape(vf.shape[0], -1, h, w) if banded else a.reshape(vf.shape[0], 1, h, w)
    out = np.empty(af.shape, dtype=af.dtype)
    for i in range(vf.shape[0]):
        vi = vf[i]
        box = _valid_box(vi)
        if box is not None:  # valid pixels form a rectangle (a chunk NaN-padded at the cube border)
            _edge_fill(af[i], out[i], *box)
            continue
        if vi.all() or not vi.any():
            out[i] = af[i]
            continue
        rows, cols = ndimage.distance_transform_edt(~vi, return_distances=False, return_indices=True)
        out[i] = af[i][:, rows, cols]
    return out.reshape(a.shape), False


def _valid_box(v: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(r0, r1, c0, c1)`` when the valid pixels of the 2-D mask ``v`` are exactly the rectangle
    ``[r0, r1) x [c0, c1)`` (at least one pixel), else None."""
    rows = np.flatnonzero(v.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(v.any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    # every pixel outside the box is invalid (its row or column holds no valid pixel): the box must be full
    return (r0, r1, c0, c1) if v[r0:r1, c0:c1].all() else None


def _edge_fill(src: np.ndarray, out: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> None:
    """``out`` ``(C, H, W)`` = ``src`` inside the box, the box's edge replicated outside it: the nearest valid
    pixel of every outside pixel (Euclidean distance, unique: the box pixel with each coordinate clamped), so the
    result equals the distance-transform fill bit for bit, without it."""
    out[:, r0:r1, c0:c1] = src[:, r0:r1, c0:c1]
    out[:, :r0, c0:c1] = out[:, r0 : r0 + 1, c0:c1]
    out[:, r1:, c0:c1] = out[:, r1 - 1 : r1, c0:c1]
    out[:, :, :c0] = out[:, :, c0 : c0 + 1]
    out[:, :, c1:] = out[:, :, c1 - 1 : c1]


def restore_nodata(sr: Any, valid_hr: Any, fill: float | int = np.nan, *, inplace: bool = False) -> np.ndarray:
    """Set ``fill`` on every band of the invalid HR pixels of ``sr`` ``(..., C, sH, sW)``.

    ``valid_hr`` is ``(..., sH, sW)`` bool. Valid pixels are copied unchanged; returns a new array of
    ``sr``'s dtype (a non-finite ``fill`` needs a floating dtype), or ``sr`` itself, modified, with
    ``inplace=True`` (``sr`` must then be a writable numpy array).
    """
    a = _to_numpy(sr, "sr")
    v = _to_numpy(valid_hr, "valid_hr")
    if v.dtype != bool:
        raise ValueError(f"valid_hr must be a bool mask (True = valid), got dtype {v.dtype}")
    banded = _check_mask_layout(a, v, "sr", "valid_hr")
    if isinstance(fill, bool) or not isinstance(fill, (int, float, np.integer, np.floating)):
        raise ValueError(f"fill must be a number, got {fill!r}")
    if a.dtype.kind != "f" and not np.isfinite(fill):
        raise ValueError(
            f"fill={fill!r} cannot be stored in sr of dtype {a.dtype}; use a float sr or a finite fill"
        )
    out = a if (inplace and isinstance(sr, np.ndarray) and a is sr) else np.array(a, copy=True)
    bad = ~v[..., None, :, :] if banded else ~v
    np.copyto(out, np.asarray(fill, dtype=out.dtype), where=bad)  # broadcast: no band-sized mask
    return out


# -------------------------------------------------------------------------------------------- pipeline


def prepare_input(x: Any, *, nodata: float | int | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
    """Model input from raw data ``x`` ``(..., C, H, W)``: returns ``(filled, valid, all_invalid)``.

    ``valid`` = :func:`valid_mask` (all bands finite and ``!= nodata``); ``filled`` = :func:`fill_nodata`.
    When ``all_invalid`` is True the caller must skip the model and return nodata.
    """
    a = _to_numpy(x, "x")
    valid = valid_mask(a, nodata=nodata)
    filled, all_invalid = fill_nodata(a, valid)
    return filled, valid, all_invalid


def finalize_output(
    sr: Any, valid: Any, scale: int, *, dilate: int = 0, fill: float | int = np.nan, inplace: bool = False
) -> np.ndarray:
    """Put nodata back on the model output ``sr`` ``(..., C_out, sH, sW)``.

    ``valid`` is the LR mask ``(..., H, W)`` from :func:`prepare_input`; its invalid region is grown by
    ``dilate`` LR pixels (:func:`dilate_invalid`, e.g. to drop pixels whose receptive field saw filled
    values), upsampled (:func:`upsample_mask`) and written as ``fill`` (:func:`restore_nodata`; into ``sr``
    itself with ``inplace=True``). When every pixel is valid, ``sr`` itself is returned (no copy).
    """
    scale = check_int("scale", scale, 1)
    a = _to_numpy(sr, "sr")
    v = _to_numpy(valid, "valid")
    if v.dtype != bool:
        raise ValueError(f"valid must be a bool mask (True = valid), got dtype {v.dtype}")
    if v.ndim < 2 or a.shape[-2:] != (scale * v.shape[-2], scale * v.shape[-1]):
        raise ValueError(
            f"sr spatial size {a.shape[-2:]} is not scale={scale} times the valid mask's {v.shape[-2:]}"
        )
    if v.all():
        _check_mask_layout(a, np.broadcast_to(True, v.shape[:-2] + a.shape[-2:]), "sr", "valid_hr")
        return a
    return restore_nodata(a, upsample_mask(dilate_invalid(v, dilate), scale), fill, inplace=inplace)
