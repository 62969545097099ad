"""The notebooks (``notebooks/*.ipynb``) run top to bottom with nbclient, in a temporary working directory, and
produce their key outputs with sane values.

Each notebook runs in a fresh ``python3`` kernel of *this* interpreter (a temporary kernelspec pointing at
``sys.executable``, first on ``JUPYTER_PATH``), with ``S2SR_THREADS=1`` (one engine / training thread),
``S2SR_OPENEO_URL`` unset (the back-end cell must skip itself without touching the network) and the repository
first on ``PYTHONPATH``. Any cell error fails the test with the cell and its traceback (``CellExecutionError``).
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NAMES = ("01_quickstart", "02_openeo", "03_training_evaluation")
TIMEOUT_S = 300
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
KERNEL = "s2sr-test-python3"


def _kernelspec(root: Path) -> Path:
    """A kernelspec for this interpreter under ``root/kernels`` (put ``root`` on JUPYTER_PATH)."""
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Python 3 (s2sr tests)", "language": "python"})
    )
    return root


def _run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str):
    """Execute ``notebooks/<name>.ipynb`` in ``tmp_path/work``; returns ``(executed notebook, work dir)``."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("JUPYTER_PATH", str(_kernelspec(tmp_path / "jupyter")))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    )
    monkeypatch.setenv("S2SR_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.delenv("S2SR_OPENEO_URL", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=TIMEOUT_S, kernel_name=KERNEL, resources={"metadata": {"path": str(work)}}
    )
    client.execute()  # raises CellExecutionError (cell source + traceback) on the first failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    return nb, work


def _outputs(nb, kind: str) -> list:
    """All outputs of ``kind``: ``"stream"`` texts or a MIME type of display/execute results."""
    out = []
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        for o in c.outputs:
            if kind == "stream" and o.output_type == "stream":
                out.append(o.text)
            elif o.output_type in ("display_data", "execute_result") and kind in o.get("data", {}):
                out.append(o["data"][kind])
    return out


def _is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


# ------------------------------------------------------------------------------------------------ committed form


@pytest.mark.parametrize("name", NAMES)
def test_notebook_committed_clean(name):
    """Committed without outputs or execution counts, valid nbformat v4, kernel python3."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


def test_every_notebook_is_tested():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(NAMES)


# ------------------------------------------------------------------------------------------------ executed


def test_quickstart(tmp_path, monkeypatch):
    import rasterio

    from sr_core.bands import MODEL_BANDS_10
    from sr_core.io import load_sample

    nb, work = _run("01_quickstart", tmp_path, monkeypatch)
    out = work / "outputs"
    for fig in ("quickstart_maps.png", "quickstart_spectra.png"):
        assert _is_png(out / fig), fig
    assert len(_outputs(nb, "image/png")) >= 2  # the figures are shown inline too
    summary = json.loads((out / "quickstart_summary.json").read_text())
    scene = load_sample()
    assert summary["input_shape"] == [10, 256, 256] and summary["output_shape"] == [10, 512, 512]
    np.testing.assert_allclose(summary["bounds_out"], scene.bounds)
    # Radiometric consistency through the whole UDF path (DN -> reflectance -> model -> DN): block means of
    # the 5 m result match the input to well under 0.02 reflectance in every band (a DN-scale or band-order
    # mistake gives errors of order 0.1 - 1).
    assert list(summary["consistency"]) == list(MODEL_BANDS_10)
    assert max(summary["consistency"].values()) < 0.02
    with rasterio.open(out / "sample_sr_5m.tif") as ds:
        assert (ds.count, ds.height, ds.width) == (10, 512, 512)
        assert ds.crs.to_string() == scene.crs
        np.testing.assert_allclose(tuple(ds.bounds), scene.bounds)
        np.testing.assert_allclose(ds.res, (5.0, 5.0))
        assert ds.tags()["model"] == summary["model"]
        data = ds.read()
    assert np.isfinite(data).all()
    # The GeoTIFF holds DN: its 2 x 2 block means are the input DN (+- the model's change, here < 0.02 * scale).
    dn_in = scene.to_dataarray().values.astype(np.float64)
    block = data.astype(np.float64).reshape(10, 256, 2, 256, 2).mean(axis=(2, 4))
    assert np.abs(block[:4] - dn_in[:4]).mean() < 0.02 * scene.dn_scale


def test_openeo(tmp_path, monkeypatch):
    from udf.process_graph import UDF_PATH

    nb, work = _run("02_openeo", tmp_path, monkeypatch)
    out = work / "outputs"
    pg = json.loads((out / "process_graph.json").read_text())["process_graph"]
    procs = [n["process_id"] for n in pg.values()]
    assert procs[:2] == ["load_collection", "load_collection"] and procs[-2:] == [
        "apply_neighborhood",
        "save_result",
    ]
    assert "resample_spatial" in procs  # the default, portable "resampled" mode
    load = next(n for n in pg.values() if n["process_id"] == "load_collection")["arguments"]
    assert load["id"] == "SENTINEL2_L2A" and load["temporal_extent"] == ["2023-06-01", "2023-07-01"]
    assert load["spatial_extent"] == {"west": 13.0, "south": 55.59, "east": 13.05, "north": 55.62}
    an = next(n for n in pg.values() if n["process_id"] == "apply_neighborhood")["arguments"]
    run_udf = next(iter(an["process"]["process_graph"].values()))["arguments"]
    assert run_udf["udf"] == UDF_PATH.read_text() and run_udf["runtime"] == "Python"
    overlap = {d["dimension"]: d["value"] for d in an["overlap"]}
    assert run_udf["context"]["overlap"] == overlap["x"] == overlap["y"] > 0
    opts = json.loads((out / "job_options.json").read_text())
    udp = json.loads((out / "s2sr_superresolution.json").read_text())
    assert udp["id"] == "s2sr_superresolution"
    assert [p["name"] for p in udp["parameters"]] == ["spatial_extent", "temporal_extent", "collection", "model"]
    assert udp["default_job_options"]["udf-dependency-archives"] == opts["udf-dependency-archives"]
    (archive,) = opts["udf-dependency-archives"]
    assert archive.startswith("https://example.org/s2sr/s2sr-udf-code-") and archive.endswith(
        ".zip#s2sr_code"
    )
    with zipfile.ZipFile(out / "archives" / archive.split("/")[-1].split("#")[0]) as zf:
        names = set(zf.namelist())
    model = run_udf["context"]["model"]
    assert {"udf/sr_udf.py", "sr_core/inference/cube.py", f"sr_core/weights/{model}/card.json"} <= names
    assert any("S2SR_OPENEO_URL is not set" in t for t in _outputs(nb, "stream"))
    assert not (out / "job_results").exists()


def _check_training(nb, work: Path, *, split_by_region: bool) -> None:
    out = work / "outputs"
    card = json.loads((out / "tiny-s2fast" / "card.json").read_text())
    assert card["arch"] == "s2fast" and card["scale"] == 2 and card["training"]["steps"] == 20
    train, val = card["training"]["train_regions"], card["training"]["val_regions"]
    assert train and val and not set(train) & set(val)
    if split_by_region:  # one scene split by region: the windows must not overlap
        from sr_core.datasets.patches import parse_scene_spec

        regions = [parse_scene_spec(r) for r in train + val]
        assert all(not isinstance(r, str) for r in regions)
        for a in regions[: len(train)]:
            for b in regions[len(train) :]:
                assert a.y1 <= b.y0 or b.y1 <= a.y0 or a.x1 <= b.x0 or b.x1 <= a.x0, (a, b)
    log = (out / "train" / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,") and log[-1].startswith("20,")
    assert _is_png(out / "training_loss.png")
    figures = [Path(p) for p in json.loads((out / "evaluation_figures.json").read_text())]
    assert len(figures) >= 3 and all(_is_png(work / p) for p in figures)
    assert len(_outputs(nb, "image/png")) >= 1 + len(figures)
    report = (out / "evaluation_tiny-s2fast.md").read_text()
    assert "tiny-s2fast" in report
    assert _outputs(nb, "text/html")  # the gain table


def test_training_evaluation_shared(tmp_path, monkeypatch, shared_s2):
    nb, work = _run("03_training_evaluation", tmp_path, monkeypatch, S2SR_SHARED=str(shared_s2.parents[1]))
    assert any(f"shared-layout data: {shared_s2}" in t for t in _outputs(nb, "stream"))
    _check_training(nb, work, split_by_region=False)


def test_training_evaluation_bundled_sample(tmp_path, monkeypatch):
    """A fresh machine (no ../shared): trains and validates on two disjoint halves of the bundled sample."""
    nb, work = _run("03_training_evaluation", tmp_path, monkeypatch, S2SR_SHARED=str(tmp_path / "no-shared"))
    assert any(
        "training and validating on two halves of the bundled sample" in t for t in _outputs(nb, "stream")
    )
    _check_training(nb, work, split_by_region=True)
