"""sr_core.evaluation.family: the operator family run, the two scorings of the 20 m bands, the worst case."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sr_core.bands import BANDS_10M, BANDS_20M, MODEL_BANDS_10
from sr_core.datasets.patches import SceneTensors
from sr_core.evaluation import FAMILY
from sr_core.evaluation.family import evaluate_family, score_20m, summarize_family, worst_case
from sr_core.evaluation.report import render_family_markdown, write_family_report
from sr_core.io import load_sample
from udf.testing import make_package


class BicubicModel:
    """The baseline as a model: 10 m bands bicubic x2, 20 m bands (recovered from their 2 x 2 blocks) bicubic x4."""

    scale, margin, bands, out_bands, tiles_itself, name = 2, 0, MODEL_BANDS_10, MODEL_BANDS_10, True, "bicubic-model"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.asarray(x)).double()
        o10 = F.interpolate(t[:, :4], scale_factor=2, mode="bicubic", align_corners=False)
        o20 = F.interpolate(F.avg_pool2d(t[:, 4:], 2), scale_factor=4, mode="bicubic", align_corners=False)
        return torch.cat([o10, o20], 1).numpy()


@pytest.fixture(scope="module")
def sample() -> SceneTensors:
    s = load_sample()
    return SceneTensors(s.id, s.product_level, torch.from_numpy(s.bands10[:, :96, :96].copy()),
                        torch.from_numpy(s.bands20[:, :48, :48].copy()))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("family") / "tiny-family"
    make_package(folder, arch="edsr", seed=3)
    return folder


def test_scorings():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 6, 16, 16, generator=g, dtype=torch.float64)
    block = score_20m(x, "block")
    torch.testing.assert_close(block[0, :, 2, 3], x[0, :, 4:6, 6:8].mean((-2, -1)), rtol=0, atol=1e-15)
    const = torch.full((1, 6, 16, 16), 0.4, dtype=torch.float64)
    for s in ("physical", "block"):
        torch.testing.assert_close(score_20m(const, s), torch.full((1, 6, 8, 8), 0.4, dtype=torch.float64),
                                   rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="unknown scoring"):
        score_20m(x, "nearest")


def _row(model, scene, band, scoring, d, gain):
    return {"model": model, "scene": scene, "band": band, "scoring": scoring, "degradation": d, "gain_db": gain,
            "gain_db_native": None if band in BANDS_10M else gain - 1.0}


def test_worst_case_and_summary_aggregation():
    rows = [
        _row("m", "s1", "B02", "direct", "mtf_gaussian", 3.0), _row("m", "s1", "B02", "direct", "mtf_box", -0.5),
        _row("m", "s1", "B02", "direct", "mtf_noise005", 1.0),
        _row("m", "s2", "B02", "direct", "mtf_gaussian", 2.0), _row("m", "s2", "B02", "direct", "mtf_box", 2.5),
        _row("m", "s2", "B02", "direct", "mtf_noise005", math.nan),
        _row("m", "s1", "B11", "physical", "mtf_gaussian", 6.0), _row("m", "s1", "B11", "physical", "mtf_box", 4.0),
        _row("m", "s1", "B11", "block", "mtf_gaussian", -1.0), _row("m", "s1", "B11", "block", "mtf_box", -2.0),
    ]
    wc = {(r["scene"], r["band"], r["scoring"]): r for r in worst_case(rows)}
    assert len(wc) == 4
    assert wc[("s1", "B02", "direct")] == {"model": "m", "scene": "s1", "band": "B02", "group": "10m",
                                           "scoring": "direct", "min_gain_db": -0.5, "degradation": "mtf_box",
                                           "operators": 3, "below_bicubic": 1}
    assert wc[("s2", "B02", "direct")]["min_gain_db"] == 2.0 and wc[("s2", "B02", "direct")]["operators"] == 3
    assert wc[("s1", "B11", "block")]["degradation"] == "mtf_box" and wc[("s1", "B11", "block")]["below_bicubic"] == 2
    s = summarize_family(rows)["m"]
    d = s["10m/direct"]
    assert d["mean_gain_db"] == {"mtf_gaussian": 2.5, "mtf_box": 1.0, "mtf_noise005": 1.0}
    assert d["matched_mean_gain_db"] == 2.5 and d["worst_operator"] == "mtf_box"
    assert d["worst_operator_mean_gain_db"] == 1.0 and d["min_gain_db"] == -0.5
    assert d["min_at"] == {"scene": "s1", "band": "B02", "degradation": "mtf_box"}
    assert (d["below_bicubic"], d["count"], d["mean_gain_db_native"]) == (1, 6, None)
    p, b = s["20m/physical"], s["20m/block"]
    assert (p["matched_mean_gain_db"], p["worst_operator"], p["below_bicubic"]) == (6.0, "mtf_box", 0)
    assert p["mean_gain_db_native"] == 4.0
    assert (b["worst_operator_mean_gain_db"], b["below_bicubic"], b["count"]) == (-2.0, 2, 2)


def test_the_baseline_as_a_model_gains_nothing_under_every_operator_and_scoring(sample):
    res = evaluate_family(BicubicModel(), [sample], degradations=FAMILY, border=8)
    assert len(res["rows"]) == len(FAMILY) * (4 + 2 * 6)
    assert {r["scoring"] for r in res["rows"]} == {"direct", "physical", "block"}
    assert max(abs(r["gain_db"]) for r in res["rows"]) < 1e-4
    assert all(r["psnr_bicubic_native"] is None for r in res["rows"] if r["band"] in BANDS_10M)
    # the 20 m baseline through either scoring differs from bicubic straight onto the 20 m grid
    assert any(abs(r["gain_db_native"]) > 0.1 for r in res["rows"] if r["band"] in BANDS_20M)
    assert len(res["worst_case"]) == 4 + 2 * 6 and all(w["operators"] == len(FAMILY) for w in res["worst_case"])
    assert res["settings"]["matched_degradation"] == "mtf_gaussian"
    assert set(res["summary"]["bicubic-model"]) == {"10m/direct", "20m/physical", "20m/block"}


def test_a_model_and_a_peer_scored_side_by_side(tiny, sample, tmp_path):
    from tests.sr_core.evaluation.test_peer import tiny_peer

    peer = tiny_peer(tmp_path)
    seen = {}

    def osr(triplets):
        seen.update(triplets)
        return {"skipped": "test"}

    res = evaluate_family(str(tiny), [sample], peer=peer, degradations=("mtf_gaussian", "mtf_shift20"),
                          threads=1, scene_sets={"report": ["X"], "selection": ["Y"]}, opensr_test=osr)
    models = {r["model"] for r in res["rows"]}
    assert models == {"tiny-family", peer.name} and res["models"][peer.name]["role"] == "peer"
    assert len(res["rows"]) == 2 * 2 * (4 + 12)
    assert all(np.isfinite(r["gain_db"]) for r in res["rows"])
    # the opensr-test triplets: the 10 m bands of the matched operator, per model, border cropped
    lr, sr, hr, bic = seen["tiny-family"][sample.id]
    assert lr.shape == (4, 40, 40) and sr.shape == hr.shape == bic.shape == (4, 80, 80)
    assert res["opensr_test"] == {"skipped": "test"} and res["scene_sets"] == {"report": ["X"], "selection": ["Y"]}
    md = render_family_markdown(res)
    assert "beside `tiny-peer` (peer)" in md and "- report scenes: X" in md and "Skipped: test" in md
    assert res["notes"] == []
    jp, mp = write_family_report(res, tmp_path / "out")
    assert jp.name == "quality_tiny-family_family.json" and mp.read_text() == md


def test_a_model_of_the_10m_bands_alone_is_scored_on_them_beside_a_10_band_peer(sample, tmp_path):
    from sr_core.models import load_predictor
    from tests.sr_core.evaluation.test_peer import tiny_peer

    make_package(tmp_path / "tiny-rgbn", arch="edsr", seed=4, bands=BANDS_10M)
    peer = tiny_peer(tmp_path)
    res = evaluate_family(str(tmp_path / "tiny-rgbn"), [sample], peer=peer, degradations=("mtf_gaussian", "mtf_box"),
                          threads=1)
    mine = [r for r in res["rows"] if r["model"] == "tiny-rgbn"]
    assert len(mine) == 2 * 4 and {r["band"] for r in mine} == set(BANDS_10M)
    assert len([r for r in res["rows"] if r["model"] == peer.name]) == 2 * (4 + 12)
    assert set(res["summary"]["tiny-rgbn"]) == {"10m/direct"}
    # its input: the degraded 10 m bands, as a 10-band model gets them
    from sr_core.datasets.patches import wald_scene_input
    from sr_core.evaluation.wald import DEGRADATIONS

    x = wald_scene_input(sample, degrade_fn=DEGRADATIONS["mtf_box"]).lr[:, :4]
    out = torch.from_numpy(load_predictor(tmp_path / "tiny-rgbn", threads=1)(x.numpy())).double()
    p = -10 * torch.log10(((out - sample.hr10[None].double())[..., 8:-8, 8:-8] ** 2).mean((0, 2, 3)))
    got = {r["band"]: r["psnr"] for r in mine if r["degradation"] == "mtf_box"}
    np.testing.assert_allclose([got[b] for b in BANDS_10M], p.numpy(), atol=1e-3)
    md = render_family_markdown(res)
    assert "tiny-rgbn" in md


def test_bad_arguments(tiny, sample):
    with pytest.raises(ValueError, match="unknown"):
        evaluate_family(str(tiny), [sample], degradations=("nope",))
    with pytest.raises(ValueError, match="at least one"):
        evaluate_family(str(tiny), [sample], degradations=())
    with pytest.raises(ValueError, match="border must be even"):
        evaluate_family(str(tiny), [sample], border=3)
    with pytest.raises(ValueError, match="peer must"):
        evaluate_family(str(tiny), [sample], peer=object())


def test_a_sharpening_model_is_scored_directly_beside_an_x2_model(tiny, sample, tmp_path):
    """A scale-1 model's 20 m bands against the 20 m truth over bicubic x2 of the 40 m bands (an untrained
    S2Sharpen is that bicubic: gain 0); the x2 model compared in the same run keeps its two scorings."""
    import copy

    from sr_core.models import load_predictor

    make_package(tmp_path / "sharp", arch="s2sharpen", scale=1, weight_std=0.0,
                 postprocess={"copy_bands": {"bands": list(BANDS_10M)}})
    res = evaluate_family(str(tmp_path / "sharp"), [sample], compare=[str(tiny)],
                          degradations=("mtf_gaussian", "mtf_box"), threads=1)
    assert res["models"]["tiny-family"]["role"] == "compare" and res["models"]["sharp"]["role"] == "model"
    sharp = [r for r in res["rows"] if r["model"] == "sharp"]
    assert len(sharp) == 2 * 6 and {r["scoring"] for r in sharp} == {"direct"}
    assert {r["band"] for r in sharp} == set(BANDS_20M)
    assert max(abs(r["gain_db"]) for r in sharp) < 1e-4
    assert all(r["psnr_bicubic"] == r["psnr_bicubic_native"] for r in sharp)
    other = [r for r in res["rows"] if r["model"] == "tiny-family"]
    assert len(other) == 2 * (4 + 12)
    assert set(res["summary"]["sharp"]) == {"20m/direct"}
    assert res["settings"]["scorings"]["20m"] == ["direct", "physical", "block"]
    assert "`20m/direct`" in render_family_markdown(res)
    with pytest.raises(ValueError, match="already in the run"):
        evaluate_family(str(tiny), [sample], compare=[str(tiny)], degradations=("mtf_gaussian",))
    # another version of the same model is named with its version
    make_package(tmp_path / "v2" / "tiny-family", arch="edsr", seed=5)
    card = tmp_path / "v2" / "tiny-family" / "card.json"
    import json

    c = json.loads(card.read_text())
    c["version"] = "9.9"
    card.write_text(json.dumps(c))
    res = evaluate_family(str(tiny), [sample], compare=[str(tmp_path / "v2" / "tiny-family")],
                          degradations=("mtf_gaussian",), threads=1)
    assert set(res["models"]) == {"tiny-family", "tiny-family 9.9"}
    # a wrong kind of model is refused by name
    bad = copy.copy(load_predictor(tmp_path / "sharp"))
    bad.scale = 3
    with pytest.raises(ValueError, match="10-band x2 model"):
        evaluate_family(bad, [sample], degradations=("mtf_gaussian",))
