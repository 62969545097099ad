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
