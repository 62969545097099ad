"""``s2sr graph`` (s2sr_cli/commands/graph.py): the process graph on stdout, the job options, errors."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from s2sr_cli.main import main
from udf.process_graph import build_process_graph, process_graph_json
from udf.testing import make_package

AOI = dict(west=5.0, south=51.0, east=5.05, north=51.04, start="2024-06-01", end="2024-06-11")
ARGS = ["--west", "5", "--south", "51", "--east", "5.05", "--north", "51.04", "--start", "2024-06-01", "--end",
        "2024-06-11"]


@pytest.fixture(scope="module")
def pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pg_models") / "tiny-edsr-x2"
    make_package(folder, arch="edsr", seed=3, onnx=False)  # the graph only reads the card
    return folder


def test_cli_graph_prints_the_process_graph(pkg, tmp_path):
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(["graph", "--west", "5", "--south", "51", "--east", "5.05", "--north", "51.04", "--start",
                   "2024-06-01", "--end", "2024-06-11", "--model", str(pkg), "--format", "netCDF",
                   "--job-options", str(tmp_path / "jo.json"), "--archive", "https://h/c.zip#s2sr_code"])
    assert rc == 0
    pg = json.loads(buf.getvalue())
    assert pg == json.loads(process_graph_json(build_process_graph(**AOI, model=pkg, format="netCDF")))
    run = [v for v in pg["process_graph"].values() if v["process_id"] == "apply_neighborhood"][0]
    assert "def apply_datacube(cube: xarray.DataArray, context: dict)" in (
        run["arguments"]["process"]["process_graph"]["runudf1"]["arguments"]["udf"])
    jo = json.loads((tmp_path / "jo.json").read_text())
    assert jo["udf-dependency-archives"] == ["https://h/c.zip#s2sr_code"]
    # bad input: an error message and exit status 2, no traceback
    err = io.StringIO()
    with redirect_stderr(err):
        rc = main(["graph", "--west", "5", "--south", "51", "--east", "4", "--north", "51.04", "--start",
                   "2024-06-01", "--end", "2024-06-11", "--model", str(pkg)])
    assert rc == 2 and "west < east" in err.getvalue()


@pytest.mark.parametrize(
    "options, expect",
    [
        ([], ["SCL"]),
        (["--extra-band", "SCL", "--extra-band", "CLM"], ["SCL", "CLM"]),
        (["--no-extra-bands"], []),
    ],
)
def test_cli_graph_extra_bands(pkg, tmp_path, options, expect):
    out = tmp_path / "g.json"
    assert main(["graph", *ARGS, "--model", str(pkg), "-o", str(out), *options]) == 0
    pg = json.loads(out.read_text())
    assert pg == json.loads(process_graph_json(build_process_graph(**AOI, model=pkg, extra_bands=expect)))
