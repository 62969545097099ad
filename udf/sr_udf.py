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
# openEO UDF: Sentinel-2 super-resolution (single image) for apply_neighborhood.
#
# Use:  openeo.UDF.from_file("udf/sr_udf.py", context={...})  inside  cube.apply_neighborhood(...)
# (see udf/process_graph.py, which also computes size/overlap from the model's receptive field).
#
# NOTE: no `from __future__ import annotations` here: openEO's UDF runner matches the annotations
# `xarray.DataArray` at run time.
"""Super-resolve each apply_neighborhood chunk of a Sentinel-2 DN cube with a model package.

Input chunk: float32 ``(t, bands, y, x)`` or ``(bands, y, x)``, ``size + 2*overlap`` pixels per side, NaN-padded
at cube borders. Bands are matched by name (``"B2"`` == ``"B02"``, any order); the model's bands must all be
there (else ``ValueError`` naming the missing and the present bands); other bands (``SCL``, ...) pass through.
Output: the input's dims, band labels and units (DN), float32 (float64 for float64 input); the model's output
bands super-resolved; nodata (NaN or ``nodata``) stays nodata.

Context keys (all optional; ``{}`` = defaults for CDSE ``SENTINEL2_L2A``):

=============  ===============  =======================================================================
key            default          meaning
=============  ===============  =======================================================================
mode           ``"resampled"``  ``"resampled"``: the cube was ``resample_spatial(resolution=5,
                                method="near")``-ed; the native 10/20 m grids are recovered exactly
                                (replication and its phase are checked: a clear error otherwise) and the
                                chunk keeps its shape. ``"upscale"``: the chunk is on the 10 m grid and
                                comes back ``scale`` times larger (geopyspark, runtime ``Python-Jep``);
                                ``apply_metadata`` divides the resolution.
model          by the bands     shipped model name (``sr_core/weights/<name>``) or package folder; null: the
                                shipped model of ``resolution`` whose bands the chunk holds
resolution     model's own / 5  output pixel size in metres: 5 (x2) or 10 (the 20 m bands sharpened onto
                                the 10 m grid, the 10 m bands unchanged; the chunk keeps its grid in both
                                modes); a named model must output it
engine         ``"onnx"``       ``"onnx"`` (ONNX Runtime, production) or ``"torch"``
dn_scale       10000            reflectance = (DN + add_offset) / dn_scale
add_offset     0                CDSE L2A DN already have the processing-baseline offset compensated
threads        null             engine intra-op threads (null = the engine's default)
nodata         null             a nodata value besides NaN
overlap        null             the apply_neighborhood overlap (chunk px): checked against the model's
                                need; one ``TilingWarning`` names the overlap to use when too small
tile           null             run the chunk in tiles of this many 10 m px (same result, less memory)
dilate         0                grow nodata on the output by this many 10 m px, or ``"rf"`` = the margin
=============  ===============  =======================================================================

Unknown keys or bad values raise ``ValueError`` listing the valid keys/values. The model is loaded once per
worker process (``sr_core.models.load_predictor`` caches it). Dependencies (``sr_core``, ``onnxruntime``) come
from the ``udf-dependency-archives`` built by ``s2sr udf-archive``: their folders (``s2sr_code``,
``s2sr_deps`` in the job's working directory, and the folders in the ``S2SR_UDF_PATH`` environment variable)
are put first on ``sys.path`` when they exist.
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
    """Cube metadata after this UDF: resolution divided by the model's scale in ``upscale`` mode (a model of
    scale 1, ``resolution`` 10, keeps it)."""
    return _s2sr_cube.udf_metadata(metadata, context)


def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    """Super-resolve one chunk (see the module docstring for the context keys)."""
    return _s2sr_cube.udf_apply(cube, context)
