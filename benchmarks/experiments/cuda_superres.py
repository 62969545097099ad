"""Experiment (issue #5, session 9): `s2sr superres` on a CUDA device, end to end, against the CPU reference.

Runs the shipped default model through `sr_core.inference.scene.superresolve_file` with the torch engine on CUDA
(fp32, one tile at a time, the default tile) on the bundled real sample and on a synthetic scene folder (the sample
mirror-tiled, as `s2sr bench` makes it), times it (median of --repeats runs after one warm-up; the bare forward
pass on the same tiles on the same device alongside) and compares the output with the ONNX Runtime CPU output of the
same input (max |difference| in DN per band, and whether nodata and georeferencing agree).

    python benchmarks/experiments/cuda_superres.py --scene 2048 --repeats 3 --out cuda_superres.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import rasterio
    import torch

    from benchmarks.throughput import harness as bench_cli

    from sr_core import models
    from sr_core.inference import scene as sres
    from sr_core.io.sample import sample_scene_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=int, default=2048, help="synthetic scene side in 10 m px (default 2048)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="cuda_superres.json")
    a = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure")
        return 2
    gpu = torch.cuda.get_device_name(0)
    cuda = models.load_predictor(models.DEFAULT_MODEL, engine="torch", device="cuda")
    cpu = models.load_predictor(models.DEFAULT_MODEL, engine="onnx", threads=os.cpu_count())
    res: dict = {"meta": {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "gpu": gpu, "torch": torch.__version__,
                          "cpus": os.cpu_count(), "python": platform.python_version(), "model": models.DEFAULT_MODEL,
                          "tile": sres.DEFAULT_TILE, "repeats": a.repeats}, "scenes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthetic = bench_cli._write_scene_folder(a.scene, tmp / "s")
        scenes = {"sample": sample_scene_path(), f"synthetic_{a.scene}": synthetic}
        for name, scene in scenes.items():
            ref, out = tmp / f"{name}_cpu.tif", tmp / f"{name}_cuda.tif"
            t0 = time.perf_counter()
            sres.superresolve_file(scene, ref, model=cpu)
            cpu_s = time.perf_counter() - t0
            times = []
            for _ in range(a.repeats + 1):
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                sres.superresolve_file(scene, out, model=cuda)
                times.append(time.perf_counter() - t0)
            with rasterio.open(ref) as r, rasterio.open(out) as o:
                x, y = r.read(), o.read()
                same_geo = r.transform == o.transform and r.crs == o.crs and r.descriptions == o.descriptions
                nan_same = bool((np.isnan(x) == np.isnan(y)).all())
                diff = np.nanmax(np.abs(x.astype(np.float64) - y), axis=(1, 2))
                bands = list(r.descriptions)
                shape = list(x.shape)
            row = {"output_shape": shape, "cpu_onnx_s": cpu_s, "cuda_s": times[1:],
                   "cuda_median_s": statistics.median(times[1:]),
                   "max_abs_diff_dn": dict(zip(bands, diff.tolist())), "nodata_identical": nan_same,
                   "georef_and_bands_identical": bool(same_geo)}
            res["scenes"][name] = row
            print(name, json.dumps({k: v for k, v in row.items() if k != "cuda_s"}), flush=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
