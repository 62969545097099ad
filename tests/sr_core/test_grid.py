"""Nearest-replicated grids (sr_core.grid): replication counts, exact and tolerant phase detection."""

from __future__ import annotations

import numpy as np
import pytest

from sr_core.grid import (
    block_values,
    native_indices,
    replicated_phase,
    replication_mismatches,
    replication_phase,
    replication_phases,
)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_replication_mismatches_equals_pairwise_brute_force(factor):
    rng = np.random.default_rng(factor)
    for phase in range(factor):
        base = rng.random((2, 3, 6, 8)).astype(np.float32)
        base[1, 2, 2, :] = np.nan  # a nodata row: NaN equals NaN inside a replicated block
        a = np.repeat(np.repeat(base, factor, axis=-1), factor, axis=-2)
        a = a[..., (factor - phase) % factor :, (factor - phase) % factor :][..., :17, :19].copy()
        for axis in (-2, -1):
            got = replication_mismatches(a, factor, axis)
            n = a.shape[axis]
            want = []
            for p in range(factor):
                c = 0
                for i in range(1, n):
                    if (i - p) % factor == 0:
                        continue
                    x, y = np.take(a, i, axis=axis), np.take(a, i - 1, axis=axis)
                    c += int(np.count_nonzero((x != y) & ~(np.isnan(x) & np.isnan(y))))
                want.append(c)
            assert got == want
            assert replication_phase(a, factor, axis) == phase
            assert got[phase] == 0 and min(got[p] for p in range(factor) if p != phase) > 0


def test_replication_phase_is_the_first_phase_without_mismatches():
    # replication_phase short-circuits (residue by residue): it must name the smallest phase whose
    # replication_mismatches count is zero, or None, for every dtype, NaN payload, signed zero and strided view
    rng = np.random.default_rng(7)
    seen = set()
    for _ in range(600):
        factor = int(rng.integers(1, 5))
        shape = tuple(int(v) for v in rng.integers(1, 7, size=int(rng.integers(1, 4))))
        a = rng.integers(0, 3, size=shape).astype(rng.choice([np.float32, np.float64, np.int16, np.uint8]))
        if a.dtype.kind == "f":
            a[rng.random(shape) < 0.2] = np.nan
            a[rng.random(shape) < 0.1] = -0.0
            if a.dtype == np.float32:
                a.view(np.uint32)[np.isnan(a) & (rng.random(shape) < 0.5)] = 0x7FC00001  # another quiet NaN
        if rng.random() < 0.6:
            a = np.repeat(a, factor, axis=int(rng.integers(0, a.ndim)))[..., int(rng.integers(0, 2)) :]
        if rng.random() < 0.3 and a.shape[-1] > 2:
            a = a[..., ::2]  # a strided view
        for axis in range(-a.ndim, 0):
            counts = replication_mismatches(a, factor, axis)
            want = counts.index(0) if 0 in counts else None
            assert replication_phase(a, factor, axis) == want, (a, factor, axis, counts)
            seen.add(want is None)
    assert seen == {True, False}


def test_replication_mismatches_nan_payloads():
    # NaNs with different bit patterns inside one block still count as equal (the bitwise fast path falls back)
    a = np.repeat(np.arange(6, dtype=np.float32), 2)[None].copy()
    bits = a.view(np.uint32)
    bits[0, 2] = 0x7FC00000
    bits[0, 3] = 0x7FC00001  # another quiet NaN
    assert np.isnan(a[0, 2]) and np.isnan(a[0, 3])
    assert replication_mismatches(a, 2, -1) == [0, 5]
    assert replication_mismatches(a.astype(np.float64), 2, -1) == [0, 5]


@pytest.mark.parametrize("phase", [0, 1])
def test_replicated_phase_tolerates_a_few_broken_blocks_and_refuses_the_rest(phase):
    rng = np.random.default_rng(phase)
    a = np.repeat(np.repeat(rng.random((3, 12, 12)), 2, -1), 2, -2)[:, phase:, phase:]
    assert replicated_phase(a, 2, -2) == phase and replicated_phase(a, 2, -1) == phase
    a = a.copy()
    a[0, 5, 5] += 1.0  # a filled nodata pixel breaks one block
    assert replicated_phase(a, 2, -2) == phase
    assert replicated_phase(rng.random((3, 20, 20)), 2, -1) is None  # not replicated
    assert replicated_phase(np.ones((3, 20, 20)), 2, -1) is None  # constant: ambiguous


def _brute_mismatches(a, missing, factor, axis):
    n = a.shape[axis]
    out = []
    for p in range(factor):
        c = 0
        for i in range(1, n):
            if (i - p) % factor == 0:
                continue
            x, y = np.take(a, i, axis=axis), np.take(a, i - 1, axis=axis)
            mx, my = np.take(missing, i, axis=axis), np.take(missing, i - 1, axis=axis)
            c += int(np.count_nonzero((x != y) & ~(np.isnan(x) & np.isnan(y)) & ~mx & ~my))
        out.append(c)
    return out


@pytest.mark.parametrize("factor", [2, 4])
def test_missing_pixels_match_any_value(factor):
    """Nodata pixels (a NaN border whose edge is off the blocks, single NaN or nodata pixels) do not break the
    replication: counts equal the pairwise brute force without the pairs that touch a missing pixel."""
    rng = np.random.default_rng(factor + 10)
    for phase in range(factor):
        base = rng.random((2, 7, 8)).astype(np.float32)
        cut = (factor - phase) % factor
        a = np.repeat(np.repeat(base, factor, -1), factor, -2)[..., cut:, cut:]
        a = a[..., :21, :23].copy()
        a[:, :, :3] = np.nan  # a NaN border 3 px wide: its edge is not a block edge
        a[0, 5, 9] = np.nan  # a single NaN pixel
        a[1, 8, 11] = -1.0  # a single nodata pixel (value -1)
        missing = np.isnan(a) | (a == -1.0)
        for axis in (-2, -1):
            assert replication_phase(a, factor, axis) is None  # the exact check fails
            got = replication_mismatches(a, factor, axis, missing=missing)
            assert got == _brute_mismatches(a, missing, factor, axis)
            assert replication_phase(a, factor, axis, missing=missing) == phase
            assert replication_phases(a, factor, axis, missing=missing) == [phase]
        # values that really differ inside a block are still found
        b = a.copy()
        b[0, 12, 12] += 1.0
        assert replication_phase(b, factor, -1, missing=missing) is None
        got = replication_mismatches(b, factor, -1, missing=missing)
        assert got == _brute_mismatches(b, missing, factor, -1) and got[phase] > 0


def test_replication_phases_lists_every_fitting_phase():
    a = np.repeat(np.arange(5.0), 4)[None, 1:]  # phase 3 at x4, hence also phase 1 at x2
    assert replication_phases(a, 4, -1) == [3]
    assert replication_phases(a, 2, -1) == [1]
    assert replication_phases(np.ones((3, 8)), 2, -1) == [0, 1]  # constant: every phase
    only = np.full((1, 9), np.nan)
    only[0, 4] = 2.0
    assert replication_phases(only, 4, -1, missing=np.isnan(only)) == [0, 1, 2, 3]  # one pixel of data: open


@pytest.mark.parametrize("factor, py, px", [(2, 0, 0), (2, 1, 0), (2, 1, 1), (4, 2, 3), (4, 3, 1)])
def test_block_values_reads_each_block_from_a_pixel_with_data(factor, py, px):
    rng = np.random.default_rng(factor * 10 + py + px)
    native = rng.random((2, 6, 7))
    a = np.repeat(np.repeat(native, factor, -2), factor, -1)
    a = a[:, (factor - py) % factor :, (factor - px) % factor :][:, :17, :19].copy()
    h, w = a.shape[-2:]
    nb, mb = len(native_indices(h, factor, py)), len(native_indices(w, factor, px))
    np.testing.assert_array_equal(block_values(a, factor, py, px), native[:, :nb, :mb])
    missing = rng.random(a.shape) < 0.4
    missing[1, : (py or factor), :] = True  # the whole first block row of sample 1 has no data
    got = block_values(np.where(missing, -5.0, a), factor, py, px, missing=missing)
    oy, ox = (py - factor if py else 0), (px - factor if px else 0)
    for s in range(2):
        for i in range(nb):
            for j in range(mb):
                r = slice(max(oy + factor * i, 0), oy + factor * (i + 1))
                c = slice(max(ox + factor * j, 0), ox + factor * (j + 1))
                has = ~missing[s, r, c]
                if has.any():
                    assert got[s, i, j] == native[s, i, j]
                    assert got[s, i, j] == a[s, r, c][has][0]  # the first pixel with data, row by row
                else:
                    assert np.isnan(got[s, i, j])
    assert np.isnan(got[1, 0]).all()
    assert block_values(np.zeros((4, 4), np.int16), 2, 0, 0).dtype == np.float64
