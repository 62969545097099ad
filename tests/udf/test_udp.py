"""The user-defined process s2sr_superresolution and its APEx benchmark scenario (offline)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

pytest.importorskip("openeo")

from openeo.api.process import Parameter  # noqa: E402
from openeo.internal.graph_building import PGNode  # noqa: E402
from openeo.internal.process_graph_visitor import ProcessGraphVisitor  # noqa: E402
from openeo.rest.datacube import DataCube  # noqa: E402

from sr_core.models import DEFAULT_MODEL, load_card  # noqa: E402
from udf import udp  # noqa: E402
from udf.process_graph import build_process_graph, udf_code  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BBOX = {"west": 14.50, "south": 53.40, "east": 14.52, "north": 53.41}
DATES = ["2023-06-01", "2023-06-11"]


def _substitute(node, values: dict):
    """``node`` with every UDP parameter reference replaced by its value (callback data/context kept)."""
    if isinstance(node, dict):
        if set(node) == {"from_parameter"} and node["from_parameter"] in values:
            return copy.deepcopy(values[node["from_parameter"]])
        return {k: _substitute(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, values) for v in node]
    return node


def _run_udf_node(graph: dict) -> dict:
    (nb,) = [n for n in graph.values() if n["process_id"] == "apply_neighborhood"]
    (run,) = nb["arguments"]["process"]["process_graph"].values()
    assert run["process_id"] == "run_udf"
    return nb, run


def test_udp_declares_exactly_the_parameters_its_graph_reads():
    d = udp.build_udp()
    assert d["id"] == udp.UDP_ID == "s2sr_superresolution"
    names = [p["name"] for p in d["parameters"]]
    assert names == ["spatial_extent", "temporal_extent", "collection", "model"]
    assert udp.from_parameters(d["process_graph"]) == set(names)
    for p in d["parameters"]:
        assert p["description"] and p["schema"], p["name"]
        Parameter(**p)  # the client's own parameter type accepts every declaration
    by_name = {p["name"]: p for p in d["parameters"]}
    assert by_name["collection"]["default"] == "SENTINEL2_L2A"
    assert by_name["collection"]["schema"]["enum"] == ["SENTINEL2_L2A"]  # the default extra band SCL is L2A only
    both = {p["name"]: p for p in udp.build_udp(extra_bands=())["parameters"]}
    assert both["collection"]["schema"]["enum"] == list(udp.COLLECTIONS)
    assert by_name["model"]["default"] == DEFAULT_MODEL and by_name["model"]["schema"]["enum"][0] == DEFAULT_MODEL
    assert "default" not in by_name["spatial_extent"] and "default" not in by_name["temporal_extent"]
    assert d["returns"]["schema"] == {"type": "object", "subtype": "datacube"}
    assert not any(n["process_id"] == "save_result" for n in d["process_graph"].values())
    json.dumps(d)  # JSON-ready


def test_udp_graph_is_valid_for_the_client_and_embeds_the_udf_file():
    d = udp.build_udp()
    graph = d["process_graph"]
    results = [k for k, n in graph.items() if n.get("result")]
    assert len(results) == 1
    ProcessGraphVisitor.dereference_from_node_arguments(copy.deepcopy(graph))  # every from_node resolves
    nb, run = _run_udf_node(graph)
    assert run["arguments"]["udf"] == udf_code("sr") == (REPO / "udf" / "sr_udf.py").read_text()
    assert run["arguments"]["runtime"] == "Python"
    assert run["arguments"]["context"] == {"from_parameter": "context"}
    ctx = nb["arguments"]["context"]
    assert ctx["model"] == {"from_parameter": "model"} and ctx["mode"] == "resampled"
    assert ctx["size"] == nb["arguments"]["size"][0]["value"] and ctx["overlap"] == nb["arguments"]["overlap"][0]["value"]


def test_udp_with_its_parameters_bound_is_the_graph_of_s2sr_graph():
    # the UDP is s2sr graph's tested graph with four values turned into parameters (and no save_result)
    d = udp.build_udp()
    bound = _substitute(d["process_graph"], {
        "spatial_extent": BBOX, "temporal_extent": DATES, "collection": "SENTINEL2_L2A", "model": DEFAULT_MODEL,
    })
    ref = build_process_graph(**BBOX, start=DATES[0], end=DATES[1]).flat_graph()
    (save,) = [k for k, n in ref.items() if n["process_id"] == "save_result"]
    last = ref.pop(save)["arguments"]["data"]["from_node"]
    ref[last]["result"] = True
    # s2sr graph passes the context to run_udf directly; the UDP hands it over through apply_neighborhood
    nb, run = _run_udf_node(bound)
    nb_ref, run_ref = _run_udf_node(ref)
    assert nb["arguments"].pop("context") == run_ref["arguments"]["context"]
    run["arguments"]["context"] = run_ref["arguments"]["context"]
    assert bound == ref


def test_calling_the_udp_from_a_file_namespace_gives_a_client_graph(tmp_path):
    path = tmp_path / "s2sr_superresolution.json"
    path.write_text(json.dumps(udp.build_udp()))
    # what connection.datacube_from_process(UDP_ID, namespace=path, ...) builds, without a connection
    cube = DataCube(PGNode(udp.UDP_ID, arguments={"spatial_extent": BBOX, "temporal_extent": DATES},
                           namespace=str(path)), connection=None)
    (node,) = cube.flat_graph().values()
    assert node["process_id"] == udp.UDP_ID and node["namespace"] == str(path)
    assert node["arguments"] == {"spatial_extent": BBOX, "temporal_extent": DATES}


def test_udp_modes_overlap_and_job_options():
    card = load_card(None, verify=False)
    up = udp.build_udp(mode="upscale", archives=["https://h/s2sr-udf-code.zip#s2sr_code"])
    nb, run = _run_udf_node(up["process_graph"])
    assert run["arguments"]["runtime"] == "Python-Jep"
    assert not any(n["process_id"] == "resample_spatial" for n in up["process_graph"].values())
    assert up["default_job_options"]["udf-dependency-archives"] == ["https://h/s2sr-udf-code.zip#s2sr_code"]
    assert "default job options" in up["description"]
    plain = udp.build_udp()
    assert "udf-dependency-archives" not in plain["default_job_options"]
    assert "s2sr udf-archive" in plain["description"]
    from udf.process_graph import neighborhood_for

    size, overlap = neighborhood_for(card, "resampled")
    nb, _ = _run_udf_node(plain["process_graph"])
    assert nb["arguments"]["overlap"][0]["value"] == overlap and nb["arguments"]["size"][0]["value"] == size
    with pytest.raises(ValueError, match="overlap"):
        udp.build_udp(overlap=16)


def test_compatible_models_share_bands_scale_and_fit_the_overlap(tmp_path):
    from udf.testing import make_package

    card = load_card(None, verify=False)
    from udf.process_graph import neighborhood_for

    _, overlap = neighborhood_for(card, "resampled")
    names = udp.compatible_models(None, "resampled", overlap)
    assert names[0] == card.name
    for n in names[1:]:
        other = load_card(n, verify=False)
        assert list(other.bands) == list(card.bands) and other.scale == card.scale
    assert "s2sr-x4-rgbn" not in names  # other bands and scale
    tiny = make_package(tmp_path / "tiny", arch="edsr", scale=2)
    assert udp.compatible_models(tmp_path / "tiny", "resampled", 96)[0] == tiny.name


def test_benchmark_scenario_follows_the_apex_format():
    (sc,) = udp.benchmark_scenario(namespace="https://example.org/s2sr_superresolution.json", **BBOX,
                                   start=DATES[0], end=DATES[1])
    for key in ("id", "type", "backend", "process_graph"):  # required by APEx's benchmark_scenario schema
        assert key in sc
    assert sc["type"] == "openeo" and isinstance(sc["job_options"], dict)
    graph = sc["process_graph"]
    ProcessGraphVisitor.dereference_from_node_arguments(copy.deepcopy(graph))
    (call,) = [n for n in graph.values() if n["process_id"] == udp.UDP_ID]
    assert call["namespace"] == "https://example.org/s2sr_superresolution.json"
    declared = {p["name"]: p for p in udp.build_udp()["parameters"]}
    assert set(call["arguments"]) <= set(declared)
    assert {n for n, p in declared.items() if "default" not in p} <= set(call["arguments"])
    assert call["arguments"]["spatial_extent"] == {**BBOX, "crs": "EPSG:4326"}
    (res,) = [n for n in graph.values() if n.get("result")]
    assert res["process_id"] == "save_result" and res["arguments"]["format"] == "GTiff"
    with pytest.raises(ValueError, match="namespace"):
        udp.benchmark_scenario(namespace="s2sr.json", **BBOX, start=DATES[0], end=DATES[1])
    with pytest.raises(ValueError, match="start"):
        udp.benchmark_scenario(namespace="https://e.org/u.json", **BBOX, start=DATES[1], end=DATES[0])


def test_a_udp_for_the_10m_model_stays_on_the_10m_grid_and_fixes_its_resolution():
    """``s2sr udp --model s2sr-10m-10band``: the model parameter offers the models of the same bands, scale and
    grid (so of the same output resolution), which the context holds for the UDF to check; no resample_spatial."""
    d = udp.build_udp(model="s2sr-10m-10band")
    by_name = {p["name"]: p for p in d["parameters"]}
    assert [p["name"] for p in d["parameters"]] == ["spatial_extent", "temporal_extent", "collection", "model"]
    assert by_name["model"]["default"] == "s2sr-10m-10band"
    assert by_name["model"]["schema"]["enum"] == ["s2sr-10m-10band"]
    assert "to 10 m" in d["summary"] and "keeps the 10 m grid" in by_name["spatial_extent"]["description"]
    assert not any(n["process_id"] == "resample_spatial" for n in d["process_graph"].values())
    nb, _ = _run_udf_node(d["process_graph"])
    ctx = nb["arguments"]["context"]
    assert ctx["model"] == {"from_parameter": "model"} and ctx["resolution"] == 10.0
    assert nb["arguments"]["size"][0]["value"] == 256 and nb["arguments"]["overlap"][0]["value"] == 32
    assert _run_udf_node(udp.build_udp()["process_graph"])[0]["arguments"]["context"]["resolution"] == 5.0


def test_the_published_udp_and_scenario_in_the_repo_are_current():
    published = json.loads((REPO / "apex" / "openeo_udp" / "s2sr_superresolution.json").read_text())
    assert published == udp.build_udp()
    (sc,) = json.loads((REPO / "apex" / "benchmark_scenarios" / "s2sr_superresolution.json").read_text())
    (call,) = [n for n in sc["process_graph"].values() if n["process_id"] == udp.UDP_ID]
    (fresh,) = udp.benchmark_scenario(namespace=call["namespace"], **BBOX, start=DATES[0], end=DATES[1])
    assert sc == fresh
