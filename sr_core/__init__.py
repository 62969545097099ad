"""sr_core: the Sentinel-2 super-resolution library.

Band constants, networks, degradation, consistency projection, losses, metrics, tiling, nodata, readers and
writers, model packages, inference (xarray chunks, multi-date stacks, whole scenes), datasets, training and
evaluation. It imports neither ``udf`` nor ``s2sr_cli``; its internal layers are listed in ``.importlinter``.
"""

__version__ = "0.1.0"
