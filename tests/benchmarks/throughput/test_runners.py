"""benchmarks/throughput/runners.py: the configurations that cannot run here are refused or recorded as skipped."""

from __future__ import annotations

import pytest

from benchmarks.throughput.forward import bench_forward
from benchmarks.throughput.runners import SkipConfig, make_runner


def test_runner_skips_what_cannot_run_here(pkg):
    import torch

    with pytest.raises(SkipConfig, match="fp32"):
        make_runner(pkg, engine="onnx", precision="fp16")
    with pytest.raises(SkipConfig, match="fp16"):
        make_runner(pkg, engine="torch", device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="engine"):
        make_runner(pkg, engine="tensorrt")
    with pytest.raises(ValueError, match="precision"):
        make_runner(pkg, engine="torch", precision="fp8")
    if not torch.cuda.is_available():
        rows = bench_forward(pkg, engines=["torch", "onnx"], device="cuda", precisions=["fp32", "bf16"],
                                tiles=[32], batches=[1, 4], repeats=1, warmup=0)
        assert len(rows) == 4 and all("CUDA" in r["skipped"] or "fp32" in r["skipped"] for r in rows)
        assert {r["threads"] for r in rows} == {None}  # threads do not apply to CUDA rows
