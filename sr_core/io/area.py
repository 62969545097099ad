"""The part of a :class:`~sr_core.io.source.RasterSource` that is processed, and its Level-2A scene classification.

- :func:`bbox_window` / :class:`WindowSource`: a window of a source given as a bounding box (``s2sr superres
  --bbox``), in the source's CRS or any other (``--bbox-crs EPSG:4326`` for lon/lat). The window covers the box,
  snapped outward to whole 20 m pixels (even rows and columns of the 10 m grid) and clipped to the source; only
  that window is ever read. Its borders are scene borders for the tiling (edge-replicated context), so the result
  equals the same pixels cut out first and super-resolved on their own.
- :class:`SclMaskedSource`: the pixels whose scene classification (``SCL``, Level-2A) is in a set of classes read
  as nodata (``--mask-scl``): they become nodata in the output, never filled.
- :func:`write_scl`: the classification itself on the output grid, nearest-neighbour, ``uint8`` with nodata 0, in
  its own GeoTIFF beside the output (``--scl``, :func:`scl_output_path`).

A source carries a classification when it has ``has_scl = True`` and ``read_scl(window) -> uint8 (h, w)`` on its
(10 m) grid (:class:`sr_core.io.safe.SafeSource`, :class:`sr_core.io.stac.StacItemSource` of Level-2A products).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sr_core.checks import check_int
from sr_core.io.conventions import bounds_of, require_rasterio
from sr_core.io.source import RasterSource, Window
from sr_core.io.writer import BLOCKSIZE, DEFAULT_COMPRESS, GeoTiffWriter
from sr_core.tiling import hr_transform

__all__ = [
    "DEFAULT_SCL_MASK",
    "SCL_CLASSES",
    "SclMaskedSource",
    "WindowSource",
    "bbox_window",
    "restrict",
    "scl_classes",
    "scl_output_path",
    "write_scl",
]

#: The Sen2Cor scene classification (``SCL``) of Level-2A products: value -> meaning.
SCL_CLASSES = {
    0: "no data",
    1: "saturated or defective",
    2: "dark area or topographic shadow",
    3: "cloud shadow",
    4: "vegetation",
    5: "not vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud, medium probability",
    9: "cloud, high probability",
    10: "thin cirrus",
    11: "snow or ice",
}
#: Classes ``--mask-scl`` writes as nodata: no data, saturated or defective, cloud shadow, clouds (medium and
#: high probability) and thin cirrus. Snow, water, dark areas and unclassified pixels are kept
#: (docs/decisions/2026-12-06-sentinel2-products.md).
DEFAULT_SCL_MASK = (0, 1, 3, 8, 9, 10)


def scl_classes(classes: Iterable[int] | bool | None) -> tuple[int, ...] | None:
    """The SCL classes to mask: ``None``/``False`` -> None (no masking), ``True`` -> :data:`DEFAULT_SCL_MASK`,
    else the given classes (integers in ``SCL_CLASSES``, at least one), sorted."""
    if classes is None or classes is False:
        return None
    if classes is True:
        return DEFAULT_SCL_MASK
    out = set()
    for c in classes:
        v = check_int("SCL class", c, 0)
        if v not in SCL_CLASSES:
            raise ValueError(f"SCL class {v} is not a scene classification value (0-11: {SCL_CLASSES})")
        out.add(v)
    if not out:
        raise ValueError("mask_scl: give at least one SCL class, or True for the default classes")
    return tuple(sorted(out))


# ------------------------------------------------------------------------------------------------ views


class _View(RasterSource):
    """A source that reads through another one (``inner``): same bands, DN convention, dtype and nodata."""

    def __init__(self, inner: RasterSource, *, height: int, width: int, transform: Any, tags: dict) -> None:
        super().__init__(
            name=inner.name,
            height=height,
            width=width,
            transform=transform,
            crs=inner.crs,
            labels=inner.labels,
            dn_scale=inner.dn_scale,
            add_offset=inner.add_offset,
            dtype=inner.dtype,
            nodata=inner.nodata,
            tags=tags,
        )
        self.inner = inner
        self.date = getattr(inner, "date", "")

    @property
    def has_scl(self) -> bool:
        return bool(getattr(self.inner, "has_scl", False))

    def _names(self, idx: Sequence[int]) -> list[str]:
        return [str(self.labels[i]) for i in idx]

    def close(self) -> None:
        self.inner.close()


class WindowSource(_View):
    """The window ``(row0, row1, col0, col1)`` of ``inner`` as a source of its own (its grid starts at the window's
    upper-left corner); reads never leave the window. Tag ``S2SR_WINDOW``: the window in ``inner``'s pixels."""

    def __init__(self, inner: RasterSource, window: Window) -> None:
        r0, r1, c0, c1 = inner.checked_window(window)
        a, b, c, d, e, f = inner.transform
        super().__init__(
            inner,
            height=r1 - r0,
            width=c1 - c0,
            transform=(a, b, c + c0 * a, d, e, f + r0 * e),
            tags={**inner.tags, "S2SR_WINDOW": f"{r0},{r1},{c0},{c1}"},
        )
        self.offset = (r0, c0)

    def _shift(self, window: Window) -> Window:
        r0, r1, c0, c1 = window
        dr, dc = self.offset
        return (r0 + dr, r1 + dr, c0 + dc, c1 + dc)

    def _read(self, idx: list[int], window: Window) -> np.ndarray:
        return self.inner.read(self._names(idx), self._shift(window))

    def read_scl(self, window: Window) -> np.ndarray:
        return self.inner.read_scl(self._shift(window))  # type: ignore[attr-defined]


class SclMaskedSource(_View):
    """``inner`` with its pixels whose scene classification is in ``classes`` read as nodata (NaN in every band).
    ``inner`` must carry a classification (``has_scl``)."""

    def __init__(self, inner: RasterSource, classes: Iterable[int] | bool = True) -> None:
        check_has_scl(inner, "--mask-scl (masking by the scene classification)")
        cls = scl_classes(classes)
        if cls is None:
            raise ValueError("SclMaskedSource needs SCL classes to mask")
        super().__init__(
            inner,
            height=inner.height,
            width=inner.width,
            transform=inner.transform,
            tags={**inner.tags, "S2SR_SCL_MASK": ",".join(str(c) for c in cls)},
        )
        self.classes = cls

    def _read(self, idx: list[int], window: Window) -> np.ndarray:
        x = self.inner.read(self._names(idx), window)
        masked = np.isin(self.inner.read_scl(window), self.classes)  # type: ignore[attr-defined]
        if masked.any():
            x[:, masked] = np.nan
        return x

    def read_scl(self, window: Window) -> np.ndarray:
        return self.inner.read_scl(window)  # type: ignore[attr-defined]


def check_has_scl(source: RasterSource, what: str) -> None:
    """``ValueError`` unless ``source`` carries a scene classification (a Level-2A product with its SCL)."""
    if not getattr(source, "has_scl", False):
        why = getattr(source, "scl_missing", None) or "it is not a Level-2A product with a scene classification (SCL)"
        raise ValueError(f"{source.name}: {what} needs the SCL layer, but {why}")


# ------------------------------------------------------------------------------------------------ bbox


def _bbox(bbox: Any) -> tuple[float, float, float, float]:
    try:
        b = tuple(float(v) for v in bbox)
    except (TypeError, ValueError):
        raise ValueError(f"bbox must be 4 numbers (left, bottom, right, top), got {bbox!r}") from None
    if len(b) != 4 or not all(math.isfinite(v) for v in b):
        raise ValueError(f"bbox must be 4 finite numbers (left, bottom, right, top), got {bbox!r}")
    if not (b[0] < b[2] and b[1] < b[3]):
        raise ValueError(f"bbox (left, bottom, right, top) must have left < right and bottom < top, got {b}")
    return b  # type: ignore[return-value]


def bbox_window(
    source: RasterSource, bbox: Sequence[float], bbox_crs: Any = None, *, align: int = 2
) -> Window:
    """The window ``(row0, row1, col0, col1)`` of ``source`` covering ``bbox`` ``(left, bottom, right, top)``.

    ``bbox_crs``: the CRS of ``bbox`` (anything rasterio's ``CRS.from_user_input`` takes, e.g. ``"EPSG:4326"``
    for lon/lat; None: the source's CRS). A box in another CRS is transformed with its edges densified
    (``rasterio.warp.transform_bounds``) and the window covers the result. The window is snapped outward to
    multiples of ``align`` pixels (2: whole 20 m pixels on a 10 m grid), then clipped to the raster; a box
    that does not overlap the raster is a ``ValueError``."""
    left, bottom, right, top = _bbox(bbox)
    align = check_int("align", align, 1)
    where = f"bbox {(left, bottom, right, top)}"
    if bbox_crs is not None:
        require_rasterio("a bbox in another CRS")
        from rasterio.crs import CRS
        from rasterio.warp import transform_bounds

        try:
            src_crs = CRS.from_user_input(bbox_crs)
        except Exception as err:  # noqa: BLE001 - rasterio raises CRSError subclasses of several kinds
            raise ValueError(f"bbox CRS {bbox_crs!r} is not a CRS: {err}") from None
        if source.crs is None:
            raise ValueError(f"{source.name}: has no CRS, so a bbox in {bbox_crs} cannot be placed on it")
        dst_crs = CRS.from_user_input(source.crs)
        if src_crs != dst_crs:
            left, bottom, right, top = transform_bounds(src_crs, dst_crs, left, bottom, right, top, densify_pts=21)
            where += f" in {bbox_crs} = {(left, bottom, right, top)} in {source.crs}"
    a, _, c, _, e, f = source.transform
    eps = 1e-9
    col0 = math.floor((left - c) / a + eps)
    col1 = math.ceil((right - c) / a - eps)
    row0 = math.floor((top - f) / e + eps)
    row1 = math.ceil((bottom - f) / e - eps)
    col0, row0 = col0 - col0 % align, row0 - row0 % align
    col1, row1 = col1 + (-col1) % align, row1 + (-row1) % align
    col0, row0 = max(col0, 0), max(row0, 0)
    col1, row1 = min(col1, source.width), min(row1, source.height)
    if col0 >= col1 or row0 >= row1:
        raise ValueError(
            f"{source.name}: {where} does not overlap the raster, whose bounds are "
            f"{bounds_of(source.transform, source.height, source.width)} in {source.crs}"
        )
    return (row0, row1, col0, col1)


def restrict(
    source: RasterSource,
    *,
    bbox: Sequence[float] | None = None,
    bbox_crs: Any = None,
    mask_scl: Iterable[int] | bool | None = None,
    scl: bool = False,
) -> RasterSource:
    """``source`` limited to ``bbox`` (:func:`bbox_window`, in ``bbox_crs``) and with the pixels whose scene
    classification is in ``mask_scl`` (True: :data:`DEFAULT_SCL_MASK`) read as nodata; ``scl=True`` checks that
    the classification is there to be written (:func:`write_scl`). Closing the result closes ``source``."""
    if bbox_crs is not None and bbox is None:
        raise ValueError("bbox_crs given without bbox")
    classes = scl_classes(mask_scl)
    if scl:
        check_has_scl(source, "--scl (writing the scene classification)")
    out = source
    if classes is not None:
        out = SclMaskedSource(out, classes)
    if bbox is not None:
        out = WindowSource(out, bbox_window(source, bbox, bbox_crs))
    return out


# ------------------------------------------------------------------------------------------------ SCL out


def scl_output_path(output: str | os.PathLike) -> Path:
    """Where :func:`write_scl` writes the classification of ``output``: ``<stem>_SCL<suffix>`` beside it."""
    out = Path(output)
    return out.with_name(f"{out.stem}_SCL{out.suffix or '.tif'}")


def write_scl(
    source: RasterSource,
    output: str | os.PathLike,
    *,
    scale: int,
    blocksize: int = BLOCKSIZE,
    compress: str = DEFAULT_COMPRESS,
    tags: dict[str, str] | None = None,
) -> Path:
    """Write the scene classification of ``source`` on its grid refined ``scale`` times (the super-resolved
    output's grid: same bounds), nearest-neighbour, as a ``uint8`` GeoTIFF with nodata 0 (SCL 0 = no data) and
    band name ``SCL``; one row of blocks in memory at a time. Returns the path."""
    check_has_scl(source, "--scl (writing the scene classification)")
    s = check_int("scale", scale, 1)
    bs = check_int("blocksize", blocksize, 16)
    rows = bs // s if bs % s == 0 else bs  # output windows of whole rows of blocks
    writer = GeoTiffWriter(
        output,
        height=s * source.height,
        width=s * source.width,
        transform=hr_transform(source.transform, s),
        crs=source.crs,
        dtype="uint8",
        nodata=0,
        band_names=["SCL"],
        tags={**source.tags, "S2SR_LAYER": "scene classification (SCL), nearest", **(tags or {})},
        cog=False,
        blocksize=bs,
        compress=compress,
    )
    try:
        for r0 in range(0, source.height, rows):
            r1 = min(source.height, r0 + rows)
            scl = source.read_scl((r0, r1, 0, source.width))  # type: ignore[attr-defined]
            up = np.repeat(np.repeat(np.asarray(scl, dtype=np.uint8), s, axis=0), s, axis=1)
            writer.write(up[None], (s * r0, s * r1, 0, s * source.width))
    except BaseException:
        writer.abort()
        raise
    return writer.close()
