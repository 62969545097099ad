"""benchmarks/throughput/timing.py: statistics and the full-tile extrapolation against closed forms."""

from __future__ import annotations

import pytest

from benchmarks.throughput.timing import (
    format_duration,
    full_tile_seconds,
    tiles_per_scene,
    time_calls,
    timing_stats,
)


def test_timing_stats_closed_form():
    st = timing_stats([5.0, 1.0, 3.0, 2.0, 4.0])
    assert st == {"n": 5, "median": 3.0, "q1": 2.0, "q3": 4.0, "iqr": 2.0, "min": 1.0, "max": 5.0, "mean": 3.0}
    # even count: linear interpolation between the middle values
    assert timing_stats([1.0, 2.0, 3.0, 10.0])["median"] == 2.5
    for bad in ([], [1.0, float("nan")]):
        with pytest.raises(ValueError, match="samples"):
            timing_stats(bad)


def test_time_calls_counts_runs_and_syncs():
    calls, syncs = [], []
    times, warm, out = time_calls(lambda: calls.append(1) or len(calls), repeats=3, warmup=2,
                                     sync=lambda: syncs.append(1))
    assert (len(times), len(warm), len(calls), out) == (3, 2, 5, 5)
    assert len(syncs) == 2 * 5  # before the clock starts and before it stops, every call
    assert all(t >= 0 for t in times + warm)
    with pytest.raises(ValueError, match="repeats"):
        time_calls(lambda: None, repeats=0, warmup=0)
    with pytest.raises(ValueError, match="warmup"):
        time_calls(lambda: None, repeats=1, warmup=-1)


def test_full_tile_extrapolation_closed_form():
    # tile 128 with a margin of 18 px leaves a 92 px core: ceil(10980 / 92) = 120 tiles per side
    assert tiles_per_scene(10980, 92) == 120**2
    assert full_tile_seconds(0.5, tile=128, margin=18) == pytest.approx(0.5 * 120**2)
    assert full_tile_seconds(2.0, tile=10980, margin=0) == 2.0  # one tile is the whole scene
    assert full_tile_seconds(1.0, tile=100, margin=0, size=250) == 9.0
    with pytest.raises(ValueError, match="no core"):
        full_tile_seconds(1.0, tile=36, margin=18)
    with pytest.raises(ValueError, match="seconds_per_tile"):
        full_tile_seconds(float("inf"), tile=64, margin=4)


def test_full_tile_duration_in_seconds_below_a_minute():
    """A GPU's full tile takes seconds: the report says so instead of '0.0 min'."""
    assert format_duration(2.63) == "2.6 s"
    assert format_duration(59.94) == "59.9 s"
    assert format_duration(60.0) == "1.0 min"
    assert format_duration(900.0) == "15.0 min"
