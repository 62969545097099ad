"""benchmarks/throughput/whole_path.py: the whole path against the bare forward pass on a tiny random package. No
timing assertions: only relations that hold whatever the speed of the machine."""

from __future__ import annotations

import json

import pytest

from benchmarks.throughput.report import evaluate_targets, markdown_report
from benchmarks.throughput.rss import superres_available
from benchmarks.throughput.suite import BenchSettings
from benchmarks.throughput.system import cpu_info, environment_info
from benchmarks.throughput.whole_path import bench_superres_path, bench_whole_path


def test_whole_path_bare_is_the_model_as_shipped_with_its_post_processing(pkg, tmp_path):
    # a card with post-processing (the 20 m-band projection): the bare forward is the Predictor (engine +
    # post-processing), its post-processing share and the overhead over the engine alone are reported, and the
    # parts still add up to the overhead (one timed run: medians are the run's own values)
    from sr_core.models import load_predictor
    from udf.testing import make_package

    pp = tmp_path / "pp"  # the package of the fixture (same arch and seed) with the projection in its card
    card = json.loads((pkg / "card.json").read_text())
    bands20 = [b for b in card["bands"] if b in ("B05", "B06", "B07", "B8A", "B11", "B12")]
    make_package(pp, arch="s2fast", arch_kwargs={"num_features": 8, "num_blocks": 1},
                 postprocess={"coarse_projection": {"bands": bands20, "factor": 2, "lam": 0.05, "taps": 3}})
    common = {"engine": "onnx", "threads": 1, "scene": 64, "repeats": 1, "warmup": 0, "workdir": tmp_path}
    rows = [bench_whole_path(pp, **common)]
    if superres_available():
        rows.append(bench_superres_path(pp, **common))
    for r in rows:
        whole, bare = r["whole_s"]["median"], r["bare_s"]["median"]
        eng, post = r["bare_engine_s"]["median"], r["bare_post_s"]["median"]
        assert post > 0 and r["post_in_path_s"]["median"] > 0, r["path"]
        assert eng + post == pytest.approx(bare, rel=1e-12)
        assert r["postprocess_share"] == pytest.approx(post / bare)
        assert r["overhead"] == pytest.approx(whole / bare - 1)
        assert r["overhead_vs_engine"] == pytest.approx(whole / eng - 1)
        assert sum(r["breakdown"].values()) == pytest.approx(r["overhead"], rel=1e-9, abs=1e-9)
        assert r["breakdown"]["extra_post"] == pytest.approx((r["post_in_path_s"]["median"] - post) / bare)
    pred = load_predictor(str(pp.resolve()), engine="onnx", threads=1)
    assert "postprocess" not in vars(pred) and pred._fn.__name__ == "run_onnx"  # the timers are gone again
    detail = next(t for t in evaluate_targets({"overhead": rows}) if "UDF" in t["target"])["detail"]
    assert "post-processing" in detail and "over the engine alone" in detail


def test_whole_path_with_chunk_workers_is_compared_with_the_faster_bare_pass(pkg, tmp_path):
    # 2 chunk workers x 1 engine thread: the bare comparator is the faster of the tiles on 2 workers and the
    # tiles one after the other with 2 engine threads; the breakdown (thread time) is not reported
    common = {"engine": "onnx", "threads": 1, "scene": 64, "repeats": 1, "warmup": 0, "workdir": tmp_path}
    r = bench_whole_path(pkg, chunk=32, workers=2, **common)
    alt = r["bare_alternatives"]
    assert r["workers"] == 2 and r["cores"] == 2 and r["apply_neighborhood"]["scheduler"] == "threads"
    assert alt["intra_op_threads"] == 2
    faster = min(alt["workers_s"]["median"], alt["intra_op_s"]["median"])
    assert r["bare_s"]["median"] == pytest.approx(faster, rel=1e-12)
    assert alt["faster"] == ("workers" if alt["workers_s"]["median"] <= alt["intra_op_s"]["median"] else "intra_op")
    assert r["overhead"] == pytest.approx(r["whole_s"]["median"] / faster - 1)
    assert r["breakdown"] == {} and r["thread_s"]["forward"] > 0 and r["overhead_vs_engine"] is None
    assert r["apply_neighborhood"]["chunks"] > 2  # more chunks than workers: the rolling window was used
    (t,) = [t for t in evaluate_targets({"overhead": [r]}) if "UDF" in t["target"]]
    assert "2 chunk workers x 1 engine thread" in t["detail"] and "faster bare pass on 2 cores" in t["detail"]
    results = {"overhead": [r], "forward": [], "compile": [], "models": [], "notes": [], "rss": None,
               "machine": {"cpu": cpu_info(), "gpu": None}, "environment": environment_info(),
               "settings": vars(BenchSettings(models=[str(pkg)])), "command": [], "created_utc": "",
               "reportable": False, "targets": [t]}
    md = markdown_report(results)
    assert "| 2 x 1 |" in md
    failed = {"path": "udf-emulator", "model": "m", "engine": "onnx", "threads": 2, "error": "OSError: disk full"}
    md2 = markdown_report({**results, "overhead": [r, failed]})  # a failed row is listed, not tabulated
    assert "- udf-emulator m onnx threads=2: failed: OSError: disk full" in md2 and md2.count("| 2 x 1 |") == 1
    if superres_available():  # s2sr superres with 2 tile workers: the same comparison
        rs = bench_superres_path(pkg, workers=2, **common)
        alt = rs["bare_alternatives"]
        assert rs["workers"] == 2 and rs["breakdown"] == {} and rs["thread_s"]["forward"] > 0
        assert rs["bare_s"]["median"] == pytest.approx(min(alt["workers_s"]["median"], alt["intra_op_s"]["median"]))
        (t,) = [t for t in evaluate_targets({"overhead": [rs]}) if "superres" in t["target"]]
        assert "2 tile workers x 1 engine thread" in t["detail"]
