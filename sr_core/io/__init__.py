"""Sentinel-2 data: readers (scene folders, GeoTIFF, NetCDF) and the bundled real sample.

Importing this package needs only numpy; rasterio / rioxarray / xarray are imported when a reader runs.
"""

from sr_core.io.readers import (
    Scene,
    list_scenes,
    read_cube,
    read_geotiff,
    read_netcdf,
    read_scene,
)
from sr_core.io.sample import (
    SAMPLE_HOLDOUT,
    SAMPLE_ID,
    SAMPLE_SOURCE_ID,
    SAMPLE_WINDOW,
    load_sample,
    sample_scene_path,
)

__all__ = [
    "SAMPLE_HOLDOUT",
    "SAMPLE_ID",
    "SAMPLE_SOURCE_ID",
    "SAMPLE_WINDOW",
    "Scene",
    "list_scenes",
    "load_sample",
    "read_cube",
    "read_geotiff",
    "read_netcdf",
    "read_scene",
    "sample_scene_path",
]
