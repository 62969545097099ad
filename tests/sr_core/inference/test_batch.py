"""sr_core.inference.batch: several products, their output names checked before any work, run in parallel on a
dask LocalCluster, a failed product reported without stopping the others."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from sr_core.inference import batch as B
from sr_core.inference.scene import superresolve_file
from sr_core.io import sample_scene_path
from udf.testing import make_package

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("batch_models") / "tiny-edsr-x2"
    make_package(folder, arch="edsr", seed=3)
    return folder


def _copies(root: Path, *names: str) -> list[Path]:
    return [Path(shutil.copytree(sample_scene_path(), root / n)) for n in names]


def _hashes(root: Path) -> dict[str, str]:
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(root.rglob("*")) if f.is_file()}


def test_product_name_drops_the_product_endings(tmp_path):
    safe = tmp_path / "S2B_MSIL2A_X.SAFE"
    safe.mkdir()
    assert B.product_name("a/S2B_MSIL2A_X.SAFE.zip") == "S2B_MSIL2A_X"
    assert B.product_name("a/S2B_MSIL2A_X.SAFE/") == "S2B_MSIL2A_X"
    assert B.product_name(safe / "MTD_MSIL2A.xml") == "S2B_MSIL2A_X"
    assert B.product_name("scene.TIF") == "scene"
    assert B.product_name("cube.nc") == "cube"
    assert B.product_name("https://example.org/items/S2A_T33UUB.json") == "S2A_T33UUB"
    assert B.product_name("folder_without_ending") == "folder_without_ending"
    with pytest.raises(ValueError, match="no name"):
        B.product_name("/")


def test_expand_inputs_globs_in_sorted_order_and_refuses_what_is_missing(tmp_path):
    for n in ("b.tif", "a.tif", "c.nc"):
        (tmp_path / n).write_bytes(b"x")
    assert B.expand_inputs([str(tmp_path / "*.tif"), tmp_path / "c.nc"]) == [
        str(tmp_path / "a.tif"), str(tmp_path / "b.tif"), str(tmp_path / "c.nc")
    ]
    assert B.expand_inputs(["https://example.org/item.json"]) == ["https://example.org/item.json"]
    with pytest.raises(ValueError, match=r"matches no file"):
        B.expand_inputs([str(tmp_path / "*.zip")])
    with pytest.raises(ValueError, match=r"missing\.tif does not exist"):
        B.expand_inputs([str(tmp_path / "missing.tif")])
    with pytest.raises(ValueError, match="no INPUT"):
        B.expand_inputs([])


def test_batch_outputs_in_a_folder_or_from_a_template(tmp_path):
    a, b = _copies(tmp_path, "sceneA", "sceneB.SAFE")
    out = tmp_path / "out"
    out.mkdir()
    assert B.batch_outputs([str(a), str(b)], out) == [out / "sceneA_sr.tif", out / "sceneB_sr.tif"]
    assert B.batch_outputs([str(a), str(b)], f"{out}/{{name}}_5m.tif") == [out / "sceneA_5m.tif", out / "sceneB_5m.tif"]


@pytest.mark.parametrize(
    "case, words",
    [
        ("missing folder", ("must be an existing folder", "{name}")),
        ("a file", ("must be an existing folder",)),
        ("same name", ("would both be written to", "x_sceneA.tif")),
        ("inside an input", ("inside the input folder",)),
        ("bad template", ("template", "{name}")),
        ("not a tif", ("ends in '.png'",)),
    ],
)
def test_batch_outputs_refuses_before_any_work(tmp_path, case, words):
    a, b = _copies(tmp_path, "sceneA", "sceneB")
    if case == "same name":  # a second product named sceneA, in another folder
        b = Path(shutil.copytree(a, tmp_path / "other" / "sceneA"))
    output = {
        "missing folder": str(tmp_path / "nowhere"),
        "a file": str(a / "bands_10m.tif"),
        "same name": f"{tmp_path}/x_{{name}}.tif",
        "inside an input": f"{b}/{{name}}.tif",
        "bad template": f"{tmp_path}/{{name}}_{{date}}.tif",
        "not a tif": f"{tmp_path}/{{name}}.png",
    }[case]
    before = _hashes(tmp_path)
    with pytest.raises(ValueError) as info:
        B.batch_outputs([str(a), str(b)], output)
    for w in words:
        assert w in str(info.value), (w, str(info.value))
    assert _hashes(tmp_path) == before  # nothing written, nothing changed


def test_superresolve_many_on_a_local_cluster_reports_a_broken_product_and_runs_the_others(tmp_path, pkg):
    good1, broken, good2 = _copies(tmp_path / "in", "scene1", "scene2_broken", "scene3")
    (broken / "bands_20m.tif").write_bytes(b"not a GeoTIFF")
    out = tmp_path / "out"
    out.mkdir()
    inputs = [str(good1), str(broken), str(good2)]
    outputs = B.batch_outputs(inputs, out)
    seen = []
    results = B.superresolve_many(
        inputs, outputs, product_workers=2, model=str(pkg), engine="torch", tile=128, on_result=seen.append
    )
    assert [r.input for r in results] == inputs
    assert sorted(r.input for r in seen) == sorted(inputs)
    assert [r.ok for r in results] == [True, False, True]
    bad = results[1]
    assert bad.paths == () and bad.output == str(out / "scene2_broken_sr.tif")
    assert "bands_20m.tif" in bad.error and "\n" not in bad.error, bad.error
    assert sorted(p.name for p in out.iterdir()) == ["scene1_sr.tif", "scene3_sr.tif"]  # no partial file
    # each product is the same as a single run of it (2 workers on the cores: threads = cores // 2)
    threads = max(1, (os.cpu_count() or 1) // 2)
    ref = superresolve_file(good1, tmp_path / "ref.tif", model=str(pkg), engine="torch", tile=128, threads=threads)
    for r in (results[0], results[2]):
        assert r.paths == (r.output,)
        with rasterio.open(r.output) as got, rasterio.open(ref[0]) as want:
            np.testing.assert_array_equal(got.read(), want.read())
            assert got.descriptions == want.descriptions
            got_tags, want_tags = got.tags(), want.tags()
            assert got_tags.pop("SOURCE") == Path(r.input).name and want_tags.pop("SOURCE") == "scene1"
            assert got_tags == want_tags


def test_superresolve_many_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="2 inputs but 1 outputs"):
        B.superresolve_many(["a", "b"], ["a.tif"])
    with pytest.raises(ValueError, match="not with scheduler"):
        B.superresolve_many(["a"], ["a.tif"], product_workers=2, scheduler="tcp://127.0.0.1:1")


def test_importing_the_library_does_not_import_dask():
    code = "import sr_core, sr_core.inference.batch, sr_core.inference.scene, sys; print('distributed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_superresolve_many_on_an_existing_scheduler(tmp_path, pkg):
    from distributed import LocalCluster

    a, b = _copies(tmp_path / "in", "sceneA", "sceneB")
    out = tmp_path / "out"
    out.mkdir()
    outputs = B.batch_outputs([str(a), str(b)], out)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        results = B.superresolve_many(
            [a, b], outputs, scheduler=cluster.scheduler_address, model=str(pkg), engine="torch", tile=128
        )
        assert len(cluster.scheduler.workers) == 2  # the cluster is left running: it is the caller's
    assert [r.error for r in results] == [None, None]
    with rasterio.open(out / "sceneA_sr.tif") as x, rasterio.open(out / "sceneB_sr.tif") as y:
        np.testing.assert_array_equal(x.read(), y.read())  # two copies of one scene


def test_a_product_takes_the_resolution_option(tmp_path):
    """What each dask task runs (in this process): ``resolution`` reaches superresolve_file; a model of another
    resolution is the product's input error (``bad_input``), the 10 m product keeps the input grid."""
    (scene,) = _copies(tmp_path / "in", "scene")
    bad = B._run_product(str(scene), str(tmp_path / "bad.tif"), 1, {"model": "s2sr-x2-10band", "resolution": 10})
    assert not bad.ok and bad.bad_input and "model 's2sr-x2-10band' outputs 5 m" in bad.error
    assert not (tmp_path / "bad.tif").exists()
    good = B._run_product(str(scene), str(tmp_path / "ok.tif"), 1, {"resolution": 10, "tile": 128})
    assert good.ok and good.paths == (str(tmp_path / "ok.tif"),), good.error
    with rasterio.open(good.paths[0]) as d, rasterio.open(scene / "bands_10m.tif") as ref:
        assert d.tags()["S2SR_MODEL"] == "s2sr-10m-10band" and (d.width, d.transform) == (ref.width, ref.transform)
