"""``s2sr`` (s2sr_cli.main): the subcommand table, global options, one-line errors and exit statuses, a fast --help."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from s2sr_cli import main as cli
from s2sr_cli.commands import archs, evaluate

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "onnxruntime", "xarray", "rasterio")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for a in parser._actions:  # argparse has no public accessor for subcommands
        if isinstance(a, argparse._SubParsersAction):
            return dict(a.choices)
    raise AssertionError("no subcommands")


def test_every_command_module_is_one_subcommand_with_its_handler():
    sub = _subcommands(cli.build_parser())
    assert list(sub) == [c.NAME for c in cli.COMMANDS] == [
        "archs", "models", "export-onnx", "demo", "superres", "train", "evaluate", "graph", "udp", "udf-archive"]
    for command in cli.COMMANDS:
        assert sub[command.NAME].get_default("handler") is command.run


def test_global_quiet_is_kept_by_the_subcommands():
    p = cli.build_parser()
    for name in ("demo", "evaluate"):
        assert p.parse_args(["--quiet", name]).quiet is True
        assert p.parse_args([name, "--quiet"]).quiet is True
        assert getattr(p.parse_args([name]), "quiet", False) is False
    assert p.parse_args(["--debug", "archs"]).debug is True and p.parse_args(["archs"]).debug is False


def test_missing_input_file_is_one_line_and_exit_status_2(tmp_path, capsys):
    rc = cli.main(["superres", str(tmp_path / "missing.tif"), str(tmp_path / "out.tif"), "--threads", "1"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("s2sr superres: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert "missing.tif" in err


def test_python_m_s2sr_cli_missing_input(tmp_path):
    r = subprocess.run([sys.executable, "-m", "s2sr_cli", "superres", str(tmp_path / "missing.tif"),
                        str(tmp_path / "out.tif"), "--quiet"], capture_output=True, text=True, timeout=120,
                       cwd=REPO, check=False)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("s2sr superres: error: ") and r.stderr.count("\n") == 1, r.stderr


def test_unexpected_error_is_one_line_exit_1_and_the_traceback_only_with_debug(monkeypatch, capsys):
    def boom(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(archs, "run", boom)
    assert cli.main(["archs"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("s2sr archs: error: ") and err.count("\n") == 1
    assert "RuntimeError" in err and "boom" in err and "--debug" in err and "Traceback" not in err
    assert cli.main(["--debug", "archs"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and 'raise RuntimeError("boom")' in err
    assert err.splitlines()[-1].startswith("s2sr archs: error: ")


@pytest.mark.parametrize("exc", [ValueError("bad\nvalue"), FileNotFoundError("nope"), IsADirectoryError("dir"),
                                 NotADirectoryError("nodir"), PermissionError("denied")])
def test_bad_input_errors_exit_2_on_one_line(monkeypatch, capsys, exc):
    def fail(args):
        raise exc

    monkeypatch.setattr(archs, "run", fail)
    assert cli.main(["archs"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("s2sr archs: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert cli.main(["--debug", "archs"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_rasterio_io_error_is_bad_input(monkeypatch, capsys):
    from rasterio.errors import RasterioIOError

    def fail(args):
        raise RasterioIOError("x.tif: not recognized as a supported file format")

    monkeypatch.setattr(archs, "run", fail)
    assert cli.main(["archs"]) == 2
    assert capsys.readouterr().err == "s2sr archs: error: x.tif: not recognized as a supported file format\n"


def test_usage_errors_are_one_line_with_exit_status_2(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["superres", "a", "b", "--tile", "0"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("s2sr superres: error: argument --tile") and err.count("\n") == 1
    with pytest.raises(SystemExit) as e:
        cli.main(["no-such-command"])
    assert e.value.code == 2 and capsys.readouterr().err.startswith("s2sr: error: ")


def test_help_imports_no_heavy_module():
    code = (
        "import sys\n"
        "from s2sr_cli.main import COMMANDS, main\n"
        "names = [None] + [c.NAME for c in COMMANDS]\n"
        "for n in names:\n"
        "    try:\n"
        "        main(['--help'] if n is None else [n, '--help'])\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, (n, e.code)\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_python_m_s2sr_cli_help():
    r = subprocess.run([sys.executable, "-m", "s2sr_cli", "--help"], capture_output=True, text=True, timeout=60,
                       cwd=REPO, check=False)
    assert r.returncode == 0 and "SUBCOMMAND" in r.stdout and "--debug" in r.stdout


def test_console_script_entry_point_is_main():
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    scripts = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    assert "s2sr = s2sr_cli.main:main" in [s.strip() for s in scripts]


def test_argparse_level_defaults_agree_with_the_library():
    from sr_core.evaluation import DEFAULT_DEGRADATIONS
    from sr_core.evaluation import run as ev
    from udf import demo as udf_demo

    p = evaluate.add_arguments(argparse.ArgumentParser())
    a = p.parse_args([])
    assert a.root == ev.DEFAULT_ROOT and a.out == ev.DEFAULT_OUT and Path(evaluate.DEFAULT_CONFIG) == ev.DEFAULT_CONFIG
    assert a.degradations == list(DEFAULT_DEGRADATIONS)
    assert cli.build_parser().parse_args(["demo"]).out == udf_demo.DEFAULT_OUT


def test_ctrl_c_is_one_line_and_status_130(monkeypatch, capsys):
    from s2sr_cli.commands import archs

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(archs, "run", interrupted)
    assert cli.main(["archs"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "s2sr archs: interrupted"
