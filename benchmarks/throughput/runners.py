"""Engines ready to time: torch eager, ONNX Runtime and ``torch.compile``, on the CPU or a CUDA device."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sr_core.checks import check_int
from sr_core.models import load_card, load_torch_model, ort_session_options

__all__ = ["ENGINES", "PRECISIONS", "Runner", "SkipConfig", "make_runner"]

#: Engines: torch eager, ONNX Runtime, torch.compile (inductor).
ENGINES = ("torch", "onnx", "compile")
#: Precisions: fp32 everywhere, fp16 / bf16 autocast for the torch engines (fp16 on CUDA only).
PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass
class Runner:
    """One engine ready to run: ``fn(x)`` on a prepared input (numpy for ONNX, a host tensor for torch)."""

    engine: str
    device: str
    precision: str
    threads: int | None
    fn: Callable[[Any], Any]
    prepare: Callable[[np.ndarray], Any]
    to_numpy: Callable[[Any], np.ndarray]
    sync: Callable[[], None] | None = None
    notes: list[str] = field(default_factory=list)
    close: Callable[[], None] | None = None


class SkipConfig(Exception):
    """This configuration cannot run here (reason in the message): recorded, not fatal."""


def make_runner(
    folder: str | os.PathLike, *, engine: str, device: str = "cpu", precision: str = "fp32",
    threads: int | None = None, compile_mode: str | None = None,
) -> Runner:
    """A :class:`Runner` for the package in ``folder``: ``engine`` ``torch`` / ``onnx`` / ``compile``,
    ``device`` ``cpu`` / ``cuda``, ``precision`` ``fp32`` or (torch engines) ``fp16`` / ``bf16`` autocast.

    CPU torch engines set ``torch.set_num_threads(threads)`` (the caller restores it); ONNX Runtime gets
    ``intra_op_num_threads=threads``, ``inter_op_num_threads=1``. ``compile`` builds a fresh
    ``torch.compile(model, dynamic=False, mode=compile_mode)`` (inductor specialises its CPU kernels to the
    thread count, so one compiled model per thread count). CUDA: the input comes from pinned host memory, the
    output goes back into a pinned host buffer reused per output shape, both copies are inside the timed call.
    Raises :class:`SkipConfig` for combinations that cannot run (no CUDA, no weights file, fp16 ONNX, ...)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if threads is not None:
        threads = check_int("threads", threads, 1)
    folder = Path(folder)
    if engine == "onnx":
        return _onnx_runner(folder, device, precision, threads, load_card(folder, verify=True, role="onnx"))
    import torch

    card = load_card(folder, verify=False)
    if "weights" not in card.files:
        raise SkipConfig(f"model {card.name!r} ships no torch weights (card.json files: {sorted(card.files)})")
    if device == "cuda" and not torch.cuda.is_available():
        raise SkipConfig("CUDA is not available")
    if device == "cpu" and precision == "fp16":
        raise SkipConfig("fp16 autocast is not supported for CPU convolutions")
    model, card = load_torch_model(folder)
    dev = torch.device(device)
    model = model.to(dev).eval()
    notes: list[str] = []
    if threads is not None and device == "cpu":
        torch.set_num_threads(threads)
    net: Any = model
    if engine == "compile":
        torch._dynamo.reset()
        kwargs = {"dynamic": False}
        if compile_mode:
            kwargs["mode"] = compile_mode
        net = torch.compile(model, **kwargs)
        notes.append(f"torch.compile({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}); first call compiles")
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    saved_benchmark = torch.backends.cudnn.benchmark
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # autotuned conv algorithms: warm-up calls pay the search
        notes.append("cudnn.benchmark=True; timed call includes the host->device and device->host copies "
                     "(pinned host buffers)")
        if precision == "fp32" and torch.backends.cudnn.allow_tf32:
            notes.append("fp32 convolutions may run as TF32 (torch.backends.cudnn.allow_tf32=True)")

    def prepare(x: np.ndarray) -> Any:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return t.pin_memory() if device == "cuda" else t

    # CUDA output: copied into a pinned host buffer kept per shape, as a pipeline that streams tiles would do. A
    # fresh pageable tensor per call (``.cpu()``) would time the page faults of the host allocation instead
    # (docs/decisions/2026-12-06-cuda-timing-pinned-output.md).
    host_out: dict[tuple[int, ...], Any] = {}

    def fn(x: Any) -> Any:
        with torch.inference_mode():
            xd = x.to(dev, non_blocking=True) if device == "cuda" else x
            if dtype is not None:
                with torch.autocast(device_type=device, dtype=dtype):
                    y = net(xd)
            else:
                y = net(xd)
            if device != "cuda":
                return y
            buf = host_out.get(tuple(y.shape))
            if buf is None:
                buf = host_out[tuple(y.shape)] = torch.empty(tuple(y.shape), dtype=torch.float32, pin_memory=True)
            return buf.copy_(y.float(), non_blocking=True)  # complete once the timer synchronises

    def to_numpy(y: Any) -> np.ndarray:
        if device == "cuda":
            torch.cuda.synchronize()
            return y.detach().float().cpu().numpy().copy()  # the pinned buffer is reused by the next call
        return y.detach().float().cpu().numpy()

    sync = torch.cuda.synchronize if device == "cuda" else None

    def close() -> None:
        torch.backends.cudnn.benchmark = saved_benchmark
        if engine == "compile":
            torch._dynamo.reset()
        if device == "cuda":
            torch.cuda.empty_cache()

    return Runner(engine, device, precision, threads, fn, prepare, to_numpy, sync, notes, close)


def _onnx_runner(folder: Path, device: str, precision: str, threads: int | None, card: Any) -> Runner:
    import onnxruntime as ort

    if precision != "fp32":
        raise SkipConfig("the ONNX files are fp32: no fp16/bf16 ONNX Runtime run")
    if "onnx" not in card.files:
        raise SkipConfig(f"model {card.name!r} ships no ONNX file")
    providers = ["CPUExecutionProvider"]
    notes: list[str] = []
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise SkipConfig("onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        notes.append("CUDAExecutionProvider; timed call includes the host<->device copies")
    opts = ort_session_options(threads)  # the options of the shipped Predictor
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(str(folder / card.files["onnx"]), sess_options=opts, providers=providers)
    if device == "cuda" and sess.get_providers()[0] != "CUDAExecutionProvider":
        raise SkipConfig(f"ONNX Runtime fell back to {sess.get_providers()}")
    name = sess.get_inputs()[0].name
    if len(sess.get_inputs()) != 1 or len(sess.get_inputs()[0].shape) != 4:
        raise SkipConfig(f"model {card.name!r}: not a single-image (N, C, H, W) ONNX model")

    def fn(x: np.ndarray) -> np.ndarray:
        return sess.run(None, {name: x})[0]

    return Runner("onnx", device, precision, threads, fn, lambda x: np.ascontiguousarray(x, np.float32),
                  lambda y: np.asarray(y), None, notes)
