"""The inference engines of a model package: ONNX Runtime sessions and torch networks as numpy callables.

``onnx`` (ONNX Runtime, the package's ``model.onnx``) is what back-ends run; ``torch`` (the package's
``model.pt`` through :class:`sr_core.models.network.SRModel`) needs torch. Both are imported only when an engine
is built: this module, like the rest of :mod:`sr_core.models` but :mod:`~sr_core.models.network` and
:mod:`~sr_core.models.export`, imports neither. Those imports run under one process-wide lock (:data:`IMPORT_LOCK`),
so that threads building their first engines at once import each engine module once, one after the other.

:func:`single_image_engine` and :func:`multi_image_engine` return the network of a package as a numpy function
(``(N, C, H, W)`` resp. ``(N, T, C, H, W)`` + mask ``(N, T)`` float32 reflectance in, reflectance out); the
predictors of :mod:`sr_core.models.predictor` wrap them with the card's checks and post-processing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sr_core.models.card import ModelCard, ModelFileError, load_card, resolve_model

__all__ = [
    "ENGINES",
    "IMPORT_LOCK",
    "MAX_THREADS",
    "check_threads",
    "load_torch_model",
    "multi_image_engine",
    "ort_session_options",
    "single_image_engine",
]

ENGINES = ("onnx", "torch")
#: Held while an engine module (ONNX Runtime, torch and the torch network) is imported.
IMPORT_LOCK = threading.RLock()
#: The most intra-op threads an engine is given (``threads``): far above the cores of any one machine, far below
#: what makes ONNX Runtime or torch fail (C ints) or allocate a thread pool the machine cannot hold.
MAX_THREADS = 1024


def check_threads(threads: Any, name: str = "threads") -> int | None:
    """``threads`` as an ``int`` in ``1..MAX_THREADS``, or None (the engine's default); else ``ValueError``
    naming ``name``, the range and the value."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or not 1 <= threads <= MAX_THREADS:
        raise ValueError(f"{name} must be an integer from 1 to {MAX_THREADS} or None, got {threads!r}")
    return int(threads)


def ort_session_options(threads: int | None = None) -> Any:
    """The ONNX Runtime session options of every model we run: ``threads`` intra-op threads (None = the runtime's
    default), one inter-op thread, and intra-op threads that block instead of spin-waiting between operators.

    Spinning threads hold their cores while they wait; the reader and writer threads of the whole path (and a
    back-end's own threads) then preempt engine threads instead of taking idle cores. Measured on this 2-core VM
    (``s2sr superres`` 1 x 2, 2048 px scene, I/O threads at a lower priority): whole run 21.0 s not spinning vs
    21.9 s spinning in one experiment, 22.4 vs 21.9 s in another (+-1.5 s drift); the bare forward pass 2-3 %
    slower without spinning. docs/decisions/2026-11-22-io-thread-priority.md."""
    with IMPORT_LOCK:
        import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def load_torch_model(name_or_path: str | os.PathLike | None = None, *, verify: bool = True):
    """The torch :class:`~sr_core.models.network.SRModel` of a package and its card (weights checked against the
    card)."""
    with IMPORT_LOCK:
        import torch

        from sr_core.models.network import SRModel

    folder = resolve_model(name_or_path)
    card = load_card(folder, verify=verify, role="weights")
    path = folder / card.files.get("weights", "model.pt")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelFileError(f"model {card.name!r}: cannot load weights {path}: {e}") from e
    for key, want in (("arch", card.arch), ("arch_kwargs", card.arch_kwargs)):
        if ckpt.get(key) != want:
            raise ModelFileError(f"model {card.name!r}: {path} has {key}={ckpt.get(key)!r}, card.json says {want!r}")
    try:
        model = SRModel.from_card(card, ckpt["state_dict"])
    except RuntimeError as e:
        raise ModelFileError(f"model {card.name!r}: weights in {path} do not fit {card.arch}: {e}") from e
    if model.scale != card.scale or model.receptive_field != card.receptive_field:
        raise ModelFileError(
            f"model {card.name!r}: network has scale {model.scale} / receptive_field {model.receptive_field}, "
            f"card.json says {card.scale} / {card.receptive_field}"
        )
    return model, card


def _onnx_session(folder: Path, card: ModelCard, threads: int | None, device: str, hint: str = "") -> tuple[Any, Path]:
    """The ONNX Runtime session of a package's ONNX file and the file's path; ``ModelFileError`` (its message
    ending with ``hint`` when the card names no ONNX file) when there is none or it does not load."""
    with IMPORT_LOCK:
        import onnxruntime as ort

    if "onnx" not in card.files:
        raise ModelFileError(f"model {card.name!r}: card.json names no ONNX file{hint}")
    path = folder / card.files["onnx"]
    opts = ort_session_options(threads)
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
    try:
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as e:  # noqa: BLE001 - ORT raises its own exception types
        raise ModelFileError(f"model {card.name!r}: cannot load ONNX file {path}: {e}") from e
    return sess, path


def single_image_engine(
    folder: Path, engine: str, threads: int | None, device: str, verify: bool
) -> tuple[ModelCard, Callable[[np.ndarray], np.ndarray]]:
    """``(card, fn)`` of a single-image package: ``fn(lr (N, C, H, W)) -> (N, C_out, sH, sW)`` on ``device``
    (``cpu`` or ``cuda``), ``threads`` intra-op threads on the CPU (None = the engine's default)."""
    if engine == "torch":
        with IMPORT_LOCK:
            import torch

        model, card = load_torch_model(folder, verify=verify)
        dev = torch.device(device)
        model.to(dev)

        def run_torch(lr: np.ndarray) -> np.ndarray:
            if threads is not None and device == "cpu":
                torch.set_num_threads(int(threads))
            with torch.inference_mode():
                return model(torch.from_numpy(lr).to(dev)).float().cpu().numpy()

        return card, run_torch

    card = load_card(folder, verify=verify, role="onnx")
    sess, _ = _onnx_session(folder, card, threads, device)
    inp = sess.get_inputs()[0]
    if len(inp.shape) != 4 or inp.shape[1] != len(card.bands):
        raise ModelFileError(
            f"model {card.name!r}: ONNX input {inp.name} has shape {inp.shape}, card.json has {len(card.bands)} bands"
        )
    name = inp.name

    def run_onnx(lr: np.ndarray) -> np.ndarray:
        return sess.run(None, {name: lr})[0]

    return card, run_onnx


def multi_image_engine(
    folder: Path, engine: str, threads: int | None
) -> tuple[ModelCard, Callable[[np.ndarray, np.ndarray], np.ndarray], int | None, bool]:
    """``(card, fn, frames, fixed)`` of a multi-image package (CPU): ``fn(lr (N, T, C, H, W), mask (N, T) bool)``.

    ``torch``: the network is called as ``net((lr - mean) / std, mask) * std + mean``. ``onnx``: the package's
    ONNX file must have the inputs ``lr`` ``(N, T, C, H, W)`` and ``mask`` ``(N, T)`` (bool or float 0/1).
    ``frames``: the most revisits the engine takes (None = any); ``fixed``: the ONNX file has a fixed ``T``.
    """
    if engine == "torch":
        with IMPORT_LOCK:
            import torch

        model, card = load_torch_model(folder)
        frames = card.arch_kwargs.get("num_frames") if card.arch == "rams" else None

        def run_torch(lr: np.ndarray, mask: np.ndarray) -> np.ndarray:
            if threads is not None:
                torch.set_num_threads(int(threads))
            with torch.inference_mode():
                x = (torch.from_numpy(lr) - model.mean) / model.std
                y = model.net(x, torch.from_numpy(mask)) * model.out_std + model.out_mean
            return y.float().numpy()

        return card, run_torch, frames, False

    card = load_card(folder, verify=True, role="onnx")
    sess, path = _onnx_session(folder, card, threads, "cpu", hint=" (use engine='torch')")
    ins = {i.name: i for i in sess.get_inputs()}
    if set(ins) != {"lr", "mask"} or len(ins["lr"].shape) != 5 or ins["lr"].shape[2] != len(card.bands):
        raise ModelFileError(
            f"model {card.name!r}: {path} must have inputs lr (N, T, {len(card.bands)}, H, W) and mask (N, T); "
            f"has {[(i.name, i.shape) for i in sess.get_inputs()]}"
        )
    t_dim = ins["lr"].shape[1]
    fixed = isinstance(t_dim, int)
    mask_type = ins["mask"].type

    def run_onnx(lr: np.ndarray, mask: np.ndarray) -> np.ndarray:
        m = mask if mask_type == "tensor(bool)" else mask.astype(np.float32)
        return sess.run(None, {"lr": lr, "mask": m})[0]

    frames = t_dim if fixed else (card.arch_kwargs.get("num_frames") if card.arch == "rams" else None)
    return card, run_onnx, frames, fixed
