"""``s2sr evaluate`` (s2sr_cli/commands/evaluate.py): which library run each option selects, with which arguments,
and what is printed. The runs themselves: tests/sr_core/evaluation/."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2sr_cli.main import main
from sr_core.evaluation import run as ev


@pytest.fixture
def calls(monkeypatch):
    seen: list[tuple[str, tuple, dict]] = []

    def fake(name):
        def run(*args, **kwargs):
            seen.append((name, args, kwargs))
            return ev.EvaluationRun({}, Path("r.json"), Path("r.md"), [f"{name} line"])

        return run

    for name in ("run_quality", "run_tasks", "run_misr", "run_family"):
        monkeypatch.setattr(ev, name, fake(name))
    return seen


def test_default_is_the_quality_report(calls, capsys):
    assert main(["evaluate", "--model", "m", "--scenes", "A", "B[0:64,0:64]", "--crop", "64", "--no-figures"]) == 0
    (name, args, kw), = calls
    assert name == "run_quality" and args == ("m", ["A", "B[0:64,0:64]"])
    assert kw["crop"] == 64 and kw["figures"] is False and kw["sample"] is False and kw["update_card"] is False
    assert kw["degradations"] == ["mtf_gaussian", "mtf_bicubic_aa"] and kw["root"] == ev.DEFAULT_ROOT
    assert callable(kw["log"])
    assert capsys.readouterr().out == "run_quality line\nwrote r.json and r.md\n"


def test_tasks_and_misr_select_their_runs(calls, capsys):
    assert main(["--quiet", "evaluate", "--tasks", "--task-models", "runs/x/best.pt", "--sample"]) == 0
    assert main(["evaluate", "--misr", "--stacks", "2", "--patch", "64", "--update-card", "--quiet"]) == 0
    (n1, a1, k1), (n2, a2, k2) = calls
    assert n1 == "run_tasks" and a1 == (None, []) and k1["task_models"] == ["runs/x/best.pt"] and k1["sample"]
    assert k1["log"] is None and k1["report_name"] is None
    assert n2 == "run_misr" and a2 == (None,) and (k2["stacks"], k2["patch"], k2["update_card"]) == (2, 64, True)
    assert capsys.readouterr().out == ""  # --quiet, before or after the subcommand


def test_family_peer_and_report_scenes(calls, capsys):
    assert main(["evaluate", "--family", "--report-scenes", "--quiet"]) == 0
    assert main(["evaluate", "--peer", "p.onnx", "--scenes", "A", "--opensr-test", "--quiet"]) == 0
    assert main(["evaluate", "--family", "--opensr-test", "/env/bin/python", "--degradations", "mtf_box",
                 "--quiet"]) == 0
    assert main(["evaluate", "--report-scenes", "--quiet"]) == 0
    (n1, a1, k1), (n2, a2, k2), (n3, a3, k3), (n4, a4, k4) = calls
    assert n1 == n2 == n3 == "run_family" and n4 == "run_quality"
    assert a1 == (None, None) and k1["report_scenes"] and k1["peer"] is None and not k1["opensr_test"]
    assert k1["degradations"] == ["mtf_gaussian", "mtf_box", "mtf_bicubic_aa", "mtf_lanczos3", "mtf_shift20",
                                  "mtf_noise002", "mtf_noise005"]
    assert a2 == (None, ["A"]) and k2["peer"] == "p.onnx" and k2["opensr_test"] and k2["opensr_python"] is None
    assert k3["opensr_python"] == "/env/bin/python" and k3["degradations"] == ["mtf_box"] and not k3["report_scenes"]
    assert k4["report_scenes"] and k4["degradations"] == ["mtf_gaussian", "mtf_bicubic_aa"]


@pytest.mark.parametrize("argv,message", [
    (["--opensr-test"], "--opensr-test needs --family"),
    (["--family", "--misr"], "not --misr or --tasks"),
    (["--peer", "p.onnx", "--tasks"], "not --misr or --tasks"),
    (["--report-scenes", "--misr"], "not --misr or --tasks"),
    (["--family", "--update-card"], "--update-card writes the two-operator report"),
])
def test_family_option_errors(calls, capsys, argv, message):
    assert main(["evaluate", *argv]) == 2
    assert calls == [] and message in capsys.readouterr().err


def test_family_keeps_operators_given_even_when_they_are_the_default_pair(calls):
    assert main(["evaluate", "--family", "--degradations", "mtf_gaussian", "mtf_bicubic_aa", "--quiet"]) == 0
    assert main(["evaluate", "--family", "--quiet"]) == 0
    (_, _, k1), (_, _, k2) = calls
    assert k1["degradations"] == ["mtf_gaussian", "mtf_bicubic_aa"] and len(k2["degradations"]) == 7
