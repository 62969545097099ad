"""benchmarks/throughput/system.py: the CPU peak from its flags, and the peak RSS of the process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks.throughput.system import (
    cpu_info,
    current_rss_bytes,
    flops_per_cycle,
    peak_gflops,
    peak_rss_bytes,
    reset_peak_rss,
)


def test_peak_flops_from_flags():
    assert flops_per_cycle({"avx512f", "avx2", "fma"})[0] == 16 * 2 * 2
    assert flops_per_cycle(["avx2", "fma", "avx"])[0] == 8 * 2 * 2
    assert flops_per_cycle(["avx2"])[0] == 8  # no FMA
    assert flops_per_cycle([])[0] == 8
    assert peak_gflops(4, 2.5, 32) == 4 * 2.5 * 32
    with pytest.raises(ValueError, match="ghz"):
        peak_gflops(1, 0.0, 32)
    with pytest.raises(ValueError, match="cores"):
        peak_gflops(0, 2.0, 32)
    info = cpu_info(ghz=3.0)
    assert info["ghz"] == 3.0 and info["ghz_source"] == "argument"
    assert info["flops_per_cycle"] == flops_per_cycle(info["flags"])[0]
    assert info["peak_gflops_per_core"] == pytest.approx(3.0 * info["flops_per_cycle"])
    assert 1 <= info["physical_cores"] <= info["logical_cpus"] and 1 <= info["usable_cpus"] <= info["logical_cpus"]


def test_peak_rss_follows_an_allocation():
    cur = current_rss_bytes() or 0
    assert peak_rss_bytes() >= cur > 0  # the current value first: the peak can only grow after it
    if not reset_peak_rss():
        pytest.skip("this OS cannot reset the peak RSS (/proc/self/clear_refs)")
    # in a fresh interpreter: in this worker, earlier tests may have left freed but resident memory that an
    # allocation would reuse without raising the RSS
    code = (
        "import numpy as np, benchmarks.throughput.system as bc\n"
        "assert bc.reset_peak_rss()\n"
        "before = bc.peak_rss_bytes()\n"
        "big = np.ones(64 * 2**20 // 8)\n"  # 64 MiB, every page touched
        "after = bc.peak_rss_bytes()\n"
        "assert after - before >= 60 * 2**20, (before, after)\n"
        "del big\n"
        "assert bc.reset_peak_rss() and bc.peak_rss_bytes() < after\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
