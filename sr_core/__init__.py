"""sr_core: Sentinel-2 super-resolution core library (networks, degradation, losses, metrics, tiling)."""

__version__ = "0.1.0"
