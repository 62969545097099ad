"""Make the bundled sample ``sr_core/data/sample/S2A_MSIL1C_20170527_T33UUB_crop256/`` (run once, commit it).

The sample is the bottom-right 256 x 256 pixels at 10 m (rows/cols 344:600) and the matching 128 x 128 pixels
at 20 m (rows/cols 172:300) of the lossless L1C scene ``S2A_MSIL1C_20170527_T33UUB`` of the developers' data
folder (``../shared/data/s2``), written in the same layout (uint16 GeoTIFFs, DEFLATE + predictor 2, tiled 128,
band descriptions + ``BANDNAME`` tags + dataset tags, ``scene.json``) with the transform origin shifted by the
crop. The 60 m bands are not included (344 is not a multiple of 6, the 60 m grid would not nest). After
writing, every file is reopened and checked bit for bit against the source window (:func:`verify`).

Usage::

    python -m sr_core.io.make_sample [--source ../shared/data/s2] [--out sr_core/data/sample] [--check]

This region is a held-out VALIDATION region (``sr_core.io.SAMPLE_HOLDOUT``): never train on it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from sr_core.io.sample import SAMPLE_ID, SAMPLE_SOURCE_ID, SAMPLE_WINDOW
from sr_core.io.scene_folder import SCENE_FILES

__all__ = ["default_source_root", "make_sample", "verify"]

_REPO = Path(__file__).resolve().parents[2]
_FILES = {res: SCENE_FILES[res] for res in (10, 20)}
_BLOCK = 128

ATTRIBUTION_MD = """\
# Bundled sample: {sample_id}

A {h} x {w} pixel crop (10 m; {h2} x {w2} at 20 m) of the Sentinel-2 Level-1C test image `{source_id}` used by
DSen2: rows {r0}:{r1}, columns {c0}:{c1} of the 600 x 600 px 10 m grid (the bottom-right corner; rows/columns
{r0h}:{r1h}, {c0h}:{c1h} at 20 m). Bands B02, B03, B04, B08 (10 m) and B05, B06, B07, B8A, B11, B12 (20 m) as
top-of-atmosphere DN, uint16, reflectance = DN / 10000. The values are the source values, unchanged (checked
bit for bit by `sr_core/data/make_sample.py`, which made these files).

- Attribution: **Contains modified Copernicus Sentinel data 2017** (cropped and converted to GeoTIFF).
- Licence: CC BY 4.0 (lanha/DSen2 `data/LICENSE.md`: "Copyright: European Commission (Copernicus), ESA.
  Distributed under CC BY 4.0").
- Source: GitHub lanha/DSen2 @38d7209d38a298d5d4c4856e02d5dcefa94a192a, `data/S2A_MSIL1C_20170527_T33UUB.mat`.
- Credit: Lanaras, C., Bioucas-Dias, J., Galliani, S., Baltsavias, E., Schindler, K. (2018). Super-resolution
  of Sentinel-2 images: Learning a globally applicable deep neural network. ISPRS Journal of Photogrammetry
  and Remote Sensing 146, 305-319.
- Georeferencing is SYNTHETIC (the source has none): EPSG:32633 with the full image's upper-left corner at
  ({sx0:.0f}, {sy0:.0f}), so this crop starts at ({x0:.0f}, {y0:.0f}). Never use these coordinates for
  geographic look-ups.
- This region is the project's held-out validation region (`sr_core.io.SAMPLE_HOLDOUT`): models are never
  trained on it.
"""


def default_source_root() -> Path:
    """``$S2SR_SHARED/data/s2`` or ``<repo>/../shared/data/s2``."""
    return Path(os.environ.get("S2SR_SHARED", _REPO.parent / "shared")) / "data" / "s2"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _windows() -> dict[int, tuple[int, int, int, int]]:
    r0, r1, c0, c1 = SAMPLE_WINDOW
    return {10: (r0, r1, c0, c1), 20: (r0 // 2, r1 // 2, c0 // 2, c1 // 2)}


def _read_window(path: Path, window: tuple[int, int, int, int]):
    import rasterio
    from rasterio.windows import Window

    r0, r1, c0, c1 = window
    with rasterio.open(path) as src:
        arr = src.read(window=Window(c0, r0, c1 - c0, r1 - r0))
        info = {
            "descriptions": src.descriptions,
            "band_tags": [src.tags(i) for i in range(1, src.count + 1)],
            "tags": src.tags(),
            "crs": src.crs,
            "transform": src.transform,
            "dtype": src.dtypes[0],
            "shape": (src.height, src.width),
        }
    return arr, info


def _expected(source: Path) -> dict:
    """The source windows, shifted transforms and tags the sample files must have."""
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    out = {}
    for res, name in _FILES.items():
        win = _windows()[res]
        arr, info = _read_window(source / name, win)
        r0, r1, c0, c1 = win
        if arr.shape[1:] != (r1 - r0, c1 - c0):
            raise ValueError(f"{source / name}: window {win} is outside the {info['shape']} image")
        info["transform_crop"] = window_transform(Window(c0, r0, c1 - c0, r1 - r0), info["transform"])
        out[res] = (arr, info)
    return out


def _tags(src_tags: dict, res: int) -> dict:
    r0, r1, c0, c1 = _windows()[res]
    tags = {k: v for k, v in src_tags.items() if k not in ("AREA_OR_POINT",)}
    tags["SCENE_ID"] = SAMPLE_ID
    tags["SOURCE"] = (
        f"crop rows {r0}:{r1}, cols {c0}:{c1} ({res} m) of {SAMPLE_SOURCE_ID}; {src_tags.get('SOURCE', '')}"
    )
    tags["CROP_OF"] = SAMPLE_SOURCE_ID
    tags["CROP_WINDOW_10M"] = "rows {}:{}, cols {}:{}".format(*SAMPLE_WINDOW)
    return tags


def make_sample(source_root: str | Path | None = None, out_root: str | Path | None = None) -> Path:
    """Write the sample folder under ``out_root`` (default: this package's ``sample/``); verify; return it."""
    import rasterio

    source_root = Path(source_root) if source_root is not None else default_source_root()
    source = source_root / SAMPLE_SOURCE_ID
    out_root = Path(out_root) if out_root is not None else Path(__file__).resolve().parent.parent / "data" / "sample"
    dest = out_root / SAMPLE_ID
    if not (source / "scene.json").is_file():
        raise FileNotFoundError(f"source scene not found: {source}")
    src_meta = json.loads((source / "scene.json").read_text(encoding="utf-8"))
    if src_meta.get("lossy") is not False or src_meta.get("id") != SAMPLE_SOURCE_ID:
        raise ValueError(f"{source / 'scene.json'}: expected the lossless scene {SAMPLE_SOURCE_ID}")
    dest.mkdir(parents=True, exist_ok=True)
    exp = _expected(source)

    files_meta = {}
    for res, name in _FILES.items():
        arr, info = exp[res]
        if info["dtype"] != "uint16":
            raise ValueError(f"{source / name}: expected uint16, got {info['dtype']}")
        profile = {
            "driver": "GTiff",
            "dtype": "uint16",
            "count": arr.shape[0],
            "height": arr.shape[1],
            "width": arr.shape[2],
            "crs": info["crs"],
            "transform": info["transform_crop"],
            "nodata": None,
            "compress": "deflate",
            "predictor": 2,
            "tiled": True,
            "blockxsize": _BLOCK,
            "blockysize": _BLOCK,
            "interleave": "band",
        }
        path = dest / name
        if path.exists():
            path.unlink()
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(arr)
            dst.update_tags(**_tags(info["tags"], res))
            for i, desc in enumerate(info["descriptions"], start=1):
                dst.set_band_description(i, desc)
                dst.update_tags(i, BANDNAME=desc)
        files_meta[name] = {
            "bands": list(info["descriptions"]),
            "pixel_size_m": res,
            "width": arr.shape[2],
            "height": arr.shape[1],
            "dtype": "uint16",
        }

    t = exp[10][1]["transform_crop"]
    h, w = exp[10][0].shape[1:]
    bounds = [t.c, t.f + h * t.e, t.c + w * t.a, t.f]
    r0, r1, c0, c1 = SAMPLE_WINDOW
    meta = {
        "id": SAMPLE_ID,
        "crop_of": {
            "id": SAMPLE_SOURCE_ID,
            "window": [r0, r1, c0, c1],
            "window_convention": "[row0, row1, col0, col1]: 10 m pixels of the source, half-open",
            "window_20m": list(_windows()[20]),
        },
        "source": src_meta["source"],
        "license": src_meta["license"],
        "attribution": src_meta["attribution"],
        "credit": src_meta.get("credit"),
        "product_level": src_meta["product_level"],
        "date": src_meta.get("date"),
        "tile": src_meta.get("tile"),
        "dn_scale": src_meta["dn_scale"],
        "add_offset": src_meta["add_offset"],
        "georef": src_meta["georef"],
        "lossy": src_meta["lossy"],
        "notes": (
            f"Bundled sample of s2sr: crop of {SAMPLE_SOURCE_ID}, rows {r0}:{r1}, cols {c0}:{c1} of the 10 m "
            f"grid (bottom-right {h} x {w} px) and rows/cols {r0 // 2}:{r1 // 2}, {c0 // 2}:{c1 // 2} of the "
            "20 m grid; values unchanged (checked bit for bit). No 60 m bands (the window is not a multiple "
            "of 6 px). Held-out validation region: never train on it. Georeferencing SYNTHETIC as in the "
            "source (origin shifted by the crop). Source notes: " + src_meta.get("notes", "")
        ),
        "crs": src_meta["crs"],
        "bounds": bounds,
        "nodata": src_meta.get("nodata"),
        "reflectance": src_meta.get("reflectance", "(DN + add_offset) / dn_scale"),
        "files": files_meta,
        "source_files": src_meta.get("source_files", []),
        "derived_from": [
            {"path": f"shared/data/s2/{SAMPLE_SOURCE_ID}/{name}", "sha256": _sha256(source / name)}
            for name in _FILES.values()
        ],
    }
    (dest / "scene.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    (dest / "ATTRIBUTION.md").write_text(
        ATTRIBUTION_MD.format(
            sample_id=SAMPLE_ID,
            source_id=SAMPLE_SOURCE_ID,
            h=h,
            w=w,
            h2=h // 2,
            w2=w // 2,
            r0=r0,
            r1=r1,
            c0=c0,
            c1=c1,
            r0h=r0 // 2,
            r1h=r1 // 2,
            c0h=c0 // 2,
            c1h=c1 // 2,
            x0=t.c,
            sx0=exp[10][1]["transform"].c,
            sy0=exp[10][1]["transform"].f,
            y0=t.f,
        ),
        encoding="utf-8",
    )
    verify(dest, source_root)
    return dest


def verify(sample_dir: str | Path, source_root: str | Path | None = None) -> None:
    """Check the sample folder against the source: pixels bit for bit, dtype, georeferencing, names, tags and
    the ``scene.json`` bounds / scale. Raises ``ValueError`` describing the first difference."""
    import rasterio

    sample_dir = Path(sample_dir)
    source_root = Path(source_root) if source_root is not None else default_source_root()
    exp = _expected(source_root / SAMPLE_SOURCE_ID)
    meta = json.loads((sample_dir / "scene.json").read_text(encoding="utf-8"))
    for res, name in _FILES.items():
        arr, info = exp[res]
        with rasterio.open(sample_dir / name) as s:
            got = s.read()
            checks = {
                "dtype": (s.dtypes[0], "uint16"),
                "crs": (s.crs, info["crs"]),
                "transform": (s.transform, info["transform_crop"]),
                "descriptions": (s.descriptions, info["descriptions"]),
                "BANDNAME tags": (
                    [s.tags(i).get("BANDNAME") for i in range(1, s.count + 1)],
                    list(info["descriptions"]),
                ),
                "DN_SCALE": (s.tags().get("DN_SCALE"), str(meta["dn_scale"])),
                "ADD_OFFSET": (s.tags().get("ADD_OFFSET"), str(meta["add_offset"])),
                "nodata": (s.nodata, None),
                "block shape": (s.block_shapes[0], (_BLOCK, _BLOCK)),
                "compression": (s.compression.value if s.compression else None, "DEFLATE"),
                "bounds": (list(s.bounds), list(meta["bounds"])),
            }
        for what, (a, b) in checks.items():
            if a != b:
                raise ValueError(f"{sample_dir / name}: {what} is {a!r}, expected {b!r}")
        if got.dtype != arr.dtype or got.shape != arr.shape or not np.array_equal(got, arr):
            raise ValueError(f"{sample_dir / name}: pixels differ from the source window {_windows()[res]}")
    if meta["crop_of"]["window"] != list(SAMPLE_WINDOW) or meta["crop_of"]["id"] != SAMPLE_SOURCE_ID:
        raise ValueError(
            f"{sample_dir / 'scene.json'}: crop_of {meta['crop_of']} is not {SAMPLE_HOLDOUT_TEXT}"
        )


SAMPLE_HOLDOUT_TEXT = f"{SAMPLE_SOURCE_ID} {SAMPLE_WINDOW}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=None, help="folder of the shared scenes (data/s2)")
    parser.add_argument("--out", type=Path, default=None, help="output root (default: sr_core/data/sample)")
    parser.add_argument(
        "--check", action="store_true", help="only verify the existing sample against the source"
    )
    args = parser.parse_args(argv)
    if args.check:
        root = args.out if args.out is not None else Path(__file__).resolve().parent.parent / "data" / "sample"
        verify(root / SAMPLE_ID, args.source)
        print(f"OK: {root / SAMPLE_ID} matches the source bit for bit")
    else:
        dest = make_sample(args.source, args.out)
        print(f"wrote and verified {dest}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
