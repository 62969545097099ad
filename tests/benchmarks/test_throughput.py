"""Throughput benchmark (sr_core/bench_cli.py, benchmarks/throughput.py): the pieces against closed forms and a
smoke run of the whole benchmark on a tiny random package. No timing assertions: only relations that hold
whatever the speed of the machine (derived figures vs the measured medians, pixel counts, FLOP counts)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.throughput import harness as bc

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pkg(tmp_path_factory):
    from udf.testing import make_package

    folder = tmp_path_factory.mktemp("bench") / "tiny-s2fast"
    make_package(folder, arch="s2fast", arch_kwargs={"num_features": 8, "num_blocks": 1})
    return folder


# ------------------------------------------------------------------------------------------------ statistics


def test_timing_stats_closed_form():
    st = bc.timing_stats([5.0, 1.0, 3.0, 2.0, 4.0])
    assert st == {"n": 5, "median": 3.0, "q1": 2.0, "q3": 4.0, "iqr": 2.0, "min": 1.0, "max": 5.0, "mean": 3.0}
    # even count: linear interpolation between the middle values
    assert bc.timing_stats([1.0, 2.0, 3.0, 10.0])["median"] == 2.5
    for bad in ([], [1.0, float("nan")]):
        with pytest.raises(ValueError, match="samples"):
            bc.timing_stats(bad)


def test_time_calls_counts_runs_and_syncs():
    calls, syncs = [], []
    times, warm, out = bc.time_calls(lambda: calls.append(1) or len(calls), repeats=3, warmup=2,
                                     sync=lambda: syncs.append(1))
    assert (len(times), len(warm), len(calls), out) == (3, 2, 5, 5)
    assert len(syncs) == 2 * 5  # before the clock starts and before it stops, every call
    assert all(t >= 0 for t in times + warm)
    with pytest.raises(ValueError, match="repeats"):
        bc.time_calls(lambda: None, repeats=0, warmup=0)
    with pytest.raises(ValueError, match="warmup"):
        bc.time_calls(lambda: None, repeats=1, warmup=-1)


def test_parse_threads_and_lists():
    assert bc.parse_threads("1..all", all_cpus=8) == [1, 2, 4, 8]
    assert bc.parse_threads("1..all", all_cpus=6) == [1, 2, 4, 6]
    assert bc.parse_threads("1..all", all_cpus=1) == [1]
    assert bc.parse_threads("1-3,all", all_cpus=6) == [1, 2, 3, 6]
    assert bc.parse_threads("all,1", all_cpus=4) == [4, 1]
    with pytest.raises(ValueError, match="more than the 4 CPUs"):
        bc.parse_threads("8", all_cpus=4)
    assert bc.parse_int_list("256, 128,256", "tiles") == [256, 128]
    with pytest.raises(ValueError, match="tiles"):
        bc.parse_int_list("128,x", "tiles")
    with pytest.raises(ValueError, match=">= 1"):
        bc.parse_int_list("0", "tiles")
    assert bc.parse_engines("onnx,torch,onnx") == ["onnx", "torch"]
    with pytest.raises(ValueError, match="tensorrt"):
        bc.parse_engines("torch,tensorrt")


def test_full_tile_extrapolation_closed_form():
    # tile 128 with a margin of 18 px leaves a 92 px core: ceil(10980 / 92) = 120 tiles per side
    assert bc.tiles_per_scene(10980, 92) == 120**2
    assert bc.full_tile_seconds(0.5, tile=128, margin=18) == pytest.approx(0.5 * 120**2)
    assert bc.full_tile_seconds(2.0, tile=10980, margin=0) == 2.0  # one tile is the whole scene
    assert bc.full_tile_seconds(1.0, tile=100, margin=0, size=250) == 9.0
    with pytest.raises(ValueError, match="no core"):
        bc.full_tile_seconds(1.0, tile=36, margin=18)
    with pytest.raises(ValueError, match="seconds_per_tile"):
        bc.full_tile_seconds(float("inf"), tile=64, margin=4)


def test_peak_flops_from_flags():
    assert bc.flops_per_cycle({"avx512f", "avx2", "fma"})[0] == 16 * 2 * 2
    assert bc.flops_per_cycle(["avx2", "fma", "avx"])[0] == 8 * 2 * 2
    assert bc.flops_per_cycle(["avx2"])[0] == 8  # no FMA
    assert bc.flops_per_cycle([])[0] == 8
    assert bc.peak_gflops(4, 2.5, 32) == 4 * 2.5 * 32
    with pytest.raises(ValueError, match="ghz"):
        bc.peak_gflops(1, 0.0, 32)
    with pytest.raises(ValueError, match="cores"):
        bc.peak_gflops(0, 2.0, 32)
    info = bc.cpu_info(ghz=3.0)
    assert info["ghz"] == 3.0 and info["ghz_source"] == "argument"
    assert info["flops_per_cycle"] == bc.flops_per_cycle(info["flags"])[0]
    assert info["peak_gflops_per_core"] == pytest.approx(3.0 * info["flops_per_cycle"])
    assert 1 <= info["physical_cores"] <= info["logical_cpus"] and 1 <= info["usable_cpus"] <= info["logical_cpus"]


# ------------------------------------------------------------------------------------------------ FLOPs


def test_conv_flops_onnx_equals_closed_form_and_torch_counter(pkg):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from sr_core.models import load_torch_model

    model, _ = load_torch_model(pkg)
    n, h, w = 2, 20, 24
    got = bc.conv_flops_onnx(pkg / "model.onnx", (n, 10, h, w))
    # S2Fast's own closed form (head, body, tail convs + the 5x5 depthwise bicubic base) per LR pixel
    assert got["total"] == model.net.flops_per_lr_pixel() * n * h * w
    # an independent counter: torch's dispatch-level FLOP counter on the eager model
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(torch.rand(n, 10, h, w))
    assert got["total"] == fc.get_total_flops()
    # the bicubic conv follows a dynamic Pad: its shape needs the ONNX Runtime run
    assert "ONNX Runtime" in got["method"]
    assert sum(d["flops"] for d in got["nodes"]) == got["total"]
    with pytest.raises(ValueError, match="allow_run"):
        bc.conv_flops_onnx(pkg / "model.onnx", (1, 10, 16, 16), allow_run=False)
    with pytest.raises(ValueError, match="dims"):
        bc.conv_flops_onnx(pkg / "model.onnx", (10, 16, 16))


def test_conv_flops_onnx_grouped_strided_and_transposed():
    from onnx import TensorProto, helper, numpy_helper

    w1 = numpy_helper.from_array(np.zeros((6, 2, 3, 3), np.float32), "w1")  # Cin 4, groups 2
    w2 = numpy_helper.from_array(np.zeros((6, 3, 2, 2), np.float32), "w2")  # ConvTranspose: Cin 6, Cout 3
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["y"], group=2, strides=[2, 2], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("ConvTranspose", ["y", "w2"], ["z"], strides=[2, 2], kernel_shape=[2, 2]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, "h", "w"])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], initializer=[w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    got = bc.conv_flops_onnx(model, (3, 4, 10, 12))
    out_h, out_w = (10 + 2 - 3) // 2 + 1, (12 + 2 - 3) // 2 + 1  # 5 x 6
    conv = 2 * (4 // 2) * 3 * 3 * 6 * 3 * out_h * out_w
    convt = 2 * 6 * 3 * 2 * 2 * 3 * out_h * out_w  # per INPUT pixel of the transposed conv
    assert [d["flops"] for d in got["nodes"]] == [conv, convt]
    assert got["total"] == conv + convt
    assert got["method"] == "onnx shape inference"


def test_runner_skips_what_cannot_run_here(pkg):
    import torch

    with pytest.raises(bc.SkipConfig, match="fp32"):
        bc.make_runner(pkg, engine="onnx", precision="fp16")
    with pytest.raises(bc.SkipConfig, match="fp16"):
        bc.make_runner(pkg, engine="torch", device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="engine"):
        bc.make_runner(pkg, engine="tensorrt")
    with pytest.raises(ValueError, match="precision"):
        bc.make_runner(pkg, engine="torch", precision="fp8")
    if not torch.cuda.is_available():
        rows = bc.bench_forward(pkg, engines=["torch", "onnx"], device="cuda", precisions=["fp32", "bf16"],
                                tiles=[32], batches=[1, 4], repeats=1, warmup=0)
        assert len(rows) == 4 and all("CUDA" in r["skipped"] or "fp32" in r["skipped"] for r in rows)
        assert {r["threads"] for r in rows} == {None}  # threads do not apply to CUDA rows


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
    comp = {c["tile"]: c for c in bc.compile_summary(rows)}
    assert comp[256]["speedup"] == pytest.approx(1.25) and comp[256]["helps"] is True
    assert comp[256]["compile_s"] == pytest.approx(10.0)
    assert comp[512]["helps"] is False  # 3 % faster, ranges overlap
    overhead = {"path": "udf-emulator", "model": "m", "engine": "onnx", "threads": 1, "scene_px": 512,
                "overhead": 0.2, "breakdown": {"extra_forward": 0.15, "write": 0.05}}
    rss = {"path": "p", "points": [{"rc": 0, "peak_rss_bytes": 4e8, "scene_px": 1, "pixels": 1},
                                   {"rc": 0, "peak_rss_bytes": 5e8, "scene_px": 2, "pixels": 4}],
           "full_tile_bytes": 3e9}
    t = {x["target"][:10]: x for x in bc.evaluate_targets({"forward": rows, "overhead": [overhead], "rss": rss})}
    # one core: the best threads=1 row (compile, 1600 s), not the faster 2-thread row
    assert t["full tile "]["value"] == 1600.0 and t["full tile "]["pass"] is True
    assert t["whole path"]["value"] == 0.2 and t["whole path"]["pass"] is False
    assert t["peak RSS <"]["value"] == 3e9 and t["peak RSS <"]["pass"] is False  # extrapolation over 2 GB


# ------------------------------------------------------------------------------------------------ memory


def test_peak_rss_follows_an_allocation():
    cur = bc.current_rss_bytes() or 0
    assert bc.peak_rss_bytes() >= cur > 0  # the current value first: the peak can only grow after it
    if not bc.reset_peak_rss():
        pytest.skip("this OS cannot reset the peak RSS (/proc/self/clear_refs)")
    # in a fresh interpreter: in this worker, earlier tests may have left freed but resident memory that an
    # allocation would reuse without raising the RSS
    import subprocess
    import sys

    code = (
        "import numpy as np, benchmarks.throughput.harness as bc\n"
        "assert bc.reset_peak_rss()\n"
        "before = bc.peak_rss_bytes()\n"
        "big = np.ones(64 * 2**20 // 8)\n"  # 64 MiB, every page touched
        "after = bc.peak_rss_bytes()\n"
        "assert after - before >= 60 * 2**20, (before, after)\n"
        "del big\n"
        "assert bc.reset_peak_rss() and bc.peak_rss_bytes() < after\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------------------------ smoke run


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_out")
    rc = bc.main(["--random-model", "--quick", "--out", str(out), "--tag", "smoke", "--quiet",
                  "--workdir", str(out / "not" / "yet")])  # created when missing
    assert rc == 0
    return out, json.loads((out / "throughput_smoke.json").read_text())


def test_quick_run_forward_figures_follow_from_the_medians(quick_run):
    _, res = quick_run
    assert res["schema"] == bc.SCHEMA and res["reportable"] is False and res["settings"]["quick"] is True
    rows = [r for r in res["forward"] if "seconds" in r]
    assert {r["engine"] for r in rows} == {"torch", "onnx"}
    model = res["models"][0]
    m, s = model["margin"], model["scale"]
    kw = model["arch_kwargs"]
    c, f, b = kw["in_channels"], kw["num_features"], kw["num_blocks"]
    flops_per_px = 18 * (c * f + 2 * b * f * f + f * c * s * s) + 2 * 25 * c * s * s  # S2Fast closed form
    for r in rows:
        t = r["tile"]
        assert (r["threads"], t, r["batch"], r["seconds"]["n"]) == (1, 64, 1, 1)
        assert r["input_shape"] == [1, 10, t, t] and r["output_shape"] == [1, 10, s * t, s * t]
        spt = r["seconds"]["median"]
        assert r["s_per_tile"] == spt
        assert r["out_mp_per_s"] == pytest.approx((s * t) ** 2 / 1e6 / spt)
        assert r["full_tile_s"] == pytest.approx(math.ceil(10980 / (t - 2 * m)) ** 2 * spt)
        assert r["gflop_per_tile"] == pytest.approx(flops_per_px * t * t / 1e9)
        assert r["gflops"] == pytest.approx(r["gflop_per_tile"] / spt)
        assert r["pct_peak"] == pytest.approx(100 * r["gflops"] / r["peak_gflops"])
        assert r["peak_rss_bytes"] > 0
    onnx_row = next(r for r in rows if r["engine"] == "onnx")
    assert onnx_row["max_abs_diff"] < 1e-4  # ONNX Runtime computes what torch eager computes


def test_quick_run_whole_path_is_decomposed_exactly(quick_run):
    _, res = quick_run
    emu = [r for r in res["overhead"] if r.get("path") == "udf-emulator"]
    assert len(emu) == 1 and "error" not in emu[0]
    if bc.superres_available():
        sup = [r for r in res["overhead"] if r.get("path") == "superres"]
        assert len(sup) == 1 and "error" not in sup[0], sup
    for r in res["overhead"]:
        assert "error" not in r, r
        # one timed run: the medians are the run's own values, so the parts add up to the overhead
        assert sum(r["breakdown"].values()) == pytest.approx(r["overhead"], rel=1e-9, abs=1e-9)
        assert r["overhead"] == pytest.approx(r["whole_s"]["median"] / r["bare_s"]["median"] - 1)
    r = emu[0]
    an, m, s = r["apply_neighborhood"], r["margin"], 2
    assert (r["scene_px"], r["mode"], an["chunks"]) == (128, "resampled", 1)
    # every chunk: (size + 2 overlap) px on the 5 m grid = half that on the model grid, edge-padded by the margin
    # a full-size chunk whose overlap covers the margin runs the network on its core + margin only (no padding)
    ctx = an["overlap"] // s
    side = (an["size"] + 2 * an["overlap"]) // s - 2 * (ctx - m) if ctx >= m else (an["size"] + 2 * an["overlap"]) // s + 2 * m
    assert r["model_input_px_path"] == an["chunks"] * side**2
    # the bare tiles: cores clipped to the scene (here one tile, the recommended chunk exceeds the 128 px scene)
    assert r["scene_px"] % min(r["bare_tile_core"], r["scene_px"]) == 0
    assert r["model_input_px_bare"] == r["bare_tiles"] * (min(r["bare_tile_core"], r["scene_px"]) + 2 * m) ** 2


def test_whole_path_bare_is_the_model_as_shipped_with_its_post_processing(pkg, tmp_path):
    # a card with post-processing (the 20 m-band projection): the bare forward is the Predictor (engine +
    # post-processing), its post-processing share and the overhead over the engine alone are reported, and the
    # parts still add up to the overhead (one timed run: medians are the run's own values)
    import shutil

    from sr_core.models import load_predictor

    pp = tmp_path / "pp"
    shutil.copytree(pkg, pp)
    card = json.loads((pp / "card.json").read_text())
    bands20 = [b for b in card["bands"] if b in ("B05", "B06", "B07", "B8A", "B11", "B12")]
    card["postprocess"] = {"coarse_projection": {"bands": bands20, "factor": 2, "lam": 0.05, "taps": 3}}
    (pp / "card.json").write_text(json.dumps(card))
    common = {"engine": "onnx", "threads": 1, "scene": 64, "repeats": 1, "warmup": 0, "workdir": tmp_path}
    rows = [bc.bench_whole_path(pp, **common)]
    if bc.superres_available():
        rows.append(bc.bench_superres_path(pp, **common))
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
    detail = next(t for t in bc.evaluate_targets({"overhead": rows}) if "UDF" in t["target"])["detail"]
    assert "post-processing" in detail and "over the engine alone" in detail


def test_quick_run_rss_targets_and_report(quick_run):
    out, res = quick_run
    rss = res["rss"]
    assert [p["scene_px"] for p in rss["points"]] == [64, 128]
    for p in rss["points"]:
        assert p["rc"] == 0, p.get("stderr_tail")
        assert p["rss_scope"] == "child VmHWM" and p["peak_rss_bytes"] > 10 * 2**20
        assert p["pixels"] == p["scene_px"] ** 2
    a, b = rss["points"]
    assert rss["bytes_per_pixel"] == pytest.approx((b["peak_rss_bytes"] - a["peak_rss_bytes"]) / (b["pixels"] - a["pixels"]))
    # scenes this small are not extrapolated to a full tile: the RSS target uses the measured peak
    assert "full_tile_bytes" not in rss and "not extrapolated" in rss["extrapolation"]
    targets = {t["target"]: t for t in res["targets"]}
    one_core = targets["full tile (10980 x 10980, x2) on one CPU core <= 30 min"]
    best = min(r["full_tile_s"] for r in res["forward"] if r.get("threads") == 1 and "full_tile_s" in r)
    assert one_core["value"] == best and one_core["pass"] == (best <= bc.TARGET_FULL_TILE_S)
    assert targets["peak RSS <= 2 GB whatever the scene size"]["value"] == max(p["peak_rss_bytes"] for p in rss["points"])
    env = res["environment"]
    assert env["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", env["git_commit"])
    assert res["machine"]["cpu"]["flops_per_cycle"] in (8, 32, 64)
    md = (out / "throughput.md").read_text()
    assert md == bc.markdown_report(res)
    assert "| random-s2fast | onnx | cpu | fp32 | 1 | 64 |" in md and "Not reportable" in md


# ------------------------------------------------------------------------------------------------ command line


def test_cli_help_and_errors(capsys):
    r = subprocess.run([sys.executable, "-m", "benchmarks.throughput", "--help"],
                       capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    assert r.returncode == 0
    for opt in ("--quick", "--model", "--engines", "--threads", "--tiles", "--repeats", "--out"):
        assert opt in r.stdout
    # building and parsing the options imports neither torch nor onnxruntime (fast --help)
    code = ("import argparse, sys; from benchmarks.throughput.harness import add_bench_arguments; p = argparse.ArgumentParser(); "
            "add_bench_arguments(p); p.parse_args(['--quick']); print(sorted({'torch', 'onnxruntime'} & set(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr
    assert bc.main(["--random-model", "--quick", "--engines", "tensorrt", "--quiet"]) == 2
    assert "tensorrt" in capsys.readouterr().err
    assert bc.main(["--random-model", "--quick", "--threads", "100000", "--quiet"]) == 2
    assert "threads" in capsys.readouterr().err


def test_whole_path_with_chunk_workers_is_compared_with_the_faster_bare_pass(pkg, tmp_path):
    # 2 chunk workers x 1 engine thread: the bare comparator is the faster of the tiles on 2 workers and the
    # tiles one after the other with 2 engine threads; the breakdown (thread time) is not reported
    common = {"engine": "onnx", "threads": 1, "scene": 64, "repeats": 1, "warmup": 0, "workdir": tmp_path}
    r = bc.bench_whole_path(pkg, chunk=32, workers=2, **common)
    alt = r["bare_alternatives"]
    assert r["workers"] == 2 and r["cores"] == 2 and r["apply_neighborhood"]["scheduler"] == "threads"
    assert alt["intra_op_threads"] == 2
    faster = min(alt["workers_s"]["median"], alt["intra_op_s"]["median"])
    assert r["bare_s"]["median"] == pytest.approx(faster, rel=1e-12)
    assert alt["faster"] == ("workers" if alt["workers_s"]["median"] <= alt["intra_op_s"]["median"] else "intra_op")
    assert r["overhead"] == pytest.approx(r["whole_s"]["median"] / faster - 1)
    assert r["breakdown"] == {} and r["thread_s"]["forward"] > 0 and r["overhead_vs_engine"] is None
    assert r["apply_neighborhood"]["chunks"] > 2  # more chunks than workers: the rolling window was used
    (t,) = [t for t in bc.evaluate_targets({"overhead": [r]}) if "UDF" in t["target"]]
    assert "2 chunk workers x 1 engine thread" in t["detail"] and "faster bare pass on 2 cores" in t["detail"]
    results = {"overhead": [r], "forward": [], "compile": [], "models": [], "notes": [], "rss": None,
               "machine": {"cpu": bc.cpu_info(), "gpu": None}, "environment": bc.environment_info(),
               "settings": vars(bc.BenchSettings(models=[str(pkg)])), "command": [], "created_utc": "",
               "reportable": False, "targets": [t]}
    md = bc.markdown_report(results)
    assert "| 2 x 1 |" in md
    failed = {"path": "udf-emulator", "model": "m", "engine": "onnx", "threads": 2, "error": "OSError: disk full"}
    md2 = bc.markdown_report({**results, "overhead": [r, failed]})  # a failed row is listed, not tabulated
    assert "- udf-emulator m onnx threads=2: failed: OSError: disk full" in md2 and md2.count("| 2 x 1 |") == 1
    if bc.superres_available():  # s2sr superres with 2 tile workers: the same comparison
        rs = bc.bench_superres_path(pkg, workers=2, **common)
        alt = rs["bare_alternatives"]
        assert rs["workers"] == 2 and rs["breakdown"] == {} and rs["thread_s"]["forward"] > 0
        assert rs["bare_s"]["median"] == pytest.approx(min(alt["workers_s"]["median"], alt["intra_op_s"]["median"]))
        (t,) = [t for t in bc.evaluate_targets({"overhead": [rs]}) if "superres" in t["target"]]
        assert "2 tile workers x 1 engine thread" in t["detail"]


def test_full_tile_duration_in_seconds_below_a_minute():
    """A GPU's full tile takes seconds: the report says so instead of '0.0 min'."""
    from benchmarks.throughput.harness import _fmt_duration

    assert _fmt_duration(2.63) == "2.6 s"
    assert _fmt_duration(59.94) == "59.9 s"
    assert _fmt_duration(60.0) == "1.0 min"
    assert _fmt_duration(900.0) == "15.0 min"
