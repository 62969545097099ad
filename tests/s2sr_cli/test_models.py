"""``s2sr models`` (s2sr_cli/commands/models.py): one line per shipped package with its output resolution."""

from __future__ import annotations

import json

from s2sr_cli.main import main
from sr_core.models import AUTO_MODELS, list_models


def test_models_lists_each_package_with_its_input_and_output_resolution(capsys):
    assert main(["models", "--no-verify"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if not ln.startswith("  ")]  # one per package
    assert len(lines) == len(list_models())
    by_name = {ln.split(" ", 1)[0]: ln for ln in lines}
    assert set(by_name) == set(list_models())
    assert "sisr_step x1, 10 m -> 10 m (automatic choice at 10 m), bands B02,B03,B04,B08,B05,B06,B07,B8A,B11,B12" in (
        by_name["s2sr-10m-10band"])
    assert "x2, 10 m -> 5 m (automatic choice at 5 m), bands B02,B03,B04,B08," in by_name["s2sr-x2-10band"]
    assert "x2, 10 m -> 5 m (automatic choice at 5 m), bands B02,B03,B04,B08, " in by_name["s2sr-x2-rgbn"]
    if "s2sr-x4-rgbn" in by_name:
        assert "x4, 10 m -> 2.5 m, bands" in by_name["s2sr-x4-rgbn"]  # not an automatic choice
    assert sum("automatic choice" in ln for ln in lines) == len(set(AUTO_MODELS) & set(list_models()))


def test_models_json_holds_the_cards(capsys):
    assert main(["models", "--no-verify", "--json"]) == 0
    out = capsys.readouterr().out
    cards = json.loads("[" + out.replace("}\n{", "},\n{") + "]")
    sharpen = next(c for c in cards if c["name"] == "s2sr-10m-10band")
    assert sharpen["scale"] == 1 and sharpen["input_resolution_m"] == 10.0


def test_report_lines_show_the_report_scene_numbers_beside_the_peer():
    from s2sr_cli.commands.models import report_lines

    s = {"matched_mean_gain_db": 2.5, "worst_operator": "mtf_box", "worst_operator_mean_gain_db": -0.25,
         "below_bicubic": 3, "count": 28}
    v = {"report_scenes": ["a"], "summary": {"10m/direct": s},
         "peer": {"p": {"10m/direct": {**s, "matched_mean_gain_db": 1.0, "below_bicubic": 5}}}}
    assert report_lines(v) == ["report scenes, 10m/direct: +2.50 dB matched, -0.25 dB worst (mtf_box), 3/28 below "
                               "bicubic; peer p: +1.00 / -0.25 dB, 5/28 below"]
    assert report_lines({}) == [] and report_lines({"summary": {"10m/direct": s}}) == []  # not a report-scene run
    assert report_lines({"report_scenes": ["a"], "summary": {"10m": {"mean_gain_db": 1.0}}}) == []


def test_models_prints_the_default_models_report_scene_numbers(capsys):
    from s2sr_cli.main import main
    from sr_core.models import DEFAULT_MODEL, load_card

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    s = load_card(DEFAULT_MODEL).validation["summary"]["10m/direct"]
    assert f"report scenes, 10m/direct: {s['matched_mean_gain_db']:+.2f} dB matched" in out
