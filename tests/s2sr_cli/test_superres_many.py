"""``s2sr superres`` over several products (s2sr_cli/commands/superres.py, sr_core.inference.batch): run in parallel
on a dask LocalCluster of 2 workers, a broken product reported on one line without stopping the others, every
output checked before any work."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2sr_cli.main import main
from sr_core.io import sample_scene_path
from udf.testing import make_package

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("superres_many_models") / "tiny-edsr-x2"
    make_package(folder, arch="edsr", seed=3)
    return folder


@pytest.fixture
def scenes(tmp_path) -> list[Path]:
    """Three copies of the bundled sample scene folder, the second one broken (bands_20m.tif not a GeoTIFF)."""
    out = [Path(shutil.copytree(sample_scene_path(), tmp_path / "in" / n)) for n in ("s1", "s2_broken", "s3")]
    (out[1] / "bands_20m.tif").write_bytes(b"not a GeoTIFF")
    return out


def _hashes(root: Path) -> dict[str, str]:
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(root.rglob("*")) if f.is_file()}


def _opts(pkg: Path) -> list[str]:
    return ["--model", str(pkg), "--threads", "1", "--tile", "128"]


def test_several_products_in_parallel_a_broken_one_reported_the_others_written(tmp_path, capsys, scenes, pkg):
    out = tmp_path / "out"
    out.mkdir()
    rc = main(["superres", *map(str, scenes), str(out), *_opts(pkg), "--product-workers", "2"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert sorted(p.name for p in out.iterdir()) == ["s1_sr.tif", "s3_sr.tif"]  # no partial or temporary file
    lines = err.splitlines()
    broken = [ln for ln in lines if ln.startswith(f"s2sr superres: error: {scenes[1]}: ")]
    assert len(broken) == 1 and "bands_20m.tif" in broken[0], err
    assert "s2sr superres: 1 of 3 products failed:" in lines, err
    assert any(ln.startswith(f"  {scenes[1]}: ") and "bands_20m.tif" in ln for ln in lines), err
    for name in ("s1_sr.tif", "s3_sr.tif"):
        assert f"wrote {out / name}" in lines, err
    assert "products" in err  # the progress bar over products
    # a product is what the single-input form writes for it
    single = tmp_path / "single.tif"
    assert main(["--quiet", "superres", str(scenes[0]), str(single), *_opts(pkg)]) == 0
    with rasterio.open(out / "s1_sr.tif") as got, rasterio.open(single) as want:
        np.testing.assert_array_equal(got.read(), want.read())
        assert got.descriptions == want.descriptions and np.isnan(got.nodata) and np.isnan(want.nodata)
        assert {k: v for k, v in got.profile.items() if k != "nodata"} == {
            k: v for k, v in want.profile.items() if k != "nodata"
        }


def test_a_glob_pattern_and_an_output_template(tmp_path, capsys, scenes, pkg):
    pattern = str(scenes[0].parent / "s[13]")  # the two good products
    rc = main(["--quiet", "superres", pattern, f"{tmp_path}/{{name}}_5m.tif", *_opts(pkg), "--product-workers", "2"])
    err = capsys.readouterr().err
    assert rc == 0 and err == "", err
    assert sorted(p.name for p in tmp_path.glob("*.tif")) == ["s1_5m.tif", "s3_5m.tif"]


@pytest.mark.parametrize(
    "case, words",
    [
        ("one file for several", ("must be an existing folder", "{name}")),
        ("same name", ("would both be written to", "x_s1.tif")),
        ("inside an input", ("inside the input folder",)),
        ("missing input", ("does not exist",)),
        ("pattern matching nothing", ("matches no file",)),
        ("product workers with one input", ("--product-workers", "several INPUTs")),
    ],
)
def test_refused_before_any_work_in_one_line(tmp_path, capsys, scenes, pkg, case, words):
    s1, _, s3 = scenes
    if case == "same name":
        s3 = Path(shutil.copytree(s1, tmp_path / "other" / "s1"))
    argv = {
        "one file for several": [s1, s3, tmp_path / "all.tif"],
        "same name": [s1, s3, f"{tmp_path}/x_{{name}}.tif"],
        "inside an input": [s1, s3, f"{s3}/{{name}}.tif"],
        "missing input": [s1, tmp_path / "missing", tmp_path],
        "pattern matching nothing": [s1, tmp_path / "in" / "*.zip", tmp_path],
        "product workers with one input": [s1, tmp_path / "one.tif", "--product-workers", "2"],
    }[case]
    before = _hashes(tmp_path)
    rc = main(["superres", *map(str, argv), *_opts(pkg)])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("s2sr superres: error: "), err
    for w in words:
        assert w in err, (w, err)
    assert _hashes(tmp_path) == before
