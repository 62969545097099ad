"""Task relevance of patches (sr_core.tasks.scores): mask boundaries and patch scores."""

from __future__ import annotations

import torch

from sr_core.tasks.scores import mask_boundaries, task_patch_scores


class Edges(torch.nn.Module):  # "task" = one channel that is positive where band 0 > 0.5
    num_classes, multiple = 1, 1

    def forward(self, x):
        return (x[:, :1] - 0.5) * 100


def edge_patches() -> torch.Tensor:
    """4 patches (4, 4, 8, 8): none, one vertical edge, uniform positive (no boundary), many edges (stripes)."""
    hr = torch.zeros(4, 4, 8, 8)
    hr[1, 0, :, :4] = 1.0  # one vertical edge
    hr[3, 0, ::2] = 1.0  # many edges (stripes)
    hr[2, 0] = 1.0  # uniform positive: no boundary
    return hr


def test_task_patch_scores_rank_patches_by_mask_edges():
    scores = task_patch_scores(Edges(), edge_patches())
    assert scores[0] == 0 and scores[2] == 0 and scores[3] > scores[1] > 0


def test_mask_boundaries_closed_form():
    # boundaries of a closed form: a 2x2 square in a 6x6 field -> the 4x4 ring around and inside it
    m = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
    m[..., 2:4, 2:4] = True
    assert int(mask_boundaries(m).sum()) == 16
