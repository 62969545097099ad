"""Random test images and masks for the losses tests."""

from __future__ import annotations

import torch


def rand(gen, *shape, dtype=torch.float32):
    return torch.rand(*shape, generator=gen, dtype=dtype)


def pixel_mask(gen, n, h, w, p=0.7):
    return torch.rand(n, 1, h, w, generator=gen) < p
