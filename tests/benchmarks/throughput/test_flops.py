"""benchmarks/throughput/flops.py: convolution FLOPs of an ONNX graph against closed forms and torch's counter."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.throughput.flops import conv_flops_onnx


def test_conv_flops_onnx_equals_closed_form_and_torch_counter(pkg):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from sr_core.models import load_torch_model

    model, _ = load_torch_model(pkg)
    n, h, w = 2, 20, 24
    got = conv_flops_onnx(pkg / "model.onnx", (n, 10, h, w))
    # S2Fast's own closed form (head, body, tail convs + the 5x5 depthwise bicubic base) per LR pixel
    assert got["total"] == model.net.flops_per_lr_pixel() * n * h * w
    # an independent counter: torch's dispatch-level FLOP counter on the eager model
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(torch.rand(n, 10, h, w))
    assert got["total"] == fc.get_total_flops()
    # the bicubic conv follows a dynamic Pad: its shape needs the ONNX Runtime run
    assert "ONNX Runtime" in got["method"]
    assert sum(d["flops"] for d in got["nodes"]) == got["total"]
    with pytest.raises(ValueError, match="allow_run"):
        conv_flops_onnx(pkg / "model.onnx", (1, 10, 16, 16), allow_run=False)
    with pytest.raises(ValueError, match="dims"):
        conv_flops_onnx(pkg / "model.onnx", (10, 16, 16))


def test_conv_flops_onnx_grouped_strided_and_transposed():
    from onnx import TensorProto, helper, numpy_helper

    w1 = numpy_helper.from_array(np.zeros((6, 2, 3, 3), np.float32), "w1")  # Cin 4, groups 2
    w2 = numpy_helper.from_array(np.zeros((6, 3, 2, 2), np.float32), "w2")  # ConvTranspose: Cin 6, Cout 3
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["y"], group=2, strides=[2, 2], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("ConvTranspose", ["y", "w2"], ["z"], strides=[2, 2], kernel_shape=[2, 2]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, "h", "w"])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], initializer=[w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    got = conv_flops_onnx(model, (3, 4, 10, 12))
    out_h, out_w = (10 + 2 - 3) // 2 + 1, (12 + 2 - 3) // 2 + 1  # 5 x 6
    conv = 2 * (4 // 2) * 3 * 3 * 6 * 3 * out_h * out_w
    convt = 2 * 6 * 3 * 2 * 2 * 3 * out_h * out_w  # per INPUT pixel of the transposed conv
    assert [d["flops"] for d in got["nodes"]] == [conv, convt]
    assert got["total"] == conv + convt
    assert got["method"] == "onnx shape inference"
