"""Averages of per-band results (sr_core.metrics.averaging)."""

from __future__ import annotations

import math

import pytest
import torch

from sr_core import metrics as M
from tests.sr_core.metrics.images import F64

# ------------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------------


def test_band_and_image_means():
    v = torch.tensor([[1.0, 3.0, math.nan], [2.0, 4.0, 6.0]], dtype=F64)
    torch.testing.assert_close(M.band_mean(v), torch.tensor([2.0, 4.0], dtype=F64))
    torch.testing.assert_close(M.image_mean(v), torch.tensor([1.5, 3.5, 6.0], dtype=F64))
    torch.testing.assert_close(M.band_mean(v, weights=[1.0, 3.0, 1.0]), torch.tensor([2.5, 4.0], dtype=F64))
    with pytest.raises(ValueError, match="weights"):
        M.band_mean(v, weights=[1.0, 2.0])
