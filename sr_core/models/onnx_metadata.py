"""What an ONNX file says about itself, read and written without the ``onnx`` package: its ``metadata_props``
and the shapes of its graph inputs and outputs.

An ONNX file is one serialized ``ModelProto`` (protocol buffers): :func:`onnx_info` walks its wire format,
skipping the graph's nodes and weights by their lengths, so reading a 1 MB file's metadata takes a millisecond and
needs neither ``onnx`` nor ONNX Runtime (back-ends run without the former). :func:`with_metadata` appends
``metadata_props`` entries to the serialized model: protocol buffers merge repeated fields written after the
rest, so the network's bytes stay exactly as they were, the file only gains a tail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["OnnxInfo", "ValueInfo", "metadata_bytes", "onnx_info", "with_metadata"]

# field numbers of onnx.proto (ModelProto, GraphProto, ValueInfoProto, TypeProto, TensorShapeProto)
_MODEL_GRAPH, _MODEL_METADATA = 7, 14
_GRAPH_INPUT, _GRAPH_OUTPUT = 11, 12
_VALUE_NAME, _VALUE_TYPE = 1, 2
_TYPE_TENSOR = 1
_TENSOR_SHAPE = 2
_SHAPE_DIM = 1
_DIM_VALUE, _DIM_PARAM = 1, 2
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


@dataclass(frozen=True)
class ValueInfo:
    """A graph input or output: its name and dims (an int for a fixed size, a str for a named dynamic one,
    None when unknown)."""

    name: str
    dims: tuple[int | str | None, ...]


@dataclass(frozen=True)
class OnnxInfo:
    """``metadata`` (``metadata_props`` as a dict), ``inputs`` and ``outputs`` of the graph."""

    metadata: dict[str, str] = field(default_factory=dict)
    inputs: tuple[ValueInfo, ...] = ()
    outputs: tuple[ValueInfo, ...] = ()


class _WireError(ValueError):
    pass


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _WireError("truncated or malformed varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview, start: int, end: int):
    """``(field number, wire type, value)`` of a message in ``buf[start:end]``: an int for varints, a
    ``(start, end)`` span for length-delimited fields, None for fixed-size ones."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value
        elif wire == _LEN:
            n, pos = _varint(buf, pos, end)
            if pos + n > end:
                raise _WireError("a field runs past the end of the file")
            yield number, wire, (pos, pos + n)
            pos += n
        elif wire in (_I64, _I32):
            pos += 8 if wire == _I64 else 4
            if pos > end:
                raise _WireError("a field runs past the end of the file")
            yield number, wire, None
        else:
            raise _WireError(f"wire type {wire} (field {number}) is not valid in an ONNX file")


def _sub(buf: memoryview, span: tuple[int, int], number: int) -> list[tuple[int, int]]:
    return [v for n, w, v in _fields(buf, *span) if n == number and w == _LEN]


def _text(buf: memoryview, span: tuple[int, int]) -> str:
    return bytes(buf[span[0] : span[1]]).decode("utf-8")


def _value_info(buf: memoryview, span: tuple[int, int]) -> ValueInfo:
    name = ""
    dims: list[int | str | None] = []
    for n, w, v in _fields(buf, *span):
        if n == _VALUE_NAME and w == _LEN:
            name = _text(buf, v)
        elif n == _VALUE_TYPE and w == _LEN:
            for tensor in _sub(buf, v, _TYPE_TENSOR):
                for shape in _sub(buf, tensor, _TENSOR_SHAPE):
                    for dim in _sub(buf, shape, _SHAPE_DIM):
                        d: int | str | None = None
                        for dn, dw, dv in _fields(buf, *dim):
                            if dn == _DIM_VALUE and dw == _VARINT:
                                d = dv - (1 << 64) if dv >= 1 << 63 else dv
                            elif dn == _DIM_PARAM and dw == _LEN:
                                d = _text(buf, dv)
                        dims.append(d)
    return ValueInfo(name, tuple(dims))


def onnx_info(data: bytes) -> OnnxInfo:
    """The metadata and the graph inputs / outputs of a serialized ONNX model; ``ValueError`` when ``data`` is not
    one (truncated, another format)."""
    buf = memoryview(data)
    metadata: dict[str, str] = {}
    inputs: list[ValueInfo] = []
    outputs: list[ValueInfo] = []
    graphs = 0
    try:
        for n, w, v in _fields(buf, 0, len(buf)):
            if n == _MODEL_METADATA and w == _LEN:
                key = value = ""
                for en, ew, ev in _fields(buf, *v):
                    if en == _ENTRY_KEY and ew == _LEN:
                        key = _text(buf, ev)
                    elif en == _ENTRY_VALUE and ew == _LEN:
                        value = _text(buf, ev)
                metadata[key] = value
            elif n == _MODEL_GRAPH and w == _LEN:
                graphs += 1
                for gn, gw, gv in _fields(buf, *v):
                    if gn in (_GRAPH_INPUT, _GRAPH_OUTPUT) and gw == _LEN:
                        (inputs if gn == _GRAPH_INPUT else outputs).append(_value_info(buf, gv))
    except (_WireError, UnicodeDecodeError) as err:
        raise ValueError(f"not an ONNX model: {err}") from None
    if graphs != 1 or not outputs:
        raise ValueError("not an ONNX model: no graph with outputs")
    return OnnxInfo(metadata, tuple(inputs), tuple(outputs))


def _encode_varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | _LEN) + _encode_varint(len(payload)) + payload


def with_metadata(data: bytes, entries: dict[str, str]) -> bytes:
    """``data`` (a serialized ONNX model) followed by ``metadata_props`` entries ``entries``: the same model with
    that metadata, every byte of ``data`` unchanged. A key the model already has is a ``ValueError``."""
    have = onnx_info(data).metadata
    clash = sorted(set(entries) & set(have))
    if clash:
        raise ValueError(f"the ONNX model already has metadata {', '.join(clash)}")
    return bytes(data) + metadata_bytes(entries)


def metadata_bytes(entries: dict[str, str]) -> bytes:
    """The serialized ``metadata_props`` entries ``entries``: what :func:`with_metadata` appends."""
    return b"".join(
        _len_field(_MODEL_METADATA, _len_field(_ENTRY_KEY, k.encode("utf-8")) + _len_field(_ENTRY_VALUE,
                                                                                          v.encode("utf-8")))
        for k, v in entries.items()
    )
