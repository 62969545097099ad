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


@pytest.mark.parametrize(
    "options, words",
    [
        (["--threads", "-1"], "threads must be an integer from 1 to 1024 or None, got -1"),
        (["--threads", "0"], "threads must be an integer from 1 to 1024 or None, got 0"),
        (["--misr", "--anchor", "garbage"], "anchor must be 'clearest', 'latest', 'first'"),
        (["--misr", "--anchor", "2024-07-01"], "anchor date 2024-07-01 is outside the dates"),
        (["--extra-band", "B99"], "extra band 'B99' is not a band of SENTINEL2_L2A"),
        (["--extra-band", "SCL", "--no-extra-bands"], "--extra-band and --no-extra-bands exclude each other"),
        (["--start", "2014-06-01"], "start 2014-06-01 is before 2017-03-28: SENTINEL2_L2A has no data"),
        (["--start", "2015-01-01", "--collection", "SENTINEL2_L1C"], "start 2015-01-01 is before 2015-06-23"),
        (["--end", "2024-06-01"], "start (2024-06-01) must be before end (2024-06-01)"),
        (["--east", "4"], "need -180 <= west < east <= 180"),
        (["--north", "95"], "need -90 <= south < north <= 90"),
        (["--size", "24"], "size must be a multiple of 16 pixels, got 24"),
        (["--size", "-16"], "size must be an integer >= 1, got -16"),
        (["--overlap", "24"], "overlap must be a multiple of 16 pixels, got 24"),
        (["--overlap", "-16"], "overlap must be an integer number of pixels, got -16"),
        (["--archive", "https://h/c.zip#s2sr_code"], "--archive goes into the job options"),
        (["--job-options", "JO", "--archive", "https://h/c.zip"], "must be 'URL#folder'"),
        (["-o", "MISSING/g.json"], "no such folder"),
    ],
)
def test_cli_graph_refuses_bad_options_before_printing_anything(pkg, tmp_path, options, words):
    options = [o.replace("JO", str(tmp_path / "jo.json")).replace("MISSING", str(tmp_path / "missing"))
               for o in options]
    args = ARGS + ["--model", str(pkg)]  # an option given again in ``options``: argparse keeps the later
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["graph", *args, *options])
    assert rc == 2 and out.getvalue() == "", out.getvalue()[:200]
    assert err.getvalue().startswith("s2sr graph: error: ") and err.getvalue().count("\n") == 1
    assert words in err.getvalue()
    assert list(tmp_path.iterdir()) == []  # no graph, no job options written


def test_cli_graph_l1c_default_has_no_scl(pkg):
    out = io.StringIO()
    with redirect_stdout(out):
        rc = main(["graph", *ARGS, "--model", str(pkg), "--collection", "SENTINEL2_L1C"])
    assert rc == 0
    pg = json.loads(out.getvalue())
    assert pg == json.loads(process_graph_json(build_process_graph(**AOI, model=pkg, collection="SENTINEL2_L1C",
                                                                   extra_bands=[])))


def test_cli_graph_without_model_runs_the_model_of_the_collection_bands_and_says_so(capsys):
    from udf.process_graph import graph_model

    assert graph_model(None) == graph_model(None, "SENTINEL2_L1C") == "s2sr-x2-10band"
    assert graph_model(None, misr=True) == "s2sr-misr-x2" and graph_model("x", misr=True) == "x"
    assert main(["graph", *ARGS]) == 0
    out, err = capsys.readouterr()
    assert err == ("s2sr graph: model s2sr-x2-10band (the collection's bands at 5 m; --model s2sr-x2-rgbn loads B02, "
                   "B03, B04, B08 alone)\n")
    assert json.loads(out) == json.loads(process_graph_json(build_process_graph(**AOI, model="s2sr-x2-10band")))
    assert main(["graph", *ARGS, "--quiet"]) == 0
    out2, err2 = capsys.readouterr()
    assert out2 == out and err2 == ""
    assert main(["graph", *ARGS, "--misr"]) == 0
    assert capsys.readouterr().err == "s2sr graph: model s2sr-misr-x2 (the multi-image default)\n"


def test_cli_graph_resolution_10_puts_the_model_and_resolution_into_the_udf_context(capsys):
    assert main(["graph", *ARGS, "--resolution", "10"]) == 0
    out, err = capsys.readouterr()
    assert err == "s2sr graph: model s2sr-10m-10band (the collection's bands at 10 m)\n"
    pg = json.loads(out)
    assert pg == json.loads(process_graph_json(build_process_graph(**AOI, model="s2sr-10m-10band")))
    (an,) = [n for n in pg["process_graph"].values() if n["process_id"] == "apply_neighborhood"]
    ctx = an["arguments"]["process"]["process_graph"]["runudf1"]["arguments"]["context"]
    assert ctx["model"] == "s2sr-10m-10band" and ctx["resolution"] == 10.0
    assert not [n for n in pg["process_graph"].values() if n["process_id"] == "resample_spatial"]
    assert main(["graph", *ARGS, "--resolution", "10", "--model", "s2sr-10m-10band", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out) == pg


@pytest.mark.parametrize("options, words", [
    (["--resolution", "10", "--model", "s2sr-x2-10band"], ["model 's2sr-x2-10band' outputs 5 m", "asks 10 m"]),
    (["--resolution", "10", "--misr"], ["model 's2sr-misr-x2' outputs 5 m", "asks 10 m"]),
])
def test_cli_graph_a_model_of_another_resolution_is_exit_status_2(capsys, options, words):
    assert main(["graph", *ARGS, *options]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("s2sr graph: error: ") and err.count("\n") == 1
    for w in words:
        assert w in err
