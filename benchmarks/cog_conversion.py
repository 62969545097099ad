"""Peak RSS and wall time of turning a tiled GeoTIFF into a COG: GDAL's COG driver generating the overviews
(``OVERVIEWS=AUTO``) against ``sr_core.io.cog.make_cog`` (overviews averaged window by window, then the COG
assembled by copying the compressed tiles of the raster and of the levels: nothing re-encoded).

Each conversion runs in a fresh child process that reports its own peak RSS (``VmHWM``); the input is a
synthetic 10-band float32 raster (smooth field + noise, rounded to DN, ZSTD level 1, predictor 3, 256 px
blocks), the layout ``s2sr superres`` writes before the COG step. ``GDAL_CACHEMAX=128`` as in ``s2sr superres``.
(``s2sr superres`` itself makes the overview levels while it writes the raster, which this conversion cannot.)
Results and the decision they support: benchmarks/results/cog_conversion/, docs/decisions/2026-11-22-cog-overviews.md.

    python benchmarks/cog_conversion.py --sizes 5120,10240 --methods ours,gdal --out benchmarks/results/cog_conversion/cog_conversion.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import os, sys, time, json
os.environ.setdefault("GDAL_CACHEMAX", "128")
sys.path.insert(0, {root!r})
import rasterio, rasterio.shutil
from sr_core.io.cog import make_cog
src, dst, method = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
if method == "gdal":
    rasterio.shutil.copy(src, dst, driver="COG", compress="ZSTD", predictor="YES", level=1, blocksize=256,
                         overviews="AUTO", resampling="AVERAGE", bigtiff="IF_SAFER", num_threads="ALL_CPUS")
else:
    make_cog(src, dst, blocksize=256, scratch_options=dict(compress="zstd", predictor=3, zstd_level=1))
wall = time.perf_counter() - t
hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0] * 1024
print(json.dumps({{"wall_s": wall, "peak_rss_bytes": hwm}}))
"""


def make_input(path: Path, n: int) -> None:
    """The ``n`` x ``n`` px, 10-band float32 input raster at ``path`` (written in 1024 px windows)."""
    import numpy as np
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    prof = {"driver": "GTiff", "width": n, "height": n, "count": 10, "dtype": "float32", "crs": "EPSG:32631",
            "transform": Affine(5, 0, 300000, 0, -5, 5000000), "nodata": float("nan"), "tiled": True,
            "blockxsize": 256, "blockysize": 256, "bigtiff": "IF_SAFER", "interleave": "pixel", "compress": "zstd",
            "predictor": 3, "zstd_level": 1}
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:1024, 0:1024]
    base = (2000 + 800 * np.sin(yy / 37.0) * np.cos(xx / 53.0)).astype(np.float32)
    gain = (1 + 0.1 * np.arange(10, dtype=np.float32))[:, None, None]
    with rasterio.open(path, "w", **prof) as d:
        for r in range(0, n, 1024):
            for c in range(0, n, 1024):
                h, w = min(1024, n - r), min(1024, n - c)
                v = base[None, :h, :w] * gain + rng.normal(0, 30, (10, h, w)).astype(np.float32)
                d.write(np.round(v), window=Window(c, r, w, h))


def main(argv: list[str] | None = None) -> int:
    """Convert one input per size with each method in a child process; write the rows and the machine to ``--out``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="5120,10240", help="raster sides in px (comma separated)")
    ap.add_argument("--methods", default="ours,gdal", help="ours and/or gdal")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cog_conversion" / "cog_conversion.json"))
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(dir=a.workdir) as tmp:
        for n in [int(s) for s in a.sizes.split(",")]:
            src = Path(tmp) / f"in{n}.tif"
            make_input(src, n)
            for m in a.methods.split(","):
                dst = Path(tmp) / f"out{n}_{m}.tif"
                p = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), str(src), str(dst), m],
                                   capture_output=True, text=True, check=True)
                r = json.loads(p.stdout.strip().splitlines()[-1])
                rows.append({"size_px": n, "bands": 10, "dtype": "float32", "method": m, **r,
                             "output_bytes": dst.stat().st_size})
                print(f"{n} px {m}: {r['wall_s']:.1f} s, peak RSS {r['peak_rss_bytes'] / 1e6:.0f} MB", flush=True)
                dst.unlink()
            src.unlink()
    import rasterio

    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.platform(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "rasterio": rasterio.__version__, "gdal": rasterio.__gdal_version__,
            "git": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                  text=True, check=False).stdout.strip(),
            "gdal_cachemax_mb": 128, "runs": 1}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print("wrote", a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
