"""Sentinel-2 Level-1C and Level-2A products in the SAFE format, a folder or a zip, read window by window
(:class:`SafeSource`) or whole (:func:`read_safe`).

Layout (the compact SAFE of every product since late 2016, one granule): ``<name>.SAFE/MTD_MSIL1C.xml`` or
``MTD_MSIL2A.xml`` lists the image files: Level-1C ``GRANULE/*/IMG_DATA/T<tile>_<time>_<band>.jp2``, Level-2A
``GRANULE/*/IMG_DATA/R10m|R20m|R60m/T<tile>_<time>_<band>_<res>m.jp2``. The files are read with rasterio (GDAL's
JP2OpenJPEG driver; inside a zip through ``/vsizip/``), each band at its native grid: 10 m B02, B03, B04, B08;
20 m B05, B06, B07, B8A, B11, B12; the 60 m bands B01, B09 (B10 in Level-1C) only when asked for. The coarser
bands are nearest-replicated onto the 10 m grid window by window (as
:class:`~sr_core.io.scene_folder.SceneFolderSource` does); the grid, CRS and transform are those of the B02 file,
the product's 10 m grid. docs/decisions/2026-12-06-sentinel2-products.md says why rasterio over the JP2 files
rather than GDAL's SENTINEL2 driver.

Radiometry, from the product metadata only: reflectance = ``(DN + offset) / quantification``, with the
``QUANTIFICATION_VALUE`` (Level-1C) or ``BOA_QUANTIFICATION_VALUE`` (Level-2A) and the per-band
``RADIO_ADD_OFFSET`` (Level-1C) or ``BOA_ADD_OFFSET`` (Level-2A) that processing baseline 04.00 and later carry
(-1000); earlier baselines have none (0). A baseline from 04.00 on without its offsets, a baseline that cannot be
read, or no quantification value is a ``ValueError`` naming the metadata file. The metadata's special values NODATA
(0) and SATURATED (65535) read as nodata (NaN). The Level-2A scene classification (``SCL``, 20 m) is offered to
:mod:`sr_core.io.area` (``has_scl``, :meth:`SafeSource.read_scl`), nearest-replicated.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sr_core.bands import MODEL_BANDS_10, normalize_band_name, resolution
from sr_core.io.conventions import dn_convention, grid_dataarray, north_up, require_rasterio
from sr_core.io.scene_folder import check_nests
from sr_core.io.source import RasterSource, Window, masked_dn
from sr_core.radiometry import dn_to_reflectance

if TYPE_CHECKING:  # pragma: no cover
    import xarray

__all__ = [
    "MTD_FILES",
    "OFFSET_BASELINE",
    "SafeMetadata",
    "SafeSource",
    "baseline_version",
    "is_safe_product",
    "parse_product_metadata",
    "read_safe",
]

#: The product metadata file of each level.
MTD_FILES = {"L1C": "MTD_MSIL1C.xml", "L2A": "MTD_MSIL2A.xml"}
#: The first processing baseline whose DN carry a radiometric offset (RADIO_ADD_OFFSET / BOA_ADD_OFFSET).
OFFSET_BASELINE = (4, 0)
#: ESA's band ids (``band_id`` of the offsets) when the metadata has no ``Spectral_Information`` list.
_ESA_BAND_IDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
#: Image file extension by the granule's ``imageFormat``.
_EXTENSIONS = {"JPEG2000": ".jp2", "GEOTIFF": ".tif"}
_QUANTIFICATION = {
    "L1C": ("QUANTIFICATION_VALUE",),
    "L2A": ("BOA_QUANTIFICATION_VALUE", "L2A_BOA_QUANTIFICATION_VALUE"),
}
_OFFSETS = {"L1C": "RADIO_ADD_OFFSET", "L2A": "BOA_ADD_OFFSET"}
_FILE_RE = {
    "L1C": re.compile(r"_(B\d\d|B8A)$"),
    "L2A": re.compile(r"_(B\d\d|B8A|SCL)_(\d\d)m$"),
}


# ------------------------------------------------------------------------------------------------ metadata


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _all(root: ET.Element, *names: str) -> list[ET.Element]:
    return [el for el in root.iter() if _local(el.tag) in names]


def _first_text(root: ET.Element, *names: str) -> str | None:
    for el in _all(root, *names):
        if el.text is not None and el.text.strip():
            return el.text.strip()
    return None


def baseline_version(text: Any) -> tuple[int, int] | None:
    """A processing baseline ``"NN.NN"`` (``"05.09"``, ``"2.14"``) as ``(major, minor)``; None if it is not one."""
    m = re.fullmatch(r"\s*(\d{1,2})\.(\d{1,2})\s*", str(text))
    return (int(m.group(1)), int(m.group(2))) if m else None


@dataclass(frozen=True)
class SafeMetadata:
    """What :func:`parse_product_metadata` reads from ``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml``.

    ``level`` ``"L1C"``/``"L2A"``; ``product_id`` (the product name without ``.SAFE``); ``baseline`` as written
    (``"05.09"``); ``quantification`` (the DN scale); ``offsets``: band -> radiometric offset (0 for every band
    before baseline 04.00); ``nodata``: the NODATA special value; ``invalid``: every special value (NODATA,
    SATURATED) that reads as nodata; ``files``: band (or ``"SCL"``) -> image file path inside the product, at the
    band's native resolution."""

    level: str
    product_id: str
    baseline: str
    quantification: float
    offsets: dict[str, float]
    nodata: float
    invalid: tuple[float, ...]
    files: dict[str, str] = field(default_factory=dict)


def parse_product_metadata(xml: bytes | str, where: str, *, level: str) -> SafeMetadata:
    """Parse the product metadata ``xml`` of a ``level`` (``"L1C"``/``"L2A"``) product; ``where`` names the file in
    errors. Refused (``ValueError``): unparsable XML, no or several granules, no quantification value, a processing
    baseline that is missing or not ``NN.NN``, a baseline from 04.00 on without its offsets list, an offset that
    is not a number."""
    if level not in MTD_FILES:
        raise ValueError(f"level must be one of {', '.join(MTD_FILES)}, got {level!r}")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as err:
        raise ValueError(f"{where}: not valid XML: {err}") from None

    granules = _all(root, "Granule", "Granules")
    if len(granules) != 1:
        raise ValueError(
            f"{where}: lists {len(granules)} granules; only single-tile (compact SAFE) products are supported"
        )
    granule = granules[0]
    ext = _EXTENSIONS.get(str(granule.get("imageFormat", "JPEG2000")).upper())
    if ext is None:
        raise ValueError(f"{where}: unknown imageFormat {granule.get('imageFormat')!r} of the granule")

    # the product's bands by band_id (Spectral_Information), ESA's order where the list is absent
    ids: dict[str, str] = {}
    for el in _all(root, "Spectral_Information"):
        band_id, physical = el.get("bandId"), el.get("physicalBand")
        if band_id is not None and physical:
            try:
                ids[str(band_id)] = normalize_band_name(physical)
            except ValueError:
                raise ValueError(f"{where}: Spectral_Information bandId {band_id}: {physical!r} is no band") from None
    if not ids:
        ids = {str(i): b for i, b in enumerate(_ESA_BAND_IDS)}

    q = _first_text(root, *_QUANTIFICATION[level])
    if q is None:
        raise ValueError(
            f"{where}: no {' / '.join(_QUANTIFICATION[level])}: the DN scale of the product is unknown"
        )
    try:
        quantification = float(q)
    except ValueError:
        raise ValueError(f"{where}: {_QUANTIFICATION[level][0]} = {q!r} is not a number") from None
    if not quantification > 0:
        raise ValueError(f"{where}: {_QUANTIFICATION[level][0]} = {q!r} must be positive")

    baseline = _first_text(root, "PROCESSING_BASELINE") or ""
    version = baseline_version(baseline)
    if version is None:
        raise ValueError(
            f"{where}: unknown processing baseline {baseline or '(no PROCESSING_BASELINE)'!r}: it says whether "
            f"the DN carry the radiometric offset of baseline 04.00 and later; refusing to guess"
        )
    offsets = {b: 0.0 for b in ids.values()}
    found = _all(root, _OFFSETS[level])
    if found:
        for el in found:
            band = ids.get(str(el.get("band_id")))
            if band is None:
                raise ValueError(f"{where}: {_OFFSETS[level]} band_id={el.get('band_id')!r} names no band")
            try:
                offsets[band] = float((el.text or "").strip())
            except ValueError:
                raise ValueError(f"{where}: {_OFFSETS[level]} of {band} = {el.text!r} is not a number") from None
        missing = sorted(set(ids.values()) - {ids.get(str(el.get("band_id"))) for el in found})
        if missing:
            raise ValueError(f"{where}: no {_OFFSETS[level]} for band(s) {', '.join(missing)}")
    elif version >= OFFSET_BASELINE:
        raise ValueError(
            f"{where}: processing baseline {baseline} carries a radiometric offset, but the metadata has no "
            f"{_OFFSETS[level]} values; refusing to guess them"
        )

    special: dict[str, float] = {}
    for el in _all(root, "Special_Values"):
        text, index = _first_text(el, "SPECIAL_VALUE_TEXT"), _first_text(el, "SPECIAL_VALUE_INDEX")
        if text and index is not None:
            try:
                special[text.upper()] = float(index)
            except ValueError:
                raise ValueError(f"{where}: special value {text} = {index!r} is not a number") from None
    # PSD: NODATA 0 and SATURATED 65535 when the list is absent
    nodata = special.get("NODATA", 0.0)
    invalid = tuple(sorted({nodata, special.get("SATURATED", 65535.0)}))

    files: dict[str, str] = {}
    pattern = _FILE_RE[level]
    for el in list(granule):
        if _local(el.tag) not in ("IMAGE_FILE", "IMAGE_FILE_2A") or not el.text:
            continue
        rel = el.text.strip()
        stem = rel[: -len(ext)] if rel.lower().endswith(ext) else rel
        m = pattern.search(stem)
        if m is None:
            continue
        band = m.group(1)
        native = 20 if band == "SCL" else resolution(band)
        if level == "L2A" and int(m.group(2)) != native:
            continue
        files[band] = stem + ext

    product_id = _first_text(root, "PRODUCT_URI", "PRODUCT_URI_2A") or ""
    product_id = product_id[: -len(".SAFE")] if product_id.upper().endswith(".SAFE") else product_id
    return SafeMetadata(
        level=level,
        product_id=product_id,
        baseline=baseline.strip(),
        quantification=quantification,
        offsets=offsets,
        nodata=nodata,
        invalid=invalid,
        files=files,
    )


# ------------------------------------------------------------------------------------------------ containers


@dataclass(frozen=True)
class _Product:
    """Where a product's files are: ``name`` (for messages), ``gdal`` (the GDAL path of the .SAFE folder),
    ``level``, and for a zip the zip and the folder's member prefix."""

    name: str
    gdal: str
    level: str
    mtd: str
    zip_path: Path | None = None
    prefix: str = ""
    members: frozenset[str] = frozenset()

    def exists(self, rel: str) -> bool:
        if self.zip_path is None:
            return (Path(self.gdal) / rel).is_file()
        return (self.prefix + rel) in self.members

    def read(self, rel: str) -> bytes:
        if self.zip_path is None:
            return (Path(self.gdal) / rel).read_bytes()
        with zipfile.ZipFile(self.zip_path) as z:
            return z.read(self.prefix + rel)

    def path(self, rel: str) -> str:
        return f"{self.gdal}/{rel}"


def _mtd_in(folder: Path) -> list[str]:
    return [n for n in MTD_FILES.values() if (folder / n).is_file()]


def is_safe_product(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like a SAFE product: a folder holding ``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml`` or named
    ``*.SAFE``, a ``.zip`` file, or the metadata file itself (:class:`SafeSource` then says what is wrong)."""
    p = Path(path)
    if p.is_dir():
        return bool(_mtd_in(p)) or p.suffix.upper() == ".SAFE"
    return p.suffix.lower() == ".zip" or p.name in MTD_FILES.values()


def _locate(path: str | os.PathLike) -> _Product:
    p = Path(path)
    if p.is_file() and p.name in MTD_FILES.values():
        p = p.parent
    if p.is_dir():
        found = _mtd_in(p)
        if len(found) != 1:
            what = "both" if found else "neither"
            raise ValueError(
                f"{p}: not a Sentinel-2 SAFE product: {what} of {' and '.join(MTD_FILES.values())} found in it"
            )
        level = {v: k for k, v in MTD_FILES.items()}[found[0]]
        return _Product(name=str(p), gdal=str(p.resolve()), level=level, mtd=found[0])
    if not p.exists():
        raise FileNotFoundError(f"no such file or folder: {p}")
    if p.suffix.lower() != ".zip":
        raise ValueError(f"{p}: not a SAFE product (a .SAFE folder, a .zip holding one, or its MTD_MSIL*.xml)")
    try:
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
    except zipfile.BadZipFile as err:
        raise ValueError(f"{p}: not a readable zip file: {err}") from None
    hits = []
    for n in names:
        parts = n.split("/")
        if parts[-1] in MTD_FILES.values() and len(parts) <= 2:
            hits.append(n)
    if len(hits) != 1:
        if not hits:
            raise ValueError(
                f"{p}: no Sentinel-2 SAFE product inside: expected <name>.SAFE/{MTD_FILES['L1C']} or "
                f"<name>.SAFE/{MTD_FILES['L2A']} among its {len(names)} entries"
            )
        raise ValueError(f"{p}: holds several SAFE products ({', '.join(hits)}); give one product per zip")
    member = hits[0]
    prefix = member[: -len(member.split("/")[-1])]
    level = {v: k for k, v in MTD_FILES.items()}[member.split("/")[-1]]
    gdal = f"/vsizip/{p.resolve()}" + (f"/{prefix.rstrip('/')}" if prefix else "")
    return _Product(name=str(p), gdal=gdal, level=level, mtd=member.split("/")[-1], zip_path=p, prefix=prefix,
                    members=frozenset(names))


# ------------------------------------------------------------------------------------------------ windowed


class SafeSource(RasterSource):
    """A Sentinel-2 SAFE product (folder, ``.zip``, or its ``MTD_MSIL*.xml``) read window by window on its 10 m grid.

    ``bands``: the bands offered (default the 10 bands of the 10 and 20 m grids, ``MODEL_BANDS_10``; add
    ``"B01"``, ``"B09"`` (``"B10"``) for the 60 m ones). ``dn_scale``/``add_offset``: optional, must agree with the
    metadata. The DN keep the product's convention (``dn_scale`` = quantification, ``add_offset`` = the first
    band's offset; a band with another offset is shifted onto it on reading, exactly). Tags: ``PRODUCT_LEVEL``,
    ``SCENE_ID``, ``PROCESSING_BASELINE``. Every band file is opened (and checked to nest in the 10 m grid) here,
    so a missing, unreadable or misplaced file is a ``ValueError`` naming it before anything is processed."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        bands: Sequence[str] | None = None,
        dn_scale: float | None = None,
        add_offset: float | None = None,
    ) -> None:
        rasterio = require_rasterio("reading SAFE products")
        product = _locate(path)
        where = f"{product.name}: {product.mtd}"
        meta = parse_product_metadata(product.read(product.mtd), where, level=product.level)
        names = [normalize_band_name(b) for b in (MODEL_BANDS_10 if bands is None else bands)]
        dup = sorted({b for b in names if names.count(b) > 1})
        if dup or not names:
            raise ValueError(f"bands must name distinct bands, got {list(bands or [])}")
        self.product = product
        self.metadata = meta
        self._files: dict[str, Any] = {}
        try:
            ref = self._open(rasterio, "B02", meta)
            t10 = north_up(ref.transform, product.path(meta.files["B02"]))
            crs10 = ref.crs.to_string() if ref.crs is not None else None
            if crs10 is None:
                raise ValueError(f"{product.name}: {meta.files['B02']} has no CRS")
            self._ratio: dict[str, int] = {}
            for b in names:
                src = self._open(rasterio, b, meta)
                ratio = resolution(b) // 10
                check_nests(
                    f"{product.name}: {meta.files[b]}", ratio, north_up(src.transform, meta.files[b]),
                    (src.height, src.width), src.crs.to_string() if src.crs is not None else None,
                    meta.files["B02"], t10, (ref.height, ref.width), crs10,
                )
                self._ratio[b] = ratio
            self.scl_missing: str | None = None
            if meta.level != "L2A":
                self.scl_missing = "it is a Level-1C product (the scene classification comes with Level-2A)"
            elif "SCL" not in meta.files:
                self.scl_missing = f"{product.mtd} lists no SCL_20m image file"
            elif not product.exists(meta.files["SCL"]):
                self.scl_missing = f"its SCL file {meta.files['SCL']} is missing"
            else:
                scl = self._open(rasterio, "SCL", meta)
                check_nests(
                    f"{product.name}: {meta.files['SCL']}", 2, north_up(scl.transform, meta.files["SCL"]),
                    (scl.height, scl.width), scl.crs.to_string() if scl.crs is not None else None,
                    meta.files["B02"], t10, (ref.height, ref.width), crs10,
                )
            scale, offset = dn_convention(
                meta.quantification, meta.offsets[names[0]], dn_scale, add_offset, where,
                _QUANTIFICATION[meta.level][0], _OFFSETS[meta.level],
            )
            super().__init__(
                name=product.name,
                height=ref.height,
                width=ref.width,
                transform=t10,
                crs=crs10,
                labels=names,
                dn_scale=scale,
                add_offset=offset,
                dtype="uint16",
                nodata=meta.nodata,
                tags={
                    "PRODUCT_LEVEL": meta.level,
                    "SCENE_ID": meta.product_id or Path(product.name).name.split(".")[0],
                    "PROCESSING_BASELINE": meta.baseline,
                },
            )
            # a band whose offset differs from the first band's is shifted onto it: DN + (offset_b - offset)
            self._shift = {b: meta.offsets[b] - offset for b in names}
            self._invalid = np.asarray(meta.invalid, dtype=np.float32)
        except BaseException:
            self.close()
            raise

    @property
    def has_scl(self) -> bool:
        return "SCL" in self._files

    def _open(self, rasterio: Any, band: str, meta: SafeMetadata) -> Any:
        if band in self._files:
            return self._files[band]
        p = self.product
        rel = meta.files.get(band)
        if rel is None:
            raise ValueError(f"{p.name}: {p.mtd} lists no image file of band {band} at its native resolution")
        if not p.exists(rel):
            raise ValueError(f"{p.name}: the file of band {band}, {rel}, is missing")
        try:
            src = rasterio.open(p.path(rel))
        except Exception as err:  # noqa: BLE001 - RasterioIOError and friends: a corrupt or unreadable file
            raise ValueError(f"{p.name}: cannot open {rel} (band {band}): {err}") from None
        self._files[band] = src
        if src.count != 1:
            raise ValueError(f"{p.name}: {rel} has {src.count} bands, expected 1 (band {band})")
        want = "uint8" if band == "SCL" else "uint16"
        if src.dtypes[0] != want:
            raise ValueError(f"{p.name}: {rel} holds {src.dtypes[0]}, expected {want} (band {band})")
        return src

    def _window(self, band: str, window: Window) -> np.ndarray:
        """``band`` on the 10 m grid in ``window``, nearest-replicated from its native grid, as stored."""
        from rasterio.windows import Window as RWindow

        r0, r1, c0, c1 = window
        k = 2 if band == "SCL" else self._ratio[band]
        rr0, rr1, cc0, cc1 = r0 // k, -(-r1 // k), c0 // k, -(-c1 // k)
        try:
            x = self._files[band].read(1, window=RWindow(cc0, rr0, cc1 - cc0, rr1 - rr0))
        except Exception as err:  # noqa: BLE001 - a corrupt JPEG 2000 codestream fails here
            rel = self.metadata.files[band]
            raise ValueError(f"{self.product.name}: cannot read {rel} (band {band}): {err}") from None
        if k > 1:
            x = np.repeat(np.repeat(x, k, axis=0), k, axis=1)
            dy, dx = r0 - k * rr0, c0 - k * cc0
            x = x[dy : dy + (r1 - r0), dx : dx + (c1 - c0)]
        return x

    def _read(self, idx: list[int], window: Window) -> np.ndarray:
        r0, r1, c0, c1 = window
        out = np.empty((len(idx), r1 - r0, c1 - c0), dtype=np.float32)
        for k, i in enumerate(idx):
            band = str(self.labels[i])
            out[k] = masked_dn(self._window(band, window), self._invalid, self._shift[band])
        return out

    def read_scl(self, window: Window) -> np.ndarray:
        """The scene classification (SCL) in ``window`` of the 10 m grid, ``uint8``, nearest-replicated."""
        if not self.has_scl:
            raise ValueError(f"{self.name}: no scene classification: {self.scl_missing}")
        r0, r1, c0, c1 = self.checked_window(window)
        return np.asarray(self._window("SCL", (r0, r1, c0, c1)), dtype=np.uint8)

    def close(self) -> None:
        for src in getattr(self, "_files", {}).values():
            src.close()
        self._files = {}


# ------------------------------------------------------------------------------------------------ whole


def read_safe(
    path: str | os.PathLike,
    *,
    bands: Sequence[str] | None = None,
    dn_scale: float | None = None,
    add_offset: float | None = None,
) -> xarray.DataArray:
    """A SAFE product (see :class:`SafeSource`) whole as float32 REFLECTANCE ``(bands, y, x)`` on its 10 m grid
    (coarser bands nearest-replicated, nodata NaN), with cell-centre coordinates, CRS and transform, and the
    attributes ``dn_scale``, ``add_offset``, ``quantity="reflectance"``, ``product_level``, ``scene_id``."""
    with SafeSource(path, bands=bands, dn_scale=dn_scale, add_offset=add_offset) as src:
        dn = src.read(src.bands, (0, src.height, 0, src.width))
        refl = dn_to_reflectance(dn, dn_scale=src.dn_scale, add_offset=src.add_offset)
        da = grid_dataarray(
            refl, src.bands, src.transform, src.crs, dn_scale=src.dn_scale, add_offset=src.add_offset,
            quantity="reflectance", source=src.name,
        )
        da.attrs["product_level"] = src.tags["PRODUCT_LEVEL"]
        da.attrs["scene_id"] = src.tags["SCENE_ID"]
        return da

