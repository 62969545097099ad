"""Reduced-resolution (Wald) evaluation on whole scenes (sr_core.evaluation.wald), on the bundled real sample."""

from __future__ import annotations

import numpy as np
import pytest

from sr_core.archs import get_arch
from sr_core.bands import BANDS_10M, BANDS_20M
from sr_core.datasets.patches import Region, load_scene_tensors
from sr_core.evaluation.wald import summarize, wald_evaluate
from sr_core.io import SAMPLE_ID, sample_scene_path

ROOT = str(sample_scene_path().parent)


def test_untrained_model_is_bicubic_under_wald():
    scene = load_scene_tensors(ROOT, Region(SAMPLE_ID, 0, 128, 0, 128))
    net = get_arch("s2fast", in_channels=10, scale=2, num_features=8, num_blocks=1).eval()
    rows = wald_evaluate(net, [scene], margin=net.receptive_field // 2)
    g10 = [r["gain_db"] for r in rows if r["band"] in BANDS_10M]
    assert len(rows) == 10 and max(abs(x) for x in g10) < 1e-5  # 10 m bands: SR == bicubic exactly
    # 20 m bands: bicubic of the replicated 40 m input, mapped back by the MTF, is a (weaker) baseline than
    # bicubic of the native 40 m grid: the untrained model must not beat it
    assert all(r["gain_db"] < 0 for r in rows if r["band"] in BANDS_20M)
    summ = summarize(rows)
    assert summ["mtf_gaussian/10m/mean_gain_db"] == pytest.approx(np.mean(g10))


# ------------------------------------------------------------------------------------------- operator family


def test_family_is_registered_and_keeps_a_constant():
    import torch

    from sr_core.evaluation import FAMILY, MATCHED_DEGRADATION
    from sr_core.evaluation.wald import DEGRADATIONS

    assert MATCHED_DEGRADATION == FAMILY[0] == "mtf_gaussian" and set(FAMILY) <= set(DEGRADATIONS)
    assert len(FAMILY) == 7
    for name in FAMILY:
        for bands, c in ((BANDS_10M, 4), (BANDS_20M, 6)):
            hr = torch.full((1, c, 40, 40), 0.25, dtype=torch.float64)
            lr = DEGRADATIONS[name](hr, 2, bands)
            assert lr.shape == (1, c, 20, 20), name
            if "noise" not in name:
                torch.testing.assert_close(lr, torch.full_like(lr, 0.25), rtol=0, atol=1e-12)


def test_shift20_moves_only_the_20m_group():
    import torch

    from sr_core.degradation import degrade, shifted_degrade
    from sr_core.evaluation.wald import DEGRADATIONS, SHIFT_20M

    g = torch.Generator().manual_seed(5)
    h10 = torch.rand(1, 4, 32, 32, generator=g, dtype=torch.float64)
    h20 = torch.rand(1, 6, 32, 32, generator=g, dtype=torch.float64)
    op = DEGRADATIONS["mtf_shift20"]
    torch.testing.assert_close(op(h10, 2, BANDS_10M), degrade(h10, 2, bands=list(BANDS_10M)), rtol=0, atol=0)
    torch.testing.assert_close(op(h20, 2, BANDS_20M), shifted_degrade(h20, 2, SHIFT_20M, bands=list(BANDS_20M)),
                               rtol=0, atol=0)
    assert SHIFT_20M == (0.25, 0.25)


@pytest.mark.parametrize("name,std", [("mtf_noise002", 0.002), ("mtf_noise005", 0.005)])
def test_noise_operators_are_seeded_with_the_requested_std(name, std):
    import torch

    from sr_core.degradation import degrade
    from sr_core.evaluation.wald import DEGRADATIONS, NOISE_STDS

    assert NOISE_STDS[name] == std
    hr = torch.full((1, 4, 512, 512), 0.2, dtype=torch.float64)
    op = DEGRADATIONS[name]
    a, b = op(hr, 2, BANDS_10M), op(hr, 2, BANDS_10M)
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # the same noise every run
    noise = a - degrade(hr, 2, bands=list(BANDS_10M))
    assert float(noise.std()) == pytest.approx(std, rel=0.01) and abs(float(noise.mean())) < std / 50
    n20 = op(torch.full((1, 6, 512, 512), 0.2, dtype=torch.float64), 2, BANDS_20M) - 0.2
    assert float(n20.std()) == pytest.approx(std, rel=0.01)
    # another seed per band group: the 20 m bands do not repeat the 10 m bands' noise
    assert not torch.allclose(n20[0, 0], noise[0, 0])
