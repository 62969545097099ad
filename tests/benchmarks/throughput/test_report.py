"""benchmarks/throughput/report.py: the targets and the torch.compile verdicts from result rows."""

from __future__ import annotations

import pytest

from benchmarks.throughput.forward import compile_summary
from benchmarks.throughput.report import evaluate_targets


def _row(engine, median, q1, q3, *, threads=1, tile=256, full=None):
    st = {"median": median, "q1": q1, "q3": q3, "min": q1, "max": q3, "n": 5}
    r = {"model": "m", "device": "cpu", "precision": "fp32", "threads": threads, "tile": tile, "batch": 1,
         "engine": engine, "seconds": st, "first_call_s": 10.0 + median}
    if full is not None:
        r["full_tile_s"] = full
    return r


def test_compile_verdict_and_targets_from_rows():
    rows = [_row("torch", 1.0, 0.95, 1.05, full=2000.0), _row("compile", 0.8, 0.78, 0.82, full=1600.0),
            _row("torch", 1.0, 0.95, 1.05, tile=512), _row("compile", 0.97, 0.9, 1.0, tile=512),
            _row("onnx", 0.5, 0.5, 0.5, threads=2, full=10.0)]
    comp = {c["tile"]: c for c in compile_summary(rows)}
    assert comp[256]["speedup"] == pytest.approx(1.25) and comp[256]["helps"] is True
    assert comp[256]["compile_s"] == pytest.approx(10.0)
    assert comp[512]["helps"] is False  # 3 % faster, ranges overlap
    overhead = {"path": "udf-emulator", "model": "m", "engine": "onnx", "threads": 1, "scene_px": 512,
                "overhead": 0.2, "breakdown": {"extra_forward": 0.15, "write": 0.05}}
    rss = {"path": "p", "points": [{"rc": 0, "peak_rss_bytes": 4e8, "scene_px": 1, "pixels": 1},
                                   {"rc": 0, "peak_rss_bytes": 5e8, "scene_px": 2, "pixels": 4}],
           "full_tile_bytes": 3e9}
    t = {x["target"][:10]: x for x in evaluate_targets({"forward": rows, "overhead": [overhead], "rss": rss})}
    # one core: the best threads=1 row (compile, 1600 s), not the faster 2-thread row
    assert t["full tile "]["value"] == 1600.0 and t["full tile "]["pass"] is True
    assert t["whole path"]["value"] == 0.2 and t["whole path"]["pass"] is False
    assert t["peak RSS <"]["value"] == 3e9 and t["peak RSS <"]["pass"] is False  # extrapolation over 2 GB
