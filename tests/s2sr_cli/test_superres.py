"""``s2sr superres`` (s2sr_cli/commands/superres.py): the output is owned and written atomically.

Every refusal is one line on stderr with exit status 2, before any work, and leaves the input and an existing
output byte for byte as they were; a failed or interrupted run leaves no file behind (no OUTPUT, no temporary
file); concurrent runs writing one OUTPUT leave the complete file of one of them.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import rasterio

from s2sr_cli.main import main
from sr_core.io import GeoTiffWriter, sample_scene_path
from udf.testing import make_package

REPO = Path(__file__).resolve().parents[2]
OLD = b"the previous output, which must survive any failure"


@pytest.fixture(scope="module")
def pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("superres_cli_models") / "tiny-edsr-x2"
    make_package(folder, arch="edsr", seed=3)
    return folder


@pytest.fixture
def scene(tmp_path) -> Path:
    """A copy of the bundled sample scene folder (256 x 256 px: 4 tiles of 128 px)."""
    return Path(shutil.copytree(sample_scene_path(), tmp_path / "scene"))


def _hashes(*paths: Path) -> dict[str, str]:
    files = [f for p in paths for f in (sorted(p.rglob("*")) if p.is_dir() else [p]) if f.is_file()]
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def _run(capsys, *args: str) -> tuple[int, str]:
    rc = main(["--quiet", "superres", *map(str, args)])
    return rc, capsys.readouterr().err


def _args(scene: Path, out: Path, pkg: Path, *more: str) -> list[str]:
    return [str(scene), str(out), "--model", str(pkg), "--threads", "1", "--tile", "128", *more]


def _one_line_error(rc: int, err: str, *words: str) -> None:
    assert rc == 2, err
    assert err.startswith("s2sr superres: error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, (w, err)


def _leftovers(folder: Path, keep: tuple[str, ...] = ()) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


# ------------------------------------------------------------------------------------------------ refused before any work


@pytest.mark.parametrize("name", ["bands_10m.tif", "bands_20m.tif", "new.tif", "sub/../bands_10m.tif"])
def test_output_inside_the_input_folder_is_refused(tmp_path, scene, pkg, capsys, name):
    (scene / "sub").mkdir()
    before = _hashes(scene)
    rc, err = _run(capsys, *_args(scene, scene / name, pkg))
    _one_line_error(rc, err, str(scene / name), "input folder", str(scene))
    assert _hashes(scene) == before and not (scene / "new.tif").exists()


def test_output_linked_to_an_input_file_is_refused(tmp_path, scene, pkg, capsys):
    before = _hashes(scene)
    hard = tmp_path / "hard.tif"
    os.link(scene / "bands_10m.tif", hard)
    rc, err = _run(capsys, *_args(scene, hard, pkg))
    _one_line_error(rc, err, str(hard), str(scene / "bands_10m.tif"))
    soft = tmp_path / "soft.tif"
    soft.symlink_to(scene / "bands_10m.tif")
    rc, err = _run(capsys, *_args(scene, soft, pkg))
    _one_line_error(rc, err, str(soft), "symbolic link")
    # a GeoTIFF input named through another path, and hard-linked
    tif = shutil.copy(scene / "bands_10m.tif", tmp_path / "in.tif")
    os.link(tif, tmp_path / "in_link.tif")
    for out in (tmp_path / "x" / ".." / "in.tif", tmp_path / "in_link.tif"):
        (tmp_path / "x").mkdir(exist_ok=True)
        rc, err = _run(capsys, *_args(Path(tif), out, pkg, "--dn-scale", "10000", "--add-offset", "0"))
        _one_line_error(rc, err, str(out), "input file", str(tif))
    assert _hashes(scene) == before
    assert hashlib.sha256(Path(tif).read_bytes()).hexdigest() == before[str(scene / "bands_10m.tif")]


def _special_outputs(tmp_path: Path) -> list[tuple[Path, str]]:
    fifo = tmp_path / "fifo.tif"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.tif"
    folder.mkdir()
    (folder / "keep").write_bytes(b"x")
    out = [(fifo, "a FIFO"), (folder, "a directory")]
    dev = tmp_path / "null.tif"
    try:  # a device node like /dev/null (root with CAP_MKNOD only)
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        out.append((dev, "a character device"))
    except (PermissionError, OSError):
        pass
    return out


def test_output_that_is_not_a_regular_file_is_refused(tmp_path, scene, pkg, capsys):
    for out, kind in _special_outputs(tmp_path):
        mode = os.lstat(out).st_mode
        rc, err = _run(capsys, *_args(scene, out, pkg))
        _one_line_error(rc, err, str(out), kind)
        assert os.lstat(out).st_mode == mode  # still the FIFO, the folder, the device
    assert (tmp_path / "folder.tif" / "keep").read_bytes() == b"x"


def test_symlink_output_is_refused_and_left_as_it_is(tmp_path, scene, pkg, capsys):
    target = tmp_path / "real.tif"
    target.write_bytes(OLD)
    link = tmp_path / "link.tif"
    link.symlink_to(target)
    dangling = tmp_path / "dangling.tif"
    dangling.symlink_to(tmp_path / "nowhere.tif")
    for out in (link, dangling):
        rc, err = _run(capsys, *_args(scene, out, pkg))
        _one_line_error(rc, err, str(out), "symbolic link")
        assert out.is_symlink()
    assert target.read_bytes() == OLD and not (tmp_path / "nowhere.tif").exists()


@pytest.mark.parametrize("name", ["out.png", "out.nc", "out", "out.tif.bak"])
def test_output_extension_must_be_geotiff(tmp_path, scene, pkg, capsys, name):
    rc, err = _run(capsys, *_args(scene, tmp_path / name, pkg))
    _one_line_error(rc, err, str(tmp_path / name), ".tif")
    assert _leftovers(tmp_path, ("scene",)) == []


def test_missing_or_unwritable_output_folder(tmp_path, scene, pkg, capsys, monkeypatch):
    rc, err = _run(capsys, *_args(scene, tmp_path / "missing" / "out.tif", pkg))
    _one_line_error(rc, err, str(tmp_path / "missing"), "does not exist")
    assert not (tmp_path / "missing").exists()
    (tmp_path / "file").write_bytes(b"x")
    rc, err = _run(capsys, *_args(scene, tmp_path / "file" / "out.tif", pkg))
    _one_line_error(rc, err, str(tmp_path / "file"), "not a folder")
    # a read-only folder (a read-only file system, as root sees it: creating a file there fails)
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "out.tif").write_bytes(OLD)
    real_open = os.open

    def read_only(path, flags, *a, **k):
        if Path(path).parent == ro and flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", read_only)
    rc, err = _run(capsys, *_args(scene, ro / "out.tif", pkg))
    _one_line_error(rc, err, str(ro), "Read-only file system")
    assert _leftovers(ro) == ["out.tif"] and (ro / "out.tif").read_bytes() == OLD


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into a mode 0o555 folder")
def test_read_only_folder_by_mode(tmp_path, scene, pkg, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, err = _run(capsys, *_args(scene, ro / "out.tif", pkg))
        _one_line_error(rc, err, str(ro))
        assert _leftovers(ro) == []
    finally:
        ro.chmod(0o755)


def test_refusals_come_before_loading_the_model(tmp_path, scene, capsys):
    """The output checks run first: a model that does not exist is never reached."""
    folder = tmp_path / "d.tif"
    folder.mkdir()
    for out, words in ((folder, "a directory"), (tmp_path / "o.png", ".png"), (scene / "o.tif", "input folder")):
        rc, err = _run(capsys, scene, out, "--model", tmp_path / "no-such-model")
        _one_line_error(rc, err, str(out), words)


def test_overlap_larger_than_tile_and_model_margin_is_refused(tmp_path, scene, pkg, capsys):
    rc, err = _run(capsys, *_args(scene, tmp_path / "o.tif", pkg, "--overlap", "100000"))
    _one_line_error(rc, err, "overlap 100000", "128")
    assert _leftovers(tmp_path, ("scene",)) == []
    rc, err = _run(capsys, *_args(scene, tmp_path / "o.tif", pkg, "--overlap", "128"))  # the tile size: allowed
    assert rc == 0, err


# ------------------------------------------------------------------------------------------------ failures while writing


def _old_output(tmp_path: Path) -> Path:
    out = tmp_path / "out" / "sr.tif"
    out.parent.mkdir()
    out.write_bytes(OLD)
    return out


@pytest.mark.parametrize("cog", ["no", "yes"])
def test_full_disk_while_writing(tmp_path, scene, pkg, capsys, monkeypatch, cog):
    """ENOSPC from a block write (GDAL) or from the COG assembly (Python): one line, exit 2, no temporary file,
    the old OUTPUT intact."""
    out = _old_output(tmp_path)
    before = _hashes(scene)
    full = OSError(errno.ENOSPC, "No space left on device")
    if cog == "no":
        real = rasterio.io.DatasetWriter.write
        calls = []

        def write(self, *a, **k):
            calls.append(1)
            if len(calls) == 2:
                raise full
            return real(self, *a, **k)

        monkeypatch.setattr(rasterio.io.DatasetWriter, "write", write)
    else:
        from sr_core.io import cog as cog_module

        monkeypatch.setattr(cog_module, "_copy_tiles", lambda *a, **k: (_ for _ in ()).throw(full))
    rc, err = _run(capsys, *_args(scene, out, pkg, "--cog", cog))
    assert _leftovers(out.parent) == ["sr.tif"] and out.read_bytes() == OLD
    assert _hashes(scene) == before
    _one_line_error(rc, err, str(out), "No space left on device")


def test_failed_rename_keeps_the_old_output(tmp_path, scene, pkg, capsys, monkeypatch):
    out = _old_output(tmp_path)

    def fail(*a, **k):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "replace", fail)
    monkeypatch.setattr(os, "rename", fail)
    rc, err = _run(capsys, *_args(scene, out, pkg))
    assert _leftovers(out.parent) == ["sr.tif"] and out.read_bytes() == OLD
    _one_line_error(rc, err, str(out), "Input/output error")


def test_failed_run_leaves_no_file(tmp_path, scene, pkg, capsys, monkeypatch):
    import sr_core.inference.scene as S

    calls = []
    real = S._forward_tile

    def boom(predictor, t):
        calls.append(1)
        if len(calls) == 3:
            raise ValueError("tile 3 failed")
        return real(predictor, t)

    monkeypatch.setattr(S, "_forward_tile", boom)
    (tmp_path / "out").mkdir()
    for cog in ("no", "yes"):
        calls.clear()
        rc, err = _run(capsys, *_args(scene, tmp_path / "out" / "new.tif", pkg, "--cog", cog))
        _one_line_error(rc, err, "tile 3 failed")
        assert _leftovers(tmp_path / "out") == []


_CHILD = """
import pathlib, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (a background job starts ignoring it)
import sr_core.inference.scene as S
marker = pathlib.Path(sys.argv[1])
real, calls = S._forward_tile, []

def slow(predictor, t):
    calls.append(1)
    if len(calls) == 3:  # two tiles are written into the temporary files: the run is mid-write
        marker.write_text("started")
        while True:
            time.sleep(0.01)
    return real(predictor, t)

S._forward_tile = slow
from s2sr_cli.main import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_write_removes_the_temporary_files(tmp_path, scene, pkg, signum):
    out = _old_output(tmp_path)
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    marker = tmp_path / "started"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(marker), "--quiet", "superres", *_args(scene, out, pkg, "--cog", "yes")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():  # wait for the "started" marker only
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the child never started writing"
            time.sleep(0.05)
        parts = _leftovers(out.parent, ("sr.tif",))
        assert len(parts) == 2 and all(p.startswith(".sr.tif.") and p.endswith(".part") for p in parts), parts
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    if signum == signal.SIGINT:  # Ctrl-C: one line and the shell's status for it (128 + SIGINT)
        assert proc.returncode == 130 and err.decode().strip() == "s2sr superres: interrupted", err
    else:  # ended by the signal, as an uncaught one ends a process
        assert proc.returncode == -signum, err
    assert _leftovers(out.parent) == ["sr.tif"] and out.read_bytes() == OLD


_LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from s2sr_cli.main import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE")
@pytest.mark.parametrize("cog", ["no", "yes"])
def test_file_size_limit_in_gdal_is_an_error(tmp_path, scene, pkg, capsys, cog):
    """GDAL reports a failed write of its last blocks or directory on stderr only and closes the file as if
    nothing happened: the written file is checked, so the run fails (one line, exit 2) and the old output stays."""
    ref = tmp_path / "ref.tif"
    assert _run(capsys, *_args(scene, ref, pkg, "--cog", cog))[0] == 0
    size = ref.stat().st_size
    script = tmp_path / "limited.py"
    script.write_text(_LIMITED)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = _old_output(tmp_path)
    for limit in (size - 100, size // 2):
        proc = subprocess.run(
            [sys.executable, str(script), str(limit), "--quiet", "superres", *_args(scene, out, pkg, "--cog", cog)],
            env=env, capture_output=True, text=True, timeout=300,
        )
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
        assert _leftovers(out.parent) == ["sr.tif"] and out.read_bytes() == OLD, proc.stderr
        assert proc.returncode == 2, proc.stderr
        assert last.startswith(f"s2sr superres: error: cannot write {out}"), proc.stderr


# ------------------------------------------------------------------------------------------------ concurrent runs


def test_concurrent_runs_on_one_output_leave_one_complete_file(tmp_path, scene, pkg, capsys, monkeypatch):
    single = tmp_path / "single.tif"
    assert _run(capsys, *_args(scene, single, pkg, "--cog", "yes"))[0] == 0
    out = _old_output(tmp_path)
    barrier = threading.Barrier(2, timeout=120)
    real = GeoTiffWriter.write
    first: set[int] = set()

    def write(self, *a, **k):  # both runs hold their files open before either writes a block
        if id(self) not in first:
            first.add(id(self))
            barrier.wait()
        return real(self, *a, **k)

    monkeypatch.setattr(GeoTiffWriter, "write", write)
    codes: list[int] = []

    def run() -> None:
        codes.append(main(["--quiet", "superres", *_args(scene, out, pkg, "--cog", "yes")]))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert codes == [0, 0], capsys.readouterr().err
    assert _leftovers(out.parent) == ["sr.tif"]
    assert out.read_bytes() == single.read_bytes()
    with rasterio.open(out) as d:
        d.read()


# ------------------------------------------------------------------------------------------------ model chosen by bands


def test_without_model_the_chosen_model_is_one_line_on_stderr_unless_quiet(tmp_path, capsys):
    import numpy as np

    from sr_core.io import load_sample

    c = load_sample().crop(0, 0, 16, 16)
    tif = tmp_path / "rgbn.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=16, height=16, count=4, dtype="uint16", crs="EPSG:32633",
                       transform=c.affine) as dst:
        dst.write(np.rint(c.bands10 * 10000).astype(np.uint16))
        dst.descriptions = ("B02", "B03", "B04", "B08")
        dst.update_tags(DN_SCALE="10000", ADD_OFFSET="0")
    assert main(["superres", str(tif), str(tmp_path / "a.tif"), "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "s2sr superres: model s2sr-x2-rgbn (chosen by the input's bands: B02, B03, B04, B08)\n" in err
    assert main(["superres", str(tif), str(tmp_path / "b.tif"), "--threads", "1", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b:
        assert a.tags()["S2SR_MODEL"] == "s2sr-x2-rgbn" and (a.read() == b.read()).all()


# ------------------------------------------------------------------------------------------------ --resolution


def test_resolution_10_writes_the_10m_product_and_names_its_model(tmp_path, scene, capsys):
    from sr_core.bands import MODEL_BANDS_10

    out = tmp_path / "out_10m.tif"
    assert main(["superres", str(scene), str(out), "--resolution", "10", "--threads", "1", "--dtype", "input"]) == 0
    err = capsys.readouterr().err
    assert f"s2sr superres: model s2sr-10m-10band (chosen by the input's bands: {', '.join(MODEL_BANDS_10)})\n" in err
    with rasterio.open(out) as d, rasterio.open(scene / "bands_10m.tif") as ref:
        assert (d.width, d.height, d.transform, d.crs) == (ref.width, ref.height, ref.transform, ref.crs)
        assert d.descriptions == tuple(MODEL_BANDS_10) and d.tags()["S2SR_MODEL"] == "s2sr-10m-10band"
        assert (d.read(list(range(1, 5))) == ref.read()).all()  # the 10 m bands unchanged


def test_a_model_of_another_resolution_is_exit_status_2_before_any_work(tmp_path, scene, capsys):
    out = tmp_path / "out.tif"
    out.write_bytes(OLD)
    before = _hashes(scene, out)
    rc, err = _run(capsys, scene, out, "--resolution", "10", "--model", "s2sr-x2-10band")
    _one_line_error(rc, err, "model 's2sr-x2-10band' outputs 5 m", "asks 10 m")
    assert _hashes(scene, out) == before and _leftovers(tmp_path, keep=("scene",)) == ["out.tif"]
    rc, err = _run(capsys, scene, out, "--resolution", "5", "--model", "s2sr-10m-10band")
    _one_line_error(rc, err, "model 's2sr-10m-10band' outputs 10 m", "asks 5 m")
    with pytest.raises(SystemExit) as e:
        main(["superres", str(scene), str(out), "--resolution", "7"])
    assert e.value.code == 2 and "invalid choice: 7 (choose from 5, 10)" in capsys.readouterr().err


def test_resolution_in_the_help_and_its_choices_are_the_librarys(capsys):
    from s2sr_cli.arguments import RESOLUTIONS
    from sr_core.models import auto_resolutions

    assert tuple(float(r) for r in RESOLUTIONS) == auto_resolutions()
    with pytest.raises(SystemExit):
        main(["superres", "--help"])
    text = capsys.readouterr().out
    assert "--resolution {5,10}" in text and "s2sr superres SCENE out_10m.tif --resolution 10" in text
    assert "at 10 m s2sr-10m-10band for the 10 bands" in " ".join(text.split())
