"""The super-resolution UDF file (udf/sr_udf.py): run through openEO's UDF runner, its apply_metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sr_core.bands import MODEL_BANDS_10
from sr_core.inference import cube as sc
from udf.testing import make_package, random_s2_cube

UDF_FILE = Path(__file__).resolve().parents[2] / "udf" / "sr_udf.py"
DN = 10000.0
pytestmark = pytest.mark.filterwarnings("ignore::sr_core.inference.cube.TilingWarning")  # tiny chunks on purpose


@pytest.fixture(scope="session")
def pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("udf_models") / "tiny-edsr-x2"
    make_package(folder, arch="edsr", seed=1)
    return folder


@pytest.fixture(scope="session")
def pred(pkg):
    from sr_core.models import load_predictor

    return load_predictor(pkg)


def test_udf_file_runs_through_openeo_execute_local_udf(pkg, pred):
    import openeo
    from openeo.udf.run_code import execute_local_udf

    da = random_s2_cube(10, 8, dates=1, seed=19)
    udf = openeo.UDF(UDF_FILE.read_text(), context={"model": str(pkg), "mode": "upscale"})
    res = execute_local_udf(udf, da).get_datacube_list()[0].get_array()
    direct = sc.superresolve_dataarray(da, predictor=pred, mode="upscale")
    assert res.dims == ("t", "bands", "y", "x") and res.dtype == np.float64  # execute_local_udf casts float64
    assert np.abs(res.values - direct.values).max() <= 1e-4 * DN


def test_apply_metadata_divides_the_resolution_in_upscale_mode(pkg):
    from openeo.metadata import Band, BandDimension, CubeMetadata, SpatialDimension, TemporalDimension

    ns: dict = {}
    exec(UDF_FILE.read_text(), ns)
    md = CubeMetadata(dimensions=[
        TemporalDimension(name="t", extent=["2024-06-01", "2024-06-10"]),
        BandDimension(name="bands", bands=[Band(b) for b in MODEL_BANDS_10]),
        SpatialDimension(name="x", extent=[0, 100], crs=32631, step=10),
        SpatialDimension(name="y", extent=[0, 100], crs=32631, step=10),
    ])
    up = ns["apply_metadata"](md, {"model": str(pkg), "mode": "upscale"})
    assert [d.step for d in up.spatial_dimensions] == [5.0, 5.0]
    assert [d.crs for d in up.spatial_dimensions] == [32631, 32631]
    same = ns["apply_metadata"](md, {"model": str(pkg)})
    assert [d.step for d in same.spatial_dimensions] == [10, 10]


def test_apply_metadata_by_the_resolution_and_bands_in_the_context():
    """Without a model the scale is that of the model the chunks will run: x2 at 5 m (by the band names), none at
    10 m; a named model of another resolution is refused there too."""
    from openeo.metadata import Band, BandDimension, CubeMetadata, SpatialDimension

    ns: dict = {}
    exec(UDF_FILE.read_text(), ns)

    def md(bands):
        return CubeMetadata(dimensions=[
            BandDimension(name="bands", bands=[Band(b) for b in bands]),
            SpatialDimension(name="x", extent=[0, 100], crs=32631, step=10),
            SpatialDimension(name="y", extent=[0, 100], crs=32631, step=10),
        ])

    def steps(m):
        return [d.step for d in m.spatial_dimensions]

    ten = md([*MODEL_BANDS_10, "SCL"])
    assert steps(ns["apply_metadata"](ten, {"mode": "upscale"})) == [5.0, 5.0]
    assert steps(ns["apply_metadata"](ten, {"mode": "upscale", "resolution": 10})) == [10, 10]
    assert steps(ns["apply_metadata"](ten, {"mode": "upscale", "model": "s2sr-10m-10band"})) == [10, 10]
    assert steps(ns["apply_metadata"](md(["B02", "B03", "B04", "B08"]), {"mode": "upscale"})) == [5.0, 5.0]
    assert steps(ns["apply_metadata"](md(["B02"]), {"mode": "upscale", "resolution": 10})) == [10, 10]
    with pytest.raises(ValueError, match=r"outputs 5 m, context\['resolution'\] asks 10 m"):
        ns["apply_metadata"](ten, {"mode": "upscale", "model": "s2sr-x2-10band", "resolution": 10})


@pytest.mark.parametrize("mode, res, want", [("upscale", 5.0, 10), ("upscale", 20.0, 10), ("resampled", 10.0, 5)])
def test_udf_file_checks_the_coordinate_spacing_in_both_modes(pkg, mode, res, want):
    """What the command line refuses the UDF refuses too: a chunk on another grid than the mode needs."""
    from openeo.udf import UdfData, XarrayDataCube
    from openeo.udf.run_code import run_udf_code

    da = random_s2_cube(8, 8, dates=1, seed=20, resolution=res)
    data = UdfData(datacube_list=[XarrayDataCube(da)], user_context={"model": str(pkg), "mode": mode})
    with pytest.raises(ValueError, match=rf"dim 'y': the chunk's coordinates are spaced {res:g}, .*needs {want:g} "):
        run_udf_code(code=UDF_FILE.read_text(), data=data)


def _pep723(text: str) -> dict:
    """The PEP 723 ``script`` block of a file (the reference regular expression of the specification)."""
    import re
    import tomllib

    regex = r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$"
    blocks = [m for m in re.finditer(regex, text) if m.group("type") == "script"]
    assert len(blocks) == 1
    content = "".join(line[2:] if line.startswith("# ") else line[1:]
                      for line in blocks[0].group("content").splitlines(keepends=True))
    return tomllib.loads(content)


@pytest.mark.parametrize("name", ["sr_udf.py", "misr_udf.py"])
def test_udf_files_declare_their_runtime_dependencies_as_the_package_does(name):
    import configparser

    from packaging.requirements import Requirement

    meta = _pep723((UDF_FILE.parent / name).read_text())
    deps = {r.name: str(r.specifier) for r in map(Requirement, meta["dependencies"])}
    assert set(deps) == {"numpy", "scipy", "xarray", "onnxruntime"}
    cfg = configparser.ConfigParser()
    cfg.read(UDF_FILE.parents[1] / "setup.cfg")
    declared = {}
    for section, key in (("options", "install_requires"), ("options.extras_require", "udf")):
        for line in cfg[section][key].splitlines():
            line = line.strip()
            if line and not line.startswith(("#", "%")):
                r = Requirement(line)
                declared[r.name] = str(r.specifier)
    assert all(declared[k] == v for k, v in deps.items()), (deps, declared)  # the same floors as setup.cfg
    assert meta["requires-python"] == cfg["options"]["python_requires"]
