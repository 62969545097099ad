"""The demo (udf/demo.py): the bundled sample through udf/sr_udf.py and the local back-end emulator.

Tiny random packages only (the default model is used by the last test when it is shipped): the three artifacts,
the report's keys and finite numbers, UDF path == ``s2sr superres`` path, closed-form metric values for a
network that is exactly bicubic. The command line: tests/s2sr_cli/test_demo.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio

from udf import demo as D
from sr_core.bands import MODEL_BANDS_10
from sr_core.io import sample_scene_path
from sr_core.models import DEFAULT_MODEL, list_models, load_card, load_predictor, sha256_file
from sr_core.inference.scene import superresolve_file
from udf.testing import make_package

DN = 10000.0


@pytest.fixture(scope="module")
def pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo_models") / "tiny-demo-x2"
    make_package(folder, arch="edsr", seed=5)
    return folder


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, pkg):
    out = tmp_path_factory.mktemp("demo_out")
    return out, D.run_demo(out, model=pkg, threads=1)


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


def test_demo_writes_geotiff_png_and_report(demo_run, pkg):
    out, report = demo_run
    tif, png, js = out / "sr_5m.tif", out / "comparison.png", out / "metrics.json"
    assert tif.is_file() and png.is_file() and js.is_file()
    assert json.loads(js.read_text()) == report
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(png).shape[:2] == (840, 1200)
    for key in ("model", "input", "udf", "outputs", "metrics", "runtime_s", "s2sr_version"):
        assert key in report
    card = load_card(pkg)
    assert report["model"]["name"] == card.name and report["model"]["version"] == card.version
    assert report["model"]["sha256"] == card.sha256 and report["model"]["file"] == "model.onnx"
    assert report["udf"]["file"] == "udf/sr_udf.py" and report["udf"]["mode"] == "upscale"
    assert (report["udf"]["size"], report["udf"]["overlap"]) == (256, 16)  # neighborhood_for, margin 6
    m = report["metrics"]
    assert list(m["consistency_l1"]) == list(MODEL_BANDS_10)
    assert set(m["spectral_consistency_deg"]) == {"10m", "20m"}
    assert list(m["sharpness_gain"]["per_band"]) == list(MODEL_BANDS_10)
    assert m["sharpness_gain"]["hf_cutoff_cycles_per_px"] == 0.25
    nums = list(_numbers(report["metrics"]))
    assert len(nums) >= 10 + 2 * 10 + 4 and all(math.isfinite(v) for v in nums)
    assert all(v["sr"] >= 0 and v["bicubic"] >= 0 for v in m["consistency_l1"].values())
    # a random network is not bicubic: the metrics see the difference (bicubic network: next tests)
    assert abs(m["sharpness_gain"]["mean"] - 1.0) > 0.01
    assert m["consistency_l1_mean"]["sr"] != pytest.approx(m["consistency_l1_mean"]["bicubic"], rel=1e-3)
    with rasterio.open(tif) as d, rasterio.open(sample_scene_path() / "bands_10m.tif") as s:
        assert d.bounds == s.bounds and d.crs == s.crs and (d.width, d.height) == (512, 512)
        assert d.descriptions == MODEL_BANDS_10
        tags = d.tags()
        assert tags["S2SR_MODEL"] == card.name and tags["S2SR_MODEL_SHA256"] == sha256_file(
            pkg / "model.onnx"
        )
        assert (tags["DN_SCALE"], tags["ADD_OFFSET"]) == ("10000", "0")
        assert "sr_udf.py" in tags["S2SR_PATH"]
    assert "sharpness gain" in D.render_text(report)


def test_demo_udf_path_equals_superres_cli_path(demo_run, pkg, tmp_path):
    out, _ = demo_run
    cli = superresolve_file(sample_scene_path(), tmp_path / "cli.tif", model=str(pkg), threads=1)[0]
    with rasterio.open(out / "sr_5m.tif") as a, rasterio.open(cli) as b:
        assert a.bounds == b.bounds and a.descriptions == b.descriptions
        assert np.abs(a.read() - b.read()).max() <= 1e-4 * DN


def test_demo_metrics_closed_form_for_a_bicubic_network(tmp_path):
    # all weights 0: the network is exactly its bicubic base, so SR == bicubic: equal consistency, gain 1
    folder = tmp_path / "bicubic-x2"
    make_package(folder, arch="edsr", seed=0, weight_std=0.0)
    m = D.run_demo(tmp_path / "out", model=folder, threads=1)["metrics"]
    for v in m["consistency_l1"].values():
        assert v["sr"] == pytest.approx(v["bicubic"], rel=1e-4, abs=1e-7)
    for v in m["spectral_consistency_deg"].values():
        assert v["sr"] == pytest.approx(v["bicubic"], abs=1e-3)
    for v in m["sharpness_gain"]["per_band"].values():
        assert v == pytest.approx(1.0, abs=1e-4)


def test_demo_without_default_model_says_what_to_do(tmp_path, monkeypatch):
    from sr_core.models import card

    monkeypatch.setattr(card, "WEIGHTS_DIR", tmp_path / "empty")
    with pytest.raises(ValueError, match="--model"):
        D.run_demo(tmp_path / "out")


@pytest.mark.skipif(
    DEFAULT_MODEL not in list_models(), reason=f"default model {DEFAULT_MODEL} not shipped yet"
)
def test_demo_with_default_model(tmp_path):
    report = D.run_demo(tmp_path / "out", threads=1)
    card = load_card(DEFAULT_MODEL)
    assert report["model"]["name"] == DEFAULT_MODEL and report["model"]["sha256"] == card.sha256
    m = report["metrics"]
    assert all(math.isfinite(v) for v in _numbers(m))
    # a trained model adds detail beyond bicubic and stays consistent with its input
    assert m["sharpness_gain"]["mean"] > 1.0
    assert m["consistency_l1_mean"]["sr"] < 0.02
    pred = load_predictor(DEFAULT_MODEL)
    assert pred.scale == 2
    # the overlap satisfies the UDF's own check: the margin of the network followed by its post-processing
    from sr_core.inference.cube import required_overlap

    assert report["udf"]["overlap"] >= required_overlap(pred, "upscale") and report["udf"]["overlap"] % 16 == 0
