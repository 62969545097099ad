"""sr_core.io.safe_output: output checks, unique temporary names, atomic replacement, cleanup on signals."""

from __future__ import annotations

import errno
import os
import re
import signal
import stat
import threading
from pathlib import Path

import pytest

from sr_core.io import safe_output as so


def test_temporary_path_is_unique_exclusive_and_has_the_output_mode(tmp_path):
    final = tmp_path / "sr.tif"
    names = {so.temporary_path(final) for _ in range(50)}
    assert len(names) == 50 and all(p.is_file() and p.stat().st_size == 0 for p in names)
    assert all(re.fullmatch(r"\.sr\.tif\.[0-9a-f]{8}\.part", p.name) for p in names)
    level = so.temporary_path(final, suffix=".ovr1.part")
    assert re.fullmatch(r"\.sr\.tif\.[0-9a-f]{8}\.ovr1\.part", level.name)
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(level.stat().st_mode) == 0o666 & ~umask
    long = tmp_path / ("x" * 250 + ".tif")  # a legal name: the temporary name stays legal too
    assert len(so.temporary_path(long).name) < 255


def test_atomic_output_replaces_only_when_complete(tmp_path):
    final = tmp_path / "a.zip"
    final.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with so.atomic_output(final) as tmp:
            tmp.write_bytes(b"half")
            assert final.read_bytes() == b"old"
            raise RuntimeError("stop")
    assert os.listdir(tmp_path) == ["a.zip"] and final.read_bytes() == b"old"
    with pytest.raises(so.OutputWriteError, match=f"cannot write {re.escape(str(final))}: No space left on device") as e:
        with so.atomic_output(final) as tmp:
            raise OSError(errno.ENOSPC, "No space left on device")
    assert e.value.errno == errno.ENOSPC and isinstance(e.value, ValueError)
    assert os.listdir(tmp_path) == ["a.zip"] and final.read_bytes() == b"old"
    with so.atomic_output(final) as tmp:
        tmp.write_bytes(b"new")
    assert os.listdir(tmp_path) == ["a.zip"] and final.read_bytes() == b"new"


def test_check_output_target(tmp_path):
    for ok in ("a.tif", "a.TIF", "b.tiff", "c.Tiff"):
        assert so.check_output_target(tmp_path / ok) == tmp_path / ok
    for bad in ("a.png", "a.nc", "a", "a.tif.part"):
        with pytest.raises(ValueError, match="name it .tif or .tiff"):
            so.check_output_target(tmp_path / bad)
    assert so.check_output_target(tmp_path / "a.zip", suffixes=()) == tmp_path / "a.zip"
    (tmp_path / "d.tif").mkdir()
    os.mkfifo(tmp_path / "f.tif")
    (tmp_path / "l.tif").symlink_to(tmp_path / "a.tif")
    for name, kind in (("d.tif", "a directory"), ("f.tif", "a FIFO"), ("l.tif", "a symbolic link")):
        with pytest.raises(ValueError, match=f"OUTPUT {re.escape(str(tmp_path / name))} is {kind}"):
            so.check_output_target(tmp_path / name)
    (tmp_path / "file").write_bytes(b"")
    assert so.check_output_target(tmp_path / "file" / "x.tif")  # a bad folder is check_output_folder's


def test_check_output_folder(tmp_path, monkeypatch):
    assert so.check_output_folder(tmp_path) == tmp_path and os.listdir(tmp_path) == []  # the probe is removed
    with pytest.raises(FileNotFoundError, match="does not exist"):
        so.check_output_folder(tmp_path / "missing")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        so.check_output_folder(tmp_path / "file")
    real = os.open

    def denied(path, flags, *a, **k):
        if flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(so.OutputWriteError, match=f"cannot create files in the folder {re.escape(str(tmp_path))} "
                                                  "of OUTPUT: Permission denied") as e:
        so.check_output_folder(tmp_path)
    assert e.value.errno == errno.EACCES


def test_check_not_input(tmp_path):
    scene = tmp_path / "scene"
    scene.mkdir()
    (scene / "bands_10m.tif").write_bytes(b"input")
    (tmp_path / "alias").symlink_to(scene)
    for out in (scene / "bands_10m.tif", scene / "new.tif", tmp_path / "alias" / "new.tif", scene / "." / "x.tif"):
        with pytest.raises(ValueError, match="is inside the input folder"):
            so.check_not_input(out, [scene])
    os.link(scene / "bands_10m.tif", tmp_path / "hard.tif")
    with pytest.raises(ValueError, match=r"is the same file as .*bands_10m.tif in the input folder"):
        so.check_not_input(tmp_path / "hard.tif", [scene])
    with pytest.raises(ValueError, match="is the input file"):
        so.check_not_input(tmp_path / "hard.tif", [scene / "bands_10m.tif"])
    with pytest.raises(ValueError, match="is the input file"):
        so.check_not_input(tmp_path / "alias" / "bands_10m.tif", [scene / "bands_10m.tif"])
    so.check_not_input(tmp_path / "out.tif", [scene, scene / "bands_10m.tif"])  # elsewhere: fine
    (tmp_path / "out.tif").write_bytes(b"other")
    so.check_not_input(tmp_path / "out.tif", [scene, scene / "bands_10m.tif"])
    assert (scene / "bands_10m.tif").read_bytes() == b"input"


def test_write_error_names_the_output_and_gdals_cause(tmp_path):
    import rasterio.errors

    try:
        try:
            raise RuntimeError("TIFFAppendToStrip:Write error at scanline 256")  # GDAL's error, as rasterio chains it
        except Exception as cause:
            raise rasterio.errors.RasterioIOError("Write failed. See previous exception for details.") from cause
    except OSError as e:
        err = so.write_error(tmp_path / "o.tif", e)
    assert isinstance(err, so.OutputWriteError) and str(tmp_path / "o.tif") in str(err)
    assert str(err) == (f"cannot write {tmp_path / 'o.tif'}: Write failed (TIFFAppendToStrip:Write error at scanline "
                        "256); is the disk full or the folder read-only?")
    assert so.write_error("x", err) is err


def test_cleanup_on_signals_runs_the_cleanup_then_the_previous_handler():
    assert threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGINT)
    cleaned = []
    with pytest.raises(KeyboardInterrupt):  # Python's own SIGINT handler, raised again after the cleanup
        with so.cleanup_on_signals():
            try:
                signal.raise_signal(signal.SIGINT)
            except so.Interrupted as e:
                assert e.signum == signal.SIGINT
                signal.raise_signal(signal.SIGINT)  # a second signal does not interrupt the cleanup
                cleaned.append(True)
                raise
    assert cleaned == [True] and signal.getsignal(signal.SIGINT) is before
    # a handler of the caller's gets the signal; the interruption goes on
    got = []
    old = signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
    try:
        with pytest.raises(so.Interrupted):
            with so.cleanup_on_signals((signal.SIGUSR1,)):
                signal.raise_signal(signal.SIGUSR1)
        assert got == [signal.SIGUSR1]
        # nothing happens: the handlers are restored unchanged
        with so.cleanup_on_signals((signal.SIGUSR1,)):
            pass
        signal.raise_signal(signal.SIGUSR1)
        assert got == [signal.SIGUSR1] * 2
        # an ignored signal stays ignored
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        with so.cleanup_on_signals((signal.SIGUSR1,)):
            assert signal.getsignal(signal.SIGUSR1) is signal.SIG_IGN
            signal.raise_signal(signal.SIGUSR1)
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_cleanup_on_signals_outside_the_main_thread_does_nothing():
    seen = []

    def run():
        with so.cleanup_on_signals():
            seen.append(signal.getsignal(signal.SIGTERM))

    before = signal.getsignal(signal.SIGTERM)
    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen == [before]


def test_paths_are_kept_as_given(tmp_path):
    rel = Path("sub") / "x.tif"
    assert so.check_output_target(rel) == rel
