"""Raster I/O: Sentinel-2 scene folders, GeoTIFFs and NetCDF cubes read whole or window by window, the GeoTIFF /
COG writer, and the bundled real sample.

- :mod:`sr_core.io.conventions`: the DN convention, north-up grids and band names every reader follows.
- :mod:`sr_core.io.source`: :class:`RasterSource`, the windowed reading interface, and :class:`ArraySource`.
- :mod:`sr_core.io.scene_folder`, :mod:`sr_core.io.geotiff`, :mod:`sr_core.io.netcdf`: one module per format,
  each with its whole-array reader and its :class:`RasterSource`.
- :mod:`sr_core.io.dispatch`: :func:`read_cube` and :func:`open_source` pick the format of a path.
- :mod:`sr_core.io.writer`: :class:`GeoTiffWriter` and the output format; :mod:`sr_core.io.cog`: COG assembly.
- :mod:`sr_core.io.sample`: the bundled sample scene.

Importing this package needs only numpy; rasterio / rioxarray / xarray are imported when a reader or writer runs.
"""

from sr_core.io.dispatch import open_source, read_cube
from sr_core.io.geotiff import GeoTiffSource, read_geotiff
from sr_core.io.netcdf import NetCDFSource, read_netcdf
from sr_core.io.sample import (
    SAMPLE_HOLDOUT,
    SAMPLE_ID,
    SAMPLE_SOURCE_ID,
    SAMPLE_WINDOW,
    load_sample,
    sample_scene_path,
)
from sr_core.io.scene_folder import Scene, SceneFolderSource, list_scenes, read_scene
from sr_core.io.source import ArraySource, RasterSource
from sr_core.io.writer import (
    BLOCKSIZE,
    COMPRESSIONS,
    DEFAULT_COMPRESS,
    DEFAULT_PREDICTOR,
    OUTPUT_DTYPES,
    PREDICTORS,
    GeoTiffWriter,
    model_tags,
    output_paths,
    predictor_code,
)

__all__ = [
    "BLOCKSIZE",
    "COMPRESSIONS",
    "DEFAULT_COMPRESS",
    "DEFAULT_PREDICTOR",
    "OUTPUT_DTYPES",
    "PREDICTORS",
    "SAMPLE_HOLDOUT",
    "SAMPLE_ID",
    "SAMPLE_SOURCE_ID",
    "SAMPLE_WINDOW",
    "ArraySource",
    "GeoTiffSource",
    "GeoTiffWriter",
    "NetCDFSource",
    "RasterSource",
    "Scene",
    "SceneFolderSource",
    "list_scenes",
    "load_sample",
    "model_tags",
    "open_source",
    "output_paths",
    "predictor_code",
    "read_cube",
    "read_geotiff",
    "read_netcdf",
    "read_scene",
    "sample_scene_path",
]
