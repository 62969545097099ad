"""Task relevance of image patches: where a task network's masks have edges (task-aware patch selection)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["mask_boundaries", "task_patch_scores"]


def mask_boundaries(mask: torch.Tensor) -> torch.Tensor:
    """Boundary pixels of boolean masks ``(N, C, H, W)``: True where the 3 x 3 neighbourhood (replicate
    padding) holds both values."""
    if mask.dtype != torch.bool or mask.ndim != 4:
        raise ValueError(f"mask must be a bool (N, C, H, W) tensor, got {mask.dtype} {tuple(mask.shape)}")
    m = F.pad(mask.float(), (1, 1, 1, 1), mode="replicate")
    return (F.max_pool2d(m, 3, 1) - (-F.max_pool2d(-m, 3, 1))) > 0


@torch.no_grad()
def task_patch_scores(task: nn.Module, hr10: torch.Tensor) -> torch.Tensor:
    """Task relevance of each patch ``(N,)``: the mean (over the task channels) fraction of boundary pixels of
    the task masks ``sigmoid(task(hr10)) >= 0.5`` -- high where the task's objects have edges to get right."""
    training = task.training
    task.eval()
    p = task(hr10).sigmoid() >= 0.5
    task.train(training)
    return mask_boundaries(p).float().mean(dim=(1, 2, 3))
