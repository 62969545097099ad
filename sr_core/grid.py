"""Nearest-replicated grids: a coarse grid carried on a finer one by repeating each pixel ``factor`` times.

openEO's ``resample_spatial(method="near")`` and ``resample_cube_spatial(method="near")`` put a coarse band on a
finer grid this way; the blocks of ``factor`` pixels along an axis may start at any *phase* ``0..factor-1``
(``phase`` = the index of the first full block). Everything here is numpy along one axis of an array of any
rank:

* :func:`replication_mismatches`: per phase, how many neighbouring pixel pairs inside its blocks differ.
* :func:`replication_phase`: the phase of *exact* replication (NaN equals NaN), or None;
  :func:`replication_phases`: every such phase.
* :func:`replicated_phase`: the phase of replication that a few broken blocks (filled nodata) may disturb.
* :func:`native_indices`: one pixel index per native pixel, for a phase.
* :func:`block_values`: one value per native pixel of a 2-D grid, read from the pixels of its block that hold data.

``missing`` (a bool array of the shape of ``a``, optional, in the replication functions): pixels without data
(NaN, a nodata value) that match any value. A back-end pads chunks with NaN wherever they leave the cube, and the edge of that
padding need not fall on a block edge; a nodata pixel inside a block says nothing about the block either.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "block_values",
    "native_indices",
    "replicated_phase",
    "replication_mismatches",
    "replication_phase",
    "replication_phases",
]


def replication_mismatches(a: np.ndarray, factor: int, axis: int, *, missing: np.ndarray | None = None) -> list[int]:
    """For each phase ``p`` in ``0..factor-1``: how many neighbouring pairs ``(i - 1, i)`` along ``axis`` that lie
    in the same block ``[p + k*factor, p + (k+1)*factor)`` hold different values (partial blocks at both ends
    included; NaN equals NaN; a pair with a ``missing`` pixel never differs). Zero = nearest-replicated by
    ``factor`` with that phase.

    The pairs are compared once, residue ``i mod factor`` by residue (strided views of ``a``, no copy of ``a``;
    this runs on every UDF chunk): a pair crosses a block boundary of phase ``p`` exactly when ``i = p (mod
    factor)``, so phase ``p`` counts every differing pair but those of residue ``p``.
    """
    a = np.asarray(a)
    ax = axis % a.ndim
    n = a.shape[ax]
    if n < 2:
        return [0] * factor
    a = np.moveaxis(a, ax, 0)  # a view
    if missing is not None:
        return _wildcard_mismatches(a, _missing_view(missing, a.shape, ax), factor)

    def count(b: np.ndarray, nan_equal: bool) -> list[int]:
        out = []
        for r in range(factor):
            pair = _residue_pairs(b, factor, r)
            if pair is None:
                out.append(0)
                continue
            prev, cur = pair
            diff = prev != cur
            if nan_equal:
                diff &= ~(np.isnan(prev) & np.isnan(cur))
            out.append(int(np.count_nonzero(diff)))
        total = sum(out)
        return [total - out[p] for p in range(factor)]

    bits = _bit_view(a)
    if bits is not None:
        # fast path: compare bit patterns (no NaN handling); exact whenever some phase has no difference at
        # all, otherwise (NaN payloads may differ) fall back to the float comparison below
        counts = count(bits, False)
        if min(counts) == 0:
            return counts
    return count(a, a.dtype.kind == "f")


def _missing_view(missing: np.ndarray, shape: tuple, ax: int) -> np.ndarray:
    """``missing`` (bool) with ``ax`` moved first; it must have the shape ``shape`` of the array so moved."""
    m = np.moveaxis(np.asarray(missing, dtype=bool), ax, 0)
    if m.shape != shape:
        raise ValueError(f"missing must have the shape of the array; got {m.shape} for {shape} (axis {ax} first)")
    return m


def _residue_differs(b: np.ndarray, miss: np.ndarray, factor: int, r: int) -> np.ndarray | None:
    """For the neighbour pairs of residue ``r`` (:func:`_residue_pairs`): True where both pixels hold data and
    their values differ (NaN equals NaN); None when there is no such pair."""
    pair = _residue_pairs(b, factor, r)
    if pair is None:
        return None
    prev, cur = pair
    mp, mc = _residue_pairs(miss, factor, r)
    diff = prev != cur
    if b.dtype.kind == "f":
        diff &= ~(np.isnan(prev) & np.isnan(cur))
    diff &= ~(mp | mc)
    return diff


def _wildcard_mismatches(b: np.ndarray, miss: np.ndarray, factor: int) -> list[int]:
    """:func:`replication_mismatches` of ``b`` (the axis first) with the ``missing`` pixels ``miss``."""
    out = []
    for r in range(factor):
        diff = _residue_differs(b, miss, factor, r)
        out.append(0 if diff is None else int(np.count_nonzero(diff)))
    total = sum(out)
    return [total - out[p] for p in range(factor)]


def _residue_pairs(b: np.ndarray, factor: int, r: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The neighbour pairs ``(i - 1, i)`` along axis 0 of ``b`` with ``i = r (mod factor)``, ``1 <= i < n``, as two
    strided views (no copy); None when there is no such pair."""
    n = b.shape[0]
    first = r or factor
    if first >= n:
        return None
    return b[first - 1 : n - 1 : factor], b[first:n:factor]


def _bit_view(a: np.ndarray) -> np.ndarray | None:
    """``a`` (float32 / float64) viewed as unsigned integers of the same size (any strides), else None."""
    if a.dtype.kind == "f" and a.dtype.itemsize in (4, 8):
        return a.view(np.uint32 if a.dtype.itemsize == 4 else np.uint64)
    return None


def replication_phase(a: np.ndarray, factor: int, axis: int, *, missing: np.ndarray | None = None) -> int | None:
    """The phase (``0..factor-1``) of exact ``factor``-fold nearest replication of ``a`` along ``axis``, or
    ``None`` when no phase fits. Data constant along the axis fits every phase; the smallest is returned.
    ``missing`` pixels match any value (see the module docstring).

    The smallest phase whose :func:`replication_mismatches` count is zero, found without counting: the pairs of
    one residue are compared at a time, only as far as needed (phase 0 at x2 reads half of the pairs)."""
    if missing is not None:
        phases = replication_phases(a, factor, axis, missing=missing)
        return phases[0] if phases else None
    a = np.asarray(a)
    ax = axis % a.ndim
    n = a.shape[ax]
    if n < 2:
        return 0
    a = np.moveaxis(a, ax, 0)  # a view

    def first_phase(b: np.ndarray, nan_equal: bool) -> int | None:
        equal: dict[int, bool] = {}  # residue r -> the pairs (i - 1, i), i = r (mod factor), are all equal

        def residue_equal(r: int) -> bool:
            if r not in equal:
                pair = _residue_pairs(b, factor, r)
                equal[r] = pair is None or bool(np.array_equal(*pair, equal_nan=nan_equal))
            return equal[r]

        for p in range(factor):  # phase p: every residue but p
            if all(residue_equal(r) for r in range(factor) if r != p):
                return p
        return None

    bits = _bit_view(a)
    if bits is not None:
        # bit patterns first, as replication_mismatches does; then floats (NaN equals NaN, -0 equals 0)
        p = first_phase(bits, False)
        if p is not None:
            return p
    return first_phase(a, a.dtype.kind == "f")


def replication_phases(a: np.ndarray, factor: int, axis: int, *, missing: np.ndarray | None = None) -> list[int]:
    """Every phase (ascending) whose :func:`replication_mismatches` count is zero: all the phases a replicated
    ``a`` fits (several when data constant along the axis, or ``missing`` pixels, leave the block edges open)."""
    return [p for p, c in enumerate(replication_mismatches(a, factor, axis, missing=missing)) if c == 0]


def native_indices(n: int, factor: int, phase: int) -> np.ndarray:
    """Indices (along an axis of length ``n``) of one pixel per native pixel, for blocks of ``factor`` with
    ``phase``: native pixel ``k`` covers ``[o + k f, o + (k+1) f)`` with ``o = phase`` if ``phase == 0`` else
    ``phase - factor`` (so a partial first block is kept). The first index of each block clipped to 0."""
    o = phase - factor if phase else 0
    m = -(-(n - o) // factor)
    return np.maximum(o + factor * np.arange(m), 0)


def replicated_phase(a: np.ndarray, factor: int, axis: int, *, tolerance: float = 0.02) -> int | None:
    """Phase of ``factor``-fold nearest replication of ``a`` along ``axis``: the phase whose blocks hold the fewest
    differing neighbour pairs, if at most ``tolerance`` of the pairs inside its blocks differ (filled nodata holes
    break a few blocks) and no other phase does as well; else None (not replicated, or ambiguous: constant data)."""
    axis = axis % a.ndim
    n = a.shape[axis]
    if n < 2 * factor:
        return None
    bad = replication_mismatches(np.ascontiguousarray(a), factor, axis)
    residue = np.arange(1, n) % factor
    pairs = np.bincount(residue, minlength=factor) * (a.size // n)  # neighbour pairs (i-1, i) by i mod factor
    frac = [bad[p] / max(int(pairs.sum() - pairs[p]), 1) for p in range(factor)]
    best = int(np.argmin(frac))
    others = [f for p, f in enumerate(frac) if p != best]
    if frac[best] <= tolerance and all(f > 2 * frac[best] + 1e-12 and f > tolerance for f in others):
        return best
    return None


def block_values(
    a: np.ndarray, factor: int, phase_y: int, phase_x: int, *, missing: np.ndarray | None = None
) -> np.ndarray:
    """One value per native pixel of ``a`` ``(..., H, W)``, nearest-replicated in ``factor`` x ``factor`` blocks
    with the phases ``phase_y``, ``phase_x`` (partial blocks at the edges included, as :func:`native_indices`):
    the first pixel of each block (row by row) that is not ``missing``; NaN where every pixel of a block is
    missing. Without ``missing``, the first pixel of each block. Float ``a`` keeps its dtype, other dtypes give
    float64."""
    a = np.asarray(a)
    h, w = a.shape[-2:]
    rows, cols = native_indices(h, factor, phase_y), native_indices(w, factor, phase_x)
    out = a[..., rows[:, None], cols[None, :]]
    if out.dtype.kind != "f":
        out = out.astype(np.float64)
    if missing is None:
        return out
    missing = np.asarray(missing, dtype=bool)
    if missing.shape != a.shape:
        raise ValueError(f"missing must have the shape of the array; got {missing.shape} for {a.shape}")
    todo = missing[..., rows[:, None], cols[None, :]]
    oy, ox = (phase_y - factor if phase_y else 0), (phase_x - factor if phase_x else 0)
    for dy in range(factor):
        r = oy + factor * np.arange(rows.size) + dy
        r_in = (r >= 0) & (r < h)
        for dx in range(factor):
            if not todo.any():
                return out
            c = ox + factor * np.arange(cols.size) + dx
            c_in = (c >= 0) & (c < w)
            ri, ci = np.clip(r, 0, h - 1)[:, None], np.clip(c, 0, w - 1)[None, :]
            take = todo & (r_in[:, None] & c_in[None, :]) & ~missing[..., ri, ci]
            out[take] = a[..., ri, ci][take]
            todo &= ~take
    out[todo] = np.nan
    return out
