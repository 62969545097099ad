"""Experiment (issue #5, session 8): what the writer and reader threads cost `s2sr superres` when the engine has
every core, and what three changes of session 8 each bring.

With one tile at a time and all cores to ONNX Runtime (1 x N), the reader and writer threads compete with the
engine threads. Configurations, from the session-7 state to the session-8 default:

- `s7`: float output with the floating-point TIFF predictor, I/O threads at normal priority, ONNX Runtime
  intra-op threads spinning (its default);
- `no_fp_predictor`: as `s7` without the floating-point predictor (`--predictor auto`);
- `nice_io`: and the I/O threads at nice +10 (`sr_core.inference.scene.lower_thread_priority`);
- `no_spin`: `no_fp_predictor` with non-spinning ONNX Runtime threads, I/O threads at normal priority;
- `s8`: all three (the default since session 8).

The bare forward pass (the model as shipped, on the same tiles) is timed with spinning and with non-spinning
threads; each overhead is against the bare pass with the same engine setting. Runs alternate, the first round is a
warm-up; medians of the others. Synthetic scene folder: the bundled sample mirror-tiled, as `s2sr bench` does.

    python benchmarks/experiments/superres_io_contention.py --scene 2048 --rounds 5 \
        --out benchmarks/results/superres_io_contention.json
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

#: name -> (ONNX Runtime spinning, I/O threads at a lower priority, --predictor)
CONFIGS = {
    "s7": (True, False, "yes"),
    "no_fp_predictor": (True, False, "auto"),
    "nice_io": (True, True, "auto"),
    "no_spin": (False, False, "auto"),
    "s8": (False, True, "auto"),
}


def main(argv: list[str] | None = None) -> int:
    from benchmarks.throughput import harness as bench_cli
    from sr_core import models
    from sr_core.inference import scene as sres

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=int, default=2048, help="scene side in 10 m px (default 2048)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of every configuration (first = warm-up)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "superres_io_contention.json"))
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args(argv)
    if a.rounds < 2:
        ap.error("--rounds must be >= 2 (the first is a warm-up)")
    threads = os.cpu_count() or 1
    shipped_options = models.ort_session_options

    def spinning_options(t: int | None = None):  # the shipped options but ONNX Runtime's default spinning
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if t is not None:
            opts.intra_op_num_threads = int(t)
            opts.inter_op_num_threads = 1
        return opts

    preds = {}
    for spin in (True, False):
        models._CACHE.clear()
        models.ort_session_options = spinning_options if spin else shipped_options
        try:
            preds[spin] = models.load_predictor(models.DEFAULT_MODEL, engine="onnx", threads=threads)
        finally:
            models.ort_session_options = shipped_options
    models._CACHE.clear()
    shipped_priority = sres.lower_thread_priority

    with tempfile.TemporaryDirectory(dir=a.workdir) as tmp:
        scene = bench_cli._write_scene_folder(a.scene, Path(tmp) / "scene")
        pred = preds[False]
        _, inputs = bench_cli.bare_tile_inputs(pred.bands, a.scene, scale=int(pred.scale), margin=int(pred.margin),
                                               tile=sres.aligned_tile(sres.DEFAULT_TILE, int(pred.scale)))
        times: dict[str, list[float]] = {"bare_spin": [], "bare_no_spin": [], **{k: [] for k in CONFIGS}}
        sizes: dict[str, int] = {}
        out = Path(tmp) / "out.tif"
        for r in range(a.rounds):
            for spin in (True, False):
                t0 = time.perf_counter()
                for x in inputs:
                    preds[spin](x)
                times["bare_spin" if spin else "bare_no_spin"].append(time.perf_counter() - t0)
            for name, (spin, nice, tiff_predictor) in CONFIGS.items():
                sres.lower_thread_priority = shipped_priority if nice else (lambda *_: False)
                try:
                    t0 = time.perf_counter()
                    sres.superresolve_file(scene, out, model=preds[spin], tiff_predictor=tiff_predictor)
                    times[name].append(time.perf_counter() - t0)
                finally:
                    sres.lower_thread_priority = shipped_priority
                sizes[name] = out.stat().st_size
            print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    med = {k: statistics.median(v[1:]) for k, v in times.items()}
    overhead = {k: med[k] / med["bare_spin" if spin else "bare_no_spin"] - 1.0 for k, (spin, _, _) in CONFIGS.items()}
    res = {
        "meta": {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.platform(), "cpus": os.cpu_count(),
                 "python": platform.python_version(), "model": models.DEFAULT_MODEL, "engine": "onnx",
                 "threads": threads, "workers": 1, "scene_px": a.scene, "tile": sres.DEFAULT_TILE,
                 "rounds": a.rounds, "warmup_rounds": 1,
                 "configs": {k: {"ort_spinning": s, "io_nice": n, "predictor": p} for k, (s, n, p) in CONFIGS.items()},
                 "git": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                       text=True).stdout.strip()},
        "seconds": times, "median_s": med, "overhead": overhead, "output_bytes": sizes,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    for k in CONFIGS:
        print(f"{k}: median {med[k]:.2f} s -> overhead {100 * overhead[k]:.1f} %, {sizes[k] / 1e6:.0f} MB")
    print("bare: spinning {:.2f} s, not spinning {:.2f} s".format(med["bare_spin"], med["bare_no_spin"]))
    print("wrote", a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
