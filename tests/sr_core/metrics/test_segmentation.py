"""Segmentation scores (sr_core.metrics.segmentation): pixel scores, instance matching and F1."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_core import metrics as M
from sr_core.metrics import segmentation

# ------------------------------------------------------------------------------------------------------------
# segmentation
# ------------------------------------------------------------------------------------------------------------


def test_dice_iou_precision_recall_hand_made():
    pred = torch.zeros(4, 4, dtype=torch.bool)
    target = torch.zeros(4, 4, dtype=torch.bool)
    pred[0, :3] = True  # 3 predicted
    target[0, 1:] = True  # 3 targets, 2 overlap -> TP 2, FP 1, FN 1
    target[3, 3] = True  # FN 2
    assert M.dice(pred, target).item() == pytest.approx(4 / 7)
    assert M.iou(pred, target).item() == pytest.approx(2 / 5)
    assert M.precision(pred, target).item() == pytest.approx(2 / 3)
    assert M.recall(pred, target).item() == pytest.approx(2 / 4)
    mask = torch.ones(4, 4, dtype=torch.bool)
    mask[3, 3] = False
    mask[0, 0] = False
    assert M.dice(pred, target, mask=mask).item() == pytest.approx(4 / 5)
    empty = torch.zeros(1, 2, 4, 4, dtype=torch.bool)
    out = M.iou(empty, empty)
    assert out.shape == (1, 2) and torch.isnan(out).all()
    assert (M.dice(empty, empty, empty=1.0) == 1).all()
    with pytest.raises(ValueError, match="boolean"):
        M.dice(pred.float(), target)


def test_instance_f1_two_matched_one_missed_one_false_positive():
    target = np.zeros((16, 16), dtype=bool)
    pred = np.zeros((16, 16), dtype=bool)
    target[1:4, 1:4] = True  # matched exactly
    pred[1:4, 1:4] = True
    target[8:12, 1:5] = True  # matched with IoU 12/16
    pred[8:12, 2:5] = True
    target[1:3, 10:13] = True  # missed
    pred[12:15, 12:15] = True  # false positive
    pred[8, 8] = pred[9, 9] = True  # diagonal pair: one object with 8-connectivity
    target[8:10, 8:10] = True  # IoU 2/4 with it
    tp, fp, fn = M.instance_matches(pred, target)
    assert (tp.item(), fp.item(), fn.item()) == (3, 1, 1)
    target[8:10, 8:10] = False
    pred[8, 8] = pred[9, 9] = False
    assert M.instance_f1(pred, target).item() == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    # 4-connectivity splits a diagonal pair into two objects
    d = np.zeros((1, 1, 5, 5), dtype=bool)
    d[0, 0, 1, 1] = d[0, 0, 2, 2] = True
    tp8, fp8, _ = M.instance_matches(d, d, connectivity=8)
    tp4, fp4, _ = M.instance_matches(d, d, connectivity=4)
    assert (tp8.item(), tp4.item(), fp8.item(), fp4.item()) == (1, 2, 0, 0)
    # the IoU threshold is applied: a weak overlap is no match
    p, t = np.zeros((8, 8), bool), np.zeros((8, 8), bool)
    p[0:4, 0:4], t[0:4, 3:7] = True, True  # IoU 4 / 28
    assert M.instance_f1(p, t).item() == 0.0
    assert M.instance_f1(p, t, iou_threshold=0.1).item() == 1.0


def test_instance_matching_is_one_to_one():
    # one big prediction overlapping two targets: only one can be matched
    p, t = np.zeros((6, 10), bool), np.zeros((6, 10), bool)
    p[1:5, 1:9] = True
    t[1:5, 1:5] = True
    t[1:5, 6:9] = True
    tp, fp, fn = M.instance_matches(p, t, iou_threshold=0.25)
    assert (tp.item(), fp.item(), fn.item()) == (1, 0, 1)


def _match_one_dense(p, t, iou_threshold, structure):
    """Reference for ``segmentation._match_one``: the full IoU matrix of all object pairs, one Hungarian assignment."""
    from scipy import ndimage
    from scipy.optimize import linear_sum_assignment

    lp, n_p = ndimage.label(p, structure=structure)
    lt, n_t = ndimage.label(t, structure=structure)
    if n_p == 0 or n_t == 0:
        return 0, n_p, n_t
    inter = np.bincount(lp.ravel() * (n_t + 1) + lt.ravel(), minlength=(n_p + 1) * (n_t + 1))
    inter = inter.reshape(n_p + 1, n_t + 1)[1:, 1:].astype(np.float64)
    area_p = np.bincount(lp.ravel(), minlength=n_p + 1)[1:].astype(np.float64)
    area_t = np.bincount(lt.ravel(), minlength=n_t + 1)[1:].astype(np.float64)
    ious = inter / (area_p[:, None] + area_t[None, :] - inter)
    eligible = np.where(ious >= iou_threshold, ious, 0.0)
    rows, cols = linear_sum_assignment(eligible, maximize=True)
    tp = int(np.count_nonzero(eligible[rows, cols] > 0))
    return tp, n_p - tp, n_t - tp


@pytest.mark.parametrize("thr", [0.1, 0.25, 0.5])
def test_instance_matching_by_groups_equals_the_dense_assignment(thr):
    # blobby random masks with many touching / overlapping objects: the grouped sparse assignment gives the same
    # counts as one Hungarian assignment over the full IoU matrix
    from scipy import ndimage

    rng = np.random.default_rng(int(thr * 100))
    structure = np.ones((3, 3), bool)
    for _ in range(6):
        a = ndimage.gaussian_filter(rng.standard_normal((64, 64)), 1.5) > 0.15
        b = ndimage.gaussian_filter(rng.standard_normal((64, 64)), 1.5) > 0.15
        b = b | np.roll(a, (1, 2), (0, 1)) & (rng.random((64, 64)) > 0.3)  # partly shifted copies: real overlaps
        assert segmentation._match_one(a, b, thr, structure) == _match_one_dense(a, b, thr, structure)
        assert segmentation._match_one(a, a, thr, structure)[1:] == (0, 0)
