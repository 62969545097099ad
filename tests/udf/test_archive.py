"""The UDF archives (udf/archive.py): contents, wheel selection, and the UDF imported from a clean extraction the
way a back-end does it (a fresh process, no repository on the path). `s2sr udf-archive`:
tests/s2sr_cli/test_udf_archive.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from udf.archive import (
    CODE_DIR,
    DEPS_DIR,
    archive_job_options,
    build_code_archive,
    build_udf_archives,
    select_wheels,
)
from udf.testing import make_package

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.filterwarnings("ignore::sr_core.inference.cube.TilingWarning")  # tiny chunks on purpose


@pytest.fixture(scope="session")
def pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("archive_models") / "tiny-edsr-x2"
    make_package(folder, arch="edsr", seed=4)
    return folder


def fake_wheel(folder: Path, name: str, files: dict[str, str]) -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w") as zf:
        for k, v in files.items():
            zf.writestr(k, v)
    return path


def test_code_archive_contents_and_determinism(pkg, tmp_path):
    path, card = build_code_archive(tmp_path / "a", model=pkg)
    names = set(zipfile.ZipFile(path).namelist())
    assert path.name == "s2sr-udf-code-tiny-edsr-x2.zip" and card.name == "tiny-edsr-x2"
    for must in ("sr_core/__init__.py", "sr_core/inference/cube.py", "sr_core/models/__init__.py", "sr_core/tiling.py",
                 "sr_core/nodata.py", "sr_core/bands.py", "udf/sr_udf.py", "udf/misr_udf.py",
                 "sr_core/weights/tiny-edsr-x2/card.json", "sr_core/weights/tiny-edsr-x2/model.onnx"):
        assert must in names, must
    assert "sr_core/weights/tiny-edsr-x2/model.pt" not in names  # no torch on back-ends
    assert not any("__pycache__" in n or n.startswith("sr_core/data/sample/") for n in names)
    again, _ = build_code_archive(tmp_path / "b", model=pkg)
    assert again.read_bytes() == path.read_bytes()
    with_pt, _ = build_code_archive(tmp_path / "c", model=pkg, include_weights=True)
    assert "sr_core/weights/tiny-edsr-x2/model.pt" in zipfile.ZipFile(with_pt).namelist()


def test_archive_replaces_an_existing_zip_only_when_complete(pkg, tmp_path, monkeypatch):
    import udf.archive as A

    path, _ = build_code_archive(tmp_path, model=pkg)
    names = zipfile.ZipFile(path).namelist()
    path.write_bytes(b"old")
    real, calls = A._add, []

    def fail_half_way(*a, **k):
        calls.append(1)
        if len(calls) == 10:
            raise RuntimeError("stopped half-way")
        return real(*a, **k)

    monkeypatch.setattr(A, "_add", fail_half_way)
    with pytest.raises(RuntimeError, match="half-way"):
        build_code_archive(tmp_path, model=pkg)
    assert os.listdir(tmp_path) == [path.name] and path.read_bytes() == b"old"
    # two builds at once, each past its first entry before the other writes: both complete, one zip remains
    barrier, started = threading.Barrier(2, timeout=60), set()

    def add_together(*a, **k):
        if threading.get_ident() not in started:
            started.add(threading.get_ident())
            barrier.wait()
        return real(*a, **k)

    monkeypatch.setattr(A, "_add", add_together)
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(build_code_archive(tmp_path, model=pkg)[0]))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == [path, path] and os.listdir(tmp_path) == [path.name]
    with zipfile.ZipFile(path) as zf:  # a complete archive (every member's CRC checks)
        assert zf.testzip() is None and zf.namelist() == names
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        build_udf_archives(tmp_path / "file", model=pkg)


def test_corrupt_model_is_refused(pkg, tmp_path):
    import shutil

    from sr_core.models import ModelFileError

    bad = tmp_path / "bad"
    shutil.copytree(pkg, bad)
    (bad / "model.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelFileError, match="checksum mismatch.*model.onnx"):
        build_code_archive(tmp_path / "out", model=bad)


def test_wheel_selection_and_deps_archive(pkg, tmp_path):
    wd = tmp_path / "wheels"
    wd.mkdir()
    new = fake_wheel(wd, "onnxruntime-1.20.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
                     {"onnxruntime/__init__.py": "VERSION = '1.20.1'\n"})
    fake_wheel(wd, "onnxruntime-1.9.0-cp311-cp311-manylinux2014_x86_64.whl", {"onnxruntime/__init__.py": "old"})
    fake_wheel(wd, "onnxruntime-1.21.0-cp310-cp310-manylinux_2_28_x86_64.whl", {"onnxruntime/__init__.py": "310"})
    fake_wheel(wd, "onnxruntime-1.21.0-cp311-cp311-win_amd64.whl", {"onnxruntime/__init__.py": "win"})
    fake_wheel(wd, "onnxruntime-1.21.0-cp311-cp311-manylinux_2_28_aarch64.whl", {"onnxruntime/__init__.py": "arm"})
    flat = fake_wheel(wd, "flatbuffers-24.3.25-py2.py3-none-any.whl", {"flatbuffers/__init__.py": ""})
    fake_wheel(wd, "numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.whl", {"numpy/__init__.py": ""})
    assert select_wheels(wd, python="3.11") == [flat, new]
    res = build_udf_archives(tmp_path / "out", model=pkg, wheel_dir=wd, python="3.11")
    assert res.deps.name == "s2sr-udf-deps-cp311-x86_64.zip" and res.wheels == [flat, new]
    with zipfile.ZipFile(res.deps) as zf:
        assert zf.read("onnxruntime/__init__.py") == b"VERSION = '1.20.1'\n"
        assert "numpy/__init__.py" not in zf.namelist()
    opts = archive_job_options(res, "https://bucket.example/s2sr/")
    assert opts["udf-dependency-archives"] == [
        f"https://bucket.example/s2sr/s2sr-udf-code-tiny-edsr-x2.zip#{CODE_DIR}",
        f"https://bucket.example/s2sr/s2sr-udf-deps-cp311-x86_64.zip#{DEPS_DIR}",
    ]
    with pytest.raises(ValueError, match="no onnxruntime wheel for CPython 3.12"):
        build_udf_archives(tmp_path / "out2", model=pkg, wheel_dir=wd, python="3.12")


# A back-end job: the archive extracted into <job dir>/s2sr_code, the UDF code run by openeo's runner in a fresh
# process started in the job dir, with neither the repository nor PYTHONPATH on its path.
JOB_SCRIPT = textwrap.dedent(
    """
    import sys, json
    # this venv has the repository installed in editable mode; a back-end has not: drop that finder
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(type(f), "__module__", "")]
    BLOCK = set(sys.argv[2].split(",")) - {""}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCK:
                raise ImportError(f"{name} is not installed on this back-end")

    sys.meta_path.insert(0, Blocker())
    import numpy as np, xarray
    from openeo.udf import UdfData, XarrayDataCube
    from openeo.udf.run_code import run_udf_code

    code = open("s2sr_code/udf/sr_udf.py").read()
    a = np.load("chunk.npy")
    cube = xarray.DataArray(a, dims=("t", "bands", "y", "x"),
                            coords={"bands": json.loads(sys.argv[1]), "y": 1000.0 - 5 * np.arange(a.shape[2]),
                                    "x": 5.0 * np.arange(a.shape[3])})
    ctx = {"model": "tiny-edsr-x2", "overlap": 16}
    out = run_udf_code(code, UdfData(datacube_list=[XarrayDataCube(cube)], user_context=ctx))
    res = out.get_datacube_list()[0].get_array()
    np.save("result.npy", res.values)
    import sr_core
    print(json.dumps({"sr_core": sr_core.__file__, "torch": "torch" in sys.modules}))
    """
)


def run_job(job: Path, labels: list, block: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "S2SR_UDF_PATH")}
    env["OMP_NUM_THREADS"] = "1"
    (job / "job.py").write_text(JOB_SCRIPT)
    return subprocess.run([sys.executable, "-I", "job.py", json.dumps(labels), block], cwd=job, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def job(pkg, tmp_path_factory):
    from udf.contract import udf_apply
    from udf.testing import nearest_resample, random_s2_cube

    out = tmp_path_factory.mktemp("archive_out")
    path, _ = build_code_archive(out, model=pkg)
    job = tmp_path_factory.mktemp("job")
    with zipfile.ZipFile(path) as zf:
        zf.extractall(job / CODE_DIR)
    da = nearest_resample(random_s2_cube(12, 12, dates=1, seed=5), 2)
    np.save(job / "chunk.npy", da.values.astype(np.float32))
    ref = udf_apply(da, {"model": str(pkg)})
    return job, [str(b) for b in da.bands.values], ref


def test_udf_runs_from_the_extracted_archive(job):
    path, labels, ref = job
    proc = run_job(path, labels, block="")
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(info["sr_core"]).resolve().is_relative_to((path / CODE_DIR).resolve())
    got = np.load(path / "result.npy")
    assert got.shape == ref.shape and np.abs(got - ref.values).max() <= 1.0  # 1e-4 reflectance in DN


def test_udf_runs_from_the_archive_without_torch(job):
    """Back-ends have ONNX Runtime (from the deps archive) but no torch: the onnx path must not import it."""
    path, labels, ref = job
    proc = run_job(path, labels, block="torch")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["torch"] is False
    assert np.abs(np.load(path / "result.npy") - ref.values).max() <= 1.0


# ------------------------------------------------------------------------------------------------ pip download

_FAKE_PIP = r'''
import json, sys, zipfile
from pathlib import Path
args = sys.argv[1:]
Path(sys.argv[0]).with_suffix(".args.json").write_text(json.dumps(args))
if "--fail" in Path(sys.argv[0]).read_text() and "FAIL" in Path(sys.argv[0]).name.upper():
    print("ERROR: No matching distribution found for onnxruntime==0.0.1", file=sys.stderr)
    sys.exit(1)
dest = Path(args[args.index("--dest") + 1])
py = args[args.index("--python-version") + 1].replace(".", "")
plat = args[args.index("--platform") + 1]
for name, files in (("onnxruntime-9.9.9-cp{py}-cp{py}-{plat}.whl", {"onnxruntime/__init__.py": "x = 1\n"}),
                    ("protobuf-5.0.0-py3-none-any.whl", {"google/protobuf/__init__.py": ""}),
                    ("numpy-2.0.0-cp{py}-cp{py}-{plat}.whl", {"numpy/__init__.py": ""})):
    with zipfile.ZipFile(dest / name.format(py=py, plat=plat), "w") as zf:
        for k, v in files.items():
            zf.writestr(k, v)
'''


def _fake_pip(folder: Path, name: str = "pip_stub.py") -> list[str]:
    script = folder / name
    script.write_text(_FAKE_PIP + ("\n# --fail\n" if "fail" in name else ""))
    return [sys.executable, str(script)]


def test_download_wheels_asks_pip_for_the_backend_python_and_platform(tmp_path):
    from udf.archive import download_wheels

    pip = _fake_pip(tmp_path)
    wheels = download_wheels(tmp_path / "w", python="3.11", arch="x86_64", onnxruntime="1.20.1", pip=pip)
    args = json.loads((tmp_path / "pip_stub.args.json").read_text())
    assert args[0] == "download" and "--only-binary=:all:" in args
    assert args[args.index("--python-version") + 1] == "3.11" and args[args.index("--abi") + 1] == "cp311"
    assert args[args.index("--implementation") + 1] == "cp"
    plats = [args[i + 1] for i, a in enumerate(args) if a == "--platform"]
    assert plats and all(p.endswith("_x86_64") for p in plats) and "manylinux2014_x86_64" in plats
    assert args[-1] == "onnxruntime==1.20.1"
    assert [w.name.split("-")[0] for w in wheels] == ["numpy", "onnxruntime", "protobuf"]


def test_download_failure_names_pip_message_and_writes_no_archive(tmp_path):
    from udf.archive import build_udf_archives

    pip = _fake_pip(tmp_path, "pip_fail.py")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="No matching distribution.*--wheel-dir"):
        build_udf_archives(out, model=None, download=True, onnxruntime="0.0.1", pip=pip)
    assert not list(out.glob("*.zip"))
    for bad in ("3", "python3.11"):
        with pytest.raises(ValueError, match="python"):
            build_udf_archives(out, download=True, python=bad, pip=pip)
    with pytest.raises(ValueError, match="onnxruntime"):
        build_udf_archives(out, download=True, onnxruntime="latest; rm -rf /", pip=pip)


def test_downloaded_wheels_make_the_deps_archive(tmp_path):
    from udf.archive import build_udf_archives

    pip = _fake_pip(tmp_path)
    out = tmp_path / "out"
    res = build_udf_archives(out, download=True, python="3.11", arch="x86_64", onnxruntime="1.20.1", pip=pip)
    assert res.deps is not None and res.deps.name == "s2sr-udf-deps-cp311-x86_64.zip"
    names = set(zipfile.ZipFile(res.deps).namelist())
    assert "onnxruntime/__init__.py" in names and "google/protobuf/__init__.py" in names
    assert not any(n.startswith("numpy/") for n in names)  # the back-end's own numpy is used
    assert (out / "wheels-cp311-x86_64").is_dir()
    again = build_udf_archives(out, download=True, python="3.11", arch="x86_64", onnxruntime="1.20.1", pip=pip)
    assert again.deps.read_bytes() == res.deps.read_bytes()
