"""Pieces the evaluations share: tiled inference of a predictor on a tensor, border crops."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sr_core.tiling import tiled_apply

__all__ = ["crop_border", "predict_tiled"]


def predict_tiled(pred: Any, x: torch.Tensor, tile: int) -> torch.Tensor:
    """Tiled inference (:func:`sr_core.tiling.tiled_apply`, the predictor's margin) of a Predictor-like ``pred`` on
    ``x`` ``(1, C, h, w)``: float32 torch ``(1, C_out, scale h, scale w)``; ``ValueError`` on non-finite output."""
    y = tiled_apply(
        pred, x.numpy().astype(np.float32), scale=int(pred.scale), tile=tile, margin=int(pred.margin)
    )
    y = torch.as_tensor(np.asarray(y, dtype=np.float32))
    if not bool(torch.isfinite(y).all()):
        raise ValueError("the model produced non-finite values on a finite input")
    return y


def crop_border(x: torch.Tensor, b: int) -> torch.Tensor:
    """``x`` without ``b`` pixels at each edge of its last two axes."""
    return x[..., b : x.shape[-2] - b, b : x.shape[-1] - b] if b else x
