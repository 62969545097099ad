"""sr_core.evaluation.run: scene selection and the card's validation (the runs: test_core, test_tasks, test_misr
and tests/s2sr_cli/test_evaluate.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sr_core.datasets.patches import Region
from sr_core.evaluation import run as ev
from sr_core.io import SAMPLE_ID, sample_scene_path
from sr_core.models import load_card, sha256_file
from udf.testing import make_package

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("run_models") / "tiny-run-x2"
    make_package(folder, arch="edsr", seed=7, onnx=False)
    return folder


def test_resolve_scenes(pkg):
    assert ev.resolve_scenes(pkg, sample=True, root="x") == ([SAMPLE_ID], str(sample_scene_path().parent))
    with pytest.raises(ValueError, match="either --sample or --scenes"):
        ev.resolve_scenes(pkg, ["A"], sample=True)
    assert ev.resolve_scenes(pkg, ["A", "B[0:8,16:24]"], root="r") == (["A", Region("B", 0, 8, 16, 24)], "r")
    scenes, root = ev.resolve_scenes(str(pkg), config=REPO / "configs" / "s2sr-x2-10band.yaml", root="r")
    assert root == "r" and scenes == ev.default_val_scenes(str(pkg), REPO / "configs" / "s2sr-x2-10band.yaml")
    with pytest.raises(ValueError, match="does not exist"):
        ev.default_val_scenes(str(pkg), REPO / "nowhere.yaml")


def test_update_card_validation_keeps_the_weights(pkg, tmp_path):
    import shutil

    folder = tmp_path / "pkg"
    shutil.copytree(pkg, folder)
    before = load_card(folder).sha256
    result = {"summary": {"wald": {}}, "wald": [{"scene": "S", "degradation": "d", "band": "B02", "gain_db": 1.5,
                                                "extra": 0}]}
    ev.update_card_validation(folder, result, scenes=["S"])
    card = json.loads((folder / "card.json").read_text())
    assert card["validation"]["scenes"] == ["S"] and card["validation"]["summary"] == {"wald": {}}
    assert card["validation"]["wald_per_band"][0]["gain_db"] == 1.5 and "extra" not in card["validation"]["wald_per_band"][0]
    assert load_card(folder).sha256 == before == {k: sha256_file(folder / k) for k in before}
    assert ev.set_card_validation(folder, {"protocol": "p"}) == folder
    assert json.loads((folder / "card.json").read_text())["validation"] == {"protocol": "p"}
    assert "p" in (folder / "card.md").read_text()


def _with_training(pkg: Path, folder: Path, data: dict) -> Path:
    import shutil

    from sr_core.models import ModelCard

    shutil.copytree(pkg, folder)
    card = ModelCard.from_json(folder / "card.json")
    card.training = {"config": {"data": data}}
    card.write_json(folder / "card.json")
    return folder


def test_report_scenes_are_never_training_or_selection_scenes(pkg, tmp_path):
    from sr_core.evaluation import REPORT_SCENES

    assert ev.resolve_scenes(pkg, report_scenes=True, root="r") == (list(REPORT_SCENES), "r")
    with pytest.raises(ValueError, match="--report-scenes alone"):
        ev.resolve_scenes(pkg, ["A"], report_scenes=True)
    used = _with_training(pkg, tmp_path / "used", {"train": ["A", REPORT_SCENES[1]], "val": [
        {"scene": "V", "y0": 0, "y1": 8, "x0": 0, "x1": 8}]})
    with pytest.raises(ValueError, match="were used to train or select this model"):
        ev.resolve_scenes(used, report_scenes=True)
    prov = ev.scene_provenance(used, ["A[0:4,0:4]", "B", "V"])
    assert prov == {"training": ["A", REPORT_SCENES[1]], "selection": ["V[0:8,0:8]"], "used": ["A[0:4,0:4]", "V"]}
    # the shipped 10-band models: their training and selection scenes (cards) and configs leave the report set alone
    for name in ("s2sr-x2-10band", "s2sr-x4-rgbn", "s2sr-x2-rgbn"):
        p = ev.scene_provenance(name, REPORT_SCENES)
        assert p["used"] == [] and len(p["selection"]) == 3 and p["training"], name
    import yaml

    for cfg in sorted((REPO / "configs").glob("s2sr-*.yaml")):
        data = (yaml.safe_load(cfg.read_text()) or {}).get("data") or {}
        seen = {ev._scene_id(s) for s in [*(data.get("train") or []), *(data.get("val") or [])]}
        assert not seen & set(REPORT_SCENES), cfg.name


def test_run_family_names_its_scene_sets(pkg, tmp_path):
    from tests.sr_core.evaluation.test_peer import tiny_peer

    tiny_peer(tmp_path)
    done = ev.run_family(pkg, sample=True, peer=tmp_path / "tiny-peer.onnx", degradations=["mtf_box"], crop=64,
                         engine="torch", out=tmp_path / "out", threads=1)
    res = done.result
    assert done.json_path == tmp_path / "out" / "quality_tiny-run-x2_family.json" and done.markdown_path.is_file()
    assert res["scene_sets"]["evaluated"] == [SAMPLE_ID] and res["notes"] == []
    assert set(res["scene_sets"]) == {"evaluated", "selection", "training"}
    assert {r["model"] for r in res["rows"]} == {"tiny-run-x2", "tiny-peer"}
    assert len(done.summary) == 6 and done.summary[0].startswith("tiny-run-x2")


@pytest.mark.skipif(not (REPO.parent / "shared" / "data" / "s2").is_dir(), reason="no shared data beside the repo")
def test_run_family_on_the_report_scenes(pkg, tmp_path):
    from sr_core.evaluation import REPORT_SCENES, REPORT_SCENES_NOTE

    done = ev.run_family(pkg, report_scenes=True, root=str(REPO.parent / "shared" / "data" / "s2"),
                         degradations=["mtf_gaussian"], crop=64, out=tmp_path, threads=1, engine="torch")
    res = done.result
    assert res["scene_sets"]["report"] == list(REPORT_SCENES) and res["notes"] == [REPORT_SCENES_NOTE]
    assert [s.split("[")[0] for s in res["scenes"]] == list(REPORT_SCENES)
    assert REPORT_SCENES_NOTE in done.markdown_path.read_text()
