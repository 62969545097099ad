"""The Wald-protocol builders: degraded inputs, original targets, the 10-band model input."""

from __future__ import annotations

import pytest
import torch

from sr_core.bands import BANDS_10M, MODEL_BANDS_10
from sr_core.degradation import (
    model_input_10band,
    wald_pairs,
)


def test_model_input_10band_is_nearest_replication(gen):
    b10 = torch.rand(1, 4, 16, 16, generator=gen, dtype=torch.float64)
    b20 = torch.rand(1, 6, 8, 8, generator=gen, dtype=torch.float64)
    x = model_input_10band(b10, b20)
    assert x.shape == (1, len(MODEL_BANDS_10), 16, 16)
    torch.testing.assert_close(x[:, :4], b10, rtol=0, atol=0)
    for i in range(16):
        for j in range(16):
            torch.testing.assert_close(x[0, 4:, i, j], b20[0, :, i // 2, j // 2], rtol=0, atol=0)
    pair = wald_pairs(b10, b20)
    torch.testing.assert_close(pair.model_input, model_input_10band(pair.lr10, pair.lr20))
    assert pair.model_input.shape == (1, 10, 8, 8)


def test_wald_errors():
    b10, b20 = torch.zeros(1, 4, 16, 16), torch.zeros(1, 6, 8, 8)
    with pytest.raises(ValueError, match="does not nest"):
        wald_pairs(b10, torch.zeros(1, 6, 9, 8))
    with pytest.raises(ValueError, match="bands10 has 4 bands but bands10_names has 3"):
        wald_pairs(b10, b20, bands10_names=("B02", "B03", "B04"))
    with pytest.raises(ValueError, match="bands20 has 6 bands"):
        wald_pairs(b10, b20, bands20_names=BANDS_10M)
    with pytest.raises(ValueError, match="smaller than 2"):
        wald_pairs(torch.zeros(1, 4, 2, 16), torch.zeros(1, 6, 1, 8))
    with pytest.raises(ValueError, match="batch"):
        wald_pairs(b10, torch.zeros(2, 6, 8, 8))
    with pytest.raises(ValueError, match="half"):
        model_input_10band(b10, torch.zeros(1, 6, 16, 16))
