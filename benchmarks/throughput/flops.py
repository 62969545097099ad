"""Convolution FLOPs of an ONNX graph (the numerator of the achieved GFLOP/s)."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from sr_core.checks import check_int

__all__ = ["conv_flops_onnx"]


def _dims(vi: Any) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]


def conv_flops_onnx(model: Any, input_shape: Sequence[int], *, allow_run: bool = True) -> dict[str, Any]:
    """Convolution FLOPs of an ONNX model for one input of ``input_shape`` (``(N, C, H, W)``).

    Counted: every ``Conv`` node, ``2 * (Cin / groups) * kh * kw * Cout`` per output pixel (a multiply-add is
    2 FLOPs; bias additions are not counted), and every ``ConvTranspose`` node, ``2 * Cin * (Cout / groups) *
    kh * kw`` per input pixel. Everything else (activations, pixel shuffle, additions) is left out: it is
    < 1 % for these networks. Shapes come from ONNX shape inference with the input dims fixed; where it
    cannot resolve a node (dynamic ``Pad``, ...) and ``allow_run``, the missing shapes are read from one
    ONNX Runtime run on zeros of ``input_shape``. ``model`` is a path or an ``onnx.ModelProto`` with a
    single input. Returns ``{"total": int, "nodes": [{name, op, flops}], "method": str}``.
    """
    import onnx
    from onnx import numpy_helper, shape_inference

    proto = onnx.load(os.fspath(model)) if not isinstance(model, onnx.ModelProto) else copy.deepcopy(model)
    init_names = {t.name for t in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in init_names]
    if len(inputs) != 1:
        raise ValueError(f"conv_flops_onnx needs a model with one input, got {[i.name for i in inputs]}")
    shape = [check_int("input_shape", int(v), 1) for v in input_shape]
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != len(shape):
        raise ValueError(f"input_shape {tuple(shape)} has {len(shape)} dims, the model input has {len(dims)}")
    for d, v in zip(dims, shape):
        if d.HasField("dim_value") and d.dim_value != v:
            raise ValueError(f"input_shape {tuple(shape)} contradicts the model input shape {_dims(inputs[0])}")
        d.dim_value = v
    inferred = shape_inference.infer_shapes(proto, strict_mode=False, data_prop=True)
    shapes: dict[str, list[int | None]] = {}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        shapes[vi.name] = _dims(vi)
    for t in inferred.graph.initializer:
        shapes[t.name] = list(t.dims)
    for n in inferred.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    shapes[n.output[0]] = list(numpy_helper.to_array(a.t).shape)
    convs = [n for n in inferred.graph.node if n.op_type in ("Conv", "ConvTranspose")]

    def known(name: str) -> bool:
        s = shapes.get(name)
        return s is not None and len(s) >= 3 and all(v is not None for v in s)

    method = "onnx shape inference"
    missing = sorted({t for n in convs for t in (n.input[0], n.input[1], n.output[0]) if not known(t)})
    if missing:
        if not allow_run:
            raise ValueError(f"shape inference left the shapes of {missing} unknown (allow_run=False)")
        import onnxruntime as ort

        run_model = copy.deepcopy(proto)
        have = {o.name for o in run_model.graph.output}
        for name in missing:
            if name not in have and name not in init_names:
                run_model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
        sess = ort.InferenceSession(run_model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        outs = sess.run(None, {inputs[0].name: np.zeros(shape, dtype=np.float32)})
        for name, arr in zip(names, outs):
            shapes[name] = list(np.shape(arr))
        method = "onnx shape inference + one ONNX Runtime run for dynamic shapes"
    nodes = []
    total = 0
    for n in convs:
        group = 1
        for a in n.attribute:
            if a.name == "group":
                group = int(a.i)
        w = shapes[n.input[1]]
        k = int(np.prod(w[2:]))
        if n.op_type == "Conv":  # weight (Cout, Cin/group, kh, kw)
            pixels = int(np.prod(shapes[n.output[0]][2:])) * shapes[n.output[0]][0]
            flops = 2 * w[0] * w[1] * k * pixels
        else:  # ConvTranspose weight (Cin, Cout/group, kh, kw)
            pixels = int(np.prod(shapes[n.input[0]][2:])) * shapes[n.input[0]][0]
            flops = 2 * w[0] * w[1] * k * pixels
        total += flops
        nodes.append({"name": n.name, "op": n.op_type, "group": group, "weight": list(w), "flops": int(flops)})
    return {"total": int(total), "nodes": nodes, "method": method}
