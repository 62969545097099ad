"""The openEO UDF context contract: the ``context`` keys of the UDFs, their checks and defaults, and the whole
``apply_datacube`` / ``apply_metadata`` logic behind ``udf/sr_udf.py`` and ``udf/misr_udf.py``.

The UDF files are thin adapters around :func:`udf_apply` / :func:`misr_udf_apply` (and :func:`rescale_metadata`,
:func:`~sr_core.inference.cube.canonical_labels` for ``apply_metadata``): a context is validated into
:class:`UdfOptions`, the model package is loaded (cached per worker process by :mod:`sr_core.models`) and the
chunk goes to :func:`sr_core.inference.cube.superresolve_dataarray` or
:func:`sr_core.inference.misr.misr_dataarray`. This module is shipped to back-ends in the code archive
(``udf/archive.py``) with ``sr_core``; it imports neither torch nor ONNX Runtime.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from sr_core.inference.cube import (
    DEFAULT_ADD_OFFSET,
    DEFAULT_DN_SCALE,
    MODES,
    canonical_labels,
    check_number,
    superresolve_dataarray,
)
from sr_core.inference.misr import SCL_INVALID_DEFAULT, misr_dataarray
from sr_core.models import (
    DEFAULT_MISR_MODEL,
    DEFAULT_MODEL,
    DEFAULT_RESOLUTION,
    ENGINES,
    check_model_resolution,
    check_predictor,
    check_resolution,
    load_card,
    load_misr_predictor,
    load_predictor,
    pick_model,
)
from sr_core.models.choice import auto_model_bands
from sr_core.models.engines import MAX_THREADS

if TYPE_CHECKING:  # pragma: no cover
    import xarray

__all__ = [
    "UdfOptions",
    "canonical_labels",  # the band-label matching of the UDFs' apply_metadata
    "context_model",
    "misr_udf_apply",
    "parse_context",
    "parse_misr_context",
    "rescale_metadata",
    "udf_apply",
    "udf_metadata",
]

#: Context keys of the MISR UDF on top of :func:`parse_context` ``kind="misr"``.
_MISR_EXTRA_KEYS = ("anchor", "sisr_model")


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
    # single-image only
    resolution: float | None = None
    # MISR only
    scl_invalid: tuple[int, ...] = SCL_INVALID_DEFAULT
    min_valid: float = 0.25


_COMMON_KEYS = ("mode", "model", "engine", "dn_scale", "add_offset", "threads", "nodata", "overlap", "size", "tile",
                "dilate")
_SR_KEYS = _COMMON_KEYS + ("resolution",)
_MISR_KEYS = _COMMON_KEYS + ("scl_invalid", "min_valid")


def _int_or_none(key: str, v: Any, minimum: int, maximum: int | None = None) -> int | None:
    if v is None:
        return None
    too_big = maximum is not None and isinstance(v, (int, np.integer)) and v > maximum
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum or too_big:
        bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise ValueError(f"context[{key!r}] must be an integer {bound} or null, got {v!r}")
    return int(v)


def parse_context(context: Mapping[str, Any] | None, *, kind: str = "sr") -> UdfOptions:
    """Validate a UDF ``context`` and fill in the defaults (which fit CDSE ``SENTINEL2_L2A``).

    Keys (all optional; an empty or missing context means all defaults):

    ``mode``        ``"resampled"`` (default) or ``"upscale"``.
    ``model``       shipped model name or package folder; default (null) the shipped model of ``resolution`` whose
                    bands the chunk holds (:func:`sr_core.models.pick_model`; 5 m: the 10 bands ->
                    ``sr_core.models.DEFAULT_MODEL``, B02, B03, B04, B08 alone -> ``sr_core.models.RGBN_MODEL``;
                    10 m: the 10 bands -> ``sr_core.models.SHARPEN_MODEL``).
    ``resolution``  (``kind="sr"``) the output pixel size in metres: 5 (x2, all model bands super-resolved) or 10
                    (the 20 m bands sharpened onto the 10 m grid, the 10 m bands unchanged: the chunk keeps the
                    10 m grid in both modes); default null = the named model's own, 5 for the automatic choice.
                    With ``model`` named, a resolution the model does not output is refused (``ValueError``).
    ``engine``      ``"onnx"`` (default, ONNX Runtime) or ``"torch"``.
    ``dn_scale``    reflectance = (DN + add_offset) / dn_scale; default 10000.
    ``add_offset``  default 0 (CDSE has already compensated the processing-baseline offset).
    ``threads``     intra-op threads of the engine (int, 1 to ``sr_core.models.engines.MAX_THREADS`` = 1024);
                    default null = the engine's default.
    ``nodata``      a nodata value besides NaN (number); default null (NaN only).
    ``overlap``     the apply_neighborhood overlap in chunk pixels, for the overlap check; default null.
    ``size``        the apply_neighborhood size in chunk pixels; default null. With ``overlap``, a chunk of
                    exactly ``size + 2 * overlap`` pixels is known to carry a context band that the back-end
                    discards: the network then runs only where its output is kept (see
                    :func:`sr_core.inference.cube.superresolve_dataarray`). Chunks of any other shape are
                    processed whole.
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
    out["dn_scale"] = check_number("dn_scale", c.get("dn_scale", DEFAULT_DN_SCALE), positive=True)
    out["add_offset"] = check_number("add_offset", c.get("add_offset", DEFAULT_ADD_OFFSET))
    out["threads"] = _int_or_none("threads", c.get("threads"), 1, MAX_THREADS)
    nodata = c.get("nodata")
    out["nodata"] = None if nodata is None else check_number("nodata", nodata)
    out["overlap"] = _int_or_none("overlap", c.get("overlap"), 0)
    out["size"] = _int_or_none("size", c.get("size"), 1)
    out["tile"] = _int_or_none("tile", c.get("tile"), 1)
    if kind == "sr":
        res = c.get("resolution")
        out["resolution"] = None if res is None else check_resolution(res, name="context['resolution']")
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
        mv = check_number("min_valid", c.get("min_valid", 0.25))
        if not 0.0 <= mv <= 1.0:
            raise ValueError(f"context['min_valid'] must be a fraction in [0, 1], got {mv!r}")
        out["min_valid"] = mv
    return UdfOptions(**out)


def parse_misr_context(context: Mapping[str, Any] | None) -> tuple[UdfOptions, dict[str, Any]]:
    """:func:`parse_context` ``kind="misr"`` with the MISR defaults and extra keys.

    ``model`` defaults to :data:`sr_core.models.DEFAULT_MISR_MODEL`. Extra keys: ``anchor`` (``"clearest"`` default,
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


def context_model(opts: UdfOptions, bands: Any = None) -> str:
    """The model a single-image UDF runs: ``opts.model``, or when None the shipped model of ``opts.resolution``
    (default 5 m) whose bands are among ``bands`` (:func:`sr_core.models.pick_model`). Without band labels
    (``bands`` None) the first automatic model of that resolution (5 m: the default model), whose band check
    then names what is missing. The caller checks a named model against ``opts.resolution``
    (:func:`_check_resolution`)."""
    if opts.model is not None:
        return opts.model
    res = DEFAULT_RESOLUTION if opts.resolution is None else opts.resolution
    if bands is not None:
        return pick_model(bands, resolution=res)
    if res == DEFAULT_RESOLUTION:
        return DEFAULT_MODEL
    names = list(auto_model_bands(resolution=res))
    return names[0] if names else pick_model((), resolution=res)  # the error naming the resolutions offered


def _check_resolution(card: Any, opts: UdfOptions) -> None:
    """``ValueError`` when the model of ``card`` does not output ``context['resolution']`` (when given)."""
    check_model_resolution(card, opts.resolution, name="context['resolution']")


def _metadata_bands(metadata: Any) -> list[str] | None:
    try:
        names = list(metadata.band_names)
    except Exception:  # noqa: BLE001 - metadata without a band dimension: no labels to choose the model by
        return None
    return names or None


def udf_metadata(metadata: Any, context: Mapping[str, Any] | None) -> Any:
    """The whole ``apply_metadata`` of ``udf/sr_udf.py``: the cube metadata after the UDF. ``resampled`` mode and
    models of scale 1 (``resolution`` 10) keep the grid; ``upscale`` divides the resolution by the scale of the
    model the context resolves to (:func:`context_model`, by the metadata's band names when it has them)."""
    opts = parse_context(context, kind="sr")
    if opts.mode != "upscale":
        return metadata
    try:
        name = context_model(opts, _metadata_bands(metadata))
    except ValueError:  # bands no model fits: the chunks report that; the scale is the resolution's model's
        name = context_model(opts)
    card = load_card(name, verify=False)
    _check_resolution(card, opts)
    return rescale_metadata(metadata, int(card.scale))


def udf_apply(cube: "xarray.DataArray", context: Mapping[str, Any] | None) -> "xarray.DataArray":
    """The whole ``apply_datacube`` of ``udf/sr_udf.py``: parse the context, load the model (cached per worker
    process by :func:`sr_core.models.load_predictor`, checked once by :func:`sr_core.models.check_predictor`),
    super-resolve the chunk."""
    opts = parse_context(context, kind="sr")
    bands = cube.coords["bands"].values if "bands" in cube.coords else None
    predictor = load_predictor(context_model(opts, bands), engine=opts.engine, threads=opts.threads)
    check_predictor(predictor)
    _check_resolution(predictor.card, opts)
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


def misr_udf_apply(cube: "xarray.DataArray", context: Mapping[str, Any] | None) -> "xarray.DataArray":
    """The whole ``apply_datacube`` of ``udf/misr_udf.py`` (context: :func:`parse_misr_context`)."""
    opts, extras = parse_misr_context(context)
    predictor = load_misr_predictor(opts.model, engine=opts.engine, threads=opts.threads)
    sm = extras["sisr_model"]

    def _sisr() -> Any:
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
