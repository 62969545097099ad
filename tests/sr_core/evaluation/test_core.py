"""Evaluation tooling (sr_core.evaluation, `s2sr evaluate`, benchmarks/quality.py) on the bundled sample."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sr_core.archs import get_arch
from sr_core.bands import BANDS_10M, BANDS_20M, MODEL_BANDS_10, mtf
from sr_core.io import load_sample
from sr_core.degradation import default_psf_size, gaussian_psf_1d, mtf_to_sigma
from sr_core.evaluation.core import evaluate_model, run_evaluation
from sr_core.evaluation.report import render_markdown
from sr_core.models import ModelCard, Predictor, load_predictor
from sr_core.models.export import save_model_package
from sr_core.models.network import SRModel
from sr_core.datasets.patches import Region, SceneTensors

REPO = Path(__file__).resolve().parents[3]
ARCH_KW = {"in_channels": 10, "scale": 2, "num_features": 8, "num_blocks": 1}


def _card(name: str, receptive_field: int, **kw) -> ModelCard:
    return ModelCard(
        name=name, version="0.0.1", arch="s2fast", arch_kwargs=dict(ARCH_KW), bands=list(MODEL_BANDS_10),
        out_bands=list(MODEL_BANDS_10), scale=2, input_resolution_m=10.0, receptive_field=receptive_field,
        mean=[0.1] * 10, std=[0.05] * 10, **kw,
    )


def _package(path: Path, *, trained: bool, onnx: bool) -> Path:
    torch.manual_seed(0)
    net = get_arch("s2fast", **ARCH_KW)
    if trained:  # a non-zero residual: the output differs from bicubic
        torch.nn.init.normal_(net.tail.weight, std=0.02)
    card = _card(path.name, net.receptive_field)
    model = SRModel(net, card.mean, card.std, list(range(10))).eval()
    save_model_package(model, card, path, export_onnx_file=onnx)
    return path


@pytest.fixture(scope="module")
def sample() -> SceneTensors:
    s = load_sample()
    return SceneTensors(s.id, s.product_level, torch.from_numpy(s.bands10.copy()), torch.from_numpy(s.bands20.copy()))


@pytest.fixture(scope="module")
def untrained(tmp_path_factory) -> Path:
    return _package(tmp_path_factory.mktemp("pkg") / "tiny-untrained", trained=False, onnx=True)


@pytest.fixture(scope="module")
def report(untrained, sample, tmp_path_factory):
    """Whole bundled sample, both degradations, full resolution, figures and report files (ONNX engine)."""
    out = tmp_path_factory.mktemp("results")
    res, jp, mp = run_evaluation(str(untrained), [sample], out, engine="onnx", threads=1)
    return res, jp, mp, out


def _replicate_predictor(shift_rows: int = 0) -> Predictor:
    """A Predictor whose output is the nearest (2 x 2 replicated) upsampling, optionally moved down."""

    def fn(lr: np.ndarray) -> np.ndarray:
        up = lr.repeat(2, axis=2).repeat(2, axis=3)
        if shift_rows:
            up = np.concatenate([np.repeat(up[:, :, :1], shift_rows, axis=2), up[:, :, :-shift_rows]], axis=2)
        return up

    return Predictor(_card("replicate", 3), fn, "numpy")


# ------------------------------------------------------------------------------------------------ Wald


@pytest.mark.parametrize("dname", ["mtf_gaussian", "mtf_bicubic_aa"])
def test_untrained_package_gains_nothing_over_bicubic(report, dname):
    res = report[0]
    rows = [r for r in res["wald"] if r["degradation"] == dname]
    assert [r["band"] for r in rows] == list(MODEL_BANDS_10)
    for r in rows:
        # untrained residual network == bicubic of the same input: closed form gain 0
        assert abs(r["gain_db"]) < 1e-6, r
        assert abs(r["ssim_gain"]) < 1e-6, r
        assert 15 < r["psnr_sr"] < 60
        if r["band"] in BANDS_10M:  # the native baseline is the same one for the 10 m bands
            assert r["gain_db_native"] == pytest.approx(r["gain_db"], abs=1e-12)
        else:  # replicated 40 m input + blur is weaker than bicubic straight from 40 m data
            assert r["gain_db_native"] < 0
    for r in [s for s in res["wald_spectral"] if s["degradation"] == dname]:
        assert r["sam_sr"] == pytest.approx(r["sam_bicubic"], rel=1e-6)
        assert r["ergas_sr"] == pytest.approx(r["ergas_bicubic"], rel=1e-6)
        assert r["ergas_sr"] > 0 and r["sam_sr"] > 0


def test_wald_matches_wald_evaluate_and_tiling(tmp_path, sample):
    """Tiled evaluation (tile 16) of a non-trivial model == training's whole-scene wald_evaluate."""
    from sr_core.evaluation.wald import wald_evaluate

    pkg = _package(tmp_path / "tiny-random", trained=True, onnx=False)
    pred = load_predictor(pkg, engine="torch", threads=1)
    res = evaluate_model(pred, [sample], degradations=("mtf_gaussian",), crop=96, border=8, tile=16,
                         full_resolution=False)
    model = SRModel.from_card(pred.card, torch.load(pkg / "model.pt", weights_only=True)["state_dict"])
    ref = wald_evaluate(model, [sample], degradations=("mtf_gaussian",), margin=pred.margin, crop=96, border=4)
    assert [r["band"] for r in res["wald"]] == [r["band"] for r in ref]
    for mine, theirs in zip(res["wald"], ref):
        assert mine["psnr_sr"] == pytest.approx(theirs["psnr_sr"], abs=1e-4)
        assert mine["gain_db_native"] == pytest.approx(theirs["gain_db"], abs=1e-4)
    assert max(abs(r["gain_db"]) for r in res["wald"]) > 1e-3  # the model does change the result


# ------------------------------------------------------------------------------------------------ full res


def _lr_kernel(names, ratio: int) -> list[dict[int, float]]:
    """Per band: degrade(nearest_ratio(x), ratio) == sum_d w[d] x[i + d] (separable), w from the PSF taps."""
    sig = [mtf_to_sigma(mtf(b), ratio) for b in names]
    k = max(default_psf_size(s, ratio) for s in sig)
    out = []
    for s in sig:
        g = gaussian_psf_1d(s, ratio, size=k).numpy()
        w: dict[int, float] = {}
        for t in range(k):
            d = (t - (k - ratio) // 2) // ratio
            w[d] = w.get(d, 0.0) + float(g[t])
        out.append(w)
    return out


def _apply_sep(x: np.ndarray, w: dict[int, float]) -> np.ndarray:
    y = sum(v * np.roll(x, -d, axis=0) for d, v in w.items())
    return sum(v * np.roll(y, -d, axis=1) for d, v in w.items())


def test_full_resolution_consistency_closed_form(sample):
    res = evaluate_model(_replicate_predictor(), [sample], degradations=(), border=8)
    assert res["wald"] == [] and len(res["full_resolution"]) == 10
    rows = {r["band"]: r for r in res["full_resolution"]}
    for names, native, ratio, b in ((BANDS_10M, sample.hr10, 2, 8), (BANDS_20M, sample.hr20, 4, 4)):
        for name, w, x in zip(names, _lr_kernel(names, ratio), native.double().numpy()):
            expected = np.abs(_apply_sep(x, w) - x)[b:-b, b:-b].mean()
            assert rows[name]["consistency_l1_sr"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    for r in rows.values():
        assert abs(r["shift_dy_px"]) < 0.05 and abs(r["shift_dx_px"]) < 0.05  # aligned output: no shift


def test_full_resolution_shift_sign_and_units(sample):
    """Output moved down by 2 (1) 5 m pixels: +1 (+0.5) px of the 10 m grid, the unit of every band's shift."""
    res = evaluate_model(_replicate_predictor(shift_rows=2), [sample], degradations=(), border=8)
    for r in res["full_resolution"]:  # 20 m bands: 0.5 px of their grid, reported as 1 px of the 10 m grid
        assert r["shift_dy_px"] == pytest.approx(1.0, abs=0.05), r
        assert abs(r["shift_dx_px"]) < 0.05, r
        assert r["shift_px_bicubic"] < 0.05
    res = evaluate_model(_replicate_predictor(shift_rows=1), [sample], degradations=(), crop=128, border=8)
    for r in res["full_resolution"][:4]:  # sub-pixel on the 10 m bands
        assert r["band"] in BANDS_10M
        assert r["shift_dy_px"] == pytest.approx(0.5, abs=0.03), r
        assert abs(r["shift_dx_px"]) < 0.03, r


def test_untrained_full_resolution_equals_bicubic(report):
    res = report[0]
    for r in res["full_resolution"]:
        assert r["hf_ratio"] == pytest.approx(1.0, abs=1e-6)
        assert r["consistency_l1_sr"] == pytest.approx(r["consistency_l1_bicubic"], rel=1e-5)
        assert r["consistency_l1_sr"] > 0
        assert r["shift_px"] < 0.05
    for r in res["full_resolution_spectral"]:
        assert r["sam_sr"] == pytest.approx(r["sam_bicubic"], rel=1e-5)


def test_nodata_is_left_out(untrained, sample):
    """NaN and all-zero pixels are both nodata: results do not depend on what the nodata area holds."""
    out = []
    for fill in (math.nan, 0.0):
        hr10, hr20 = sample.hr10[:, :96, :96].clone(), sample.hr20[:, :48, :48].clone()
        hr10[:, :8, :8] = fill
        hr20[:, :4, :4] = fill
        s = SceneTensors("holes", "L1C", hr10, hr20)
        out.append(evaluate_model(str(untrained), [s], degradations=("mtf_gaussian",), border=8, threads=1))
    a, b = out
    assert a["settings"]["nodata_radius"] > 8
    for key in ("wald", "full_resolution"):
        for ra, rb in zip(a[key], b[key]):
            for k, v in ra.items():
                if isinstance(v, float):
                    assert math.isfinite(v), (key, k)
                    assert v == pytest.approx(rb[k], rel=1e-6, abs=1e-9), (key, k)
    # a scene without any valid pixel: every score is NaN (null in JSON), nothing raises
    empty = SceneTensors("void", "L1C", torch.full((4, 48, 48), math.nan), torch.full((6, 24, 24), math.nan))
    res = evaluate_model(_replicate_predictor(), [empty], degradations=("mtf_gaussian",), border=8)
    values = [v for key in ("wald", "full_resolution") for r in res[key] for v in r.values() if isinstance(v, float)]
    assert values and all(math.isnan(v) for v in values)


# ------------------------------------------------------------------------------------------------ reports


def test_report_files(report):
    res, jp, mp, out = report
    assert jp.name == "quality_tiny-untrained.json" and mp.name == "quality_tiny-untrained.md"
    data = json.loads(jp.read_text())  # standard JSON: no NaN/Infinity tokens
    assert data["summary"]["wald"].keys() == {"mtf_gaussian", "mtf_bicubic_aa"}
    assert data["model"]["sha256"] and data["metadata"]["versions"]["torch"] == torch.__version__
    assert set(data["metadata"]) >= {"date_utc", "git", "machine", "versions"}
    md = mp.read_text()
    assert md == render_markdown(res)
    for band in MODEL_BANDS_10:
        assert f"| {band} |" in md
    for sec in ("mtf_gaussian", "mtf_bicubic_aa", "Full resolution", "ERGAS"):
        assert sec in md
    figs = res["figures"][res["scenes"][0]]
    assert set(figs) == {"triptych", "power_spectra", "histograms"}
    for rel in figs.values():
        p = out / rel
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
        assert f"]({rel})" in md


def test_bad_arguments(untrained, sample):
    pred = _replicate_predictor()
    with pytest.raises(ValueError, match="degradations"):
        evaluate_model(pred, [sample], degradations=("gaussian_blur",))
    with pytest.raises(ValueError, match="border"):
        evaluate_model(pred, [sample], border=3)
    with pytest.raises(ValueError, match="engine"):
        evaluate_model(str(untrained), [sample], engine="tensorrt")
    with pytest.raises(ValueError, match="scenes"):
        evaluate_model(pred, [])
    with pytest.raises(ValueError, match="too small"):
        evaluate_model(pred, [sample], crop=40, border=8)
    with pytest.raises(ValueError, match="root"):
        evaluate_model(pred, ["some_scene"])
    four = Predictor(ModelCard(
        name="rgbn", version="0", arch="s2fast", arch_kwargs={}, bands=list(BANDS_10M), out_bands=list(BANDS_10M),
        scale=2, input_resolution_m=10.0, receptive_field=3, mean=[0.0] * 4, std=[1.0] * 4), lambda x: x, "numpy")
    with pytest.raises(ValueError, match="10-band x2"):
        evaluate_model(four, [sample])


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_help():
    from s2sr_cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--help"])
    assert e.value.code == 0


def test_cli_runs_on_sample(untrained, tmp_path, capsys):
    from s2sr_cli.main import main

    rc = main(["evaluate", "--model", str(untrained), "--sample", "--out", str(tmp_path), "--crop", "64",
               "--degradations", "mtf_gaussian", "--engine", "torch", "--threads", "1", "--no-figures", "--quiet"])
    assert rc == 0
    data = json.loads((tmp_path / "quality_tiny-untrained.json").read_text())
    assert data["scenes"] == ["S2A_MSIL1C_20170527_T33UUB_crop256(crop64)"]
    assert data["model"]["engine"] == "torch" and data["figures"] == {}
    assert (tmp_path / "quality_tiny-untrained.md").is_file()
    assert capsys.readouterr().out == ""
    # a missing scene root is a clean error (exit code 2), not a traceback
    rc = main(["evaluate", "--model", str(untrained), "--root", str(tmp_path / "nowhere"), "--scenes", "X",
               "--out", str(tmp_path), "--quiet"])
    assert rc == 2


def test_default_scenes_from_config(untrained):
    from sr_core.evaluation.run import default_val_scenes

    scenes = default_val_scenes(str(untrained), REPO / "configs" / "s2sr-x2-10band.yaml")
    assert scenes[0] == Region("S2A_MSIL1C_20170527_T33UUB", 344, 600, 344, 600)
    assert "s2sharp_coastalA" in scenes


def test_benchmark_script_help():
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "quality.py"), "--help"], capture_output=True,
                       text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert "--model" in r.stdout and "--scenes" in r.stdout


def test_scene_ids_under_root(untrained, shared_s2):
    """Scenes by id and by 'ID[y0:y1,x0:x1]' window under a root (real shared data; skipped without it)."""
    whole = "S2A_MSIL2A_20170617T113321_4_55"
    window = "S2A_MSIL1C_20170527_T33UUB[344:440,344:440]"
    res = evaluate_model(str(untrained), [whole, window], root=shared_s2, degradations=("mtf_gaussian",),
                         threads=1)
    assert res["scenes"] == [whole, window]
    assert {r["scene"] for r in res["wald"]} == {whole, window}
    assert max(abs(r["gain_db"]) for r in res["wald"]) < 1e-6
