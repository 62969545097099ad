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

    for name in ("run_quality", "run_tasks", "run_misr"):
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
