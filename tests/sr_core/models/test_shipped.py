"""The shipped models on inputs whose right answer is known: flat fields stay flat, non-negative input gives
non-negative output (through the Predictor with the card's post-processing, as every user path runs it)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.robustness import FLAT_SPECTRA
from sr_core.bands import MODEL_BANDS_10
from sr_core.models import DEFAULT_MODEL, load_predictor
from sr_core.tiling import whole_apply

#: The models that keep flat fields flat (issue of the default model and of the 20 m -> 10 m product).
FLAT_MODELS = (DEFAULT_MODEL, "s2sr-10m-10band", "s2sr-x2-rgbn")


@pytest.mark.parametrize("surface", sorted(FLAT_SPECTRA))
@pytest.mark.parametrize("model", FLAT_MODELS)
def test_a_flat_field_comes_out_flat(model, surface):
    pred = load_predictor(model, threads=1)
    dn = np.array(FLAT_SPECTRA[surface], np.float32)[[MODEL_BANDS_10.index(b) for b in pred.bands]]
    x = np.broadcast_to((dn / 10000)[None, :, None, None], (1, len(dn), 48, 48)).copy()
    y = whole_apply(pred, x, scale=int(pred.scale), margin=int(pred.margin)) * 10000
    want = dn[[list(pred.bands).index(b) for b in pred.out_bands]][:, None, None]
    tol = np.maximum(2.0, 0.005 * want)
    err = np.abs(y[0] - want)
    bad = [(b, float(err[k].max()), float(tol[k, 0, 0])) for k, b in enumerate(pred.out_bands) if err[k].max() > tol[k]]
    assert not bad, f"{model} on {surface}: (band, max |error| DN, tolerance DN) {bad}"


@pytest.mark.parametrize("model", (DEFAULT_MODEL, "s2sr-10m-10band"))
def test_non_negative_input_gives_non_negative_output(model):
    from sr_core.io import load_sample

    s = load_sample()
    pred = load_predictor(model, threads=1)
    x10 = s.bands10[:, :128, :128]
    x20 = np.repeat(np.repeat(s.bands20[:, :64, :64], 2, -2), 2, -1)
    x = np.concatenate([x10, x20])[None].astype(np.float32)
    assert x.min() >= 0
    y = whole_apply(pred, x, scale=int(pred.scale), margin=int(pred.margin))
    assert np.isfinite(y).all() and y.min() >= 0
