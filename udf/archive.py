"""``udf-dependency-archives`` for an openEO back-end: our code + one model package, and the inference engine.

Back-ends have no torch and no ONNX Runtime; the geopyspark back-end downloads every ``URL#folder`` listed in
the job option ``udf-dependency-archives`` and extracts it into ``folder`` in the job's working directory. The
UDFs (``udf/sr_udf.py``, ``udf/misr_udf.py``) put the folders ``s2sr_code`` and ``s2sr_deps`` on ``sys.path``.

* ``s2sr-udf-code-<model>.zip`` (-> ``s2sr_code``): the packages ``sr_core`` (Python files only; no bundled
  sample data, no other weights) and ``udf``, and the model package as ``sr_core/weights/<card name>/`` (card
  + ONNX file; the torch weights only with ``include_weights``). Its checksums are verified first.
* ``s2sr-udf-deps-cp<XY>-<arch>.zip`` (-> ``s2sr_deps``): ONNX Runtime and its dependencies, unpacked from
  wheels for the back-end's Python and platform: those in a local ``wheel_dir``, or fetched by
  :func:`download_wheels` (``pip download --only-binary=:all: --python-version X.Y --platform
  manylinux..._<arch>``, the ONNX Runtime version installed here by default) into ``<out>/wheels-cpXY-<arch>/``.
  Only wheels compatible with the target Python and platform are used, the newest per project; ``numpy``
  (present on every back-end, and ABI-bound to it) is skipped.

The output folder is created when missing; a path that is a file, or a folder that takes no new file, is refused
before any work. Each zip is written under a unique temporary name in the folder and renamed over an existing zip
only when complete (:mod:`sr_core.io.safe_output`): a failure leaves the old zip as it was and no temporary file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from sr_core.io.safe_output import atomic_output, check_output_folder, write_error

__all__ = [
    "CODE_DIR",
    "DEPS_DIR",
    "ArchiveSet",
    "build_code_archive",
    "build_deps_archive",
    "build_udf_archives",
    "archive_job_options",
    "download_wheels",
    "manylinux_platforms",
    "select_wheels",
]

CODE_DIR = "s2sr_code"
DEPS_DIR = "s2sr_deps"
REPO = Path(__file__).resolve().parents[1]
SKIP_PROJECTS = ("numpy",)
_DATE_TIME = (2020, 1, 1, 0, 0, 0)  # fixed zip timestamps: the same inputs give the same archive


@dataclass
class ArchiveSet:
    """What :func:`build_udf_archives` wrote."""

    code: Path
    model: str
    deps: Path | None = None
    wheels: list[Path] = field(default_factory=list)


def _add(zf: zipfile.ZipFile, arcname: str, data: bytes) -> None:
    info = zipfile.ZipInfo(arcname, date_time=_DATE_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def _output_folder(out_dir: str | os.PathLike) -> Path:
    """The archives' folder ``out_dir``, created when missing; refused (one-line errors) when it is a file or
    takes no new file (read-only)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"the archive folder {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(out, e, doing=f"cannot create the archive folder {out}") from e
    return check_output_folder(out, what="the archives")


def _package_files(pkg: str) -> list[Path]:
    root = REPO / pkg
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(REPO)
        parts = rel.parts
        if not p.is_file() or "__pycache__" in parts:
            continue
        if pkg == "sr_core" and len(parts) > 2 and parts[1] == "weights":
            continue  # only the chosen model is added, under its card name
        if pkg == "sr_core" and parts[1:3] == ("data", "sample"):
            continue
        if p.suffix == ".py" or p.name == "py.typed":
            out.append(p)
    return out


def build_code_archive(
    out_dir: str | os.PathLike, *, model: str | os.PathLike | None = None, include_weights: bool = False
) -> tuple[Path, Any]:
    """Write the code archive into ``out_dir``; returns ``(path, card)``.

    The model package is verified (sha256 of the files shipped) and stored as ``sr_core/weights/<card.name>``
    with its ``card.json``/``card.md`` and ONNX file (and ``model.pt`` with ``include_weights``).
    """
    from sr_core.models import ModelFileError, load_card, resolve_model

    out = _output_folder(out_dir)
    folder = resolve_model(model)
    card = load_card(folder, verify=True)
    roles = ["onnx"] + (["weights"] if include_weights else [])
    missing = [r for r in roles if r not in card.files]
    if missing:
        raise ModelFileError(
            f"model {card.name!r} ({folder}) has no {' / '.join(missing)} file in card.json; "
            "the back-end needs the ONNX file (export it with save_model_package)"
        )
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", card.name)
    path = out / f"s2sr-udf-code-{safe}.zip"
    with atomic_output(path) as tmp:
        with zipfile.ZipFile(tmp, "w") as zf:
            for pkg in ("sr_core", "udf"):
                for p in _package_files(pkg):
                    _add(zf, p.relative_to(REPO).as_posix(), p.read_bytes())
            names = ["card.json", "card.md"] + [card.files[r] for r in roles]
            for name in names:
                src = folder / name
                if src.is_file():
                    _add(zf, f"sr_core/weights/{card.name}/{name}", src.read_bytes())
    return path, card


_WHEEL_RE = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-(?P<build>\d[^-]*))?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$"
)


def _version_key(v: str) -> Any:
    try:
        from packaging.version import Version

        return (0, Version(v))
    except Exception:  # noqa: BLE001 - no packaging or an odd version: compare numerically as far as possible
        return (1, tuple(int(x) if x.isdigit() else x for x in re.split(r"[.+-]", v)))


def _compatible(py: str, abi: str, plat: str, python: str, arch: str) -> bool:
    major, minor = python.split(".")[:2]
    cp = f"cp{major}{minor}"
    pys = py.split(".")
    abis = abi.split(".")
    plats = plat.split(".")
    py_ok = any(t in (cp, f"py{major}", f"py{major}{minor}") for t in pys) or (
        "abi3" in abis and any(t.startswith(f"cp{major}") and int(t[3:] or 0) <= int(minor) for t in pys if t[3:].isdigit())
    )
    abi_ok = any(a in (cp, "abi3", "none") for a in abis)
    plat_ok = any(p == "any" or ("linux" in p and p.endswith(arch)) for p in plats)
    return py_ok and abi_ok and plat_ok


def select_wheels(
    wheel_dir: str | os.PathLike, *, python: str = "3.11", arch: str = "x86_64", skip: Sequence[str] = SKIP_PROJECTS
) -> list[Path]:
    """The newest wheel per project in ``wheel_dir`` that runs on CPython ``python`` on Linux ``arch``."""
    if not re.fullmatch(r"3\.\d+", python):
        raise ValueError(f"python must be like '3.11', got {python!r}")
    d = Path(wheel_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"wheel directory {d} does not exist")
    best: dict[str, tuple[Any, Path]] = {}
    for p in sorted(d.glob("*.whl")):
        m = _WHEEL_RE.match(p.name)
        if m is None or not _compatible(m["py"], m["abi"], m["plat"], python, arch):
            continue
        project = m["name"].lower().replace("_", "-")
        if project in skip:
            continue
        key = _version_key(m["version"])
        if project not in best or key > best[project][0]:
            best[project] = (key, p)
    return [best[k][1] for k in sorted(best)]


def manylinux_platforms(arch: str) -> list[str]:
    """pip ``--platform`` tags for Linux ``arch``, newest first: the manylinux levels ONNX Runtime wheels use and
    that glibc 2.17+ back-ends load."""
    if not re.fullmatch(r"[a-z0-9_]+", str(arch)):
        raise ValueError(f"arch must be a CPU architecture like 'x86_64' or 'aarch64', got {arch!r}")
    return [f"manylinux_2_28_{arch}", f"manylinux_2_27_{arch}", f"manylinux_2_17_{arch}", f"manylinux2014_{arch}"]


def _installed_onnxruntime() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("onnxruntime")
    except PackageNotFoundError:
        return None


def download_wheels(
    dest: str | os.PathLike,
    *,
    python: str = "3.11",
    arch: str = "x86_64",
    onnxruntime: str | None = None,
    pip: Sequence[str] | None = None,
) -> list[Path]:
    """Fetch ONNX Runtime and its dependencies as wheels for CPython ``python`` on Linux ``arch`` into ``dest``
    with ``pip download --only-binary=:all:`` (wheels already in ``dest`` are reused); returns the wheels in
    ``dest``. ``onnxruntime``: the version (default: the one installed here, else the newest). ``pip``: the
    command that runs pip (default this interpreter's). Needs the network; a failure raises ``ValueError`` with
    pip's last message."""
    if not re.fullmatch(r"3\.\d+", str(python)):
        raise ValueError(f"python must be like '3.11', got {python!r}")
    version = onnxruntime if onnxruntime is not None else _installed_onnxruntime()
    if version is not None and not re.fullmatch(r"\d+(\.\d+)*", str(version)):
        raise ValueError(f"onnxruntime must be a version like '1.20.1', got {version!r}")
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    major, minor = python.split(".")
    cmd = [*(pip or (sys.executable, "-m", "pip")), "download", "--only-binary=:all:", "--no-cache-dir",
           "--python-version", python, "--implementation", "cp", "--abi", f"cp{major}{minor}"]
    for tag in manylinux_platforms(arch):
        cmd += ["--platform", tag]
    cmd += ["--dest", str(out), "onnxruntime" + (f"=={version}" if version else "")]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as e:
        raise ValueError(f"cannot run pip ({cmd[0]}): {e}") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit status {proc.returncode}"
        raise ValueError(
            f"pip could not download onnxruntime{'==' + version if version else ''} for CPython {python} on "
            f"linux {arch}: {last} (no network? give --wheel-dir with wheels fetched elsewhere)"
        )
    return sorted(out.glob("*.whl"))


def build_deps_archive(
    out_dir: str | os.PathLike, wheel_dir: str | os.PathLike, *, python: str = "3.11", arch: str = "x86_64"
) -> tuple[Path, list[Path]]:
    """Unpack the compatible wheels of ``wheel_dir`` (ONNX Runtime required) into one zip; returns
    ``(path, wheels used)``."""
    out = _output_folder(out_dir)
    wheels = select_wheels(wheel_dir, python=python, arch=arch)
    if not any(w.name.lower().startswith("onnxruntime-") for w in wheels):
        found = ", ".join(p.name for p in sorted(Path(wheel_dir).glob("*.whl"))) or "no wheels"
        raise ValueError(
            f"no onnxruntime wheel for CPython {python} on linux {arch} in {wheel_dir} (found: {found}); "
            f"e.g. pip download onnxruntime --only-binary=:all: --python-version {python} "
            f"--platform manylinux_2_28_{arch} -d {wheel_dir}"
        )
    path = out / f"s2sr-udf-deps-cp{python.replace('.', '')}-{arch}.zip"
    seen: set[str] = set()
    with atomic_output(path) as tmp:
        with zipfile.ZipFile(tmp, "w") as zf:
            for w in wheels:
                with zipfile.ZipFile(w) as src:
                    for info in src.infolist():
                        if info.is_dir() or info.filename in seen:
                            continue
                        seen.add(info.filename)
                        _add(zf, info.filename, src.read(info))
    return path, wheels


def build_udf_archives(
    out_dir: str | os.PathLike,
    *,
    model: str | os.PathLike | None = None,
    wheel_dir: str | os.PathLike | None = None,
    python: str = "3.11",
    arch: str = "x86_64",
    include_weights: bool = False,
    download: bool = False,
    onnxruntime: str | None = None,
    pip: Sequence[str] | None = None,
) -> ArchiveSet:
    """Build the code archive and the dependency archive from ``wheel_dir``, or from wheels fetched by
    :func:`download_wheels` into ``<out_dir>/wheels-cpXY-<arch>`` when ``download`` (and no ``wheel_dir``);
    with neither, the code archive only. The wheels are fetched before anything is written."""
    out = _output_folder(out_dir)  # before any work
    if wheel_dir is None and download:
        wheel_dir = out / f"wheels-cp{python.replace('.', '')}-{arch}"
        download_wheels(wheel_dir, python=python, arch=arch, onnxruntime=onnxruntime, pip=pip)
    code, card = build_code_archive(out_dir, model=model, include_weights=include_weights)
    result = ArchiveSet(code=code, model=card.name)
    if wheel_dir is not None:
        result.deps, result.wheels = build_deps_archive(out_dir, wheel_dir, python=python, arch=arch)
    return result


def archive_job_options(archives: ArchiveSet, url_prefix: str, **memory: str) -> dict[str, Any]:
    """Job options naming the archives at ``url_prefix/<file name>`` (upload them there) with their folders."""
    from udf.process_graph import job_options

    if not isinstance(url_prefix, str) or not url_prefix:
        raise ValueError(f"url_prefix must be the URL the archives are uploaded to, got {url_prefix!r}")
    base = url_prefix.rstrip("/")
    entries = [f"{base}/{archives.code.name}#{CODE_DIR}"]
    if archives.deps is not None:
        entries.append(f"{base}/{archives.deps.name}#{DEPS_DIR}")
    return job_options(archives=entries, **memory)
