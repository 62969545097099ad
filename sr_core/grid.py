"""Nearest-replicated grids: a coarse grid carried on a finer one by repeating each pixel ``factor`` times.

openEO's ``resample_spatial(method="near")`` and ``resample_cube_spatial(method="near")`` put a coarse band on a
finer grid this way; the blocks of ``factor`` pixels along an axis may start at any *phase* ``0..factor-1``
(``phase`` = the index of the first full block). Everything here is numpy along one axis of an array of any
rank:

* :func:`replication_mismatches`: per phase, how many neighbouring pixel pairs inside its blocks differ.
* :func:`replication_phase`: the phase of *exact* replication (NaN equals NaN), or None.
* :func:`replicated_phase`: the phase of replication that a few broken blocks (filled nodata) may disturb.
* :func:`native_indices`: one pixel index per native pixel, for a phase.
"""

from __future__ import annotations

import numpy as np

__all__ = ["native_indices", "replicated_phase", "replication_mismatches", "replication_phase"]


def replication_mismatches(a: np.ndarray, factor: int, axis: int) -> list[int]:
    """For each phase ``p`` in ``0..factor-1``: how many neighbouring pairs ``(i - 1, i)`` along ``axis`` that lie
    in the same block ``[p + k*factor, p + (k+1)*factor)`` hold different values (partial blocks at both ends
    included; NaN equals NaN). Zero = nearest-replicated by ``factor`` with that phase.

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


def replication_phase(a: np.ndarray, factor: int, axis: int) -> int | None:
    """The phase (``0..factor-1``) of exact ``factor``-fold nearest replication of ``a`` along ``axis``, or
    ``None`` when no phase fits. Data constant along the axis fits every phase; the smallest is returned.

    The smallest phase whose :func:`replication_mismatches` count is zero, found without counting: the pairs of
    one residue are compared at a time, only as far as needed (phase 0 at x2 reads half of the pairs)."""
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
