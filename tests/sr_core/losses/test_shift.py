"""The shift search of the PROBA-V clear losses and metrics (sr_core.losses.shift): closed forms, independent references, gradcheck, masks, module == function."""

from __future__ import annotations

import math

import torch


def test_shift_search_order_ties_key_and_joint_weighting():
    from sr_core.losses.shift import shift_list, shift_search

    assert shift_list(1) == [(0, 0), (-1, 0), (0, -1), (0, 1), (1, 0), (-1, -1), (-1, 1), (1, -1), (1, 1)]
    # constant images: the bias makes every shift exact, the tie goes to (0, 0)
    sr, hr = torch.full((1, 2, 8, 8), 0.25), torch.full((1, 2, 8, 8), 0.75)
    res = shift_search(sr, hr, lambda a, b, m: (b - a).abs().mean(dim=(-2, -1)), border=1)
    assert res.values.tolist() == [[0.0, 0.0]] and res.shifts.tolist() == [[[0, 0], [0, 0]]]
    assert res.counts.tolist() == [[36.0, 36.0]]
    # scripted scores (one call per shift, in shift_list order): band 0 has 36 valid pixels, band 1 only 4
    mask = torch.ones(1, 2, 8, 8, dtype=torch.bool)
    mask[:, 1] = False
    mask[:, 1, 3:5, 3:5] = True  # inside every hr crop
    table = torch.full((9, 1, 2), 10.0)
    table[1] = torch.tensor([[1.0, 0.0]])  # shift (-1, 0): band means 0.5 (uniform), 0.9 (count weighted)
    table[2] = torch.tensor([[0.0, 2.0]])  # shift (0, -1): band means 1.0 (uniform), 0.2 (count weighted)
    table[0, 0, 0] = math.nan  # an undefined score never wins

    def run(**kw):
        calls = iter(table)
        return shift_search(sr, hr, lambda a, b, m: next(calls), mask=mask, border=1, **kw)

    assert run(joint=False).shifts.tolist() == [[[0, -1], [-1, 0]]]
    assert run(joint=False).values.tolist() == [[0.0, 0.0]]
    assert run(joint=True).shifts.tolist() == [[[-1, 0], [-1, 0]]]
    best = run(joint=True, count_weighted=True)
    assert best.shifts.tolist() == [[[0, -1], [0, -1]]] and best.counts.tolist() == [[36.0, 4.0]]
    # key=torch.neg: the highest score wins; band 0 skips the NaN at (0, 0) and takes the first 10
    assert run(joint=False, key=torch.neg).shifts.tolist() == [[[0, 1], [0, 0]]]
