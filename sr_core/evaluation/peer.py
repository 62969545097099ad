"""A peer's ONNX super-resolution model behind our model contract, for side-by-side evaluation (``s2sr evaluate
--peer PATH``).

Our contract (docs/decisions/2026-11-22-model-input-contract.md): reflectance, the 10 bands of ``MODEL_BANDS_10``
on the 10 m grid with the 20 m bands nearest-replicated (2 x 2 blocks), output the same bands at x2 in reflectance.

The peer's convention (the one of EVOLAND's ``carn_light``, the default of :class:`PeerConvention`): input ``[N, C,
h, w]`` float32 in DN (reflectance x ``dn_scale``), its own band order, every band on the 10 m grid with the 20 m
bands *bicubically* upsampled from their native grid; output ``[N, C, 2h, 2w]`` in DN, the same band order. A
``<stem>.derived.yaml`` or ``<stem>.yaml`` beside the ONNX file (keys ``bands``, ``factor``, ``margin`` in output
pixels, optionally ``dn_scale``, ``upsample_20m``) overrides the defaults.

:class:`OnnxPeer` maps our input to that convention and back: the 20 m bands are recovered exactly from their
2 x 2 blocks (block mean), bicubic x2 upsampled (:func:`sr_core.archs._common.bicubic_upsample`, a = -0.75,
half-pixel centres, edge replication), scaled to DN and reordered; the output is scaled back and reordered to
``MODEL_BANDS_10``. It runs the peer over the whole input with its own seamless tiling, so callers give it whole
images (``tiles_itself``): an outer tiling at an odd offset would split the 20 m blocks.

The peer file is only read from where the user keeps it, never copied, shipped or downloaded.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sr_core.bands import BANDS_20M, MODEL_BANDS_10, normalize_band_names

__all__ = ["PeerConvention", "OnnxPeer", "load_peer", "peer_convention", "to_peer_input"]


@dataclass(frozen=True)
class PeerConvention:
    """How a peer model takes and returns data: ``bands`` (its order), ``factor`` (x2 only), ``margin`` (output
    pixels its tiles need), ``dn_scale`` (DN per unit reflectance), ``upsample_20m`` (``"bicubic"``: the 20 m bands
    bicubically upsampled to the 10 m grid; ``"nearest"``: replicated as in our contract)."""

    bands: tuple[str, ...] = MODEL_BANDS_10
    factor: int = 2
    margin: int = 32
    dn_scale: float = 10000.0
    upsample_20m: str = "bicubic"
    source: str = field(default="defaults (EVOLAND carn_light)", compare=False)

    def __post_init__(self) -> None:
        names = normalize_band_names(self.bands)
        if sorted(names) != sorted(MODEL_BANDS_10):
            raise ValueError(
                f"peer bands {list(self.bands)}: a 10-band peer needs exactly the bands {list(MODEL_BANDS_10)} "
                "(in any order)"
            )
        object.__setattr__(self, "bands", names)
        if self.factor != 2:
            raise ValueError(f"peer factor must be 2 (an x2 model), got {self.factor!r}")
        if isinstance(self.margin, bool) or not isinstance(self.margin, int) or self.margin < 0:
            raise ValueError(f"peer margin (output pixels) must be an integer >= 0, got {self.margin!r}")
        if isinstance(self.dn_scale, bool) or not isinstance(self.dn_scale, (int, float)) or not self.dn_scale > 0:
            raise ValueError(f"peer dn_scale must be a number > 0, got {self.dn_scale!r}")
        if self.upsample_20m not in ("bicubic", "nearest"):
            raise ValueError(f"peer upsample_20m must be 'bicubic' or 'nearest', got {self.upsample_20m!r}")


def peer_convention(path: str | os.PathLike) -> PeerConvention:
    """The convention of the ONNX model at ``path``: its ``<stem>.derived.yaml`` / ``<stem>.yaml`` if present, else
    :class:`PeerConvention`'s defaults. ``ValueError`` naming the file on a malformed description."""
    p = Path(path)
    for desc in (p.with_suffix(".derived.yaml"), p.with_suffix(".yaml")):
        if desc.is_file():
            import yaml

            try:
                data = yaml.safe_load(desc.read_text()) or {}
            except yaml.YAMLError as e:
                raise ValueError(f"{desc}: not valid YAML ({e})") from None
            if not isinstance(data, dict):
                raise ValueError(f"{desc}: expected a mapping with bands, factor, margin")
            kw: dict[str, Any] = {"source": str(desc)}
            if "bands" in data:
                kw["bands"] = tuple(data["bands"])
            if "factor" in data:
                f = data["factor"]
                if isinstance(f, bool) or not isinstance(f, (int, float)) or f != int(f):
                    raise ValueError(f"{desc}: factor must be an integer, got {f!r}")
                kw["factor"] = int(f)
            for key in ("margin", "dn_scale", "upsample_20m"):
                if key in data:
                    kw[key] = data[key]
            try:
                return PeerConvention(**kw)
            except ValueError as e:
                raise ValueError(f"{desc}: {e}") from None
    return PeerConvention()


def to_peer_input(x: np.ndarray, conv: PeerConvention) -> np.ndarray:
    """Our model input ``(N, 10, H, W)`` (reflectance, ``MODEL_BANDS_10``, 20 m bands in 2 x 2 blocks from the
    top-left pixel; ``H``, ``W`` even) -> the peer's input ``(N, 10, H, W)`` float32 (DN, its band order, its
    20 m upsampling)."""
    import torch

    from sr_core.archs._common import bicubic_upsample

    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 4 or a.shape[1] != len(MODEL_BANDS_10):
        raise ValueError(f"peer input must be (N, {len(MODEL_BANDS_10)}, H, W), got shape {a.shape}")
    h, w = a.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"peer input {h}x{w}: H and W must be even (the 20 m bands come in 2 x 2 blocks)")
    n20 = len(BANDS_20M)
    b20 = a[:, -n20:]
    if conv.upsample_20m == "bicubic":
        native = b20.reshape(a.shape[0], n20, h // 2, 2, w // 2, 2).mean(axis=(3, 5), dtype=np.float64)
        up = bicubic_upsample(torch.from_numpy(native), 2).numpy().astype(np.float32)
        b20 = up
    ours = np.concatenate([a[:, :-n20], b20], axis=1)
    order = [MODEL_BANDS_10.index(b) for b in conv.bands]
    return (ours[:, order] * np.float32(conv.dn_scale)).astype(np.float32)


class OnnxPeer:
    """A peer ONNX model as a Predictor-like callable: numpy ``(N, 10, H, W)`` in our contract -> ``(N, 10, 2H,
    2W)`` reflectance in ``MODEL_BANDS_10`` order (:func:`to_peer_input`, the peer, back to ours). Attributes
    ``scale``, ``margin`` (input pixels), ``bands``, ``out_bands``, ``name``, ``engine``, ``convention``,
    ``tiles_itself`` (True: give it whole images), ``card`` (None)."""

    tiles_itself = True
    card = None

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        convention: PeerConvention | None = None,
        threads: int | None = None,
        tile: int = 256,
        name: str | None = None,
    ) -> None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"peer model {p} does not exist")
        if p.suffix.lower() != ".onnx":
            raise ValueError(f"peer model {p}: an ONNX file (.onnx) is expected")
        import onnxruntime as ort

        self.path = p
        self.convention = convention if convention is not None else peer_convention(p)
        so = ort.SessionOptions()
        if threads is not None:
            so.intra_op_num_threads = int(threads)
            so.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for unreadable graphs
            raise ValueError(f"peer model {p}: onnxruntime cannot load it ({e})") from None
        ins = self._session.get_inputs()
        if len(ins) != 1:
            raise ValueError(f"peer model {p}: expected one input, the graph has {[i.name for i in ins]}")
        shape = ins[0].shape
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != len(self.convention.bands)):
            raise ValueError(
                f"peer model {p}: input {ins[0].name} has shape {shape}, expected [N, {len(self.convention.bands)}, "
                "h, w]"
            )
        self._input = ins[0].name
        self.scale = self.convention.factor
        self.margin = int(math.ceil(self.convention.margin / self.scale))
        self.bands = MODEL_BANDS_10
        self.out_bands = MODEL_BANDS_10
        self.name = name or p.stem
        self.engine = "onnx (peer)"
        self.receptive_field = None
        self.tile = int(tile)

    def _run(self, x: np.ndarray) -> np.ndarray:
        y = self._session.run(None, {self._input: np.ascontiguousarray(x, dtype=np.float32)})[0]
        n, c, h, w = x.shape
        if y.shape != (n, len(self.convention.bands), self.scale * h, self.scale * w):
            raise ValueError(
                f"peer model {self.path}: output shape {tuple(y.shape)} for input {tuple(x.shape)}, expected "
                f"{(n, len(self.convention.bands), self.scale * h, self.scale * w)}"
            )
        return y

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from sr_core.tiling import tiled_apply

        px = to_peer_input(x, self.convention)
        y = tiled_apply(self._run, px, scale=self.scale, tile=self.tile, margin=self.margin)
        y = np.asarray(y, dtype=np.float32) / np.float32(self.convention.dn_scale)
        back = [self.convention.bands.index(b) for b in MODEL_BANDS_10]
        return np.ascontiguousarray(y[:, back])


def load_peer(path: str | os.PathLike, *, threads: int | None = None, tile: int = 256) -> OnnxPeer:
    """:class:`OnnxPeer` of the ONNX file at ``path`` (``FileNotFoundError`` when absent)."""
    return OnnxPeer(path, threads=threads, tile=tile)
