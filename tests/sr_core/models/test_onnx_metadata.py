"""sr_core.models.onnx_metadata: an ONNX file's metadata and graph shapes read and written without ``onnx``."""

from __future__ import annotations

import pytest

from sr_core.models import WEIGHTS_DIR
from sr_core.models.onnx_metadata import metadata_bytes, onnx_info, with_metadata

onnx = pytest.importorskip("onnx")

SHIPPED = sorted(p for p in WEIGHTS_DIR.glob("*/model.onnx"))


def _dims(value_info) -> tuple:
    return tuple(d.dim_value if d.HasField("dim_value") else d.dim_param if d.HasField("dim_param") else None
                 for d in value_info.type.tensor_type.shape.dim)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.parent.name)
def test_onnx_info_reads_what_the_onnx_package_reads(path):
    data = path.read_bytes()
    info = onnx_info(data)
    model = onnx.load_from_string(data)
    assert info.metadata == {p.key: p.value for p in model.metadata_props}
    assert [(v.name, v.dims) for v in info.inputs] == [(v.name, _dims(v)) for v in model.graph.input]
    assert [(v.name, v.dims) for v in info.outputs] == [(v.name, _dims(v)) for v in model.graph.output]


def test_with_metadata_appends_and_keeps_every_byte(tmp_path):
    data = SHIPPED[0].read_bytes()
    entries = {"a.key": "{\"x\": [1, 2]}", "ünïcode": "é" * 300}
    new = with_metadata(data, entries)
    assert new[: len(data)] == data and new[len(data):] == metadata_bytes(entries)
    model = onnx.load_from_string(new)
    assert {p.key: p.value for p in model.metadata_props} == {**onnx_info(data).metadata, **entries}
    assert onnx_info(new).metadata == {**onnx_info(data).metadata, **entries}
    assert model.graph == onnx.load_from_string(data).graph
    with pytest.raises(ValueError, match="already has metadata a.key"):
        with_metadata(new, {"a.key": "again"})


def test_what_is_not_an_onnx_model_is_a_value_error():
    data = SHIPPED[0].read_bytes()
    for bad in (data[: len(data) // 2], b"", b"hello, not ONNX\n", (SHIPPED[0].parent / "model.pt").read_bytes()):
        with pytest.raises(ValueError, match="not an ONNX model"):
            onnx_info(bad)
