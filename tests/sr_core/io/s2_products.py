"""Sentinel-2 products for the tests of sr_core.io.safe, .stac and .area: real product metadata
(tests/data/sentinel2, see its README.md) with small JPEG 2000 rasters written in the real layout, the same pixels
as a 10-band GeoTIFF, and the product's real STAC item with its assets pointing to local COGs.

The pixels are a crop of the bundled real sample (sr_core/data/sample) stored as each product stores them:
``DN = reflectance * 10000 - offset`` (offset -1000 from processing baseline 04.00 on, else 0). A product has a
nodata edge (DN 0, a slanted band along its western side, as where a swath ends), one saturated pixel (65535) in
B08 and one in B11, and (Level-2A) a scene classification with every class. The image file paths come from the
metadata's IMAGE_FILE list, read here with a regular expression (independent of the reader under test).
"""

from __future__ import annotations

import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from sr_core.bands import BANDS_10M, BANDS_20M, MODEL_BANDS_10
from sr_core.io import load_sample

DATA = Path(__file__).resolve().parents[2] / "data" / "sentinel2"
L2A_N0509 = "S2A_MSIL2A_20230821T221941_N0509_R029_T01KAB_20230822T021825.SAFE"
L2A_N0214 = "S2B_MSIL2A_20210122T133229_N0214_R081_T22HBD_20210122T155500.SAFE"
L1C_N0301 = "S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248.SAFE"
L1C_N0509 = "S2B_MSIL1C_20230823T095559_N0509_R122_T34UCF_20230823T120234.SAFE"
PRODUCTS = (L2A_N0509, L2A_N0214, L1C_N0301, L1C_N0509)
STAC_ITEM = DATA / "stac" / "S2A_T01KAB_20230821T221944_L2A.json"
#: (EPSG, upper-left corner) of each product's tile: T01KAB as in its STAC item, the others at a UTM tile corner.
TILES = {
    "T01KAB": ("EPSG:32701", (99960.0, 8200000.0)),
    "T22HBD": ("EPSG:32722", (300000.0, 6200020.0)),
    "T46RER": ("EPSG:32646", (600000.0, 3100020.0)),
    "T34UCF": ("EPSG:32634", (399960.0, 6100020.0)),
}
SIZE = 64  # 10 m pixels of a side


@dataclass
class Product:
    """A product written by :func:`build_product`: its folder, level, offset, grid and pixels (stored DN)."""

    path: Path
    level: str
    offset: float
    crs: str
    transform: Affine
    dn10: np.ndarray  # (4, H, W) uint16, BANDS_10M
    dn20: np.ndarray  # (6, H/2, W/2) uint16, BANDS_20M
    scl: np.ndarray | None  # (H/2, W/2) uint8
    files: dict[str, Path] = field(default_factory=dict)

    def dn_10m(self) -> np.ndarray:
        """All 10 bands on the 10 m grid (MODEL_BANDS_10, 20 m replicated) as float32 DN, NaN = invalid."""
        b20 = np.repeat(np.repeat(self.dn20, 2, axis=1), 2, axis=2)
        x = np.concatenate([self.dn10, b20]).astype(np.float32)
        x[(x == 0) | (x == 65535)] = np.nan
        return x

    def scl_10m(self) -> np.ndarray:
        assert self.scl is not None
        return np.repeat(np.repeat(self.scl, 2, axis=0), 2, axis=1)


def image_files(mtd: str) -> list[str]:
    return re.findall(r"<IMAGE_FILE(?:_2A)?>([^<]+)</IMAGE_FILE(?:_2A)?>", mtd)


def product_files(safe_name: str) -> dict[str, str]:
    """Band (and SCL) -> relative path (with .jp2) of the native-resolution image file, from the metadata."""
    level = "L2A" if "MSIL2A" in safe_name else "L1C"
    mtd = (DATA / safe_name / f"MTD_MSI{level}.xml").read_text(encoding="utf-8")
    out = {}
    for rel in image_files(mtd):
        for b in (*BANDS_10M, *BANDS_20M, "SCL", "B01", "B09"):
            native = 10 if b in BANDS_10M else 60 if b in ("B01", "B09") else 20
            if rel.endswith(f"_{b}") or rel.endswith(f"_{b}_{native}m"):
                out[b] = rel + ".jp2"
    return out


def write_jp2(path: Path, arr: np.ndarray, crs: str, transform: Affine) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="JP2OpenJPEG", dtype=arr.dtype.name, count=1, height=arr.shape[0], width=arr.shape[1],
                   crs=crs, transform=transform, QUALITY=100, REVERSIBLE="YES")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr, 1)


def build_product(
    dest: Path, safe_name: str, *, seed: int = 0, size: int = SIZE, omit: tuple[str, ...] = (), bands60: bool = False
) -> Product:
    """Write ``safe_name`` (its real metadata) with ``size`` x ``size`` px at 10 m into ``dest``; ``omit``: bands
    whose file is left out; ``bands60``: also B01 and B09 at 60 m (their DN: 100 * (1 + 60 m pixel index))."""
    level = "L2A" if "MSIL2A" in safe_name else "L1C"
    baseline = int(re.search(r"_N(\d{4})_", safe_name).group(1))
    offset = -1000.0 if baseline >= 400 else 0.0
    tile = re.search(r"_(T\d\d[A-Z]{3})_", safe_name).group(1)
    crs, (x0, y0) = TILES[tile]
    folder = dest / safe_name
    folder.mkdir(parents=True)
    shutil.copy(DATA / safe_name / f"MTD_MSI{level}.xml", folder)

    sample = load_sample()
    rng = np.random.default_rng(seed)
    h = w = size
    r0, c0 = 2 * int(rng.integers(0, (256 - h) // 2)), 2 * int(rng.integers(0, (256 - w) // 2))
    refl10 = sample.bands10[:, r0 : r0 + h, c0 : c0 + w]
    refl20 = sample.bands20[:, r0 // 2 : (r0 + h) // 2, c0 // 2 : (c0 + w) // 2]

    def to_dn(refl: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(refl * 10000.0 - offset), 1, 65534).astype(np.uint16)

    dn10, dn20 = to_dn(refl10), to_dn(refl20)
    # the nodata edge: whole 20 m pixels, a slanted band along the western side
    ii, jj = np.mgrid[: h // 2, : w // 2]
    edge20 = jj < 2 + ii // 6
    edge10 = np.repeat(np.repeat(edge20, 2, axis=0), 2, axis=1)
    dn10[:, edge10] = 0
    dn20[:, edge20] = 0
    dn10[BANDS_10M.index("B08"), h // 2, w // 2] = 65535
    dn20[BANDS_20M.index("B11"), h // 4 + 3, w // 4 + 5] = 65535
    scl = None
    if level == "L2A":
        scl = (np.arange(h // 2 * w // 2).reshape(h // 2, w // 2) * 7 % 12).astype(np.uint8)
        scl[scl == 0] = 4
        scl[edge20] = 0

    t10 = Affine(10, 0, x0, 0, -10, y0)
    t20 = Affine(20, 0, x0, 0, -20, y0)
    rels = product_files(safe_name)
    files = {}
    for b, arr, t in [*zip(BANDS_10M, dn10, [t10] * 4), *zip(BANDS_20M, dn20, [t20] * 6)] + (
        [("SCL", scl, t20)] if scl is not None else []
    ):
        if b in omit:
            continue
        files[b] = folder / rels[b]
        write_jp2(files[b], arr, crs, t)
    if bands60:
        t60 = Affine(60, 0, x0, 0, -60, y0)
        for b in ("B01", "B09"):
            files[b] = folder / rels[b]
            arr60 = (100 * (1 + np.arange((h // 6) * (w // 6)))).reshape(h // 6, w // 6).astype(np.uint16)
            write_jp2(files[b], arr60, crs, t60)
    return Product(folder, level, offset, crs, t10, dn10, dn20, scl, files)


def zip_product(product: Path, dest: Path) -> Path:
    """``product`` (a .SAFE folder) zipped as the Copernicus Data Space delivers it: ``<name>.SAFE.zip`` holding
    the ``<name>.SAFE/`` folder."""
    out = dest / f"{product.name}.zip"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for f in sorted(product.rglob("*")):
            if f.is_file():
                z.write(f, f"{product.name}/{f.relative_to(product).as_posix()}")
    return out


def equivalent_geotiff(product: Product, path: Path) -> Path:
    """The same pixels as one 10-band uint16 GeoTIFF on the 10 m grid (20 m bands replicated 2 x 2), invalid
    pixels (0 and 65535) as its nodata 0, the product's DN convention in the tags DN_SCALE/ADD_OFFSET."""
    b20 = np.repeat(np.repeat(product.dn20, 2, axis=1), 2, axis=2)
    dn = np.concatenate([product.dn10, b20])
    dn[dn == 65535] = 0
    profile = dict(driver="GTiff", dtype="uint16", count=10, height=dn.shape[1], width=dn.shape[2],
                   crs=product.crs, transform=product.transform, nodata=0)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dn)
        dst.update_tags(DN_SCALE="10000", ADD_OFFSET=str(int(product.offset)))
        for i, b in enumerate(MODEL_BANDS_10, start=1):
            dst.set_band_description(i, b)
    return path


#: Band -> Earth Search asset key, as in the real item tests/data/sentinel2/stac/*.json (written out here, not
#: taken from the code under test).
ES_KEYS = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "B05": "rededge1", "B06": "rededge2",
           "B07": "rededge3", "B8A": "nir08", "B11": "swir16", "B12": "swir22", "SCL": "scl"}


def write_cog(path: Path, arr: np.ndarray, crs: str, transform: Affine, nodata=0) -> Path:
    profile = dict(driver="GTiff", dtype=arr.dtype.name, count=1, height=arr.shape[0], width=arr.shape[1],
                   crs=crs, transform=transform, nodata=nodata, tiled=True, blockxsize=16, blockysize=16,
                   compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr, 1)
    return path


def write_item(product: Product, dest: Path, *, style: str = "earth-search", drop: tuple[str, ...] = ()) -> Path:
    """The real STAC item of the T01KAB product (tests/data/sentinel2/stac) with its band assets pointing to local
    COGs of ``product``'s pixels (relative hrefs), in the conventions of ``style``: ``"earth-search"`` (keys
    blue, red, ..., scl; raster:bands scale/offset) or ``"planetary"`` (keys B02, ..., SCL; no scale/offset, the
    s2:processing_baseline only). ``drop``: bands (or ``"SCL"``) whose asset is removed."""
    import json

    item = json.loads(STAC_ITEM.read_text(encoding="utf-8"))
    dest.mkdir(parents=True, exist_ok=True)
    t20 = Affine(20, 0, product.transform.c, 0, -20, product.transform.f)
    arrays = {**dict(zip(BANDS_10M, product.dn10)), **dict(zip(BANDS_20M, product.dn20))}
    if product.scl is not None:
        arrays["SCL"] = product.scl
    assets = item["assets"]
    for b, key in ES_KEYS.items():
        a = assets[key]
        if b not in arrays:
            del assets[key]
            continue
        arr = arrays[b]
        t = product.transform if b in BANDS_10M else t20
        write_cog(dest / f"{b}.tif", arr, product.crs, t)
        a["href"] = f"./{b}.tif"
        a["type"] = "image/tiff; application=geotiff; profile=cloud-optimized"
        a["proj:shape"] = list(arr.shape)
        a["proj:transform"] = [t.a, 0.0, t.c, 0.0, t.e, t.f]
        a["proj:bbox"] = [t.c, t.f + t.e * arr.shape[0], t.c + t.a * arr.shape[1], t.f]
    for key in [k for k in assets if k not in ES_KEYS.values()]:
        if "raster:bands" in assets[key]:
            del assets[key]  # other resolutions and bands: no local file
    if style == "planetary":
        renamed = {}
        for b, key in ES_KEYS.items():
            if key in assets:
                a = assets[key]
                for rb in a.get("raster:bands", []):
                    rb.pop("scale", None)
                    rb.pop("offset", None)
                renamed[b] = a
        renamed.update({k: v for k, v in assets.items() if k not in ES_KEYS.values()})
        item["assets"] = assets = renamed
    elif style != "earth-search":
        raise ValueError(style)
    for b in drop:
        assets.pop(b if style == "planetary" else ES_KEYS[b], None)
    out = dest / "item.json"
    out.write_text(json.dumps(item, indent=1), encoding="utf-8")
    return out
