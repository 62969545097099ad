"""``s2sr udf-archive`` (s2sr_cli/commands/udf_archive.py): the job options on stdout, what was written on stderr."""

from __future__ import annotations

import errno
import io
import json
import os
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
        rc = main(["udf-archive", "--out", str(tmp_path), "--model", str(pkg), "--url-prefix", "https://h/x", "--no-download"])
    assert rc == 0
    assert json.loads(out.getvalue())["udf-dependency-archives"] == [f"https://h/x/s2sr-udf-code-tiny-edsr-x2.zip#{CODE_DIR}"]
    assert "--no-download: no ONNX Runtime archive" in err.getvalue() and (tmp_path / "s2sr-udf-code-tiny-edsr-x2.zip").is_file()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        assert main(["udf-archive", "--out", str(tmp_path), "--model", str(pkg), "--wheel-dir", str(tmp_path / "no")]) == 2


def test_cli_quiet_prints_only_the_job_options(pkg, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        assert main(["--quiet", "udf-archive", "--out", str(tmp_path), "--model", str(pkg), "--no-download"]) == 0
    assert err.getvalue() == "" and "udf-dependency-archives" in json.loads(out.getvalue())


def _one_line_error(rc: int, err: str, *words: str) -> None:
    assert rc == 2, err
    assert err.startswith("s2sr udf-archive: error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, (w, err)


def test_cli_out_that_is_a_file_is_refused(pkg, tmp_path):
    out = tmp_path / "archives"
    out.write_bytes(b"a file, not a folder")
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        rc = main(["udf-archive", "--out", str(out), "--model", str(pkg), "--no-download"])
    _one_line_error(rc, err.getvalue(), str(out), "not a folder")
    assert out.read_bytes() == b"a file, not a folder" and sorted(os.listdir(tmp_path)) == ["archives"]


def test_cli_read_only_out_is_refused(pkg, tmp_path, monkeypatch):
    out = tmp_path / "ro"
    out.mkdir()
    (out / "s2sr-udf-code-tiny-edsr-x2.zip").write_bytes(b"old")
    real = os.open

    def read_only(path, flags, *a, **k):  # a read-only file system: creating a file fails, even for root
        if Path(path).parent == out and flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", read_only)
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        rc = main(["udf-archive", "--out", str(out), "--model", str(pkg), "--no-download"])
    _one_line_error(rc, err.getvalue(), str(out), "Read-only file system")
    assert os.listdir(out) == ["s2sr-udf-code-tiny-edsr-x2.zip"]
    assert (out / "s2sr-udf-code-tiny-edsr-x2.zip").read_bytes() == b"old"


def test_cli_full_disk_keeps_the_old_zip(pkg, tmp_path, monkeypatch):
    import udf.archive as A

    zip_path = tmp_path / "s2sr-udf-code-tiny-edsr-x2.zip"
    zip_path.write_bytes(b"the previous archive")
    real, calls = A._add, []

    def add(*a, **k):
        calls.append(1)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*a, **k)

    monkeypatch.setattr(A, "_add", add)
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        rc = main(["udf-archive", "--out", str(tmp_path), "--model", str(pkg), "--no-download"])
    assert os.listdir(tmp_path) == [zip_path.name] and zip_path.read_bytes() == b"the previous archive"
    _one_line_error(rc, err.getvalue(), str(zip_path), "No space left on device")


def test_cli_resolution_picks_the_model_of_that_resolution(pkg, tmp_path):
    import zipfile

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["udf-archive", "--out", str(tmp_path), "--resolution", "10", "--no-download"])
    assert rc == 0, err.getvalue()
    names = zipfile.ZipFile(tmp_path / "s2sr-udf-code-s2sr-10m-10band.zip").namelist()
    assert any(n.endswith("sr_core/weights/s2sr-10m-10band/card.json") for n in names)
    assert not any("weights/s2sr-x2-10band/" in n for n in names)
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        rc = main(["udf-archive", "--out", str(tmp_path), "--resolution", "10", "--model", str(pkg), "--no-download"])
    _one_line_error(rc, err.getvalue(), "outputs 5 m", "--resolution asks 10 m")
