"""Cost of the default model's post-processing (the 20 m-band consistency projection) on one CPU core.

The throughput benchmark's forward pass times the engine's session alone; this script times the whole predictor
(engine + post-processing) on the same tile, as the UDF and `s2sr superres` run it, and extrapolates to a full
Sentinel-2 tile. Medians of 5 runs after a warm-up; JSON in benchmarks/results/postprocess_cost/postprocess_cost.json.

    python benchmarks/postprocess_cost.py [--model s2sr-x2-10band] [--core 512] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np


def main() -> None:
    """Time the engine alone and the predictor with its post-processing; write the JSON and print a summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="s2sr-x2-10band")
    ap.add_argument("--core", type=int, default=512, help="tile core in input px (the margin is added)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "postprocess_cost" / "postprocess_cost.json"))
    a = ap.parse_args()
    from sr_core.models import load_predictor

    p = load_predictor(a.model, threads=a.threads)
    n = a.core + 2 * p.margin
    x = np.random.default_rng(0).uniform(0.02, 0.4, (1, len(p.bands), n, n)).astype(np.float32)
    coarse = [i for i, b in enumerate(p.bands) if b in ("B05", "B06", "B07", "B8A", "B11", "B12")]
    x[:, coarse] = np.repeat(np.repeat(x[:, coarse, ::2, ::2], 2, -1), 2, -2)[..., :n, :n]

    def med(f):
        f()
        ts = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
        return float(np.median(ts)), [float(v) for v in ts]

    raw, raw_all = med(lambda: p._fn(x))
    full, full_all = med(lambda: p(x))
    out_px = (p.scale * a.core) ** 2
    res = {
        "model": p.card.name, "version": p.card.version, "engine": p.engine, "threads": a.threads,
        "tile_input_px": n, "core_px": a.core, "margin_px": p.margin,
        "engine_s": raw, "engine_runs_s": raw_all, "with_postprocess_s": full, "with_postprocess_runs_s": full_all,
        "postprocess_overhead": full / raw - 1.0,
        "output_px_per_s": out_px / full, "output_px_per_s_engine_only": out_px / raw,
        "full_tile_min": (10980 * p.scale) ** 2 / (out_px / full) / 60.0,
        "machine": platform.platform(), "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    print(f"{res['model']} {res['version']}: {res['output_px_per_s'] / 1e6:.3f} M out px/s with post-processing "
          f"({res['output_px_per_s_engine_only'] / 1e6:.3f} M engine only, +{100 * res['postprocess_overhead']:.0f} %); "
          f"full S2 tile {res['full_tile_min']:.1f} min on {a.threads} thread(s)")


if __name__ == "__main__":
    main()
