"""Experiment (issue #5, session 7): what the output data type costs `s2sr superres` on the whole path.

`s2sr superres` writes float32 DN by default (`--dtype float32`: the model's output as it is, NaN nodata);
`--dtype input` writes the input's integer DN (rounded, clipped to the type's range, its nodata). Float32 is
twice the bytes, and (in session 7, when float output used GDAL's floating-point predictor, PREDICTOR=3) ZSTD
cost about 2.5x the CPU of the integer predictor on the writer thread, which shares the 2 cores with the engine.
Both runs use the default `--predictor` (since session 8 none for float32; the committed
`superres_output_dtype.json` is from session 7).

Runs on a synthetic scene folder (the bundled sample mirror-tiled, as `s2sr bench` does), the default tile
(512) and the default model with all cores, and alternates: bare forward pass on the same tiles (the model as
shipped), the whole path with float32 output, the whole path with input-dtype output. Medians after the first
(warm-up) round. Writes JSON next to the other results.

    python benchmarks/experiments/superres_output_dtype.py --scene 2048 --rounds 6 \
        --out benchmarks/results/superres_output_dtype.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from benchmarks.throughput import harness as bench_cli
    from sr_core.inference import scene as sres
    from sr_core.models import DEFAULT_MODEL, load_predictor

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=int, default=2048, help="scene side in 10 m px (default 2048)")
    ap.add_argument("--rounds", type=int, default=6, help="rounds of bare / float32 / input (first = warm-up)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "superres_output_dtype.json"))
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args(argv)
    if a.rounds < 2:
        ap.error("--rounds must be >= 2 (the first is a warm-up)")
    threads = os.cpu_count() or 1
    pred = load_predictor(DEFAULT_MODEL, engine="onnx", threads=threads)
    with tempfile.TemporaryDirectory(dir=a.workdir) as tmp:
        scene = bench_cli._write_scene_folder(a.scene, Path(tmp) / "scene")
        _, inputs = bench_cli.bare_tile_inputs(pred.bands, a.scene, scale=int(pred.scale), margin=int(pred.margin),
                                               tile=sres.aligned_tile(sres.DEFAULT_TILE, int(pred.scale)))
        times: dict[str, list[float]] = {"bare": [], "float32": [], "input": []}
        sizes: dict[str, int] = {}
        for r in range(a.rounds):
            t0 = time.perf_counter()
            for x in inputs:
                pred(x)
            times["bare"].append(time.perf_counter() - t0)
            for dt in ("float32", "input"):
                out = Path(tmp) / f"out_{dt}.tif"
                t0 = time.perf_counter()
                sres.superresolve_file(scene, out, model=pred, dtype=dt)
                times[dt].append(time.perf_counter() - t0)
                sizes[dt] = out.stat().st_size
                out.unlink()
            print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    med = {k: statistics.median(v[1:]) for k, v in times.items()}
    res = {
        "meta": {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.platform(), "cpus": os.cpu_count(),
                 "python": platform.python_version(), "model": DEFAULT_MODEL, "engine": "onnx", "threads": threads,
                 "scene_px": a.scene, "tile": sres.DEFAULT_TILE, "rounds": a.rounds, "warmup_rounds": 1,
                 "git": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                       text=True).stdout.strip()},
        "seconds": times, "median_s": med,
        "overhead": {dt: med[dt] / med["bare"] - 1.0 for dt in ("float32", "input")},
        "output_bytes": sizes,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    for dt in ("float32", "input"):
        print(f"{dt}: median {med[dt]:.2f} s vs bare {med['bare']:.2f} s -> overhead {100 * res['overhead'][dt]:.1f} %, "
              f"{sizes[dt] / 1e6:.0f} MB")
    print("wrote", a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
