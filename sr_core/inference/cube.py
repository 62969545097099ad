"""xarray-facing super-resolution of data cubes: what the openEO UDFs and the CLI run.

Everything between "an ``xarray.DataArray`` as an openEO back-end hands it to a UDF" and "the model" lives here:
dims validation, band selection by name, DN <-> reflectance, recovery of the native grid of nearest-resampled
input (``resampled`` mode), nodata masking/filling/restoring, seamless whole-chunk or tiled inference, HR
coordinates (``upscale`` mode), the overlap check, and the multi-image (MISR) variant over ``t``. The UDF files
(``udf/sr_udf.py``, ``udf/misr_udf.py``) are thin adapters around :func:`udf_apply` / :func:`misr_udf_apply`.

Conventions
-----------
* Dims: ``(t, bands, y, x)`` or ``(bands, y, x)`` (any order accepted; the result keeps the input's order).
  ``y``/``x`` coordinates, when present, are cell centres, regularly spaced (``y`` usually decreasing).
* Band labels are matched by canonical name (``"B2"`` == ``"B02"``); labels that are not Sentinel-2 MSI bands
  (``"SCL"``, angles, ...) are *pass-through* bands.
* Values: DN in, DN out. Reflectance = ``(DN + add_offset) / dn_scale`` (CDSE ``SENTINEL2_L2A``: ``dn_scale``
  10000, ``add_offset`` 0). Computation in float32; the result is float64 for float64 input and float32 for
  every other dtype (integer input included: NaN nodata needs a float). Values are never clipped (negative
  or > 1 reflectance goes through the model as is).
* Nodata: NaN, or ``nodata`` if given. A pixel is valid when all its *model* bands are valid; invalid pixels
  are filled with the nearest valid pixel (== edge replication for the NaN strips a back-end pads cube
  borders with), the model runs, and invalid LR pixels (grown by ``dilate`` LR px, default 0) become NaN
  on their HR blocks. A sample without any valid pixel never reaches the network.
* Modes: ``resampled``: the input is on the output grid (``input_resolution / scale``) by nearest resampling;
  the native grid is recovered exactly (replicated ``scale x scale`` blocks, any phase; 20 m bands must be
  ``2*scale`` replicated) and the result has the input's shape. ``upscale``: the input is on the model's input
  grid; the result is ``scale`` times larger with cell-centre coordinates
  ``x_hr[k] = x_lr[0] - dx/2 + dx/(2 s) + k dx/s``; pass-through bands are nearest-upsampled.
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from sr_core.bands import BANDS, normalize_band_name
from sr_core.nodata import fill_nodata, finalize_output, valid_mask
from sr_core.radiometry import dn_to_reflectance, reflectance_to_dn
from sr_core.tiling import hr_coords, tiled_apply, whole_apply

if TYPE_CHECKING:  # pragma: no cover
    import xarray

__all__ = [
    "MODES",
    "ENGINES",
    "DEFAULT_DN_SCALE",
    "DEFAULT_ADD_OFFSET",
    "SCL_INVALID_DEFAULT",
    "NEIGHBORHOOD_MULTIPLE",
    "UdfOptions",
    "parse_context",
    "TilingWarning",
    "reset_warnings",
    "check_dims",
    "canonical_labels",
    "select_bands",
    "replication_mismatches",
    "replication_phase",
    "native_indices",
    "required_overlap",
    "recommended_neighborhood",
    "check_chunk",
    "superresolve_array",
    "superresolve_dataarray",
    "rescale_metadata",
    "check_predictor",
    "udf_apply",
    "MISRPredictor",
    "load_misr_predictor",
    "misr_dataarray",
    "misr_udf_apply",
]

MODES = ("resampled", "upscale")
ENGINES = ("onnx", "torch")
DEFAULT_DN_SCALE = 10000.0
DEFAULT_ADD_OFFSET = 0.0
#: SCL classes treated as invalid by the MISR UDF: 0 no data, 1 saturated/defective, 3 cloud shadow,
#: 8 cloud medium probability, 9 cloud high probability, 10 thin cirrus.
SCL_INVALID_DEFAULT = (0, 1, 3, 8, 9, 10)
#: apply_neighborhood size and overlap are rounded up to multiples of this (pixels).
NEIGHBORHOOD_MULTIPLE = 16
_SPATIAL = ("y", "x")
_CHUNK_ORDER = ("t", "bands", "y", "x")


# ------------------------------------------------------------------------------------------------ context


@dataclass(frozen=True)
class UdfOptions:
    """The validated UDF context. See :func:`parse_context` for the keys."""

    mode: str = "resampled"
    model: str | None = None
    engine: str = "onnx"
    dn_scale: float = DEFAULT_DN_SCALE
    add_offset: float = DEFAULT_ADD_OFFSET
    threads: int | None = None
    nodata: float | None = None
    overlap: int | None = None
    size: int | None = None
    tile: int | None = None
    dilate: int | str = 0
    # MISR only
    scl_invalid: tuple[int, ...] = SCL_INVALID_DEFAULT
    min_valid: float = 0.25


_SR_KEYS = ("mode", "model", "engine", "dn_scale", "add_offset", "threads", "nodata", "overlap", "size", "tile",
            "dilate")
_MISR_KEYS = _SR_KEYS + ("scl_invalid", "min_valid")


def _num(key: str, v: Any, *, positive: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
        raise ValueError(f"context[{key!r}] must be a finite number, got {v!r}")
    if positive and v <= 0:
        raise ValueError(f"context[{key!r}] must be > 0, got {v!r}")
    return float(v)


def _int_or_none(key: str, v: Any, minimum: int) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError(f"context[{key!r}] must be an integer >= {minimum} or null, got {v!r}")
    return int(v)


def parse_context(context: Mapping[str, Any] | None, *, kind: str = "sr") -> UdfOptions:
    """Validate a UDF ``context`` and fill in the defaults (which fit CDSE ``SENTINEL2_L2A``).

    Keys (all optional; an empty or missing context means all defaults):

    ``mode``        ``"resampled"`` (default) or ``"upscale"``.
    ``model``       shipped model name or package folder; default ``sr_core.models.DEFAULT_MODEL``.
    ``engine``      ``"onnx"`` (default, ONNX Runtime) or ``"torch"``.
    ``dn_scale``    reflectance = (DN + add_offset) / dn_scale; default 10000.
    ``add_offset``  default 0 (CDSE has already compensated the processing-baseline offset).
    ``threads``     intra-op threads of the engine (int >= 1); default null = the engine's default.
    ``nodata``      a nodata value besides NaN (number); default null (NaN only).
    ``overlap``     the apply_neighborhood overlap in chunk pixels, for the overlap check; default null.
    ``size``        the apply_neighborhood size in chunk pixels; default null. With ``overlap``, a chunk of
                    exactly ``size + 2 * overlap`` pixels is known to carry a context band that the back-end
                    discards: the network then runs only where its output is kept (see
                    :func:`superresolve_dataarray`). Chunks of any other shape are processed whole.
    ``tile``        run the chunk in tiles of this many model-grid pixels (int >= 1); default null = whole chunk.
    ``dilate``      grow nodata by this many model-grid pixels on the output (int >= 0), or ``"rf"`` = the
                    model's margin (drop every output pixel whose receptive field saw a filled value);
                    default 0.
    MISR only (``kind="misr"``): ``scl_invalid`` (list of SCL classes that invalidate a pixel, default
    [0, 1, 3, 8, 9, 10]) and ``min_valid`` (a date is used when at least this fraction of its pixels is
    valid, in [0, 1], default 0.25).

    Unknown keys and bad values raise ``ValueError`` listing the valid keys / values.
    """
    if kind not in ("sr", "misr"):
        raise ValueError(f"kind must be 'sr' or 'misr', got {kind!r}")
    keys = _SR_KEYS if kind == "sr" else _MISR_KEYS
    if context is None:
        context = {}
    if not isinstance(context, Mapping):
        raise ValueError(f"the UDF context must be a dict with keys {', '.join(keys)}; got {type(context).__name__}")
    unknown = sorted(str(k) for k in context if k not in keys)
    if unknown:
        raise ValueError(f"unknown UDF context key(s) {', '.join(unknown)}; valid keys: {', '.join(keys)}")
    c = dict(context)
    out: dict[str, Any] = {}
    mode = c.get("mode", "resampled")
    if mode not in MODES:
        raise ValueError(f"context['mode'] must be one of {', '.join(MODES)}, got {mode!r}")
    out["mode"] = mode
    model = c.get("model")
    if model is not None and (not isinstance(model, (str, os.PathLike)) or not str(model)):
        raise ValueError(f"context['model'] must be a model name or package path (string), got {model!r}")
    out["model"] = None if model is None else os.fspath(model)
    engine = c.get("engine", "onnx")
    if engine not in ENGINES:
        raise ValueError(f"context['engine'] must be one of {', '.join(ENGINES)}, got {engine!r}")
    out["engine"] = engine
    out["dn_scale"] = _num("dn_scale", c.get("dn_scale", DEFAULT_DN_SCALE), positive=True)
    out["add_offset"] = _num("add_offset", c.get("add_offset", DEFAULT_ADD_OFFSET))
    out["threads"] = _int_or_none("threads", c.get("threads"), 1)
    nodata = c.get("nodata")
    out["nodata"] = None if nodata is None else _num("nodata", nodata)
    out["overlap"] = _int_or_none("overlap", c.get("overlap"), 0)
    out["size"] = _int_or_none("size", c.get("size"), 1)
    out["tile"] = _int_or_none("tile", c.get("tile"), 1)
    dilate = c.get("dilate", 0)
    if dilate != "rf" and (isinstance(dilate, bool) or not isinstance(dilate, (int, np.integer)) or dilate < 0):
        raise ValueError(f"context['dilate'] must be an integer >= 0 or 'rf', got {dilate!r}")
    out["dilate"] = dilate if dilate == "rf" else int(dilate)
    if kind == "misr":
        scl = c.get("scl_invalid", list(SCL_INVALID_DEFAULT))
        if not isinstance(scl, (list, tuple)) or any(
            isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v <= 11 for v in scl
        ):
            raise ValueError(f"context['scl_invalid'] must be a list of SCL classes 0..11, got {scl!r}")
        out["scl_invalid"] = tuple(int(v) for v in scl)
        mv = _num("min_valid", c.get("min_valid", 0.25))
        if not 0.0 <= mv <= 1.0:
            raise ValueError(f"context['min_valid'] must be a fraction in [0, 1], got {mv!r}")
        out["min_valid"] = mv
    return UdfOptions(**out)


# ------------------------------------------------------------------------------------------------ warnings


class TilingWarning(UserWarning):
    """The apply_neighborhood chunk or overlap is too small for the model's receptive field."""


_WARNED: set[tuple] = set()
_WARN_LOCK = threading.Lock()


def reset_warnings() -> None:
    """Forget which warnings were given (they are given once per process and model)."""
    with _WARN_LOCK:
        _WARNED.clear()


def _warn_once(key: tuple, message: str) -> None:
    with _WARN_LOCK:
        if key in _WARNED:
            return
        _WARNED.add(key)
    warnings.warn(message, TilingWarning, stacklevel=3)


# ------------------------------------------------------------------------------------------------ dims / bands


def check_dims(da: "xarray.DataArray") -> tuple[str, ...]:
    """Validate the dims of a chunk: ``bands``, ``y``, ``x`` and optionally ``t``; returns ``da.dims``.

    Missing or unknown dims raise ``ValueError`` naming them; the ``bands`` dim must carry labels.
    """
    dims = tuple(str(d) for d in da.dims)
    missing = [d for d in ("bands", "y", "x") if d not in dims]
    unknown = [d for d in dims if d not in _CHUNK_ORDER]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing dim(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown dim(s) {', '.join(unknown)}")
        raise ValueError(
            f"expected a cube with dims (t, bands, y, x) or (bands, y, x); got dims {dims}: {'; '.join(parts)}"
        )
    if "bands" not in da.coords:
        raise ValueError("the 'bands' dim has no labels: band names are needed to select the model bands")
    for d in _SPATIAL:
        if da.sizes[d] < 1:
            raise ValueError(f"dim {d!r} is empty")
    return dims


def canonical_labels(labels: Sequence[Any]) -> list[str | None]:
    """Canonical Sentinel-2 name of each label (``None`` for pass-through labels like ``"SCL"``).

    Two labels naming the same band (``"B2"`` and ``"B02"``) raise ``ValueError``.
    """
    out: list[str | None] = []
    for lab in labels:
        try:
            out.append(normalize_band_name(str(lab)))
        except ValueError:
            out.append(None)
    names = [c for c in out if c is not None]
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise ValueError(f"band labels {[str(v) for v in labels]} name the same band twice: {', '.join(dup)}")
    return out


def select_bands(labels: Sequence[Any], bands: Sequence[str], *, model: str = "the model") -> list[int]:
    """Positions in ``labels`` of the bands ``bands`` (canonical or alias names), in the order of ``bands``.

    Missing bands raise ``ValueError`` naming the missing bands and the bands present.
    """
    canon = canonical_labels(labels)
    pos = {c: i for i, c in enumerate(canon) if c is not None}
    want = [normalize_band_name(b) for b in bands]
    missing = [b for b in want if b not in pos]
    if missing:
        raise ValueError(
            f"{model} needs bands {', '.join(want)}; missing: {', '.join(missing)}; "
            f"bands present: {', '.join(str(v) for v in labels) or 'none'}"
        )
    return [pos[b] for b in want]


# ------------------------------------------------------------------------------------------------ replication


def _block_first(n: int, factor: int, phase: int) -> np.ndarray:
    """For each index ``i < n`` the first in-range index of its block (blocks ``[phase + k f, ...)``)."""
    i = np.arange(n)
    return np.maximum(phase + np.floor_divide(i - phase, factor) * factor, 0)


def replication_mismatches(a: np.ndarray, factor: int, axis: int) -> list[int]:
    """For each phase ``p`` in ``0..factor-1``: how many neighbouring pairs ``(i - 1, i)`` along ``axis`` that lie
    in the same block ``[p + k*factor, p + (k+1)*factor)`` hold different values (partial blocks at both ends
    included; NaN equals NaN). Zero = nearest-replicated by ``factor`` with that phase.

    The pairs are compared once, residue ``i mod factor`` by residue (strided views of ``a``, no copy of ``a``;
    this runs on every UDF chunk): a pair crosses a block boundary of phase ``p`` exactly when ``i = p (mod
    factor)``, so phase ``p`` counts every differing pair but those of residue ``p``.
    """
    a = np.asarray(a)
    ax = axis % a.ndim
    n = a.shape[ax]
    if n < 2:
        return [0] * factor
    a = np.moveaxis(a, ax, 0)  # a view

    def count(b: np.ndarray, nan_equal: bool) -> list[int]:
        out = []
        for r in range(factor):
            pair = _residue_pairs(b, factor, r)
            if pair is None:
                out.append(0)
                continue
            prev, cur = pair
            diff = prev != cur
            if nan_equal:
                diff &= ~(np.isnan(prev) & np.isnan(cur))
            out.append(int(np.count_nonzero(diff)))
        total = sum(out)
        return [total - out[p] for p in range(factor)]

    bits = _bit_view(a)
    if bits is not None:
        # fast path: compare bit patterns (no NaN handling); exact whenever some phase has no difference at
        # all, otherwise (NaN payloads may differ) fall back to the float comparison below
        counts = count(bits, False)
        if min(counts) == 0:
            return counts
    return count(a, a.dtype.kind == "f")


def _residue_pairs(b: np.ndarray, factor: int, r: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The neighbour pairs ``(i - 1, i)`` along axis 0 of ``b`` with ``i = r (mod factor)``, ``1 <= i < n``, as two
    strided views (no copy); None when there is no such pair."""
    n = b.shape[0]
    first = r or factor
    if first >= n:
        return None
    return b[first - 1 : n - 1 : factor], b[first:n:factor]


def _bit_view(a: np.ndarray) -> np.ndarray | None:
    """``a`` (float32 / float64) viewed as unsigned integers of the same size (any strides), else None."""
    if a.dtype.kind == "f" and a.dtype.itemsize in (4, 8):
        return a.view(np.uint32 if a.dtype.itemsize == 4 else np.uint64)
    return None


def replication_phase(a: np.ndarray, factor: int, axis: int) -> int | None:
    """The phase (``0..factor-1``) of exact ``factor``-fold nearest replication of ``a`` along ``axis``, or
    ``None`` when no phase fits. Data constant along the axis fits every phase; the smallest is returned.

    The smallest phase whose :func:`replication_mismatches` count is zero, found without counting: the pairs of
    one residue are compared at a time, only as far as needed (phase 0 at x2 reads half of the pairs)."""
    a = np.asarray(a)
    ax = axis % a.ndim
    n = a.shape[ax]
    if n < 2:
        return 0
    a = np.moveaxis(a, ax, 0)  # a view

    def first_phase(b: np.ndarray, nan_equal: bool) -> int | None:
        equal: dict[int, bool] = {}  # residue r -> the pairs (i - 1, i), i = r (mod factor), are all equal

        def residue_equal(r: int) -> bool:
            if r not in equal:
                pair = _residue_pairs(b, factor, r)
                equal[r] = pair is None or bool(np.array_equal(*pair, equal_nan=nan_equal))
            return equal[r]

        for p in range(factor):  # phase p: every residue but p
            if all(residue_equal(r) for r in range(factor) if r != p):
                return p
        return None

    bits = _bit_view(a)
    if bits is not None:
        # bit patterns first, as replication_mismatches does; then floats (NaN equals NaN, -0 equals 0)
        p = first_phase(bits, False)
        if p is not None:
            return p
    return first_phase(a, a.dtype.kind == "f")


def native_indices(n: int, factor: int, phase: int) -> np.ndarray:
    """Indices (along an axis of length ``n``) of one pixel per native pixel, for blocks of ``factor`` with
    ``phase``: native pixel ``k`` covers ``[o + k f, o + (k+1) f)`` with ``o = phase`` if ``phase == 0`` else
    ``phase - factor`` (so a partial first block is kept). The first index of each block clipped to 0."""
    o = phase - factor if phase else 0
    m = -(-(n - o) // factor)
    return np.maximum(o + factor * np.arange(m), 0)


def _as_slice(idx: np.ndarray) -> slice | np.ndarray:
    """A regularly spaced index array as a slice (a view instead of a copy when indexing), else unchanged."""
    if idx.size >= 2:
        step = int(idx[1] - idx[0])
        if step > 0 and np.array_equal(np.diff(idx), np.full(idx.size - 1, step)):
            return slice(int(idx[0]), int(idx[-1]) + 1, step)
    elif idx.size == 1:
        return slice(int(idx[0]), int(idx[0]) + 1)
    return idx


def _resample_hint(scale: int, input_res: float) -> str:
    res = input_res / scale
    return (
        f"'resampled' mode needs the cube nearest-resampled from the native grids onto the {res:g} m output "
        f"grid: load_collection (20 m bands merged with resample_cube_spatial(method=\"near\")), then "
        f"resample_spatial(resolution={res:g}, method=\"near\"); for input on the {input_res:g} m grid use "
        f"mode 'upscale'"
    )


def _recover_grid(x: np.ndarray, labels: Sequence[str], predictor: Any) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Row and column indices of the model grid inside a nearest-resampled chunk ``x`` ``(T, C, H, W)``.

    Returns ``(rows, cols, off_y, off_x)`` where ``off`` (<= 0) is the HR offset of the first native pixel.
    Raises ``ValueError`` explaining ``resample_spatial(method="near")`` when the pixels are not replicated.
    """
    s = int(predictor.scale)
    input_res = float(getattr(getattr(predictor, "card", None), "input_resolution_m", 10.0) or 10.0)
    h, w = x.shape[-2:]
    phases: list[int] = []
    for axis, name in ((-2, "y"), (-1, "x")):
        # along x only one row per native block is read: the y check just proved the others are its copies
        p = replication_phase(x if axis == -2 else x[:, :, _as_slice(native_indices(h, s, phases[0]))], s, axis)
        if p is None:
            counts = replication_mismatches(x, s, axis)
            bad = [
                str(labels[c])
                for c in range(x.shape[1])
                if replication_phase(x[:, c], s, axis) is None
            ]
            raise ValueError(
                f"pixels are not {s}x{s} nearest-replicated along {name} (bands {', '.join(bad)}; "
                f"{min(counts)} neighbouring pixel pairs differ inside blocks of the best phase). "
                + _resample_hint(s, input_res)
            )
        phases.append(p)
    rows = native_indices(h, s, phases[0])
    cols = native_indices(w, s, phases[1])
    lr = x[:, :, _as_slice(rows)][:, :, :, _as_slice(cols)]
    # coarser bands (20 m, 60 m) must be replicated on the native grid as well
    by_ratio: dict[int, list[int]] = {}
    for c, lab in enumerate(labels):
        band = BANDS.get(str(lab))
        ratio = int(round(band.resolution / input_res)) if band is not None else 1
        if ratio > 1:
            by_ratio.setdefault(ratio, []).append(c)
    failed: list[tuple[int, str]] = []
    for ratio, chans in by_ratio.items():
        group = lr[:, _as_slice(np.asarray(chans))]
        if replication_phase(group, ratio, -2) is not None and replication_phase(group, ratio, -1) is not None:
            continue  # one common phase for all these bands: each band is replicated (the usual case)
        for c in chans:  # band by band (each may have its own phase)
            ok_y = replication_phase(lr[:, c], ratio, -2) is not None
            ok_x = replication_phase(lr[:, c], ratio, -1) is not None
            if not (ok_y and ok_x):
                band = BANDS[str(labels[c])]
                failed.append((c, f"{labels[c]} ({band.resolution} m: not {ratio * s}x{ratio * s} replicated)"))
    bad = [m for _, m in sorted(failed)]
    if bad:
        raise ValueError(
            f"bands {', '.join(bad)} are not nearest-resampled from their native grid. " + _resample_hint(s, input_res)
        )
    off_y = phases[0] - s if phases[0] else 0
    off_x = phases[1] - s if phases[1] else 0
    return rows, cols, off_y, off_x


# ------------------------------------------------------------------------------------------------ overlap


def _round_up(v: int, multiple: int) -> int:
    return int(-(-v // multiple) * multiple) if v > 0 else 0


def required_overlap(predictor: Any, mode: str) -> int:
    """Minimum apply_neighborhood overlap, in chunk pixels: the model's margin, times ``scale`` in
    ``resampled`` mode (the chunk is on the output grid there)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    m = int(predictor.margin)
    return m * int(predictor.scale) if mode == "resampled" else m


def recommended_neighborhood(
    predictor: Any, mode: str, *, size: int | None = None, multiple: int = NEIGHBORHOOD_MULTIPLE
) -> tuple[int, int]:
    """``(size, overlap)`` for apply_neighborhood, in chunk pixels, both multiples of ``multiple``.

    ``overlap`` = :func:`required_overlap` rounded up; ``size`` defaults to 256 model-grid pixels (512 chunk
    pixels in ``resampled`` mode at x2: the overlap, rounded up to a multiple of 16, then costs ~8 % extra
    network work for the default model instead of ~15 % at half that size) and is at least ``2 * overlap`` so
    that no more than half of every chunk is overlap.
    """
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise ValueError(f"multiple must be an integer >= 1, got {multiple!r}")
    overlap = _round_up(required_overlap(predictor, mode), multiple)
    if size is None:
        size = 256 * (int(predictor.scale) if mode == "resampled" else 1)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be an integer >= 1, got {size!r}")
    size = max(_round_up(size, multiple), 2 * overlap, multiple)
    return size, overlap


def check_chunk(predictor: Any, mode: str, shape: tuple[int, int], overlap: int | None) -> None:
    """Warn (once per process, model and problem) when a chunk of ``shape`` (chunk pixels) is smaller than
    the receptive field or the given ``overlap`` is smaller than :func:`required_overlap`; the message names
    the overlap to use. It never raises: such chunks are processed anyway."""
    name = getattr(getattr(predictor, "card", None), "name", "model")
    need = required_overlap(predictor, mode)
    size, rec = recommended_neighborhood(predictor, mode)
    f = int(predictor.scale) if mode == "resampled" else 1
    h, w = shape[0] // f, shape[1] // f
    rf = int(predictor.receptive_field)
    if overlap is not None and overlap < need:
        _warn_once(
            (name, mode, "overlap", overlap),
            f"apply_neighborhood overlap {overlap} px is smaller than the {need} px the model {name!r} needs "
            f"(receptive field {rf} px on its input grid, mode {mode!r}): chunks will show seams; use "
            f"overlap={rec} (and size={size}).",
        )
    if min(h, w) < rf:
        _warn_once(
            (name, mode, "small"),
            f"chunk of {shape[0]}x{shape[1]} px ({h}x{w} model-grid px) is smaller than the receptive field "
            f"({rf} px) of model {name!r}: processed with edge replication; use size={size} and "
            f"overlap={rec}.",
        )


# ------------------------------------------------------------------------------------------------ inference


def _dilation(dilate: int | str, predictor: Any) -> int:
    if dilate == "rf":
        return int(predictor.margin)
    if isinstance(dilate, bool) or not isinstance(dilate, (int, np.integer)) or dilate < 0:
        raise ValueError(f"dilate must be an integer >= 0 or 'rf', got {dilate!r}")
    return int(dilate)


def superresolve_array(
    lr: np.ndarray,
    predictor: Callable[[np.ndarray], np.ndarray],
    *,
    valid: np.ndarray | None = None,
    tile: int | None = None,
    dilate: int | str = 0,
    context: int = 0,
) -> np.ndarray:
    """Super-resolve reflectance ``lr`` ``(N, C, h, w)`` (the predictor's bands) with nodata handling.

    ``valid`` ``(N, h, w)`` bool (True = valid) defaults to "all bands finite". Invalid pixels are filled
    with the nearest valid pixel, samples without valid pixels are skipped, the model runs on the whole
    sample edge-padded by its margin (or in ``tile`` x ``tile`` tiles, same result), and invalid pixels
    (grown by ``dilate``) become NaN. Returns float32 ``(N, C_out, s*h, s*w)``.

    ``context`` (input px): a band of that width along every edge is context only, its output will be
    discarded by the caller (the overlap of an apply_neighborhood chunk). When ``context`` >= the model's
    margin (and ``tile`` is None) the model runs once on the inner part grown by the margin, without padding:
    the output inside the band is exact (identical to a run with padding: only real pixels are in the
    receptive field) and the band itself holds the nearest-upsampled input (cheap, radiometrically valid
    filler), which saves the padded border's network work (~35 % at the default chunk size).
    """
    x = np.asarray(lr, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"lr must be (N, C, H, W), got shape {x.shape}")
    s, m = int(predictor.scale), int(predictor.margin)
    n, _, h, w = x.shape
    if valid is None:
        valid = valid_mask(x)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != (n, h, w):
        raise ValueError(f"valid must have shape {(n, h, w)}, got {valid.shape}")
    c_out = len(getattr(predictor, "out_bands", ())) or None
    keep = valid.reshape(n, -1).any(axis=1)
    if not keep.any():
        c = c_out if c_out is not None else x.shape[1]
        return np.full((n, c, s * h, s * w), np.nan, dtype=np.float32)
    every = bool(keep.all())
    filled, _ = fill_nodata(x if every else x[keep], valid if every else valid[keep])
    filled = np.ascontiguousarray(filled, dtype=np.float32)
    if isinstance(context, bool) or not isinstance(context, (int, np.integer)) or context < 0:
        raise ValueError(f"context must be an integer >= 0, got {context!r}")
    ctx = int(context)
    if tile is None and ctx >= m and h > 2 * ctx and w > 2 * ctx:
        k = ctx - m  # input px of the band that not even the receptive field needs
        inner = filled[:, :, k : h - k, k : w - k]
        names = [normalize_band_name(b) for b in getattr(predictor, "bands", ())]
        outs = [normalize_band_name(b) for b in getattr(predictor, "out_bands", ())]
        src = [names.index(b) for b in outs] if names and outs else list(range(c_out or filled.shape[1]))
        core = np.asarray(predictor(np.ascontiguousarray(inner)), dtype=np.float32)
        y = np.empty((filled.shape[0], len(src), s * h, s * w), dtype=np.float32)
        y5 = y.reshape(y.shape[0], y.shape[1], h, s, s * w)  # a view: nearest upsampling writes the band only
        srcs = _as_slice(np.asarray(src))
        for rs, c0, c1 in ((slice(0, ctx), 0, w), (slice(h - ctx, h), 0, w),
                           (slice(ctx, h - ctx), 0, ctx), (slice(ctx, h - ctx), w - ctx, w)):
            # repeated along x, then broadcast over the s output rows of each input row (measured: 2.7x faster
            # than broadcasting into a (h, s, w, s) view, whose innermost axis is only s long)
            y5[:, :, rs, :, s * c0 : s * c1] = np.repeat(filled[:, srcs, rs, c0:c1], s, axis=-1)[:, :, :, None, :]
        # the model's output on the inner part: exact from m px inside its edge, i.e. on the non-context part
        y[:, :, s * ctx : s * (h - ctx), s * ctx : s * (w - ctx)] = core[:, :, s * m : s * (h - 2 * k - m),
                                                                         s * m : s * (w - 2 * k - m)]
    elif tile is None:
        y = whole_apply(predictor, filled, scale=s, margin=m)
    else:
        y = tiled_apply(predictor, filled, scale=s, tile=int(tile), margin=m)
    y = np.asarray(y, dtype=np.float32)
    # y is ours (a fresh model output or filler array): restore nodata in place
    y = finalize_output(y, valid[keep], s, dilate=_dilation(dilate, predictor), inplace=y.flags.writeable)
    if keep.all():
        return y.astype(np.float32, copy=False)
    out = np.full((n, y.shape[1], s * h, s * w), np.nan, dtype=np.float32)
    out[keep] = y
    return out


def _out_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def _nodata_valid(x: np.ndarray, nodata: float | None) -> np.ndarray:
    """``(T, h, w)`` validity of ``x`` ``(T, C, h, w)`` (float32 DN)."""
    return valid_mask(x, nodata=nodata)


def _as_tbyx(da: "xarray.DataArray") -> tuple["xarray.DataArray", bool]:
    order = [d for d in _CHUNK_ORDER if d in da.dims]
    return da.transpose(*order), "t" in da.dims


def _spatial_coords(work: "xarray.DataArray", factor: int) -> dict[str, Any]:
    coords: dict[str, Any] = {}
    for d in _SPATIAL:
        if d in work.coords:
            vals = np.asarray(work.coords[d].values)
            if factor == 1:
                coords[d] = vals
            else:
                if vals.size < 2:
                    raise ValueError(
                        f"cannot compute the {factor}x finer {d} coordinates of a chunk 1 pixel wide along {d} "
                        "(no pixel spacing); use a larger apply_neighborhood size"
                    )
                hr = hr_coords(vals.astype(np.float64), factor)
                coords[d] = hr.astype(vals.dtype, copy=False) if vals.dtype.kind == "f" else hr
    return coords


def _other_coords(work: "xarray.DataArray", drop_t: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, c in work.coords.items():
        if name in _SPATIAL or name == "bands" or (drop_t and name == "t"):
            continue
        if any(d in _SPATIAL for d in c.dims):
            continue  # 2-D spatial auxiliary coordinates do not survive a resolution change
        if drop_t and "t" in c.dims:
            continue
        out[name] = c
    return out


def superresolve_dataarray(
    da: "xarray.DataArray",
    *,
    predictor: Any,
    mode: str = "resampled",
    dn_scale: float = DEFAULT_DN_SCALE,
    add_offset: float = DEFAULT_ADD_OFFSET,
    nodata: float | None = None,
    tile: int | None = None,
    dilate: int | str = 0,
    overlap: int | None = None,
    size: int | None = None,
) -> "xarray.DataArray":
    """Super-resolve a chunk ``(t, bands, y, x)`` / ``(bands, y, x)`` of DN with ``predictor``.

    ``predictor`` is a :class:`sr_core.models.Predictor` (or anything with ``scale``, ``margin``,
    ``receptive_field``, ``bands``, ``out_bands`` and ``__call__(np (N, C, H, W)) -> np``). Output: the input's
    dims, band labels and band order; the model's ``out_bands`` super-resolved, every other band passed
    through (``resampled``: unchanged; ``upscale``: nearest-upsampled). See the module docstring for units,
    dtypes, nodata and coordinates. ``overlap`` (chunk px): the apply_neighborhood overlap, for
    :func:`check_chunk`. ``size`` (chunk px): the apply_neighborhood size; when both are given and the chunk
    measures exactly ``size + 2 * overlap`` along y and x, its overlap band (which the back-end discards) holds
    nearest-upsampled values instead of network output and the network runs only where its output is kept
    (see :func:`superresolve_array` ``context``); border chunks that a back-end delivers cut to the data cube
    (any other shape) are processed whole, so no kept pixel ever gets the filler.
    """
    import xarray as xr

    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    _num("dn_scale", dn_scale, positive=True)
    _num("add_offset", add_offset)
    if nodata is not None:
        _num("nodata", nodata)
    in_dims = check_dims(da)
    name = getattr(getattr(predictor, "card", None), "name", "the model")
    labels = [str(v) for v in np.asarray(da.coords["bands"].values)]
    idx = select_bands(labels, predictor.bands, model=f"model {name!r}")
    canon = canonical_labels(labels)
    out_pos = {normalize_band_name(b): k for k, b in enumerate(predictor.out_bands)}
    s = int(predictor.scale)
    work, has_t = _as_tbyx(da)
    vals = np.asarray(work.values)
    if vals.dtype.kind not in "biuf":
        raise ValueError(f"cube values must be numeric, got dtype {vals.dtype}")
    arr = vals if has_t else vals[None]  # (T, B, H, W)
    t, b, h, w = arr.shape
    check_chunk(predictor, mode, (h, w), overlap)
    sel = _as_slice(np.asarray(idx))
    x = (arr[:, sel] if isinstance(sel, slice) else np.take(arr, idx, axis=1)).astype(np.float32, copy=False)  # DN, (T, C, H, W)
    model_labels = [canon[i] for i in idx]

    if mode == "resampled":
        rows, cols, off_y, off_x = _recover_grid(x, model_labels, predictor)
        x_lr = x[:, :, _as_slice(rows)][:, :, :, _as_slice(cols)]
    else:
        x_lr = x
    valid = _nodata_valid(x_lr, nodata)
    refl = dn_to_reflectance(x_lr, dn_scale=dn_scale, add_offset=add_offset)
    # the apply_neighborhood overlap is context only (the back-end discards it): in model-grid px, every
    # model-grid pixel of the band lies wholly inside the chunk's overlap whatever the block phase
    full = overlap is not None and size is not None and (h, w) == (size + 2 * overlap,) * 2
    context = 0 if not (full and overlap) else (overlap // s if mode == "resampled" else overlap)
    sr = superresolve_array(refl, predictor, valid=valid, tile=tile, dilate=dilate, context=context)
    sr = reflectance_to_dn(sr, dn_scale=dn_scale, add_offset=add_offset, inplace=True)  # NaN stays NaN
    if mode == "resampled":
        sr = sr[:, :, -off_y : -off_y + h, -off_x : -off_x + w]
        f = 1
    else:
        f = s
    odt = _out_dtype(vals.dtype)
    if sr.shape == (t, b, f * h, f * w) and sr.dtype == odt and all(out_pos.get(c) == k for k, c in enumerate(canon)):
        out = sr  # every band is an output band, in the model's order: sr (ours) is the result, no copy
    else:
        out = np.empty((t, b, f * h, f * w), dtype=odt)
        for k in range(b):
            c = canon[k]
            if c is not None and c in out_pos:
                out[:, k] = sr[:, out_pos[c]]
            else:
                band = arr[:, k]
                if f > 1:
                    band = np.repeat(np.repeat(band, f, axis=-2), f, axis=-1)
                out[:, k] = band
    if not has_t:
        out = out[0]
    coords = _other_coords(work)
    coords["bands"] = work.coords["bands"].values
    coords.update(_spatial_coords(work, f))
    res = xr.DataArray(out, dims=work.dims, coords=coords, name=da.name, attrs=dict(da.attrs))
    return res.transpose(*in_dims)


def rescale_metadata(metadata: Any, scale: int) -> Any:
    """openEO ``CubeMetadata`` with the spatial resolution (``step``) divided by ``scale`` (``upscale`` mode).

    Dimensions without a known step, or metadata without spatial dimensions, are returned unchanged.
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale!r}")
    if metadata is None or scale == 1:
        return metadata
    try:
        dims = list(metadata.spatial_dimensions)
    except Exception:  # noqa: BLE001 - metadata without spatial dims: nothing to rescale
        return metadata
    if len(dims) != 2:
        return metadata
    steps = tuple((float(d.step) / scale) if d.step not in (None, 0) else 0.0 for d in dims)
    return metadata.resample_spatial(resolution=steps)


_CHECKED: set[int] = set()


def check_predictor(predictor: Any) -> None:
    """Run ``predictor`` once on a small constant input and check its output against its card: band count
    (``out_bands``) and scale. A mismatch raises ``sr_core.models.ModelFileError`` naming the model file and
    what does not match. Checked once per predictor object (predictors are cached per process)."""
    if id(predictor) in _CHECKED:
        return
    from sr_core.models import ModelFileError

    card = predictor.card
    c, s, n = len(predictor.bands), int(predictor.scale), int(predictor.receptive_field)
    x = np.broadcast_to(np.asarray(card.mean, np.float32)[None, :, None, None], (1, c, n, n)).copy()
    y = np.asarray(predictor(x))
    want = (1, len(predictor.out_bands), s * n, s * n)
    if y.shape != want:
        where = card.files.get("onnx" if getattr(predictor, "engine", "onnx") == "onnx" else "weights", "model file")
        got_scale = y.shape[-1] / n if y.ndim == 4 else float("nan")
        raise ModelFileError(
            f"model {card.name!r}: {where} produces output shape {y.shape} for input (1, {c}, {n}, {n}), i.e. "
            f"{y.shape[1] if y.ndim == 4 else '?'} bands at x{got_scale:g}; card.json says {len(predictor.out_bands)} "
            f"out_bands {list(predictor.out_bands)} at scale {s}"
        )
    _CHECKED.add(id(predictor))


def udf_apply(cube: "xarray.DataArray", context: Mapping[str, Any] | None) -> "xarray.DataArray":
    """The whole ``apply_datacube`` of ``udf/sr_udf.py``: parse the context, load the model (cached per worker
    process by :func:`sr_core.models.load_predictor`, checked once by :func:`check_predictor`), super-resolve
    the chunk."""
    opts = parse_context(context, kind="sr")
    from sr_core.models import load_predictor

    predictor = load_predictor(opts.model, engine=opts.engine, threads=opts.threads)
    check_predictor(predictor)
    return superresolve_dataarray(
        cube,
        predictor=predictor,
        mode=opts.mode,
        dn_scale=opts.dn_scale,
        add_offset=opts.add_offset,
        nodata=opts.nodata,
        tile=opts.tile,
        dilate=opts.dilate,
        overlap=opts.overlap,
        size=opts.size,
    )


# ------------------------------------------------------------------------------------------------ MISR


class MISRPredictor:
    """Multi-image inference: ``predictor(lr (N, T, C, H, W) float32 reflectance, mask (N, T) bool) -> np``.

    ``frames`` is the number of revisits the engine accepts at most (``None`` = any); with ``fixed=True``
    exactly ``frames`` revisits are fed (fewer are completed with unusable dummy revisits, mask False).
    """

    def __init__(self, card: Any, fn: Callable[[np.ndarray, np.ndarray], np.ndarray], engine: str,
                 frames: int | None = None, fixed: bool = False) -> None:
        self.card = card
        self._fn = fn
        self.engine = engine
        self.frames = frames
        self.fixed = fixed
        self.scale = int(card.scale)
        self.bands = tuple(card.bands)
        self.out_bands = tuple(card.out_bands)
        from sr_core.models import resolve_postprocess

        # the card's post-processing (a misr_sisr package takes over its single-image model's) runs on the anchor
        self._coarse, self.receptive_field, self.margin = resolve_postprocess(card)

    def __call__(self, lr: np.ndarray, mask: np.ndarray) -> np.ndarray:
        lr = np.ascontiguousarray(lr, dtype=np.float32)
        mask = np.asarray(mask, dtype=bool)
        if lr.ndim != 5 or lr.shape[2] != len(self.bands):
            raise ValueError(
                f"model {self.card.name!r} expects (N, T, {len(self.bands)}, H, W) with bands {list(self.bands)}, "
                f"got shape {lr.shape}"
            )
        if mask.shape != lr.shape[:2]:
            raise ValueError(f"mask must have shape {lr.shape[:2]}, got {mask.shape}")
        t = lr.shape[1]
        if self.frames is not None and t > self.frames:
            raise ValueError(f"model {self.card.name!r} takes at most {self.frames} revisits, got {t}")
        if self.fixed and t < self.frames:
            pad = self.frames - t
            lr = np.concatenate([lr, np.zeros(lr.shape[:1] + (pad,) + lr.shape[2:], np.float32)], axis=1)
            mask = np.concatenate([mask, np.zeros((mask.shape[0], pad), bool)], axis=1)
        from sr_core.models import apply_postprocess

        return apply_postprocess(self._coarse, self._fn(lr, mask), np.ascontiguousarray(lr[:, 0]), self.scale)


_MISR_CACHE: dict[tuple, MISRPredictor] = {}
_MISR_LOCK = threading.Lock()


def load_misr_predictor(
    name_or_path: str | os.PathLike | None = None, *, engine: str = "onnx", threads: int | None = None
) -> MISRPredictor:
    """A cached :class:`MISRPredictor` for a multi-image model package (HighRes-net, RAMS).

    ``torch``: the package's weights (``model.pt``) through ``sr_core.models.load_torch_model``; the network is
    called as ``net((lr - mean) / std, mask) * std + mean``. ``onnx``: the package's ONNX file, which must have
    the inputs ``lr`` ``(N, T, C, H, W)`` and ``mask`` ``(N, T)`` (bool or float 0/1); a fixed ``T`` in the file
    is respected (fewer revisits are padded with unusable ones).
    """
    from sr_core import models

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    folder = models.resolve_model(name_or_path)
    key = (str(folder), engine, threads, (folder / "card.json").stat().st_mtime_ns)
    with _MISR_LOCK:
        if key in _MISR_CACHE:
            return _MISR_CACHE[key]
        pred = _build_misr(folder, engine, threads)
        _MISR_CACHE[key] = pred
        return pred


def _build_misr(folder: Any, engine: str, threads: int | None) -> MISRPredictor:
    from sr_core import models

    if engine == "torch":
        import torch

        model, card = models.load_torch_model(folder)
        frames = card.arch_kwargs.get("num_frames") if card.arch == "rams" else None

        def run_torch(lr: np.ndarray, mask: np.ndarray) -> np.ndarray:
            if threads is not None:
                torch.set_num_threads(int(threads))
            with torch.inference_mode():
                x = (torch.from_numpy(lr) - model.mean) / model.std
                y = model.net(x, torch.from_numpy(mask)) * model.out_std + model.out_mean
            return y.float().numpy()

        return MISRPredictor(card, run_torch, "torch", frames=frames)

    import onnxruntime as ort

    card = models.load_card(folder, verify=True, role="onnx")
    if "onnx" not in card.files:
        raise models.ModelFileError(f"model {card.name!r}: card.json names no ONNX file (use engine='torch')")
    path = folder / card.files["onnx"]
    opts = models.ort_session_options(threads)
    try:
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - ORT raises its own exception types
        raise models.ModelFileError(f"model {card.name!r}: cannot load ONNX file {path}: {e}") from e
    ins = {i.name: i for i in sess.get_inputs()}
    if set(ins) != {"lr", "mask"} or len(ins["lr"].shape) != 5 or ins["lr"].shape[2] != len(card.bands):
        raise models.ModelFileError(
            f"model {card.name!r}: {path} must have inputs lr (N, T, {len(card.bands)}, H, W) and mask (N, T); "
            f"has {[(i.name, i.shape) for i in sess.get_inputs()]}"
        )
    t_dim = ins["lr"].shape[1]
    fixed = isinstance(t_dim, int)
    mask_type = ins["mask"].type

    def run_onnx(lr: np.ndarray, mask: np.ndarray) -> np.ndarray:
        m = mask if mask_type == "tensor(bool)" else mask.astype(np.float32)
        return sess.run(None, {"lr": lr, "mask": m})[0]

    frames = t_dim if fixed else (card.arch_kwargs.get("num_frames") if card.arch == "rams" else None)
    return MISRPredictor(card, run_onnx, "onnx", frames=frames, fixed=fixed)


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


#: Default multi-image model package of the MISR UDF.
DEFAULT_MISR_MODEL = "s2sr-misr-x2"
#: Context keys of the MISR UDF on top of :func:`parse_context` ``kind="misr"``.
_MISR_EXTRA_KEYS = ("anchor", "sisr_model")


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
        rows, cols, off_y, off_x = _recover_grid(x, [canon[i] for i in idx], predictor)
        rows, cols = _as_slice(rows), _as_slice(cols)
        x = x[:, :, rows][:, :, :, cols]
        if scl is not None:
            scl = scl[:, rows][:, :, cols]
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
    sr = None
    if sr is None and used.size == 0:
        sr = np.full((1, c_out, s * hh, s * ww), np.nan, np.float32)
    elif sr is None:
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
        sr_dn = sr_dn[:, -off_y : -off_y + h, -off_x : -off_x + w]
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


def parse_misr_context(context: Mapping[str, Any] | None) -> tuple[UdfOptions, dict[str, Any]]:
    """:func:`parse_context` ``kind="misr"`` with the MISR defaults and extra keys.

    ``model`` defaults to :data:`DEFAULT_MISR_MODEL`. Extra keys: ``anchor`` (``"clearest"`` default,
    ``"latest"``, ``"first"``, a date index or a date label / prefix) and ``sisr_model`` (the single-image model
    of the single-date fallback; default ``sr_core.models.DEFAULT_MODEL``; null = the MISR network on one frame).
    Returns ``(options, extras)``.
    """
    if context is not None and not isinstance(context, Mapping):
        raise ValueError(f"the UDF context must be a dict, got {type(context).__name__}")
    c = dict(context or {})
    extras = {k: c.pop(k) for k in _MISR_EXTRA_KEYS if k in c}
    c.setdefault("model", DEFAULT_MISR_MODEL)
    try:
        opts = parse_context(c, kind="misr")
    except ValueError as e:
        if "unknown UDF context key" in str(e):
            raise ValueError(f"{e}, {', '.join(_MISR_EXTRA_KEYS)}") from None
        raise
    anc = extras.get("anchor", "clearest")
    if isinstance(anc, bool) or not isinstance(anc, (str, int, np.integer)) or (isinstance(anc, str) and not anc):
        raise ValueError(f"context['anchor'] must be 'clearest', 'latest', 'first', a date index or a date label, "
                         f"got {anc!r}")
    extras["anchor"] = anc
    sm = extras.get("sisr_model", "__default__")
    if sm is not None and sm != "__default__" and (not isinstance(sm, (str, os.PathLike)) or not str(sm)):
        raise ValueError(f"context['sisr_model'] must be a model name or package path, or null; got {sm!r}")
    extras["sisr_model"] = sm
    return opts, extras


def misr_udf_apply(cube: "xarray.DataArray", context: Mapping[str, Any] | None) -> "xarray.DataArray":
    """The whole ``apply_datacube`` of ``udf/misr_udf.py`` (context: :func:`parse_misr_context`)."""
    opts, extras = parse_misr_context(context)
    predictor = load_misr_predictor(opts.model, engine=opts.engine, threads=opts.threads)
    sm = extras["sisr_model"]

    def _sisr() -> Any:
        from sr_core.models import DEFAULT_MODEL, load_predictor

        name = DEFAULT_MODEL if sm == "__default__" else sm
        return None if name is None else load_predictor(name, engine=opts.engine, threads=opts.threads)

    kw = dict(predictor=predictor, mode=opts.mode, dn_scale=opts.dn_scale, add_offset=opts.add_offset,
              nodata=opts.nodata, scl_invalid=opts.scl_invalid, min_valid=opts.min_valid, tile=opts.tile,
              dilate=opts.dilate, overlap=opts.overlap, anchor=extras["anchor"])
    return misr_dataarray(cube, sisr=_LazySISR(_sisr) if sm is not None else None, **kw)


class _LazySISR:
    """Loads the single-image fallback model only when a chunk needs it."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._p: Any = None

    def _get(self) -> Any:
        if self._p is None:
            self._p = self._factory()
        return self._p

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._get()(x)
