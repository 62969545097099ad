"""The card's post-processing (sr_core.models.postprocess) inside a predictor: the 20 m-band projection."""

from __future__ import annotations

import numpy as np


def test_predictor_with_coarse_projection_is_seamless_and_widens_the_margin(tmp_path):
    import json

    from sr_core.models import load_predictor
    from sr_core.tiling import tiled_apply, whole_apply
    from udf.testing import make_package

    pkg = tmp_path / "pkg"
    make_package(pkg, arch="s2fast", weight_std=0.02)
    card = json.loads((pkg / "card.json").read_text())
    bands20 = [b for b in card["bands"] if b in ("B05", "B06", "B07", "B8A", "B11", "B12")]
    plain = load_predictor(pkg)
    pp = tmp_path / "pp"  # the same network (same seed) with the projection in its card (and its contract)
    make_package(pp, arch="s2fast", weight_std=0.02,
                 postprocess={"coarse_projection": {"bands": bands20, "factor": 2, "lam": 0.02, "taps": 3}})
    pred = load_predictor(pp)
    assert pred.margin > plain.margin and pred.receptive_field == 2 * pred.margin + 1
    rng = np.random.default_rng(1)
    x = rng.uniform(0.02, 0.4, (1, len(card["bands"]), 70, 66)).astype(np.float32)
    idx = [card["bands"].index(b) for b in bands20]
    x[:, idx] = np.repeat(np.repeat(x[:, idx, ::2, ::2], 2, -1), 2, -2)[:, :, :70, :66]
    whole = whole_apply(pred, x, scale=2, margin=pred.margin)
    tiled = tiled_apply(pred, x, scale=2, tile=24, margin=pred.margin)
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=2e-5)
    assert np.abs(whole - whole_apply(plain, x, scale=2, margin=pred.margin)).max() > 1e-4  # it did something
