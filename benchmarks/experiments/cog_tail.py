"""Experiment (issue #5, session 9): what the session-9 changes to the COG writing bring `s2sr superres` 1 x N with COG
output (one tile at a time, every core to ONNX Runtime).

- `s8`: the COG code of session 8 (``sr_core/cog.py`` at commit ``d0b9a91``, loaded from git): the tiles copied
  into the COG by one thread (buffered ``read`` / ``write`` of a new bytes object per tile), ``average_halve``
  halving columns first and testing the whole source for NaN;
- `s9`: the current code: two copy threads with positional reads / writes into reused buffers, rows halved
  first and the 4 times smaller sums tested for NaN.

Both run the current `sr_core.inference.scene`; only ``sr_core.io.cog.assemble_cog`` and ``sr_core.io.cog.average_halve`` (which
``HalvingWriter``, ``build_overviews`` and ``make_cog`` call by name) are swapped. The bare forward pass (the model
as shipped, on the same tiles) alternates with both, the two configurations in alternating order; before each run
the output of the run before is removed and the dirty pages written back (untimed ``os.sync``). The first round is a
warm-up, medians of the others. Per run, the process CPU time (user + system) is recorded too. Synthetic scene
folder: the bundled sample mirror-tiled, as `s2sr bench` does.

    python benchmarks/experiments/cog_tail.py --scene 2048 --rounds 7 --out benchmarks/results/cog_tail.json
"""

from __future__ import annotations

import argparse
import importlib.util
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

#: the commit whose sr_core/cog.py is the `s8` configuration
BEFORE = "d0b9a91"


def _load_cog_at(rev: str):
    """``sr_core/cog.py`` as it was at ``rev``, imported as a module of the ``sr_core`` package."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:sr_core/cog.py"], capture_output=True, text=True,
                         check=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location(f"sr_core._cog_{rev}", f.name)
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "sr_core"
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    try:
        spec.loader.exec_module(mod)
    finally:
        os.unlink(f.name)
    return mod


def main(argv: list[str] | None = None) -> int:
    from benchmarks.throughput import harness as bench_cli
    from sr_core.io import cog
    from sr_core import models
    from sr_core.inference import scene as sres

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=int, default=2048, help="scene side in 10 m px (default 2048)")
    ap.add_argument("--rounds", type=int, default=6, help="rounds of every configuration (first = warm-up)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cog_tail.json"))
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args(argv)
    if a.rounds < 2:
        ap.error("--rounds must be >= 2 (the first is a warm-up)")
    threads = os.cpu_count() or 1
    old = _load_cog_at(BEFORE)
    configs = {
        "s8": {"assemble_cog": old.assemble_cog, "average_halve": old.average_halve},
        "s9": {"assemble_cog": cog.assemble_cog, "average_halve": cog.average_halve},
    }
    shipped = dict(configs["s9"])
    pred = models.load_predictor(models.DEFAULT_MODEL, engine="onnx", threads=threads)

    def cpu() -> float:
        t = os.times()
        return t.user + t.system

    with tempfile.TemporaryDirectory(dir=a.workdir) as tmp:
        scene = bench_cli._write_scene_folder(a.scene, Path(tmp) / "scene")
        _, inputs = bench_cli.bare_tile_inputs(pred.bands, a.scene, scale=int(pred.scale), margin=int(pred.margin),
                                               tile=sres.aligned_tile(sres.DEFAULT_TILE, int(pred.scale)))
        times: dict[str, list[float]] = {"bare": [], **{k: [] for k in configs}}
        cpus: dict[str, list[float]] = {k: [] for k in times}
        sizes: dict[str, int] = {}
        out = Path(tmp) / "out.tif"
        for r in range(a.rounds):
            os.sync()
            c0, t0 = cpu(), time.perf_counter()
            for x in inputs:
                pred(x)
            times["bare"].append(time.perf_counter() - t0)
            cpus["bare"].append(cpu() - c0)
            # the order alternates between rounds, and dirty pages of the run before are written back first
            # (os.sync, untimed): a run right after another one otherwise pays for its writeback and file removal
            for name in (list(configs) if r % 2 == 0 else list(configs)[::-1]):
                funcs = configs[name]
                if out.exists():
                    out.unlink()
                os.sync()
                for k, f in funcs.items():
                    setattr(cog, k, f)
                try:
                    c0, t0 = cpu(), time.perf_counter()
                    sres.superresolve_file(scene, out, model=pred)
                    times[name].append(time.perf_counter() - t0)
                    cpus[name].append(cpu() - c0)
                finally:
                    for k, f in shipped.items():
                        setattr(cog, k, f)
                sizes[name] = out.stat().st_size
            print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.2f} s ({cpus[k][-1]:.1f} s CPU)" for k, v in times.items()),
                  flush=True)
    med = {k: statistics.median(v[1:]) for k, v in times.items()}
    med_cpu = {k: statistics.median(v[1:]) for k, v in cpus.items()}
    overhead = {k: med[k] / med["bare"] - 1.0 for k in configs}
    res = {
        "meta": {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.platform(), "cpus": os.cpu_count(),
                 "python": platform.python_version(), "model": models.DEFAULT_MODEL, "engine": "onnx",
                 "threads": threads, "workers": 1, "scene_px": a.scene, "tile": sres.DEFAULT_TILE,
                 "rounds": a.rounds, "warmup_rounds": 1, "before": BEFORE,
                 "git": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                       text=True).stdout.strip()},
        "seconds": times, "cpu_seconds": cpus, "median_s": med, "median_cpu_s": med_cpu, "overhead": overhead,
        "output_bytes": sizes,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))
    for k in configs:
        print(f"{k}: median {med[k]:.2f} s ({med_cpu[k]:.1f} s CPU) -> overhead {100 * overhead[k]:.1f} %, "
              f"{sizes[k] / 1e6:.0f} MB")
    print(f"bare: {med['bare']:.2f} s ({med_cpu['bare']:.1f} s CPU)")
    print("wrote", a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
