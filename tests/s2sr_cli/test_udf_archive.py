"""``s2sr udf-archive`` (s2sr_cli/commands/udf_archive.py): the job options on stdout, what was written on stderr."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from s2sr_cli.main import main
from udf.archive import CODE_DIR
from udf.testing import make_package


@pytest.fixture(scope="module")
def pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("archive_models") / "tiny-edsr-x2"
    make_package(folder, arch="edsr", seed=4)
    return folder


def test_cli_prints_the_job_options(pkg, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["udf-archive", "--out", str(tmp_path), "--model", str(pkg), "--url-prefix", "https://h/x"])
    assert rc == 0
    assert json.loads(out.getvalue())["udf-dependency-archives"] == [f"https://h/x/s2sr-udf-code-tiny-edsr-x2.zip#{CODE_DIR}"]
    assert "no --wheel-dir" in err.getvalue() and (tmp_path / "s2sr-udf-code-tiny-edsr-x2.zip").is_file()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        assert main(["udf-archive", "--out", str(tmp_path), "--model", str(pkg), "--wheel-dir", str(tmp_path / "no")]) == 2


def test_cli_quiet_prints_only_the_job_options(pkg, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        assert main(["--quiet", "udf-archive", "--out", str(tmp_path), "--model", str(pkg)]) == 0
    assert err.getvalue() == "" and "udf-dependency-archives" in json.loads(out.getvalue())
