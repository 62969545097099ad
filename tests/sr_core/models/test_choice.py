"""sr_core.models.choice: the shipped model chosen by the bands of an input and the output resolution asked when no
model is named; a model's output resolution."""

from __future__ import annotations

import shutil

import pytest

from sr_core.bands import BANDS, MODEL_BANDS_10
from sr_core.models import (
    AUTO_MODELS,
    DEFAULT_MODEL,
    DEFAULT_RESOLUTION,
    RGBN_MODEL,
    SHARPEN_MODEL,
    WEIGHTS_DIR,
    auto_resolutions,
    check_model_resolution,
    list_models,
    load_card,
    model_resolution,
    pick_model,
)
from sr_core.models.choice import auto_model_bands

RGBN = ("B02", "B03", "B04", "B08")


def test_the_automatic_models_are_shipped_with_the_bands_the_rule_names():
    assert AUTO_MODELS == (DEFAULT_MODEL, RGBN_MODEL, SHARPEN_MODEL) == (
        "s2sr-x2-10band", "s2sr-x2-rgbn", "s2sr-10m-10band")
    assert set(AUTO_MODELS) <= set(list_models())
    assert tuple(load_card(RGBN_MODEL).bands) == RGBN and load_card(RGBN_MODEL).scale == 2
    assert tuple(load_card(DEFAULT_MODEL).bands) == tuple(MODEL_BANDS_10)
    sharpen = load_card(SHARPEN_MODEL, verify=False)
    assert tuple(sharpen.bands) == tuple(sharpen.out_bands) == tuple(MODEL_BANDS_10) and sharpen.scale == 1


def test_model_resolution_is_the_input_grid_over_the_scale():
    assert DEFAULT_RESOLUTION == 5.0
    assert [model_resolution(load_card(n, verify=False)) for n in AUTO_MODELS] == [5.0, 5.0, 10.0]
    assert model_resolution(load_card("s2sr-x4-rgbn", verify=False)) == 2.5
    assert auto_resolutions() == (5.0, 10.0)
    assert auto_model_bands(resolution=10) == {SHARPEN_MODEL: tuple(MODEL_BANDS_10)}
    assert list(auto_model_bands(resolution=5.0)) == [DEFAULT_MODEL, RGBN_MODEL]
    assert list(auto_model_bands()) == list(AUTO_MODELS)


def test_a_model_checked_against_a_resolution():
    card = load_card(DEFAULT_MODEL, verify=False)
    check_model_resolution(card, None)
    check_model_resolution(card, 5)
    check_model_resolution(card, 5.0)
    with pytest.raises(ValueError, match=rf"model '{DEFAULT_MODEL}' outputs 5 m, --resolution asks 10 m"):
        check_model_resolution(card, 10, name="--resolution")
    with pytest.raises(ValueError, match="resolution must be a positive number of metres"):
        check_model_resolution(card, "5")


@pytest.mark.parametrize("bands, want", [
    (MODEL_BANDS_10, SHARPEN_MODEL),
    (list(BANDS), SHARPEN_MODEL),
    (["SCL", "B12", "b11", "B8A", "B7", "B6", "B5", "B8", "B4", "B3", "B2"], SHARPEN_MODEL),
])
def test_pick_model_at_10m(bands, want):
    assert pick_model(bands, resolution=10) == want == pick_model(bands, resolution=10.0)
    assert pick_model(bands, resolution=5) == DEFAULT_MODEL


def test_four_bands_at_10m_name_the_missing_bands():
    with pytest.raises(ValueError) as e:
        pick_model(RGBN, resolution=10)
    msg = str(e.value)
    assert msg.startswith("no shipped 10 m model fits the input's bands (B02, B03, B04, B08): ")
    assert f"{SHARPEN_MODEL} needs {', '.join(MODEL_BANDS_10)} (missing B05, B06, B07, B8A, B11, B12)" in msg
    assert RGBN_MODEL not in msg and DEFAULT_MODEL not in msg  # only the models of the resolution asked


@pytest.mark.parametrize("resolution", [7, 2.5, 20.0])
def test_a_resolution_no_shipped_model_outputs_names_those_offered(resolution):
    with pytest.raises(ValueError, match=rf"no shipped model outputs {resolution:g} m: resolutions offered 5, 10 "):
        pick_model(MODEL_BANDS_10, resolution=resolution)


@pytest.mark.parametrize("resolution", [0, -5, float("inf"), float("nan"), "10", None, True])
def test_a_resolution_that_is_not_a_positive_number_is_refused(resolution):
    with pytest.raises(ValueError, match=r"resolution must be a positive number of metres .*got"):
        pick_model(MODEL_BANDS_10, resolution=resolution)


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
    assert msg.startswith("no shipped 5 m model fits")
    assert f"{RGBN_MODEL} needs B02, B03, B04, B08 (missing " in msg
    assert f"{DEFAULT_MODEL} needs {', '.join(MODEL_BANDS_10)} (missing " in msg
    assert SHARPEN_MODEL not in msg


def test_only_the_packages_present_are_chosen(tmp_path):
    shutil.copytree(WEIGHTS_DIR / DEFAULT_MODEL, tmp_path / DEFAULT_MODEL)
    assert pick_model(MODEL_BANDS_10, weights_dir=tmp_path) == DEFAULT_MODEL
    with pytest.raises(ValueError, match=rf"{DEFAULT_MODEL} needs .*B12 \(missing B05, .*B12\); name a model"):
        pick_model(RGBN, weights_dir=tmp_path)
    with pytest.raises(ValueError, match=r"no shipped model outputs 10 m: resolutions offered 5 "):
        pick_model(MODEL_BANDS_10, resolution=10, weights_dir=tmp_path)
    shutil.copytree(WEIGHTS_DIR / SHARPEN_MODEL, tmp_path / SHARPEN_MODEL)
    assert pick_model(MODEL_BANDS_10, resolution=10, weights_dir=tmp_path) == SHARPEN_MODEL
    assert auto_resolutions(tmp_path) == (5.0, 10.0)
    with pytest.raises(ValueError, match="none shipped"):
        pick_model(RGBN, weights_dir=tmp_path / "nothing")


def test_choose_model_picks_or_checks_the_named_model():
    from sr_core.bands import MODEL_BANDS_10
    from sr_core.models import DEFAULT_MODEL, SHARPEN_MODEL, choose_model

    assert choose_model(None, MODEL_BANDS_10) == DEFAULT_MODEL
    assert choose_model(None, MODEL_BANDS_10, resolution=10) == SHARPEN_MODEL
    assert choose_model(DEFAULT_MODEL, MODEL_BANDS_10, resolution=5) == DEFAULT_MODEL
    assert choose_model("any-name-not-read", ()) == "any-name-not-read"  # no resolution: nothing to check
    with pytest.raises(ValueError, match=r"outputs 5 m, --resolution asks 10 m"):
        choose_model(DEFAULT_MODEL, MODEL_BANDS_10, resolution=10, name="--resolution")
