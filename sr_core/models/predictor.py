"""Predictors: a model package loaded for inference, engine-independent, numpy in and out.

:func:`load_predictor` (single image) and :func:`load_misr_predictor` (multi-image) build a package's engine
(:mod:`sr_core.models.engines`) once per process and cache it: one cache and one lock, keyed by the package
folder, the engine and its settings and the card's modification time. Both predictors apply the card's
post-processing (:mod:`sr_core.models.postprocess`) after the network.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from sr_core.models.card import ModelCard, ModelFileError, resolve_model
from sr_core.models.engines import ENGINES, check_threads, multi_image_engine, single_image_engine
from sr_core.models.postprocess import apply_postprocess, resolve_postprocess

__all__ = [
    "MISRPredictor",
    "Predictor",
    "check_predictor",
    "load_misr_predictor",
    "load_predictor",
]


class Predictor:
    """Engine-independent inference: ``predictor(lr: np.ndarray (N, C, H, W) float32 reflectance) -> np.ndarray``."""

    def __init__(self, card: ModelCard, fn: Callable[[np.ndarray], np.ndarray], engine: str, device: str = "cpu"):
        self.card = card
        self._fn = fn
        self.engine = engine
        self.device = device
        self.scale = card.scale
        self.bands = tuple(card.bands)
        self.out_bands = tuple(card.out_bands)
        self._coarse, self.receptive_field, self.margin = resolve_postprocess(card)

    def __call__(self, lr: np.ndarray) -> np.ndarray:
        lr = np.ascontiguousarray(lr, dtype=np.float32)
        if lr.ndim != 4 or lr.shape[1] != len(self.bands):
            raise ValueError(
                f"model {self.card.name!r} expects (N, {len(self.bands)}, H, W) with bands {list(self.bands)}, "
                f"got shape {lr.shape}"
            )
        return self.postprocess(self._fn(lr), lr)

    def postprocess(self, y: np.ndarray, lr: np.ndarray) -> np.ndarray:
        """The card's post-processing of the engine output ``y`` for the input ``lr`` (both ``(N, C, H, W)``,
        float32): the 20 m-band projection of ``postprocess.coarse_projection``, in place on ``y`` when it is
        writable; ``y`` unchanged when the card has none."""
        return apply_postprocess(self._coarse, y, lr, self.scale)


class MISRPredictor:
    """Multi-image inference: ``predictor(lr (N, T, C, H, W) float32 reflectance, mask (N, T) bool) -> np``.

    ``frames`` is the number of revisits the engine accepts at most (``None`` = any); with ``fixed=True``
    exactly ``frames`` revisits are fed (fewer are completed with unusable dummy revisits, mask False).
    """

    def __init__(self, card: Any, fn: Callable[[np.ndarray, np.ndarray], np.ndarray], engine: str,
                 frames: int | None = None, fixed: bool = False) -> None:
        self.card = card
        self._fn = fn
        self.engine = engine
        self.frames = frames
        self.fixed = fixed
        self.scale = int(card.scale)
        self.bands = tuple(card.bands)
        self.out_bands = tuple(card.out_bands)
        # the card's post-processing (a misr_sisr package takes over its single-image model's) runs on the anchor
        self._coarse, self.receptive_field, self.margin = resolve_postprocess(card)

    def __call__(self, lr: np.ndarray, mask: np.ndarray) -> np.ndarray:
        lr = np.ascontiguousarray(lr, dtype=np.float32)
        mask = np.asarray(mask, dtype=bool)
        if lr.ndim != 5 or lr.shape[2] != len(self.bands):
            raise ValueError(
                f"model {self.card.name!r} expects (N, T, {len(self.bands)}, H, W) with bands {list(self.bands)}, "
                f"got shape {lr.shape}"
            )
        if mask.shape != lr.shape[:2]:
            raise ValueError(f"mask must have shape {lr.shape[:2]}, got {mask.shape}")
        t = lr.shape[1]
        if self.frames is not None and t > self.frames:
            raise ValueError(f"model {self.card.name!r} takes at most {self.frames} revisits, got {t}")
        if self.fixed and t < self.frames:
            pad = self.frames - t
            lr = np.concatenate([lr, np.zeros(lr.shape[:1] + (pad,) + lr.shape[2:], np.float32)], axis=1)
            mask = np.concatenate([mask, np.zeros((mask.shape[0], pad), bool)], axis=1)
        return apply_postprocess(self._coarse, self._fn(lr, mask), np.ascontiguousarray(lr[:, 0]), self.scale)


_CACHE: dict[tuple, Predictor | MISRPredictor] = {}
_CACHE_LOCK = threading.Lock()


def _cached(key: tuple, build: Callable[[], Any]) -> Any:
    """The predictor cached under ``key``, built by ``build()`` (under the lock) the first time."""
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        pred = build()
        _CACHE[key] = pred
        return pred


def load_predictor(
    name_or_path: str | os.PathLike | None = None,
    *,
    engine: str = "onnx",
    threads: int | None = None,
    device: str = "cpu",
    verify: bool = True,
) -> Predictor:
    """A cached :class:`Predictor` for a model package with engine ``onnx`` (ONNX Runtime) or ``torch``."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be 'onnx' or 'torch', got {engine!r}")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    threads = check_threads(threads)
    folder = resolve_model(name_or_path)
    key = ("single", str(folder), engine, threads, device, (folder / "card.json").stat().st_mtime_ns)

    def build() -> Predictor:
        card, fn = single_image_engine(folder, engine, threads, device, verify)
        return Predictor(card, fn, engine, device)

    return _cached(key, build)


def load_misr_predictor(
    name_or_path: str | os.PathLike | None = None, *, engine: str = "onnx", threads: int | None = None
) -> MISRPredictor:
    """A cached :class:`MISRPredictor` for a multi-image model package (``misr_sisr``, HighRes-net, RAMS).

    ``torch``: the package's weights (``model.pt``) through :func:`sr_core.models.engines.load_torch_model`; the
    network is called as ``net((lr - mean) / std, mask) * std + mean``. ``onnx``: the package's ONNX file, which
    must have the inputs ``lr`` ``(N, T, C, H, W)`` and ``mask`` ``(N, T)`` (bool or float 0/1); a fixed ``T`` in
    the file is respected (fewer revisits are padded with unusable ones).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    threads = check_threads(threads)
    folder = resolve_model(name_or_path)
    key = ("multi", str(folder), engine, threads, (folder / "card.json").stat().st_mtime_ns)

    def build() -> MISRPredictor:
        card, fn, frames, fixed = multi_image_engine(folder, engine, threads)
        return MISRPredictor(card, fn, engine, frames=frames, fixed=fixed)

    return _cached(key, build)


_CHECKED: set[int] = set()


def check_predictor(predictor: Any) -> None:
    """Run ``predictor`` once on a small constant input and check its output against its card: band count
    (``out_bands``) and scale. A mismatch raises :class:`~sr_core.models.card.ModelFileError` naming the model
    file and what does not match. Checked once per predictor object (predictors are cached per process)."""
    if id(predictor) in _CHECKED:
        return
    card = predictor.card
    c, s, n = len(predictor.bands), int(predictor.scale), int(predictor.receptive_field)
    x = np.broadcast_to(np.asarray(card.mean, np.float32)[None, :, None, None], (1, c, n, n)).copy()
    y = np.asarray(predictor(x))
    want = (1, len(predictor.out_bands), s * n, s * n)
    if y.shape != want:
        where = card.files.get("onnx" if getattr(predictor, "engine", "onnx") == "onnx" else "weights", "model file")
        got_scale = y.shape[-1] / n if y.ndim == 4 else float("nan")
        raise ModelFileError(
            f"model {card.name!r}: {where} produces output shape {y.shape} for input (1, {c}, {n}, {n}), i.e. "
            f"{y.shape[1] if y.ndim == 4 else '?'} bands at x{got_scale:g}; card.json says {len(predictor.out_bands)} "
            f"out_bands {list(predictor.out_bands)} at scale {s}"
        )
    _CHECKED.add(id(predictor))
