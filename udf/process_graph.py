"""The openEO process graph that runs the super-resolution UDF on a back-end (built with the openeo client).

Graph (``build_process_graph``)::

    load_collection(SENTINEL2_L2A, 10 m model bands)                       -> cube10
    load_collection(SENTINEL2_L2A, 20 m model bands + extra bands (SCL))    -> resample_cube_spatial(cube10,
                                                                               method="near") -> merge_cubes
    [resampled mode, scale > 1] resample_spatial(resolution=10/scale, method="near")
    apply_neighborhood(run_udf(udf/sr_udf.py, runtime, context), size, overlap)   # size/overlap from the
                                                                                  # model's receptive field
    save_result(GTiff | netCDF)

* ``resampled`` (default, portable): the UDF keeps the chunk shape, runtime ``Python``.
* ``upscale``: the UDF returns chunks ``scale`` times larger, which only the geopyspark back-end accepts, with
  runtime ``Python-Jep``; ``size``/``overlap`` are on the 10 m grid.
* A model of scale 1 (``resolution`` 10: :data:`sr_core.models.SHARPEN_MODEL`, the 20 m bands sharpened onto the
  10 m grid) keeps the 10 m grid in both modes: no ``resample_spatial``, chunks of the model's input grid.

The context embedded in ``run_udf`` names the model by its card name (the archive built by ``s2sr
udf-archive`` ships it as ``sr_core/weights/<name>``) and its output resolution (single-image graphs), and passes
the overlap so that the UDF can check it.
Every option is checked before the graph is built (nothing reaches a back-end that it would refuse after the
job was paid for): the area, the dates against the collection's first acquisition (:data:`COLLECTION_START`),
the extra bands against the collection's band names (:func:`check_extra_bands`), the MISR ``anchor``
(:func:`check_anchor`), and the UDF context with the UDF's own parser (:mod:`udf.contract`).

No connection is needed: ``connection=None`` builds the graph offline (``DataCube.load_collection(...,
connection=None)``); with a connection the same graph is bound to it (``cube.create_job(job_options=...)``).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np

from sr_core.bands import BANDS, normalize_band_name
from sr_core.inference.cube import MODES, NEIGHBORHOOD_MULTIPLE, recommended_neighborhood, required_overlap
from sr_core.models import model_resolution, resolve_postprocess
from sr_core.models.engines import check_threads

__all__ = [
    "UDF_PATH",
    "MISR_UDF_PATH",
    "FORMATS",
    "udf_code",
    "neighborhood_for",
    "build_process_graph",
    "superresolution_cube",
    "check_anchor",
    "check_bbox",
    "check_dates",
    "check_extra_bands",
    "graph_model",
    "default_extra_bands",
    "AUX_BANDS",
    "COLLECTION_START",
    "DEFAULT_COLLECTION",
    "DEFAULT_EXTRA_BANDS",
    "process_graph_json",
    "job_options",
]

UDF_PATH = Path(__file__).resolve().parent / "sr_udf.py"
MISR_UDF_PATH = Path(__file__).resolve().parent / "misr_udf.py"
FORMATS = ("GTiff", "netCDF")
DEFAULT_COLLECTION = "SENTINEL2_L2A"
#: Bands loaded with the 20 m bands and passed through by the UDF (the L2A scene classification).
DEFAULT_EXTRA_BANDS = ("SCL",)
#: Sentinel-2A's launch: no Sentinel-2 collection has data before it.
SENTINEL2_LAUNCH = "2015-06-23"
#: The first date each collection has data for (a start before it is refused; other collections: the launch).
#: CDSE's L2A collection begins on 2017-03-28, its L1C collection with the mission
#: (docs/decisions/2026-12-06-graph-option-checks.md).
COLLECTION_START = {"SENTINEL2_L1C": SENTINEL2_LAUNCH, "SENTINEL2_L2A": "2017-03-28"}
#: Band names of the collections besides the spectral bands (ESA products and Sentinel Hub layers on CDSE).
_ANGLES = ("sunAzimuthAngles", "sunZenithAngles", "viewAzimuthMean", "viewZenithMean")
AUX_BANDS = {
    "SENTINEL2_L1C": ("CLP", "CLM", "dataMask", *_ANGLES),
    "SENTINEL2_L2A": ("SCL", "AOT", "WVP", "CLD", "SNW", "CLP", "CLM", "dataMask", *_ANGLES),
}


def udf_code(kind: str = "sr") -> str:
    """The UDF source embedded in ``run_udf``: ``sr`` (``udf/sr_udf.py``) or ``misr`` (``udf/misr_udf.py``)."""
    if kind not in ("sr", "misr"):
        raise ValueError(f"kind must be 'sr' or 'misr', got {kind!r}")
    return (UDF_PATH if kind == "sr" else MISR_UDF_PATH).read_text()


def neighborhood_for(card: Any, mode: str, *, size: int | None = None, overlap: int | None = None) -> tuple[int, int]:
    """apply_neighborhood ``(size, overlap)`` in chunk pixels for a model card, multiples of 16.

    The model's receptive field and tiling margin are those its predictor uses, the network's followed by the
    card's post-processing (:func:`sr_core.models.resolve_postprocess`), so that the overlap satisfies the UDF's own
    check (:func:`sr_core.inference.cube.check_chunk`). Defaults from
    :func:`sr_core.inference.cube.recommended_neighborhood`; an explicit ``size``/``overlap`` must be a multiple of
    16 too, and an ``overlap`` below the model's need is refused with the value to use.
    """
    _, receptive_field, margin = resolve_postprocess(card)
    pred = SimpleNamespace(scale=int(card.scale), margin=int(margin), receptive_field=int(receptive_field))
    rec_size, rec_overlap = recommended_neighborhood(pred, mode, size=size)
    for name, v in (("size", size), ("overlap", overlap)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < (1 if name == "size" else 0)):
            raise ValueError(f"{name} must be an integer number of pixels, got {v!r}")
    if overlap is not None:
        need = required_overlap(pred, mode)
        if overlap < need:
            raise ValueError(
                f"overlap {overlap} px is smaller than the {need} px model {card.name!r} needs in {mode!r} mode "
                f"(receptive field {receptive_field}); use overlap={rec_overlap}"
            )
    for name, v in (("size", size), ("overlap", overlap)):
        if v is not None and v % NEIGHBORHOOD_MULTIPLE:
            raise ValueError(f"{name} must be a multiple of {NEIGHBORHOOD_MULTIPLE} pixels, got {v!r}")
    return (size if size is not None else rec_size), (overlap if overlap is not None else rec_overlap)


def check_bbox(west: float, south: float, east: float, north: float) -> dict:
    """The bounding box (degrees, EPSG:4326) as a dict of floats; ``ValueError`` unless finite, in range and not
    inverted or empty."""
    vals = {"west": west, "south": south, "east": east, "north": north}
    for k, v in vals.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{k} must be a finite number (degrees), got {v!r}")
    if not (-180 <= west < east <= 180):
        raise ValueError(f"need -180 <= west < east <= 180, got west={west}, east={east}")
    if not (-90 <= south < north <= 90):
        raise ValueError(f"need -90 <= south < north <= 90, got south={south}, north={north}")
    return {k: float(v) for k, v in vals.items()}


def check_dates(start: str, end: str, collection: Any = None) -> list[str]:
    """``[start, end]`` as ISO dates; ``ValueError`` unless both are dates ``YYYY-MM-DD``, ``start < end`` (the
    end is exclusive), the start is not in the future and not before the first date of ``collection``
    (:data:`COLLECTION_START`; any other collection or None: Sentinel-2A's launch)."""
    out = []
    for name, v in (("start", start), ("end", end)):
        try:
            out.append(_dt.date.fromisoformat(str(v)))
        except ValueError:
            raise ValueError(f"{name} must be a date YYYY-MM-DD, got {v!r}") from None
    if out[0] >= out[1]:
        raise ValueError(f"start ({start}) must be before end ({end}); the end date is exclusive")
    known = isinstance(collection, str) and collection in COLLECTION_START
    first = _dt.date.fromisoformat(COLLECTION_START[collection] if known else SENTINEL2_LAUNCH)
    if out[0] < first:
        what = f"{collection} has no data" if known else "Sentinel-2 has no data (Sentinel-2A launch)"
        hint = "; SENTINEL2_L1C starts with the mission" if collection == "SENTINEL2_L2A" else ""
        raise ValueError(f"start {out[0]} is before {first}: {what} before that date{hint}")
    today = _dt.datetime.now(_dt.timezone.utc).date()
    if out[0] > today:
        raise ValueError(f"start {out[0]} is in the future (today is {today}): no acquisitions yet")
    return [d.isoformat() for d in out]


def default_extra_bands(collection: Any) -> tuple[str, ...]:
    """:data:`DEFAULT_EXTRA_BANDS` less the bands ``collection`` does not have (SENTINEL2_L1C: no SCL)."""
    have = AUX_BANDS.get(collection, DEFAULT_EXTRA_BANDS) if isinstance(collection, str) else DEFAULT_EXTRA_BANDS
    return tuple(b for b in DEFAULT_EXTRA_BANDS if b in have)


def check_extra_bands(extra_bands: Any, model_bands: Sequence[str], collection: Any = None) -> list[str]:
    """The pass-through bands as a list; ``ValueError`` for a name that is not a band of ``collection`` (its
    spectral bands and :data:`AUX_BANDS`; any other collection: the names of both collections), a model band,
    or a band named twice. Names are exact (openEO band names are case-sensitive)."""
    if isinstance(extra_bands, str) or not isinstance(extra_bands, (list, tuple)):
        raise ValueError(f"extra_bands must be a list of band names, got {extra_bands!r}")
    known_coll = isinstance(collection, str) and collection in AUX_BANDS
    spectral = [b for b in BANDS if not (b == "B10" and collection == "SENTINEL2_L2A")]
    aux = AUX_BANDS[collection] if known_coll else tuple(dict.fromkeys(sum(AUX_BANDS.values(), ())))
    valid = [*spectral, *aux]
    out = []
    for b in extra_bands:
        if not isinstance(b, str) or b not in valid:
            near = [v for v in valid if isinstance(b, str) and v.lower() == b.strip().lower()]
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            where = collection if known_coll else "Sentinel-2 collections"
            raise ValueError(f"extra band {b!r} is not a band of {where}{hint}; bands: {', '.join(valid)}")
        if b in model_bands:
            raise ValueError(f"extra band {b!r} is already a model band")
        if b in out:
            raise ValueError(f"extra band {b!r} is named twice")
        out.append(b)
    return out


def check_anchor(anchor: Any, dates: Sequence[str] | None = None) -> str | int | None:
    """The MISR anchor as the UDF takes it: ``"clearest"``, ``"latest"``, ``"first"``, a date index (an int, or a
    string of one) or a date ``YYYY-MM-DD`` (within ``dates`` = ``[start, end)`` when given); None stays None."""
    if anchor is None or (isinstance(anchor, str) and anchor in ("clearest", "latest", "first")):
        return anchor
    if isinstance(anchor, (int, np.integer)) and not isinstance(anchor, bool):
        return int(anchor)
    if isinstance(anchor, str) and re.fullmatch(r"[+-]?[0-9]+", anchor.strip()):
        return int(anchor)
    if isinstance(anchor, str):
        try:
            day = _dt.date.fromisoformat(anchor.strip())
        except ValueError:
            day = None
        if day is not None and len(anchor.strip()) == 10:
            if dates is not None and not (dates[0] <= day.isoformat() < dates[1]):
                raise ValueError(f"anchor date {day} is outside the dates [{dates[0]}, {dates[1]})")
            return day.isoformat()
    raise ValueError(
        f"anchor must be 'clearest', 'latest', 'first', a date index (0 = the first date, -1 = the last) or a "
        f"date YYYY-MM-DD, got {anchor!r}"
    )


def _format(fmt: str) -> str:
    for f in FORMATS:
        if str(fmt).lower() in (f.lower(), {"GTiff": "gtif", "netCDF": "nc"}[f]):
            return f
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def graph_model(model: str | os.PathLike | None, collection: Any = DEFAULT_COLLECTION, *, misr: bool = False,
                resolution: float | None = None) -> str | os.PathLike:
    """The model a graph runs: ``model`` when given; else the multi-image default (``misr``) or the shipped model
    of ``resolution`` metres (None: 5) whose bands the collection holds (:func:`sr_core.models.pick_model` on its
    spectral bands). The Sentinel-2 collections hold every band, so that is the 10-band model of the resolution
    (5 m: ``s2sr-x2-10band``, 10 m: ``s2sr-10m-10band``); ``s2sr-x2-rgbn`` (named) loads B02, B03, B04, B08
    alone. A ``resolution`` that the model given or the multi-image default does not output is refused
    (``ValueError``)."""
    from sr_core.models import DEFAULT_MISR_MODEL, choose_model

    if model is None and misr:
        model = DEFAULT_MISR_MODEL
    return choose_model(model, [b for b in BANDS if not (b == "B10" and collection == "SENTINEL2_L2A")],
                        resolution=resolution)


def build_process_graph(
    *,
    west: float,
    south: float,
    east: float,
    north: float,
    start: str,
    end: str,
    model: str | os.PathLike | None = None,
    mode: str = "resampled",
    format: str = "GTiff",
    connection: Any = None,
    collection: str = DEFAULT_COLLECTION,
    extra_bands: Sequence[str] = DEFAULT_EXTRA_BANDS,
    size: int | None = None,
    overlap: int | None = None,
    engine: str = "onnx",
    threads: int | None = None,
    dn_scale: float = 10000.0,
    add_offset: float = 0.0,
    max_cloud_cover: float | None = None,
    misr: bool = False,
    anchor: str | int | None = None,
    resolution: float | None = None,
) -> Any:
    """The ``save_result`` :class:`openeo.DataCube` of the super-resolution graph (see the module docstring).

    ``model`` (shipped name or package folder; None: :func:`graph_model`) is read locally for its bands, scale and
    receptive field. ``resolution``: the output pixel size in metres (5 or 10; None: the model's own, 5 for the
    automatic choice), which picks the model when none is named and must be the named model's. ``extra_bands``
    are loaded with the 20 m bands and passed through by the UDF.

    ``misr=True``: the multi-image graph. The whole date range is loaded with no temporal reduction before the
    UDF; ``apply_neighborhood`` runs ``udf/misr_udf.py`` on chunks holding the whole ``t`` dimension (size
    ``{"dimension": "t", "value": null}``), which fuses the dates into one (the ``anchor`` date: ``"clearest"`` by
    default, see the UDF). ``model`` defaults to ``s2sr-misr-x2``; ``SCL`` (the default extra band) gives the
    per-date cloud/shadow validity.
    """

    from sr_core.models import load_card

    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if engine not in ("onnx", "torch"):
        raise ValueError(f"engine must be 'onnx' or 'torch', got {engine!r}")
    bbox = check_bbox(west, south, east, north)
    dates = check_dates(start, end, collection)
    fmt = _format(format)
    if max_cloud_cover is not None and not (0 <= max_cloud_cover <= 100):
        raise ValueError(f"max_cloud_cover must be a percentage in [0, 100], got {max_cloud_cover!r}")
    card = load_card(graph_model(model, collection, misr=misr, resolution=resolution), verify=False)
    size, overlap = neighborhood_for(card, mode, size=size, overlap=overlap)
    if anchor is not None and not misr:
        raise ValueError("anchor is a multi-image option: pass misr=True")
    anchor = check_anchor(anchor, dates)
    cube = superresolution_cube(
        card, collection=collection, spatial_extent=bbox, temporal_extent=dates, mode=mode, engine=engine,
        size=size, overlap=overlap, extra_bands=extra_bands, threads=threads, dn_scale=dn_scale,
        add_offset=add_offset, max_cloud_cover=max_cloud_cover, misr=misr, anchor=anchor, connection=connection,
    )
    return cube.save_result(format=fmt)


def superresolution_cube(
    card: Any,
    *,
    collection: Any,
    spatial_extent: Any,
    temporal_extent: Any,
    mode: str,
    engine: str,
    size: int,
    overlap: int,
    extra_bands: Sequence[str] = DEFAULT_EXTRA_BANDS,
    threads: int | None = None,
    dn_scale: float = 10000.0,
    add_offset: float = 0.0,
    max_cloud_cover: float | None = None,
    misr: bool = False,
    anchor: str | int | None = None,
    connection: Any = None,
    model_ref: Any = None,
) -> Any:
    """The super-resolved :class:`openeo.DataCube` (no ``save_result``): the graph of :func:`build_process_graph`
    for a model ``card``, with ``size``/``overlap`` already chosen (:func:`neighborhood_for`).

    ``collection``, ``spatial_extent`` and ``temporal_extent`` are values or :class:`openeo.api.process.Parameter`
    objects (the user-defined process of :mod:`udf.udp`). ``model_ref``: what the UDF context names as the model
    (default the card's name); a ``Parameter`` makes the context an ``apply_neighborhood`` argument that the UDF
    reads through ``{"from_parameter": "context"}``, so that the process's parameter reaches the callback. The
    single-image context also holds the card's output resolution (``resolution``, metres), which the UDF checks
    the model against.
    """
    import openeo
    from openeo.rest.datacube import DataCube

    res = float(card.input_resolution_m)
    model_bands = [normalize_band_name(b) for b in card.bands]
    fine = [b for b in model_bands if BANDS[b].resolution <= res]
    coarse = [b for b in model_bands if BANDS[b].resolution > res]
    extras = check_extra_bands(extra_bands, model_bands, collection)
    check_threads(threads)
    if not fine:
        raise ValueError(f"model {card.name!r} has no band at its input resolution {res:g} m to define the grid")

    def load(bands: list[str]) -> Any:
        kwargs: dict[str, Any] = dict(spatial_extent=spatial_extent, temporal_extent=temporal_extent, bands=bands)
        if max_cloud_cover is not None:
            kwargs["max_cloud_cover"] = max_cloud_cover
        if connection is not None:
            return connection.load_collection(collection, **kwargs)
        return DataCube.load_collection(collection, connection=None, **kwargs)

    cube = load(fine)
    if coarse or extras:
        other = load(coarse + extras).resample_cube_spatial(target=cube, method="near")
        cube = cube.merge_cubes(other)
    if mode == "resampled" and int(card.scale) != 1:
        cube = cube.resample_spatial(resolution=res / card.scale, method="near")
    context: dict[str, Any] = {
        "mode": mode,
        "model": card.name if model_ref is None else model_ref,
        **({} if misr else {"resolution": model_resolution(card)}),
        "engine": engine,
        "dn_scale": float(dn_scale),
        "add_offset": float(add_offset),
        "overlap": overlap,
        "size": size,
    }
    if threads is not None:
        context["threads"] = int(threads)
    if misr and anchor is not None:
        context["anchor"] = anchor
    _check_context(context, card, misr)
    runtime = "Python" if mode == "resampled" else "Python-Jep"
    via_parameter = model_ref is not None and not isinstance(model_ref, str)
    udf = openeo.UDF(
        udf_code("misr" if misr else "sr"),
        runtime=runtime,
        context={"from_parameter": "context"} if via_parameter else context,
    )
    sizes = [{"dimension": "x", "value": size, "unit": "px"}, {"dimension": "y", "value": size, "unit": "px"}]
    if misr:
        sizes.append({"dimension": "t", "value": None})  # the whole time series in each chunk
    return cube.apply_neighborhood(
        process=udf,
        size=sizes,
        overlap=[
            {"dimension": "x", "value": overlap, "unit": "px"},
            {"dimension": "y", "value": overlap, "unit": "px"},
        ],
        **({"context": context} if via_parameter else {}),
    )


def _check_context(context: dict[str, Any], card: Any, misr: bool) -> None:
    """The UDF context checked by the UDF's own parser (:mod:`udf.contract`), the model named by the card."""
    from udf.contract import parse_context, parse_misr_context

    c = {**context, "model": card.name}
    if misr:
        parse_misr_context(c)
    else:
        parse_context(c)


def process_graph_json(cube: Any, indent: int | None = 2) -> str:
    """The ``{"process_graph": ...}`` JSON of a built graph."""
    return json.dumps({"process_graph": cube.flat_graph()}, indent=indent)


def job_options(
    *,
    archives: Sequence[str] = (),
    executor_memory: str = "2G",
    executor_memory_overhead: str = "1G",
    python_memory: str = "4G",
) -> dict[str, Any]:
    """Batch job options for the geopyspark back-end (CDSE): memory for the JVM executor, its overhead and the
    Python UDF workers (ONNX Runtime lives there), and the ``udf-dependency-archives`` (``URL#folder``)."""
    opts: dict[str, Any] = {
        "executor-memory": executor_memory,
        "executor-memoryOverhead": executor_memory_overhead,
        "python-memory": python_memory,
    }
    archives = [str(a) for a in archives]
    for a in archives:
        if "#" not in a:
            raise ValueError(f"a udf-dependency-archives entry must be 'URL#folder', got {a!r}")
    if archives:
        opts["udf-dependency-archives"] = archives
    return opts
