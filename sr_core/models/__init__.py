"""Model packages: a network + its band/scale/normalisation contract, shipped as weights + ONNX + model card.

A model package is a folder::

    <name>/card.json    # the contract (bands, scale, normalisation, receptive field, files + sha256, metrics)
    <name>/card.md      # the human-readable model card
    <name>/model.pt     # {"arch": ..., "arch_kwargs": ..., "state_dict": ...} of the wrapped network
    <name>/model.onnx   # the same computation (normalisation included), dynamic batch and spatial size

Shipped packages live in ``sr_core/weights/``; a path to any folder (or to its card.json) works too.
Input contract of every package: reflectance (``(DN + add_offset) / dn_scale``), float32, ``(N, C, H, W)``
with the card's ``bands`` in order, all on the input grid (bands coarser than the grid nearest-replicated
onto it, as openEO's ``load_collection``/``resample_spatial(method="near")`` deliver them). Output: reflectance
``(N, len(out_bands), scale*H, scale*W)``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sr_core.bands import normalize_band_names

# torch is imported lazily: the ONNX Runtime path (what back-ends run) must work without it.

__all__ = [
    "DEFAULT_MODEL",
    "WEIGHTS_DIR",
    "ModelCard",
    "ModelFileError",
    "Predictor",
    "SRModel",  # noqa: F822 - provided lazily by __getattr__ (imports torch only when asked)
    "list_models",
    "load_card",
    "load_predictor",
    "load_torch_model",
    "resolve_model",
    "save_model_package",
    "sha256_file",
]

DEFAULT_MODEL = "s2sr-x2-10band"
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
CARD_VERSION = 1


class ModelFileError(ValueError):
    """A model file is missing, corrupt, or does not match its card."""


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ModelCard:
    """The machine-readable model card (``card.json``)."""

    name: str
    version: str
    arch: str
    arch_kwargs: dict[str, Any]
    bands: list[str]
    out_bands: list[str]
    scale: int
    input_resolution_m: float
    receptive_field: int
    mean: list[float]
    std: list[float]
    files: dict[str, str] = field(default_factory=dict)  # role -> file name ("weights", "onnx")
    sha256: dict[str, str] = field(default_factory=dict)  # file name -> hex digest
    licence: str = "Apache-2.0"
    description: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    card_version: int = CARD_VERSION
    # Post-processing the Predictor applies after the network (engine-independent, numpy):
    # {"coarse_projection": {"bands": [...], "factor": 2, "lam": 0.05, "taps": 4}} pulls those output bands towards
    # degrade(sr) == their native values, read from the nearest-replicated input (sr_core.projection.layer).
    postprocess: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bands = list(normalize_band_names(self.bands))
        self.out_bands = list(normalize_band_names(self.out_bands))
        if self.scale not in (2, 3, 4):
            raise ValueError(f"model card {self.name!r}: scale must be 2, 3 or 4, got {self.scale!r}")
        if not set(self.out_bands) <= set(self.bands):
            raise ValueError(f"model card {self.name!r}: out_bands {self.out_bands} not all in bands {self.bands}")
        if len(self.mean) != len(self.bands) or len(self.std) != len(self.bands):
            raise ValueError(
                f"model card {self.name!r}: mean/std need one value per band ({len(self.bands)}), "
                f"got {len(self.mean)}/{len(self.std)}"
            )
        if any(s <= 0 for s in self.std):
            raise ValueError(f"model card {self.name!r}: std must be > 0, got {self.std}")
        if not isinstance(self.receptive_field, int) or self.receptive_field < 1 or self.receptive_field % 2 == 0:
            raise ValueError(f"model card {self.name!r}: receptive_field must be an odd int, got {self.receptive_field!r}")

    @property
    def margin(self) -> int:
        """Tiling margin in input pixels (``receptive_field // 2``)."""
        return self.receptive_field // 2

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> ModelCard:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ModelFileError(f"cannot read model card {path}: {e}") from e
        known = set(cls.__dataclass_fields__)
        missing = [k for k in ("name", "arch", "arch_kwargs", "bands", "out_bands", "scale") if k not in data]
        if missing:
            raise ModelFileError(f"model card {path} lacks keys: {', '.join(missing)}")
        extra = {k: data.pop(k) for k in list(data) if k not in known}
        card = cls(**data)
        if extra:
            card.validation.setdefault("_extra_card_keys", sorted(extra))
        return card

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write_json(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")


def list_models(weights_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the shipped model packages."""
    root = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "card.json").is_file())


def resolve_model(name_or_path: str | os.PathLike | None = None) -> Path:
    """The package folder of a shipped model name, a folder, or a ``card.json`` path (None = default model)."""
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    p = Path(name_or_path)
    if p.name == "card.json" and p.is_file():
        return p.parent
    if p.is_dir() and (p / "card.json").is_file():
        return p
    shipped = WEIGHTS_DIR / str(name_or_path)
    if (shipped / "card.json").is_file():
        return shipped
    raise ValueError(
        f"unknown model {str(name_or_path)!r}: not a shipped model ({', '.join(list_models()) or 'none shipped'}) "
        "nor a folder with a card.json"
    )


def load_card(name_or_path: str | os.PathLike | None = None, *, verify: bool = True, role: str | None = None) -> ModelCard:
    """Read a package's card; with ``verify`` check the sha256 of its files (only the file of ``role`` if given)."""
    folder = resolve_model(name_or_path)
    card = ModelCard.from_json(folder / "card.json")
    if verify:
        names = [card.files[role]] if role is not None and role in card.files else list(card.files.values())
        for fname in names:
            path = folder / fname
            if not path.is_file():
                raise ModelFileError(f"model {card.name!r}: file {path} is missing")
            want = card.sha256.get(fname)
            if want is None:
                raise ModelFileError(f"model {card.name!r}: card.json has no sha256 for {fname}")
            got = sha256_file(path)
            if got != want:
                raise ModelFileError(
                    f"model {card.name!r}: checksum mismatch for {path}: sha256 {got} != {want} in card.json "
                    "(corrupt or replaced file)"
                )
    return card


def __getattr__(name: str):
    if name == "SRModel":  # lazy: importing torch only when the torch engine is asked for
        from sr_core.models.network import SRModel

        return SRModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_torch_model(name_or_path: str | os.PathLike | None = None, *, verify: bool = True):
    """The torch :class:`SRModel` of a package and its card (weights checked against the card)."""
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


def resolve_postprocess(card: ModelCard) -> tuple[dict[str, Any] | None, int, int]:
    """The card's resolved post-processing (:func:`_coarse_projection`, None = none) and the receptive field and
    tiling margin (input px) of the network followed by it: the margin covers both, so tiles stay seamless.
    Shared by the single-image :class:`Predictor` and the multi-image predictor."""
    coarse = _coarse_projection(card)
    extra = coarse["reach"] if coarse else 0
    return coarse, int(card.receptive_field) + 2 * extra, int(card.margin) + extra


def apply_postprocess(coarse: dict[str, Any] | None, y: np.ndarray, lr: np.ndarray, scale: int) -> np.ndarray:
    """The resolved post-processing ``coarse`` (:func:`_coarse_projection` of a card; None = none) of an engine
    output ``y`` for its input ``lr`` (``(N, C, H, W)`` float32), in place on ``y`` when it is writable. Shared by
    the single-image :class:`Predictor` and the multi-image predictor (which passes the anchor as ``lr``)."""
    if not coarse:
        return y
    from sr_core.projection.filters import project_coarse_bands

    c = coarse
    return project_coarse_bands(np.asarray(y), lr, channels=c["out_channels"], in_channels=c["in_channels"],
                                factor=c["factor"], scale=scale, filters=c["filters"], inplace=True)


def _coarse_projection(card: ModelCard) -> dict[str, Any] | None:
    """The card's ``postprocess.coarse_projection`` resolved: channels, filters and the reach in input pixels."""
    spec = (card.postprocess or {}).get("coarse_projection")
    if not spec:
        return None
    from sr_core.bands import mtf
    from sr_core.projection.filters import projection_filters

    unknown = sorted(set(spec) - {"bands", "factor", "lam", "taps"})
    if unknown:
        raise ModelFileError(f"model card {card.name!r}: unknown coarse_projection keys {unknown}")
    bands = [normalize_band_names([b])[0] for b in spec["bands"]]
    missing = [b for b in bands if b not in card.bands or b not in card.out_bands]
    if missing:
        raise ModelFileError(f"model card {card.name!r}: coarse_projection bands {missing} are not input and output bands")
    factor = int(spec.get("factor", 2))
    filters = projection_filters([mtf(b) for b in bands], factor * card.scale, lam=float(spec.get("lam", 0.05)),
                                 taps=int(spec.get("taps", 4)))
    return {
        "in_channels": [list(card.bands).index(b) for b in bands],
        "out_channels": [list(card.out_bands).index(b) for b in bands],
        "factor": factor,
        "filters": filters,
        # coarse px the correction reads (filters.radius) + the partial block, in input px
        "reach": factor * (filters.radius + 1),
    }


def ort_session_options(threads: int | None = None) -> Any:
    """The ONNX Runtime session options of every model we run: ``threads`` intra-op threads (None = the runtime's
    default), one inter-op thread, and intra-op threads that block instead of spin-waiting between operators.

    Spinning threads hold their cores while they wait; the reader and writer threads of the whole path (and a
    back-end's own threads) then preempt engine threads instead of taking idle cores. Measured on this 2-core VM
    (``s2sr superres`` 1 x 2, 2048 px scene, I/O threads at a lower priority): whole run 21.0 s not spinning vs
    21.9 s spinning in one experiment, 22.4 vs 21.9 s in another (+-1.5 s drift); the bare forward pass 2-3 %
    slower without spinning. docs/decisions/2026-11-22-io-thread-priority.md."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


_CACHE: dict[tuple, Predictor] = {}
_CACHE_LOCK = threading.Lock()


def load_predictor(
    name_or_path: str | os.PathLike | None = None,
    *,
    engine: str = "onnx",
    threads: int | None = None,
    device: str = "cpu",
    verify: bool = True,
) -> Predictor:
    """A cached :class:`Predictor` for a model package with engine ``onnx`` (ONNX Runtime) or ``torch``."""
    if engine not in ("onnx", "torch"):
        raise ValueError(f"engine must be 'onnx' or 'torch', got {engine!r}")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    folder = resolve_model(name_or_path)
    key = (str(folder), engine, threads, device, (folder / "card.json").stat().st_mtime_ns)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        pred = _build_predictor(folder, engine, threads, device, verify)
        _CACHE[key] = pred
        return pred


def _build_predictor(folder: Path, engine: str, threads: int | None, device: str, verify: bool) -> Predictor:
    if engine == "torch":
        import torch

        model, card = load_torch_model(folder, verify=verify)
        dev = torch.device(device)
        model.to(dev)

        def run_torch(lr: np.ndarray) -> np.ndarray:
            if threads is not None and device == "cpu":
                torch.set_num_threads(int(threads))
            with torch.inference_mode():
                return model(torch.from_numpy(lr).to(dev)).float().cpu().numpy()

        return Predictor(card, run_torch, "torch", device)

    import onnxruntime as ort

    card = load_card(folder, verify=verify, role="onnx")
    if "onnx" not in card.files:
        raise ModelFileError(f"model {card.name!r}: card.json names no ONNX file")
    path = folder / card.files["onnx"]
    opts = ort_session_options(threads)
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
    try:
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as e:
        raise ModelFileError(f"model {card.name!r}: cannot load ONNX file {path}: {e}") from e
    inp = sess.get_inputs()[0]
    if len(inp.shape) != 4 or inp.shape[1] != len(card.bands):
        raise ModelFileError(
            f"model {card.name!r}: ONNX input {inp.name} has shape {inp.shape}, card.json has {len(card.bands)} bands"
        )
    name = inp.name

    def run_onnx(lr: np.ndarray) -> np.ndarray:
        return sess.run(None, {name: lr})[0]

    return Predictor(card, run_onnx, "onnx", device)


def save_model_package(
    model,
    card: ModelCard,
    out_dir: str | os.PathLike,
    *,
    export_onnx_file: bool = True,
    markdown: str | None = None,
) -> ModelCard:
    """Write ``model.pt``, ``model.onnx``, ``card.json`` (with sha256) and ``card.md`` into ``out_dir``.

    ``model`` is an :class:`SRModel` (reflectance in, reflectance out)."""
    import torch

    from sr_core.models.export import export_onnx

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
        card.files["onnx"] = "model.onnx"
    card.sha256 = {f: sha256_file(out / f) for f in card.files.values()}
    card.write_json(out / "card.json")
    (out / "card.md").write_text(markdown if markdown is not None else render_card_markdown(card))
    return card


def render_card_markdown(card: ModelCard) -> str:
    """A Markdown model card from the JSON card."""
    lines = [
        f"# Model card: `{card.name}` (version {card.version})",
        "",
        card.description or "",
        "",
        "| field | value |",
        "|---|---|",
        f"| architecture | `{card.arch}` {json.dumps(card.arch_kwargs)} |",
        f"| input bands | {', '.join(card.bands)} (reflectance, all on the {card.input_resolution_m:g} m grid) |",
        f"| output bands | {', '.join(card.out_bands)} at {card.input_resolution_m / card.scale:g} m |",
        f"| scale | x{card.scale} |",
        f"| receptive field | {card.receptive_field} input px (tiling margin {card.margin}) |",
        f"| normalisation | per band (x - mean) / std, mean={card.mean}, std={card.std} |",
        f"| licence | {card.licence} |",
        "",
        "## Files",
        "",
    ]
    lines += [f"- `{f}`: sha256 `{h}`" for f, h in card.sha256.items()]
    if card.training:
        lines += ["", "## Training", "", "```json", json.dumps(card.training, indent=2), "```"]
    if card.validation:
        lines += ["", "## Validation", ""] + _validation_markdown(card.validation)
    return "\n".join(lines) + "\n"


def _fmt(v: Any, nd: int = 2) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.{nd}f}" if nd else str(v)


def _num(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def _validation_markdown(val: dict[str, Any]) -> list[str]:
    """Tables of a card's ``validation`` (as written by ``s2sr evaluate --update-card``); raw JSON otherwise."""
    summ = val.get("summary")
    if not isinstance(summ, dict) or "wald" not in summ:
        head = {k: v for k, v in val.items() if k != "wald_per_band"}
        out = ["```json", json.dumps(head, indent=2), "```"]
        if val.get("wald_per_band"):
            out += ["", "| degradation | scene | band | PSNR SR | PSNR bicubic | gain |", "|---|---|---|---|---|---|"]
            out += [f"| {r.get('degradation')} | {r.get('scene')} | {r.get('band')} | {_num(r.get('psnr_sr'))} | "
                    f"{_num(r.get('psnr_bicubic'))} | {_fmt(r.get('gain_db'))} |" for r in val["wald_per_band"]]
        return out
    out = [val.get("protocol", ""), "", f"Scenes: {', '.join(val.get('scenes', []))}", "",
           "| degradation | bands | mean gain (dB) | min gain (dB) | SSIM SR / bicubic |", "|---|---|---|---|---|"]
    for dname, groups in summ["wald"].items():
        for g, x in groups.items():
            out.append(f"| {dname} | {g} | {_fmt(x.get('mean_gain_db_native'))} | {_fmt(x.get('min_gain_db_native'))} "
                       f"| {x.get('mean_ssim_sr', float('nan')):.4f} / {x.get('mean_ssim_bicubic', float('nan')):.4f} |")
    fr = summ.get("full_resolution") or {}
    if fr:
        out += ["", "Full resolution (real inputs): reflectance consistency L1 of the degraded SR against the input, "
                "largest spatial shift, high-frequency energy ratio SR / bicubic.", "",
                "| bands | consistency L1 SR (bicubic) | max shift (px) | HF ratio |", "|---|---|---|---|"]
        for g, x in fr.items():
            out.append(f"| {g} | {x.get('mean_consistency_l1_sr', float('nan')):.5f} "
                       f"({x.get('mean_consistency_l1_bicubic', float('nan')):.5f}) | "
                       f"{x.get('max_shift_px', float('nan')):.3f} | {x.get('mean_hf_ratio', float('nan')):.2f} |")
    rows = val.get("wald_per_band") or []
    if rows:
        out += ["", "Per scene and band (gain over native bicubic, dB):", "",
                "| degradation | scene | band | PSNR SR | PSNR bicubic | gain |", "|---|---|---|---|---|---|"]
        for r in rows:
            bic = r.get("psnr_bicubic_native", r.get("psnr_bicubic"))
            gain = r.get("gain_db_native", r.get("gain_db"))
            out.append(f"| {r.get('degradation')} | {r.get('scene')} | {r.get('band')} | "
                       f"{_num(r.get('psnr_sr'))} | {_num(bic)} | {_fmt(gain)} |")
    return out
