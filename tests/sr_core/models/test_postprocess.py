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


def test_local_nonnegative_bound_closed_form():
    from sr_core.models.postprocess import local_nonnegative_bound

    x = np.full((1, 2, 5, 6), 0.2, np.float32)
    x[0, 0, 2, 3] = -0.05  # one negative input pixel in band 0
    x[0, 1, 0, 0] = np.nan  # nodata is ignored
    b = local_nonnegative_bound(x, 1, 1)
    want = np.zeros_like(x)
    want[0, 0, 1:4, 2:5] = -0.05  # its 3 x 3 neighbourhood may go as low as the input
    np.testing.assert_array_equal(b, want)
    b2 = local_nonnegative_bound(x, 1, 2)
    assert b2.shape == (1, 2, 10, 12)
    np.testing.assert_array_equal(b2[:, :, ::2, ::2], want)
    np.testing.assert_array_equal(b2[:, :, 1::2, 1::2], want)
    np.testing.assert_array_equal(local_nonnegative_bound(x, 0, 1)[0, 0], np.minimum(np.nan_to_num(x[0, 0]), 0))


def test_predictor_nonnegative_never_below_bound_and_seamless(tmp_path):
    import json

    from sr_core.models import load_predictor
    from sr_core.models.postprocess import local_nonnegative_bound
    from sr_core.tiling import tiled_apply, whole_apply
    from udf.testing import make_package

    plain_pkg, nn_pkg = tmp_path / "plain", tmp_path / "nn"
    make_package(plain_pkg, arch="s2fast", weight_std=0.2)
    make_package(nn_pkg, arch="s2fast", weight_std=0.2, postprocess={"nonnegative": {"radius": 1}})
    plain, pred = load_predictor(plain_pkg), load_predictor(nn_pkg)
    assert pred.margin == plain.margin + 1
    nb = len(json.loads((nn_pkg / "card.json").read_text())["bands"])
    rng = np.random.default_rng(3)
    x = rng.uniform(0.0, 0.05, (1, nb, 40, 36)).astype(np.float32)  # dark, non-negative: the network undershoots
    x[0, 2, 10:14, 10:14] = -0.02  # except one patch
    y0 = whole_apply(plain, x, scale=2, margin=pred.margin)
    y = whole_apply(pred, x, scale=2, margin=pred.margin)
    bound = local_nonnegative_bound(x, 1, 2)
    assert (y0 < bound).any()  # the bound does something
    np.testing.assert_array_equal(y, np.maximum(y0, bound))
    assert y[0, 0].min() >= 0 and y[0, 2].min() >= -0.02
    np.testing.assert_allclose(tiled_apply(pred, x, scale=2, tile=16, margin=pred.margin), y, rtol=0, atol=2e-5)


def test_copy_bands_writes_the_input_bands_exactly(tmp_path):
    from sr_core.models import load_predictor
    from udf.testing import make_package

    pkg = tmp_path / "sharp"
    make_package(pkg, arch="s2sharpen", scale=1, weight_std=0.1,
                 postprocess={"copy_bands": {"bands": ["B02", "B03", "B04", "B08"]}})
    pred = load_predictor(pkg)
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 10000, (2, 10, 24, 20)) / 10000).astype(np.float32)
    y = pred(x)
    assert y.shape == x.shape
    np.testing.assert_array_equal(y[:, :4], x[:, :4])
    assert np.abs(y[:, 4:] - x[:, 4:]).max() > 1e-4
