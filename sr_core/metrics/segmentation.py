"""Segmentation scores of boolean masks: Dice, IoU, precision, recall (pixel level), instance matching and
instance F1 (connected components)."""

from __future__ import annotations

import math

import numpy as np
import torch

from sr_core.metrics._common import _F64, ArrayLike, _as_tensor


def _bool_masks(pred: ArrayLike, target: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    p, t = _as_tensor(pred, "pred"), _as_tensor(target, "target")
    for name, v in (("pred", p), ("target", t)):
        if v.dtype != torch.bool:
            raise ValueError(f"{name} must be a boolean mask, got dtype {v.dtype}")
        if v.ndim < 2:
            raise ValueError(f"{name} must have at least 2 dims (..., H, W), got shape {tuple(v.shape)}")
    if p.shape != t.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(p.shape)} and {tuple(t.shape)}"
        )
    return p, t.to(p.device)


def _confusion(
    pred: ArrayLike, target: ArrayLike, mask: ArrayLike | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    p, t = _bool_masks(pred, target)
    if mask is not None:
        m = _as_tensor(mask, "mask")
        if m.dtype != torch.bool:
            raise ValueError(f"mask must be a boolean array (True = valid), got dtype {m.dtype}")
        try:
            m = m.to(p.device).expand(p.shape)
        except RuntimeError:
            msg = f"mask of shape {tuple(m.shape)} does not broadcast to {tuple(p.shape)}"
            raise ValueError(msg) from None
        p, t = p & m, t & m
    dims = (-2, -1)
    tp = (p & t).sum(dim=dims).to(_F64)
    fp = (p & ~t).sum(dim=dims).to(_F64)
    fn = (~p & t).sum(dim=dims).to(_F64)
    return tp, fp, fn


def _ratio(num: torch.Tensor, den: torch.Tensor, empty: float) -> torch.Tensor:
    safe = torch.where(den > 0, den, torch.ones_like(den))
    return torch.where(den > 0, num / safe, torch.full_like(den, empty))


def dice(
    pred: ArrayLike, target: ArrayLike, *, mask: ArrayLike | None = None, empty: float = math.nan
) -> torch.Tensor:
    """Dice coefficient ``2 TP / (2 TP + FP + FN)`` over the last two dims (shape ``pred.shape[:-2]``).

    ``pred``/``target``: boolean masks ``(..., H, W)``; ``mask``: valid pixels (broadcastable). ``empty`` is
    returned where the ratio is 0/0 (both masks empty).
    """
    tp, fp, fn = _confusion(pred, target, mask)
    return _ratio(2 * tp, 2 * tp + fp + fn, empty)


def iou(
    pred: ArrayLike, target: ArrayLike, *, mask: ArrayLike | None = None, empty: float = math.nan
) -> torch.Tensor:
    """Intersection over union (Jaccard) ``TP / (TP + FP + FN)``; conventions as :func:`dice`."""
    tp, fp, fn = _confusion(pred, target, mask)
    return _ratio(tp, tp + fp + fn, empty)


def precision(
    pred: ArrayLike, target: ArrayLike, *, mask: ArrayLike | None = None, empty: float = math.nan
) -> torch.Tensor:
    """``TP / (TP + FP)``; ``empty`` when nothing is predicted; conventions as :func:`dice`."""
    tp, fp, _ = _confusion(pred, target, mask)
    return _ratio(tp, tp + fp, empty)


def recall(
    pred: ArrayLike, target: ArrayLike, *, mask: ArrayLike | None = None, empty: float = math.nan
) -> torch.Tensor:
    """``TP / (TP + FN)``; ``empty`` when the target is empty; conventions as :func:`dice`."""
    tp, _, fn = _confusion(pred, target, mask)
    return _ratio(tp, tp + fn, empty)


def _match_one(
    p: np.ndarray, t: np.ndarray, iou_threshold: float, structure: np.ndarray
) -> tuple[int, int, int]:
    """TP, FP, FN of one pair of masks. Only overlapping object pairs with IoU >= threshold can match; the
    eligible pairs split into connected groups (objects that overlap each other) and the Hungarian assignment
    is solved per group, which equals the assignment over the whole (sparse) IoU matrix but stays linear in
    the number of objects (a dense IoU matrix grows with the square of the number of objects: thousands of
    built-up blobs in a scene)."""
    from scipy import ndimage
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    lp, n_p = ndimage.label(p, structure=structure)
    lt, n_t = ndimage.label(t, structure=structure)
    if n_p == 0 or n_t == 0:
        return 0, n_p, n_t
    both = (lp > 0) & (lt > 0)
    pairs, inter = np.unique(lp[both].astype(np.int64) * (n_t + 1) + lt[both], return_counts=True)
    pi, ti = pairs // (n_t + 1) - 1, pairs % (n_t + 1) - 1
    area_p = np.bincount(lp.ravel(), minlength=n_p + 1)[1:].astype(np.float64)
    area_t = np.bincount(lt.ravel(), minlength=n_t + 1)[1:].astype(np.float64)
    ious = inter / (area_p[pi] + area_t[ti] - inter)
    keep = ious >= iou_threshold
    pi, ti, ious = pi[keep], ti[keep], ious[keep]
    if pi.size == 0:
        return 0, n_p, n_t
    # bipartite graph on nodes [pred objects | target objects]; one assignment per connected group
    graph = coo_matrix((np.ones(pi.size), (pi, n_p + ti)), shape=(n_p + n_t, n_p + n_t))
    _, comp = connected_components(graph, directed=False)
    group = comp[pi]
    order = np.argsort(group, kind="stable")
    pi, ti, ious, group = pi[order], ti[order], ious[order], group[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], group.size]
    tp = 0
    for a, b in zip(starts, ends):
        if b - a == 1:
            tp += 1
            continue
        rp, rt = np.unique(pi[a:b], return_inverse=True)[1], np.unique(ti[a:b], return_inverse=True)[1]
        m = np.zeros((int(rp.max()) + 1, int(rt.max()) + 1))
        m[rp, rt] = ious[a:b]
        rows, cols = linear_sum_assignment(m, maximize=True)
        tp += int(np.count_nonzero(m[rows, cols] > 0))
    return tp, n_p - tp, n_t - tp


def instance_matches(
    pred: ArrayLike, target: ArrayLike, *, iou_threshold: float = 0.25, connectivity: int = 8
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Object-level matching of two boolean masks ``(..., H, W)``: int64 ``(TP, FP, FN)`` of shape ``[...]``.

    Objects are connected components (``scipy.ndimage.label``; ``connectivity`` 8 (default: diagonal
    neighbours join) or 4). Predicted and target objects are paired one-to-one by the Hungarian algorithm
    maximising the summed IoU over pairs with ``IoU >= iou_threshold``; matched pairs are TP, unmatched
    predictions FP, unmatched targets FN.
    """
    p, t = _bool_masks(pred, target)
    thr = iou_threshold
    if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not 0 < thr <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold!r}")
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    if connectivity == 8:
        structure = np.ones((3, 3), dtype=bool)
    else:
        structure = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)
    lead = p.shape[:-2]
    pn = p.detach().cpu().numpy().reshape(-1, *p.shape[-2:])
    tn = t.detach().cpu().numpy().reshape(-1, *t.shape[-2:])
    counts = np.array([_match_one(a, b, float(thr), structure) for a, b in zip(pn, tn)], dtype=np.int64)
    counts = counts.reshape(*lead, 3)
    out = torch.from_numpy(counts).to(p.device)
    return out[..., 0], out[..., 1], out[..., 2]


def instance_f1(
    pred: ArrayLike,
    target: ArrayLike,
    *,
    iou_threshold: float = 0.25,
    connectivity: int = 8,
    empty: float = math.nan,
) -> torch.Tensor:


    """Object-level F1 ``2 TP / (2 TP + FP + FN)`` (float64, shape ``pred.shape[:-2]``) from
    :func:`instance_matches`; ``empty`` where both masks hold no object."""
    tp, fp, fn = instance_matches(pred, target, iou_threshold=iou_threshold, connectivity=connectivity)
    tp, fp, fn = tp.to(_F64), fp.to(_F64), fn.to(_F64)
    return _ratio(2 * tp, 2 * tp + fp + fn, empty)
