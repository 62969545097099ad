"""``s2sr demo`` (s2sr_cli/commands/demo.py): the report printed, --quiet, errors, help, no warning of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from s2sr_cli.main import main
from sr_core.models import DEFAULT_MODEL, list_models
from udf.testing import make_package

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo_models") / "tiny-demo-x2"
    make_package(folder, arch="edsr", seed=5)
    return folder


def test_cli_demo_prints_report_and_quiet_prints_nothing(pkg, tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "a"), "--model", str(pkg), "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "reflectance consistency" in text and "sharpness gain" in text and "tiny-demo-x2" in text
    assert main(["demo", "--out", str(tmp_path / "b"), "--model", str(pkg), "--threads", "1", "--quiet"]) == 0
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == ""
    assert (tmp_path / "b" / "metrics.json").is_file()
    assert main(["demo", "--out", str(tmp_path / "c"), "--model", str(tmp_path / "nope")]) == 2
    assert "s2sr demo: error" in capsys.readouterr().err


def test_cli_demo_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "--out" in text and "--model" in text and "--quiet" in text and "s2sr-demo" in text


@pytest.mark.skipif(
    DEFAULT_MODEL not in list_models(), reason=f"default model {DEFAULT_MODEL} not shipped yet"
)
def test_cli_demo_with_the_default_model_prints_no_warning(tmp_path):
    r = subprocess.run([sys.executable, "-m", "s2sr_cli", "demo", "--out", str(tmp_path / "demo"), "--threads", "1"],
                       capture_output=True, text=True, timeout=300, cwd=REPO, check=False)
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr and "overlap" not in r.stderr, r.stderr
    from sr_core.models import load_predictor

    margin = load_predictor(DEFAULT_MODEL, threads=1).margin  # the default model's margin, rounded up to 16 px
    assert f"overlap {-(-margin // 16) * 16}" in r.stdout
