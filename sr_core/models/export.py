"""ONNX export of the networks (dynamic batch and spatial size), an ONNX Runtime parity check, and the writing of
a whole model package (:func:`save_model_package`)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sr_core.models.card import ModelCard, ModelFileError, render_card_markdown, sha256_file, stamp_onnx_contract
from sr_core.models.engines import ort_session_options

__all__ = ["DEFAULT_OPSET", "add_onnx_file", "check_onnx_parity", "export_onnx", "onnx_session", "save_model_package"]

DEFAULT_OPSET = 17


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    example: torch.Tensor | Sequence[torch.Tensor],
    *,
    input_names: Sequence[str] = ("lr",),
    output_names: Sequence[str] = ("sr",),
    opset_version: int = DEFAULT_OPSET,
    dynamic_dims: dict[str, dict[int, str]] | None = None,
) -> str:
    """Export ``model`` (put in eval mode) to ONNX at ``path``; returns the path.

    ``example`` is one input tensor or a sequence of them (one per entry of ``input_names``).
    By default every input has dynamic batch (dim 0) and spatial (last two) dims, and every output
    dynamic batch and spatial dims. The TorchScript-based exporter is used (``dynamo=False``): it is
    an order of magnitude faster to export than the dynamo path for these convolutional graphs and
    gives identical numerics (docs/decisions/2026-11-22-onnx-exporter.md).
    """
    if opset_version < 17:
        raise ValueError(f"opset_version must be >= 17 (LayerNorm, Resize semantics), got {opset_version}")
    args = (example,) if isinstance(example, torch.Tensor) else tuple(example)
    if len(args) != len(input_names):
        raise ValueError(f"{len(args)} example inputs for {len(input_names)} input_names {list(input_names)}")
    if dynamic_dims is None:
        dynamic_dims = {}
        for name, a in zip(input_names, args):
            dynamic_dims[name] = {0: "batch", a.ndim - 2: f"{name}_height", a.ndim - 1: f"{name}_width"}
        for name in output_names:
            dynamic_dims[name] = {0: "batch", -2: f"{name}_height", -1: f"{name}_width"}
    # The legacy exporter wants non-negative axes; resolve negative ones against a traced output.
    if any(k < 0 for d in dynamic_dims.values() for k in d):
        was_training = model.training
        model.eval()
        with torch.no_grad():
            outs = model(*args)
        model.train(was_training)
        outs = (outs,) if isinstance(outs, torch.Tensor) else tuple(outs)
        ndims = {n: o.ndim for n, o in zip(output_names, outs)}
        ndims.update({n: a.ndim for n, a in zip(input_names, args)})
        dynamic_dims = {
            n: {(k % ndims[n]): v for k, v in d.items()} for n, d in dynamic_dims.items()
        }
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                args,
                os.fspath(path),
                input_names=list(input_names),
                output_names=list(output_names),
                opset_version=opset_version,
                dynamic_axes=dynamic_dims,
                dynamo=False,
                do_constant_folding=True,
            )
    finally:
        model.train(was_training)
    return os.fspath(path)


def onnx_session(path: str | os.PathLike, threads: int | None = None):
    """An ONNX Runtime CPU session for ``path`` (``threads`` intra-op threads; None = runtime default)."""
    import onnxruntime as ort

    return ort.InferenceSession(os.fspath(path), sess_options=ort_session_options(threads),
                                providers=["CPUExecutionProvider"])


def check_onnx_parity(
    model: nn.Module,
    path: str | os.PathLike,
    inputs: torch.Tensor | Sequence[torch.Tensor],
    input_names: Sequence[str] = ("lr",),
) -> float:
    """Max abs difference between ONNX Runtime and eager outputs (first output) on ``inputs``."""
    args = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    sess = onnx_session(path, threads=1)
    feed = {n: a.detach().cpu().numpy() for n, a in zip(input_names, args)}
    got = sess.run(None, feed)[0]
    model.eval()
    with torch.no_grad():
        ref = model(*args)
    ref = ref[0] if isinstance(ref, (tuple, list)) else ref
    return float(np.abs(got.astype(np.float64) - ref.double().cpu().numpy()).max())


def save_model_package(
    model: nn.Module,
    card: ModelCard,
    out_dir: str | os.PathLike,
    *,
    export_onnx_file: bool = True,
    markdown: str | None = None,
) -> ModelCard:
    """Write ``model.pt``, ``model.onnx`` (carrying the card's contract, :func:`sr_core.models.stamp_onnx_contract`),
    ``card.json`` (with sha256) and ``card.md`` into ``out_dir``.

    ``model`` is an :class:`~sr_core.models.network.SRModel` (reflectance in, reflectance out); a card whose scale
    or receptive field is not the network's is refused."""
    for key in ("scale", "receptive_field"):
        if getattr(model, key, getattr(card, key)) != getattr(card, key):
            raise ModelFileError(f"model card {card.where}: field {key!r}: {getattr(card, key)!r}, but the network "
                                 f"has {getattr(model, key)!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    torch.save(
        {"arch": card.arch, "arch_kwargs": card.arch_kwargs, "state_dict": model.state_dict()}, out / "model.pt"
    )
    card.files = {"weights": "model.pt"}
    if export_onnx_file:
        example = torch.zeros(1, len(card.bands), 32, 32)
        export_onnx(model, out / "model.onnx", example, input_names=("lr",), output_names=("sr",))
        stamp_onnx_contract(card, out / "model.onnx")
        card.files["onnx"] = "model.onnx"
    card.sha256 = {f: sha256_file(out / f) for f in card.files.values()}
    card.write_json(out / "card.json")
    (out / "card.md").write_text(markdown if markdown is not None else render_card_markdown(card))
    return card


def add_onnx_file(card: ModelCard, out_dir: str | os.PathLike, name: str = "model.onnx") -> ModelCard:
    """Add the ONNX file ``name``, exported into the package folder ``out_dir`` apart from
    :func:`save_model_package` (the multi-image graphs), to the package: the card's contract written into it, the
    card's ``files`` and ``sha256`` updated, ``card.json`` and ``card.md`` rewritten."""
    out = Path(out_dir)
    stamp_onnx_contract(card, out / name)
    card.files["onnx"] = name
    card.sha256 = {f: sha256_file(out / f) for f in card.files.values()}
    card.write_json(out / "card.json")
    (out / "card.md").write_text(render_card_markdown(card))
    return card
