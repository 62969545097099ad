# /// script
# requires-python = ">=3.10"
# dependencies = [
#   "numpy>=1.24",
#   "scipy>=1.10",
#   "xarray>=2023.1",
#   "onnxruntime>=1.17",
# ]
# ///
# The packages above are what the UDF imports besides s2sr's own code (sr_core, udf), which comes from the
# udf-dependency-archives built by `s2sr udf-archive` (PEP 723 inline script metadata: a back-end may install them).
#
# openEO UDF: Sentinel-2 multi-image super-resolution (misr_sisr / HighRes-net / RAMS) over the t dimension.
#
# Use:  openeo.UDF.from_file("udf/misr_udf.py", context={...})  inside  cube.apply_neighborhood(...)
# with the full time dimension in each chunk (size [{"dimension": "t", "value": None}] is the default).
#
# NOTE: no `from __future__ import annotations` here: openEO's UDF runner matches the annotations
# `xarray.DataArray` at run time.
"""Fuse the revisits of each chunk into ONE super-resolved date with a multi-image model package.

Input chunk: ``(t, bands, y, x)`` DN (a chunk without ``t`` is one revisit). Per date and pixel, valid = all
model bands finite (and ``!= nodata``) and, when a band labelled ``SCL`` is present, its class not in
``scl_invalid`` (clouds, shadows, cirrus, no data). Dates with less than ``min_valid`` valid pixels are left
out; the invalid pixels of the others are filled with the per-pixel median of the valid dates. Pixels valid
on no date are NaN in the output. Output: the model's ``out_bands`` (the input's labels, DN), ``t`` reduced
to one label (the anchor date: by default the clearest); ``SCL`` and other pass-through bands are dropped.

Context keys: those of ``udf/sr_udf.py`` (``mode``, ``model``, ``engine``, ``dn_scale``, ``add_offset``,
``threads``, ``nodata``, ``overlap``, ``tile``, ``dilate``) plus

=============  ========================  ===========================================================
scl_invalid    [0, 1, 3, 8, 9, 10]       SCL classes that invalidate a pixel
min_valid      0.25                      minimum valid fraction of a date in the chunk to use it
anchor         "clearest"                the date whose grid, radiometry and ``t`` label the output
                                         takes: "clearest", "latest", "first", an index or a date
sisr_model     the default SISR model    single-image model for a chunk with one usable date (a
                                         warning is emitted); null = the MISR network on one frame
=============  ========================  ===========================================================

``model`` defaults to the shipped multi-image package ``s2sr-misr-x2`` (x2, the 10 bands, up to 8 revisits: the
default single-image model on the anchor date plus detail fused from the other dates' 10 m bands, arch
``misr_sisr``); any ``misr_sisr``, HighRes-net or RAMS package works (ONNX files need the inputs ``lr``
``(N, T, C, H, W)`` and ``mask`` ``(N, T)``). Dates are sorted by ``t``; the anchor is fed first; with more
usable dates than the model takes, the clearest are kept.
"""

import os
import sys

import xarray


def _s2sr_bootstrap() -> None:
    # The unpacked udf-dependency-archives (when present) come first: they are the code this job was built for.
    extra = [p for p in os.environ.get("S2SR_UDF_PATH", "").split(os.pathsep) if p]
    for d in extra + ["s2sr_deps", "s2sr_code"]:
        path = os.path.abspath(d)
        if os.path.isdir(path) and path not in sys.path:
            sys.path.insert(0, path)


_s2sr_bootstrap()

from udf import contract as _s2sr_cube  # noqa: E402


def apply_metadata(metadata, context: dict):
    """Cube metadata after this UDF: the model's output bands; resolution divided by the scale in
    ``upscale`` mode."""
    opts, _ = _s2sr_cube.parse_misr_context(context)
    from sr_core.models import load_card

    card = load_card(opts.model, verify=False)
    try:
        if metadata.has_band_dimension():
            names = list(metadata.band_names)
            canon = _s2sr_cube.canonical_labels(names)
            keep = [names[canon.index(b)] for b in card.out_bands if b in canon]
            metadata = metadata.filter_bands(keep)
    except AttributeError:
        pass
    if opts.mode == "upscale":
        metadata = _s2sr_cube.rescale_metadata(metadata, int(card.scale))
    return metadata


def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    """Fuse the revisits of one chunk (see the module docstring)."""
    return _s2sr_cube.misr_udf_apply(cube, context)
