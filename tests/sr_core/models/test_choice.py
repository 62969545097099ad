"""sr_core.models.choice: the shipped model chosen by the bands of an input when no model is named."""

from __future__ import annotations

import shutil

import pytest

from sr_core.bands import BANDS, MODEL_BANDS_10
from sr_core.models import AUTO_MODELS, DEFAULT_MODEL, RGBN_MODEL, WEIGHTS_DIR, list_models, load_card, pick_model

RGBN = ("B02", "B03", "B04", "B08")


def test_the_automatic_models_are_shipped_with_the_bands_the_rule_names():
    assert AUTO_MODELS == (DEFAULT_MODEL, RGBN_MODEL) == ("s2sr-x2-10band", "s2sr-x2-rgbn")
    assert set(AUTO_MODELS) <= set(list_models())
    assert tuple(load_card(RGBN_MODEL).bands) == RGBN and load_card(RGBN_MODEL).scale == 2
    assert tuple(load_card(DEFAULT_MODEL).bands) == tuple(MODEL_BANDS_10)


@pytest.mark.parametrize("bands, want", [
    (MODEL_BANDS_10, DEFAULT_MODEL),
    (list(BANDS), DEFAULT_MODEL),  # more bands than the default model reads
    (["SCL", *reversed(MODEL_BANDS_10)], DEFAULT_MODEL),
    (RGBN, RGBN_MODEL),
    (["B8", "B4", "b3", "B2"], RGBN_MODEL),  # aliases, any order
    (["B02", "B03", "B04", "B08", "B05", "SCL"], RGBN_MODEL),  # some 20 m bands only: the 10 m bands
])
def test_pick_model_by_the_bands_present(bands, want):
    assert pick_model(bands) == want


@pytest.mark.parametrize("bands", [["B02", "B03", "B04"], ["B05", "B06", "B07", "B8A", "B11", "B12"], [], ["SCL"]])
def test_no_model_fits_names_the_bands_found_and_each_model(bands):
    with pytest.raises(ValueError) as e:
        pick_model(bands)
    msg = str(e.value)
    assert f"input's bands ({', '.join(bands) or 'none'})" in msg
    assert f"{RGBN_MODEL} needs B02, B03, B04, B08" in msg
    assert f"{DEFAULT_MODEL} needs {', '.join(MODEL_BANDS_10)}" in msg


def test_only_the_packages_present_are_chosen(tmp_path):
    shutil.copytree(WEIGHTS_DIR / DEFAULT_MODEL, tmp_path / DEFAULT_MODEL)
    assert pick_model(MODEL_BANDS_10, weights_dir=tmp_path) == DEFAULT_MODEL
    with pytest.raises(ValueError, match=rf"{DEFAULT_MODEL} needs .*B12; name a model"):
        pick_model(RGBN, weights_dir=tmp_path)
    with pytest.raises(ValueError, match="none shipped"):
        pick_model(RGBN, weights_dir=tmp_path / "nothing")
