"""The openEO user-defined process (UDP) ``s2sr_superresolution`` and an APEx benchmark scenario for it.

:func:`build_udp` returns the UDP as a JSON-ready dict (``id``, ``summary``, ``description``, ``parameters``,
``returns``, ``process_graph``, ``default_job_options``), built with the openeo client's
:class:`openeo.api.process.Parameter` and :func:`openeo.rest.udp.build_process_dict`. Its process graph is the one
``s2sr graph`` prints (:func:`udf.process_graph.superresolution_cube`: ``load_collection`` of the model's bands,
the 20 m bands merged with nearest resampling, ``resample_spatial`` in resampled mode, ``apply_neighborhood``
running ``udf/sr_udf.py``), with the area, the dates, the collection and the model as parameters, and without
``save_result``: the UDP returns the super-resolved data cube, so that it composes with other processes; the
caller picks the output format (``cube.execute_batch("out.tif")`` or ``save_result``).

Parameters: ``spatial_extent`` (bounding box or GeoJSON), ``temporal_extent`` (``[start, end)``),
``collection`` (``SENTINEL2_L2A`` or ``SENTINEL2_L1C``), ``model`` (a shipped model with the bands, scale and
neighbourhood of the model the UDP was built for). The mode (``resampled`` or ``upscale``) and the
``apply_neighborhood`` size and overlap are fixed when the UDP is built (``s2sr udp --mode ...``): the two modes
need different graphs and UDF runtimes, and the overlap is the one the model needs.

A user with a connection runs it with one call::

    cube = connection.datacube_from_process("s2sr_superresolution", namespace=URL_OR_FILE,
                                            spatial_extent={...}, temporal_extent=["2023-06-01", "2023-06-10"])
    cube.execute_batch("s2sr.tif", job_options=JOB_OPTIONS)

where ``JOB_OPTIONS`` are those ``s2sr udf-archive`` prints (the ``udf-dependency-archives`` with ``sr_core``,
``udf``, the model and ONNX Runtime); built with ``archives=``, the UDP carries them as ``default_job_options``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from sr_core.bands import normalize_band_name
from sr_core.models import list_models, load_card
from udf.process_graph import (
    DEFAULT_COLLECTION,
    DEFAULT_EXTRA_BANDS,
    job_options,
    neighborhood_for,
    superresolution_cube,
)

__all__ = [
    "COLLECTIONS",
    "UDP_ID",
    "benchmark_scenario",
    "build_udp",
    "compatible_models",
    "from_parameters",
]

#: The process id users call (``connection.datacube_from_process(UDP_ID, namespace=...)``).
UDP_ID = "s2sr_superresolution"
#: Collections whose band names and DN convention (reflectance x 10000, offset compensated) the UDF reads.
COLLECTIONS = ("SENTINEL2_L2A", "SENTINEL2_L1C")
#: The back-end where the collections above and the UDF runtime live (Copernicus Data Space Ecosystem).
DEFAULT_BACKEND = "openeo.dataspace.copernicus.eu"


def _signature(card: Any) -> tuple:
    return (tuple(normalize_band_name(b) for b in card.bands), int(card.scale), float(card.input_resolution_m))


def compatible_models(model: str | os.PathLike | None, mode: str, overlap: int) -> list[str]:
    """Shipped models that the UDP built for ``model`` may run instead: the same input bands, scale and input
    resolution, and an ``apply_neighborhood`` overlap need of at most ``overlap`` in ``mode``. The built-for model
    comes first (a package folder that is not shipped is named by its card name)."""
    card = load_card(model, verify=False)
    out = [card.name]
    for name in list_models():
        if name == card.name:
            continue
        other = load_card(name, verify=False)
        if _signature(other) != _signature(card):
            continue
        try:
            neighborhood_for(other, mode, overlap=overlap)
        except ValueError:
            continue  # needs a larger overlap than the UDP's graph has
        out.append(name)
    return out


def build_udp(
    *,
    model: str | os.PathLike | None = None,
    mode: str = "resampled",
    engine: str = "onnx",
    size: int | None = None,
    overlap: int | None = None,
    extra_bands: Sequence[str] = DEFAULT_EXTRA_BANDS,
    archives: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``s2sr_superresolution`` UDP for ``model`` (default model if None) as a JSON-ready dict.

    ``size``/``overlap`` default to the model's recommended ``apply_neighborhood`` (as ``s2sr graph``);
    ``archives`` (``URL#folder`` entries, as printed by ``s2sr udf-archive``) go into ``default_job_options``."""
    from openeo.api.process import Parameter
    from openeo.rest.udp import build_process_dict

    card = load_card(model, verify=False)
    size, overlap = neighborhood_for(card, mode, size=size, overlap=overlap)
    models = compatible_models(model, mode, overlap)
    p_extent = Parameter.spatial_extent(
        name="spatial_extent",
        description="The area to super-resolve: a bounding box (west, south, east, north, crs) or a GeoJSON "
        "geometry. Keep it small for a first run (a few km^2): " + (
            f"the output has {int(card.scale) ** 2} times the pixels of the input." if int(card.scale) > 1
            else f"the output keeps the {float(card.input_resolution_m):g} m grid of the input."),
    )
    p_dates = Parameter.temporal_interval(
        name="temporal_extent",
        description="The dates to super-resolve, [start, end) (ISO dates); every acquisition in it is processed.",
    )
    # L1C has no scene classification: with SCL among the extra bands only L2A can be loaded
    collections = [c for c in COLLECTIONS if c == "SENTINEL2_L2A" or "SCL" not in extra_bands]
    p_collection = Parameter.string(
        name="collection",
        description="The Sentinel-2 collection: " + " or ".join(
            f"{c} ({'surface reflectance' if c.endswith('L2A') else 'top of atmosphere'})" for c in collections
        ) + ". DN = reflectance x 10000 with the processing-baseline offset compensated."
        + ("" if len(collections) == len(COLLECTIONS) else " (SENTINEL2_L1C has no SCL band: build the process "
           "with `s2sr udp --no-extra-bands` to allow it.)"),
        default=DEFAULT_COLLECTION,
        values=collections,
    )
    p_model = Parameter.string(
        name="model",
        description=f"The model package shipped in the udf-dependency-archives (default {card.name}: "
        f"{', '.join(card.bands)} at {card.input_resolution_m:g} m -> x{card.scale}).",
        default=card.name,
        values=models,
    )
    cube = superresolution_cube(
        card,
        collection=p_collection,
        spatial_extent=p_extent,
        temporal_extent=p_dates,
        mode=mode,
        engine=engine,
        size=size,
        overlap=overlap,
        extra_bands=extra_bands,
        model_ref=p_model,
    )
    out_res = float(card.input_resolution_m) / int(card.scale)
    opts = job_options(archives=archives)
    description = (
        f"Super-resolves Sentinel-2 to {out_res:g} m with the s2sr model `{card.name}` "
        f"({', '.join(card.bands)} in; {', '.join(card.out_bands)} out, DN as in the input collection), through "
        f"`apply_neighborhood` (size {size} px, overlap {overlap} px, {mode} mode) running the s2sr UDF "
        "(`udf/sr_udf.py`, ONNX Runtime). Extra bands (" + (", ".join(extra_bands) or "none") + ") pass through "
        "unchanged. Nodata stays nodata; the output covers the input extent, seamless across chunks.\n\n"
        "The UDF needs the s2sr code, the model and ONNX Runtime on the back-end: the job options "
        "`udf-dependency-archives` (and the memory settings) printed by `s2sr udf-archive --python 3.11 "
        "--url-prefix URL`, after uploading the zips it writes to URL. "
        + ("They are this process's default job options." if archives else
           "Pass them as `job_options` when you create the batch job.")
        + "\n\nReturns the data cube (no `save_result`): choose the output format when you save it."
    )
    return build_process_dict(
        cube,
        process_id=UDP_ID,
        summary=f"Sentinel-2 super-resolution to {out_res:g} m (s2sr, {card.name})",
        description=description,
        parameters=[p_extent, p_dates, p_collection, p_model],
        returns={
            "description": f"The input bands at {out_res:g} m (model bands super-resolved, extra bands passed "
            "through).",
            "schema": {"type": "object", "subtype": "datacube"},
        },
        categories=["sentinel-2", "super-resolution", "optical"],
        default_job_options=opts,
    )


def from_parameters(process_graph: dict[str, Any]) -> set[str]:
    """The parameter names a process graph reads (``{"from_parameter": NAME}``), leaving out the ``data`` and
    ``context`` parameters that callbacks (arguments holding a ``process_graph``) receive from their process."""
    names: set[str] = set()

    def walk(v: Any, in_callback: bool) -> None:
        if isinstance(v, dict):
            if set(v) == {"from_parameter"}:
                if not (in_callback and v["from_parameter"] in ("data", "context")):
                    names.add(str(v["from_parameter"]))
                return
            for k, x in v.items():
                walk(x, in_callback or k == "process_graph")
        elif isinstance(v, list):
            for x in v:
                walk(x, in_callback)

    for node in process_graph.values():
        walk(node.get("arguments", {}), False)
    return names


def benchmark_scenario(
    *,
    namespace: str,
    west: float,
    south: float,
    east: float,
    north: float,
    start: str,
    end: str,
    model: str | os.PathLike | None = None,
    collection: str = DEFAULT_COLLECTION,
    archives: Sequence[str] = (),
    backend: str = DEFAULT_BACKEND,
    description: str | None = None,
) -> list[dict[str, Any]]:
    """An APEx benchmark scenario (the ``benchmark_scenarios/*.json`` format of ESA's APEx algorithm catalogue:
    a list of objects with ``id``, ``type`` = ``"openeo"``, ``backend``, ``process_graph``, ``job_options``)
    calling the UDP at ``namespace`` (the URL its JSON is published at) on a small area, saved as GeoTIFF."""
    from udf.process_graph import check_bbox, check_dates

    if collection not in COLLECTIONS:
        raise ValueError(f"collection must be one of {', '.join(COLLECTIONS)}, got {collection!r}")
    if not isinstance(namespace, str) or not namespace.startswith(("http://", "https://")):
        raise ValueError(f"namespace must be the http(s) URL the UDP JSON is published at, got {namespace!r}")
    bbox = check_bbox(west, south, east, north)
    dates = check_dates(start, end, collection)
    card = load_card(model, verify=False)
    graph = {
        "s2sr1": {
            "process_id": UDP_ID,
            "namespace": namespace,
            "arguments": {
                "spatial_extent": {**bbox, "crs": "EPSG:4326"},
                "temporal_extent": dates,
                "collection": collection,
                "model": card.name,
            },
        },
        "save1": {
            "process_id": "save_result",
            "arguments": {"data": {"from_node": "s2sr1"}, "format": "GTiff"},
            "result": True,
        },
    }
    return [
        {
            "id": UDP_ID,
            "type": "openeo",
            "description": description
            or f"s2sr super-resolution ({card.name}) of {collection} on a small area, {dates[0]}..{dates[1]}",
            "backend": backend,
            "process_graph": graph,
            "job_options": job_options(archives=archives),
        }
    ]
