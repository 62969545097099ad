"""The openEO process graph builder (udf/process_graph.py): offline, values checked. `s2sr graph`:
tests/s2sr_cli/test_graph.py."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from udf.process_graph import (
    build_process_graph,
    check_anchor,
    default_extra_bands,
    job_options,
    neighborhood_for,
)
from udf.testing import make_package

UDF_FILE = Path(__file__).resolve().parents[2] / "udf" / "sr_udf.py"
AOI = dict(west=5.0, south=51.0, east=5.05, north=51.04, start="2024-06-01", end="2024-06-11")


@pytest.fixture(scope="session")
def pkg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pg_models") / "tiny-edsr-x2"
    make_package(folder, arch="edsr", seed=3, onnx=False)  # the graph only reads the card
    return folder


def nodes(cube) -> dict:
    return {n["process_id"]: n for n in cube.flat_graph().values()}


def card(margin: int, scale: int = 2, name: str = "m"):
    return SimpleNamespace(scale=scale, margin=margin, receptive_field=2 * margin + 1, name=name, postprocess=None)


@pytest.mark.parametrize(
    "margin, mode, expect",
    [
        (6, "resampled", (512, 16)),  # need 12 px at 5 m -> 16
        (6, "upscale", (256, 16)),  # need 6 px at 10 m -> 16
        (8, "resampled", (512, 16)),  # 16 exactly
        (9, "resampled", (512, 32)),  # 18 -> 32
        (70, "upscale", (256, 80)),  # 70 -> 80
        (140, "upscale", (288, 144)),  # 140 -> 144; size at least 2 * overlap
    ],
)
def test_neighborhood_from_the_receptive_field(margin, mode, expect):
    assert neighborhood_for(card(margin), mode) == expect


def test_neighborhood_rejects_small_or_unaligned_values():
    with pytest.raises(ValueError, match="overlap 8 px is smaller than the 12 px.*use overlap=16"):
        neighborhood_for(card(6), "resampled", overlap=8)
    with pytest.raises(ValueError, match="multiple of 16"):
        neighborhood_for(card(6), "resampled", size=100)
    assert neighborhood_for(card(6), "resampled", size=64, overlap=32) == (64, 32)


def test_resampled_graph_offline(pkg):
    cube = build_process_graph(**AOI, model=pkg)
    n = nodes(cube)
    loads = [v for v in cube.flat_graph().values() if v["process_id"] == "load_collection"]
    assert [ld["arguments"]["bands"] for ld in loads] == [
        ["B02", "B03", "B04", "B08"],
        ["B05", "B06", "B07", "B8A", "B11", "B12", "SCL"],
    ]
    assert all(ld["arguments"]["id"] == "SENTINEL2_L2A" for ld in loads)
    assert loads[0]["arguments"]["spatial_extent"] == {"west": 5.0, "south": 51.0, "east": 5.05, "north": 51.04}
    assert loads[0]["arguments"]["temporal_extent"] == ["2024-06-01", "2024-06-11"]
    assert n["resample_cube_spatial"]["arguments"]["method"] == "near"
    assert n["resample_spatial"]["arguments"]["resolution"] == 5.0
    assert n["resample_spatial"]["arguments"]["method"] == "near"
    an = n["apply_neighborhood"]["arguments"]
    assert an["size"] == [{"dimension": "x", "value": 512, "unit": "px"}, {"dimension": "y", "value": 512, "unit": "px"}]
    assert an["overlap"] == [{"dimension": "x", "value": 16, "unit": "px"}, {"dimension": "y", "value": 16, "unit": "px"}]
    run = an["process"]["process_graph"]["runudf1"]["arguments"]
    assert run["udf"] == UDF_FILE.read_text()
    assert run["runtime"] == "Python"
    assert run["context"] == {"mode": "resampled", "model": "tiny-edsr-x2", "resolution": 5.0, "engine": "onnx",
                              "dn_scale": 10000.0, "add_offset": 0.0, "overlap": 16, "size": 512}
    assert n["save_result"]["arguments"]["format"] == "GTiff"
    # the embedded context is valid for the UDF itself
    from udf.contract import parse_context

    assert parse_context(run["context"]).overlap == 16


def test_upscale_graph_uses_python_jep_and_the_native_grid(pkg):
    n = nodes(build_process_graph(**AOI, model=pkg, mode="upscale", format="netcdf", extra_bands=(), threads=2))
    assert "resample_spatial" not in n
    an = n["apply_neighborhood"]["arguments"]
    assert an["size"][0]["value"] == 256 and an["overlap"][0]["value"] == 16
    run = an["process"]["process_graph"]["runudf1"]["arguments"]
    assert run["runtime"] == "Python-Jep" and run["context"]["mode"] == "upscale" and run["context"]["threads"] == 2
    assert n["save_result"]["arguments"]["format"] == "netCDF"
    loads = [v for v in n.values() if v["process_id"] == "load_collection"]
    assert loads[0]["arguments"]["bands"][-1] == "B12"  # no SCL


@pytest.mark.parametrize("mode, runtime", [("resampled", "Python"), ("upscale", "Python-Jep")])
@pytest.mark.parametrize("model", [None, "s2sr-10m-10band"])
def test_resolution_10_graph_holds_the_model_and_resolution_and_stays_on_the_10m_grid(mode, runtime, model):
    """The sharpening model (scale 1): chosen by resolution 10 (or named), both in the UDF context; no
    resample_spatial in either mode; size/overlap on the 10 m grid from its margin (29 px -> 32)."""
    n = nodes(build_process_graph(**AOI, model=model, mode=mode, resolution=10))
    assert "resample_spatial" not in n
    assert n["merge_cubes"] and n["resample_cube_spatial"]["arguments"]["method"] == "near"
    an = n["apply_neighborhood"]["arguments"]
    assert an["size"][0]["value"] == an["size"][1]["value"] == 256
    assert an["overlap"][0]["value"] == an["overlap"][1]["value"] == 32
    run = an["process"]["process_graph"]["runudf1"]["arguments"]
    assert run["runtime"] == runtime
    ctx = run["context"]
    assert (ctx["model"], ctx["resolution"], ctx["mode"], ctx["overlap"], ctx["size"]) == (
        "s2sr-10m-10band", 10.0, mode, 32, 256)
    from udf.contract import parse_context

    assert parse_context(ctx).resolution == 10.0
    same = nodes(build_process_graph(**AOI, model="s2sr-10m-10band", mode=mode))  # the model's own resolution
    assert same["apply_neighborhood"]["arguments"]["process"]["process_graph"]["runudf1"]["arguments"][
        "context"] == ctx


def test_graph_resolution_picks_or_checks_the_model(pkg):
    from udf.process_graph import graph_model

    assert graph_model(None, resolution=10) == graph_model(None, "SENTINEL2_L1C", resolution=10.0) == "s2sr-10m-10band"
    assert graph_model(None, resolution=5) == graph_model(None) == "s2sr-x2-10band"
    assert graph_model("s2sr-x2-rgbn", resolution=5) == "s2sr-x2-rgbn"
    with pytest.raises(ValueError, match="model 's2sr-x2-10band' outputs 5 m, resolution asks 10 m"):
        build_process_graph(**AOI, model="s2sr-x2-10band", resolution=10)
    with pytest.raises(ValueError, match="model 'tiny-edsr-x2' outputs 5 m, resolution asks 10 m"):
        build_process_graph(**AOI, model=pkg, resolution=10)
    with pytest.raises(ValueError, match="model 's2sr-misr-x2' outputs 5 m, resolution asks 10 m"):
        build_process_graph(**AOI, misr=True, resolution=10)
    with pytest.raises(ValueError, match="no shipped model outputs 7 m: resolutions offered 5, 10"):
        build_process_graph(**AOI, resolution=7)
    misr = nodes(build_process_graph(**AOI, misr=True, resolution=5))  # the multi-image UDF has no resolution key
    assert "resolution" not in misr["apply_neighborhood"]["arguments"]["process"]["process_graph"]["runudf1"][
        "arguments"]["context"]


def test_graph_with_a_connection_binds_to_it(pkg):
    from openeo.rest.datacube import DataCube

    calls = []

    class FakeConnection:  # records what the real client would be asked; no network
        def load_collection(self, collection_id, **kwargs):
            calls.append((collection_id, kwargs["bands"]))
            return DataCube.load_collection(collection_id, connection=None, **kwargs)

    build_process_graph(**AOI, model=pkg, connection=FakeConnection())
    assert calls == [("SENTINEL2_L2A", ["B02", "B03", "B04", "B08"]),
                     ("SENTINEL2_L2A", ["B05", "B06", "B07", "B8A", "B11", "B12", "SCL"])]


@pytest.mark.parametrize(
    "change, words",
    [
        (dict(west=6.0), ["west < east"]),
        (dict(north=100.0), ["south < north"]),
        (dict(start="2024-13-01"), ["start must be a date"]),
        (dict(end="2024-06-01"), ["before end"]),
        (dict(format="PNG"), ["GTiff, netCDF"]),
        (dict(mode="bicubic"), ["resampled, upscale"]),
        (dict(overlap=0), ["smaller than the 12 px", "overlap=16"]),
        (dict(extra_bands=("B02",)), ["already a model band"]),
    ],
)
def test_bad_graph_arguments(pkg, change, words):
    args = {**AOI, "model": pkg, **change}
    with pytest.raises(ValueError) as e:
        build_process_graph(**args)
    for w in words:
        assert w in str(e.value)


def test_job_options():
    assert job_options() == {"executor-memory": "2G", "executor-memoryOverhead": "1G", "python-memory": "4G"}
    opts = job_options(archives=["https://h/a.zip#s2sr_code"], python_memory="6G")
    assert opts["udf-dependency-archives"] == ["https://h/a.zip#s2sr_code"] and opts["python-memory"] == "6G"
    with pytest.raises(ValueError, match="URL#folder"):
        job_options(archives=["https://h/a.zip"])


def test_neighborhood_covers_the_post_processing_the_udf_checks(pkg, tmp_path):
    """The graph's overlap is the margin the UDF's predictor uses (network + coarse-band projection): the UDF's own
    check (check_chunk) stays silent on the chunks the graph asks for."""
    import shutil
    import warnings

    from sr_core.inference.cube import MODES, TilingWarning, check_chunk, required_overlap, reset_warnings
    from sr_core.models import load_card, load_predictor

    pp = tmp_path / "tiny-pp-x2"
    shutil.copytree(pkg, pp)
    spec = json.loads((pp / "card.json").read_text())
    spec["postprocess"] = {"coarse_projection": {"bands": ["B05", "B06", "B07", "B8A", "B11", "B12"], "factor": 2,
                                                 "lam": 0.02, "taps": 3}}
    (pp / "card.json").write_text(json.dumps(spec))
    c = load_card(pp, verify=False)
    pred = load_predictor(pp, engine="torch")
    assert pred.margin > c.margin  # the projection reads further than the network
    for mode in MODES:
        size, overlap = neighborhood_for(c, mode)
        assert overlap >= required_overlap(pred, mode) and overlap % 16 == 0 and size >= 2 * overlap
        reset_warnings()
        with warnings.catch_warnings():
            warnings.simplefilter("error", TilingWarning)
            check_chunk(pred, mode, (size + 2 * overlap, size + 2 * overlap), overlap)
        an = nodes(build_process_graph(**AOI, model=pp, mode=mode))["apply_neighborhood"]["arguments"]
        assert an["overlap"][0]["value"] == overlap and an["size"][0]["value"] == size
    with pytest.raises(ValueError, match=f"smaller than the {required_overlap(pred, 'resampled')} px"):
        neighborhood_for(c, "resampled", overlap=required_overlap(pred, "resampled") - 1)


@pytest.mark.parametrize(
    "model, resampled, upscale",
    [
        ("s2sr-x2-10band", (512, 64), (256, 32)),  # margin 27 (network 26 + the non-negativity bound's 1)
        ("s2sr-misr-x2", (512, 112), (256, 64)),
        ("s2sr-x4-rgbn", (1024, 64), (256, 16)),
        ("s2sr-10m-10band", (256, 32), (256, 32)),  # scale 1: both modes on the 10 m grid, margin 29
    ],
)
def test_shipped_models_neighborhoods(model, resampled, upscale):
    from sr_core.models import list_models, load_card

    if model not in list_models():
        pytest.skip(f"{model} not shipped")
    c = load_card(model, verify=False)
    assert neighborhood_for(c, "resampled") == resampled and neighborhood_for(c, "upscale") == upscale


# ------------------------------------------------------------------------------------------------------------
# every option checked before a graph exists
# ------------------------------------------------------------------------------------------------------------

NEXT_YEAR = str(_dt.date.today().year + 1)


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(threads=-1), r"^threads must be an integer from 1 to 1024 or None, got -1$"),
        (dict(threads=0), r"^threads must be an integer from 1 to 1024 or None, got 0$"),
        (dict(threads=True), r"^threads must be an integer from 1 to 1024 or None, got True$"),
        (dict(threads=2.5), r"^threads must be an integer from 1 to 1024 or None, got 2\.5$"),
        (dict(threads=10**12), r"^threads must be an integer from 1 to 1024 or None, got 1000000000000$"),
        (dict(misr=True, anchor="garbage"), r"^anchor must be 'clearest', 'latest', 'first', a date index"),
        (dict(misr=True, anchor="2024-07-01"), r"^anchor date 2024-07-01 is outside the dates \[2024-06-01, "
                                               r"2024-06-11\)$"),
        (dict(misr=True, anchor="2024-6-3"), r"^anchor must be"),
        (dict(misr=True, anchor=True), r"^anchor must be"),
        (dict(extra_bands=("B99",)), r"^extra band 'B99' is not a band of SENTINEL2_L2A; bands: B01, "),
        (dict(extra_bands=("scl",)), r"^extra band 'scl' is not a band of SENTINEL2_L2A \(did you mean 'SCL'\?\)"),
        (dict(extra_bands=("SCL", "SCL")), r"^extra band 'SCL' is named twice$"),
        (dict(extra_bands="SCL"), r"^extra_bands must be a list of band names, got 'SCL'$"),
        (dict(extra_bands=("B10",)), r"^extra band 'B10' is not a band of SENTINEL2_L2A"),  # L1C only
        (dict(collection="SENTINEL2_L1C"), r"^extra band 'SCL' is not a band of SENTINEL2_L1C"),
        (dict(start="2014-12-01", end="2015-01-01"), r"^start 2014-12-01 is before 2017-03-28: SENTINEL2_L2A "
                                                     r"has no data before that date; SENTINEL2_L1C starts"),
        (dict(start="2016-06-01", end="2016-07-01"), r"^start 2016-06-01 is before 2017-03-28"),
        (dict(start="2015-01-01", end="2015-07-01", collection="SENTINEL2_L1C", extra_bands=()),
         r"^start 2015-01-01 is before 2015-06-23: SENTINEL2_L1C has no data before that date$"),
        (dict(start="2015-01-01", end="2015-07-01", collection="OTHER_S2", extra_bands=()),
         r"^start 2015-01-01 is before 2015-06-23: Sentinel-2 has no data \(Sentinel-2A launch\)"),
        (dict(start=f"{NEXT_YEAR}-01-01", end=f"{NEXT_YEAR}-02-01"), rf"^start {NEXT_YEAR}-01-01 is in the future"),
        (dict(end="2024-05-01"), r"^start \(2024-06-01\) must be before end"),
        (dict(east=4.0), r"west < east"),
        (dict(south=-91.0), r"-90 <= south < north <= 90"),
        (dict(size=24), r"^size must be a multiple of 16 pixels, got 24$"),
        (dict(size=0), r"size must be an integer >= 1, got 0"),
        (dict(overlap=-16), r"^overlap must be an integer number of pixels, got -16$"),
        (dict(overlap=24), r"^overlap must be a multiple of 16 pixels, got 24$"),
    ],
)
def test_every_graph_option_is_checked(pkg, change, match):
    with pytest.raises(ValueError, match=match):
        build_process_graph(**{**AOI, "model": pkg, **change})


def test_valid_options_at_the_edges_are_accepted(pkg):
    build_process_graph(**{**AOI, "start": "2017-03-28", "end": "2017-04-01"}, model=pkg)
    build_process_graph(**{**AOI, "start": "2015-06-23", "end": "2015-07-01"}, model=pkg,
                        collection="SENTINEL2_L1C", extra_bands=["CLM", "B10"])
    for anchor, context in (("latest", "latest"), ("3", 3), (-1, -1), ("2024-06-01", "2024-06-01")):
        cube = build_process_graph(**AOI, model=pkg, misr=True, anchor=anchor, threads=1)
        udf = nodes(cube)["apply_neighborhood"]["arguments"]["process"]["process_graph"]["runudf1"]
        assert udf["arguments"]["context"]["anchor"] == context


def test_check_anchor_and_default_extra_bands():
    assert check_anchor(None) is None and check_anchor("first") == "first" and check_anchor(" 2 ") == 2
    assert check_anchor("2024-06-10", ["2024-06-01", "2024-06-11"]) == "2024-06-10"
    with pytest.raises(ValueError, match="outside the dates"):
        check_anchor("2024-06-11", ["2024-06-01", "2024-06-11"])  # the end is exclusive
    assert default_extra_bands("SENTINEL2_L2A") == ("SCL",) and default_extra_bands("SENTINEL2_L1C") == ()
    assert default_extra_bands("OTHER") == ("SCL",)
