"""benchmarks/throughput/cli.py: a smoke run of the whole benchmark on a tiny random package (``--random-model
--quick``), and the options. No timing assertions: only relations that hold whatever the speed of the machine
(derived figures vs the measured medians, pixel counts, FLOP counts)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.throughput.cli import main
from benchmarks.throughput.report import TARGET_FULL_TILE_S, markdown_report
from benchmarks.throughput.rss import superres_available
from benchmarks.throughput.suite import SCHEMA

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_out")
    rc = main(["--random-model", "--quick", "--out", str(out), "--tag", "smoke", "--quiet",
                  "--workdir", str(out / "not" / "yet")])  # created when missing
    assert rc == 0
    return out, json.loads((out / "throughput_smoke.json").read_text())


def test_quick_run_forward_figures_follow_from_the_medians(quick_run):
    _, res = quick_run
    assert res["schema"] == SCHEMA and res["reportable"] is False and res["settings"]["quick"] is True
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
    if superres_available():
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
    assert one_core["value"] == best and one_core["pass"] == (best <= TARGET_FULL_TILE_S)
    assert targets["peak RSS <= 2 GB whatever the scene size"]["value"] == max(p["peak_rss_bytes"] for p in rss["points"])
    env = res["environment"]
    assert env["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", env["git_commit"])
    assert res["machine"]["cpu"]["flops_per_cycle"] in (8, 32, 64)
    md = (out / "throughput.md").read_text()
    assert md == markdown_report(res)
    assert "| random-s2fast | onnx | cpu | fp32 | 1 | 64 |" in md and "Not reportable" in md


def test_cli_help_and_errors(capsys):
    r = subprocess.run([sys.executable, "-m", "benchmarks.throughput", "--help"],
                       capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    assert r.returncode == 0
    for opt in ("--quick", "--model", "--engines", "--threads", "--tiles", "--repeats", "--out"):
        assert opt in r.stdout
    # building and parsing the options imports neither torch nor onnxruntime (fast --help)
    code = ("import argparse, sys; from benchmarks.throughput.cli import add_bench_arguments; p = argparse.ArgumentParser(); "
            "add_bench_arguments(p); p.parse_args(['--quick']); print(sorted({'torch', 'onnxruntime'} & set(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr
    assert main(["--random-model", "--quick", "--engines", "tensorrt", "--quiet"]) == 2
    assert "tensorrt" in capsys.readouterr().err
    assert main(["--random-model", "--quick", "--threads", "100000", "--quiet"]) == 2
    assert "threads" in capsys.readouterr().err
