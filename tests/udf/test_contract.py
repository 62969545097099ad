"""The UDF context contract (udf.contract): context keys and defaults, the UDFs' apply functions, model files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sr_core.models import DEFAULT_MISR_MODEL
from udf import contract as uc
from udf.testing import make_package, nearest_resample, random_s2_cube

DN = 10000.0
pytestmark = pytest.mark.filterwarnings("ignore::sr_core.inference.cube.TilingWarning")  # tiny chunks on purpose


@pytest.fixture(scope="session")
def pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("udf_models") / "tiny-edsr-x2"
    make_package(folder, arch="edsr", seed=1)
    return folder


# ------------------------------------------------------------------------------------------------ context


def test_parse_context_defaults_fit_cdse():
    o = uc.parse_context({})
    assert (o.mode, o.model, o.engine, o.dn_scale, o.add_offset, o.threads, o.nodata) == (
        "resampled", None, "onnx", 10000.0, 0.0, None, None,
    )
    assert uc.parse_context(None) == o


@pytest.mark.parametrize(
    "ctx, words",
    [
        ({"mdoe": "upscale"}, ["mdoe", "valid keys", "mode", "dn_scale", "threads"]),
        ({"mode": "bicubic"}, ["mode", "resampled", "upscale", "bicubic"]),
        ({"engine": "tensorflow"}, ["engine", "onnx", "torch"]),
        ({"dn_scale": 0}, ["dn_scale", "> 0"]),
        ({"dn_scale": "10000"}, ["dn_scale", "number"]),
        ({"add_offset": float("nan")}, ["add_offset", "finite"]),
        ({"threads": 0}, ["context['threads']", "from 1 to 1024"]),
        ({"threads": 10**12}, ["context['threads']", "from 1 to 1024", "1000000000000"]),
        ({"threads": 1025}, ["context['threads']", "from 1 to 1024"]),
        ({"threads": 2.0}, ["context['threads']", "integer"]),
        ({"nodata": 10**400}, ["context['nodata']", "finite number"]),
        ({"dn_scale": -(10**400)}, ["context['dn_scale']", "finite number"]),
        ({"dilate": -1}, ["dilate", "'rf'"]),
        ({"tile": 2.5}, ["tile", "integer"]),
        ({"model": 3}, ["model", "string"]),
        ({"scl_invalid": [3]}, ["scl_invalid", "valid keys"]),
    ],
)
def test_parse_context_rejects_with_valid_values(ctx, words):
    with pytest.raises(ValueError) as e:
        uc.parse_context(ctx)
    for w in words:
        assert w in str(e.value)


def test_parse_context_not_a_dict():
    with pytest.raises(ValueError, match="must be a dict"):
        uc.parse_context(["mode"])


def test_default_model_and_context_keys():
    opts, extra = uc.parse_misr_context({})
    assert opts.model == DEFAULT_MISR_MODEL == "s2sr-misr-x2" and extra["anchor"] == "clearest"
    assert uc.parse_misr_context({"anchor": "2024-06-06", "sisr_model": None})[1] == {"anchor": "2024-06-06",
                                                                                      "sisr_model": None}
    with pytest.raises(ValueError, match="anchor"):
        uc.parse_misr_context({"anchor": 1.5})
    with pytest.raises(ValueError, match="unknown UDF context key.*anchor"):
        uc.parse_misr_context({"anchr": "clearest"})

# ------------------------------------------------------------------------------------------------ udf_apply


def test_onnx_and_torch_engines_agree(pkg):
    da = random_s2_cube(9, 11, seed=11)
    a = uc.udf_apply(da, {"model": str(pkg), "mode": "upscale"})
    b = uc.udf_apply(da, {"model": str(pkg), "mode": "upscale", "engine": "torch", "threads": 1})
    assert np.abs(a.values - b.values).max() <= 1e-4 * DN


def test_corrupt_or_mismatching_model_files_are_named(pkg, tmp_path):
    import shutil

    from sr_core.models import ModelFileError

    bad = tmp_path / "corrupt"
    shutil.copytree(pkg, bad)
    onnx = bad / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-10] + b"0123456789")
    da = random_s2_cube(6, 6, seed=18)
    with pytest.raises(ModelFileError) as e:
        uc.udf_apply(da, {"model": str(bad), "mode": "upscale"})
    assert "model.onnx" in str(e.value) and "checksum" in str(e.value)
    # a card whose bands do not match the ONNX file
    mism = tmp_path / "mismatch"
    shutil.copytree(pkg, mism)
    card = json.loads((mism / "card.json").read_text())
    card["bands"], card["out_bands"] = card["bands"][:4], card["out_bands"][:4]
    card["mean"], card["std"] = card["mean"][:4], card["std"][:4]
    (mism / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelFileError, match="4 bands"):
        uc.udf_apply(da, {"model": str(mism), "mode": "upscale"})
    # a card whose scale or output bands do not match what the ONNX file computes
    ten = json.loads((pkg / "card.json").read_text())["bands"]
    for change, words in (
        ({"scale": 3}, ["model.onnx", "at x2", "scale 3"]),
        ({"out_bands": ten[:4]}, ["model.onnx", "10 bands", "4 out_bands"]),
    ):
        other = tmp_path / f"wrong-{next(iter(change))}"
        shutil.copytree(pkg, other)
        c = json.loads((other / "card.json").read_text())
        c.update(change)
        (other / "card.json").write_text(json.dumps(c))
        with pytest.raises(ModelFileError) as e:
            uc.udf_apply(da, {"model": str(other), "mode": "upscale"})
        for w in words:
            assert w in str(e.value)


def test_empty_context_uses_the_default_model(pkg, monkeypatch, tmp_path):
    import shutil

    from sr_core.models import card

    weights = tmp_path / "weights"
    shutil.copytree(pkg, weights / card.DEFAULT_MODEL)
    monkeypatch.setattr(card, "WEIGHTS_DIR", weights)
    da = nearest_resample(random_s2_cube(8, 8, seed=20), 2)
    out = uc.udf_apply(da, {})
    ref = uc.udf_apply(da, {"model": str(pkg)})
    np.testing.assert_array_equal(out.values, ref.values)


@pytest.mark.parametrize("bands, model", [(("B02", "B03", "B04", "B08"), "s2sr-x2-rgbn"),
                                         (("B08", "B04", "B03", "B02", "B05"), "s2sr-x2-rgbn"),
                                         (None, "s2sr-x2-10band")])
def test_a_context_without_model_runs_the_shipped_model_whose_bands_the_chunk_holds(bands, model):
    kw = {} if bands is None else {"bands": bands}
    da = nearest_resample(random_s2_cube(16, 16, seed=21, **kw), 2)
    out = uc.udf_apply(da, {"threads": 1})
    ref = uc.udf_apply(da, {"model": model, "threads": 1})
    np.testing.assert_array_equal(out.values, ref.values)
    assert list(out.coords["bands"].values) == list(da.coords["bands"].values)
    assert not np.array_equal(out.values, da.values)


def test_a_chunk_without_either_band_set_names_its_bands_and_the_models():
    da = nearest_resample(random_s2_cube(8, 8, seed=22, bands=("B02", "B03", "B04")), 2)
    with pytest.raises(ValueError, match=r"input's bands \(B02, B03, B04, SCL\): s2sr-x2-10band needs B02, .*; "
                                         r"s2sr-x2-rgbn needs B02, B03, B04, B08"):
        uc.udf_apply(da, {})


@pytest.mark.parametrize("apply", [uc.udf_apply, uc.misr_udf_apply])
def test_absurd_threads_in_the_udf_context_name_the_key(pkg, apply):
    """Before any model is loaded: one ValueError naming the key and the range, not an engine's TypeError."""
    da = nearest_resample(random_s2_cube(8, 8, dates=2, seed=3), 2)
    for v in (10**12, 2**31, 1025):
        with pytest.raises(ValueError, match=r"context\['threads'\] must be an integer from 1 to 1024 or null"):
            apply(da, {"model": str(pkg), "threads": v})


# ------------------------------------------------------------------------------------------------ resolution


def test_the_resolution_key():
    assert uc.parse_context({}).resolution is None
    assert uc.parse_context({"resolution": 10}).resolution == 10.0
    assert uc.parse_context({"resolution": 5.0, "model": "s2sr-x2-rgbn"}).resolution == 5.0
    assert uc.parse_context({"resolution": np.int64(10)}).resolution == 10.0
    for bad in (0, -10, "10", True, float("nan")):
        with pytest.raises(ValueError, match=r"context\['resolution'\] must be a positive number of metres"):
            uc.parse_context({"resolution": bad})
    with pytest.raises(ValueError, match="unknown UDF context key.*resolution"):  # single-image only
        uc.parse_misr_context({"resolution": 5})


@pytest.mark.parametrize("ctx, bands, want", [
    ({}, None, "s2sr-x2-10band"),
    ({"resolution": 5}, ("B02", "B03", "B04", "B08", "SCL"), "s2sr-x2-rgbn"),
    ({"resolution": 10}, None, "s2sr-10m-10band"),
    ({"resolution": 10}, ("SCL", "B12", "B11", "B8A", "B07", "B06", "B05", "B08", "B04", "B03", "B02"),
     "s2sr-10m-10band"),
    ({"resolution": 10, "model": "s2sr-x2-10band"}, None, "s2sr-x2-10band"),  # named: checked by the caller
])
def test_context_model_by_bands_and_resolution(ctx, bands, want):
    assert uc.context_model(uc.parse_context(ctx), bands) == want


def test_resolution_10_runs_the_sharpening_model_on_the_10m_grid_in_both_modes():
    """The chunk keeps its 10 m grid and labels; the 10 m bands come back as they went in, SCL passes through."""
    da = random_s2_cube(24, 24, seed=23)
    for mode in ("resampled", "upscale"):
        out = uc.udf_apply(da, {"resolution": 10, "mode": mode, "threads": 1})
        ref = uc.udf_apply(da, {"model": "s2sr-10m-10band", "mode": mode, "threads": 1})
        np.testing.assert_array_equal(out.values, ref.values)
        assert out.dims == da.dims and out.shape == da.shape
        np.testing.assert_array_equal(out.x.values, da.x.values)
        np.testing.assert_array_equal(out.y.values, da.y.values)
        assert list(out.bands.values) == list(da.bands.values)
        fine = ["B02", "B03", "B04", "B08"]
        assert np.abs(out.sel(bands=fine).values - da.sel(bands=fine).values).max() <= 1e-3
        np.testing.assert_array_equal(out.sel(bands="SCL").values, da.sel(bands="SCL").values)
        assert np.abs(out.sel(bands="B05").values - da.sel(bands="B05").values).max() > 1.0  # sharpened


def test_a_named_model_of_another_resolution_is_refused(pkg):
    da = random_s2_cube(16, 16, seed=24)
    for model in ("s2sr-x2-10band", str(pkg)):
        with pytest.raises(ValueError, match=r"outputs 5 m, context\['resolution'\] asks 10 m"):
            uc.udf_apply(da, {"model": model, "resolution": 10, "mode": "upscale"})
    with pytest.raises(ValueError, match=r"model 's2sr-10m-10band' outputs 10 m, context\['resolution'\] asks 5 m"):
        uc.udf_apply(da, {"model": "s2sr-10m-10band", "resolution": 5})
    with pytest.raises(ValueError, match="no shipped model outputs 7 m: resolutions offered 5, 10"):
        uc.udf_apply(da, {"resolution": 7})


def test_four_bands_at_10m_name_what_is_missing():
    da = random_s2_cube(8, 8, seed=25, bands=("B02", "B03", "B04", "B08"))
    with pytest.raises(ValueError, match=r"no shipped 10 m model fits the input's bands \(B02, B03, B04, B08, SCL\): "
                                         r"s2sr-10m-10band needs .* \(missing B05, B06, B07, B8A, B11, B12\)"):
        uc.udf_apply(da, {"resolution": 10})
