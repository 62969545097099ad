"""Model packages: a network + its band/scale/normalisation contract, shipped as weights + ONNX + model card.

Model cards and where packages live. A model package is a folder::

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sr_core.bands import normalize_band_names

__all__ = [
    "CARD_VERSION",
    "DEFAULT_MISR_MODEL",
    "DEFAULT_MODEL",
    "WEIGHTS_DIR",
    "ModelCard",
    "ModelFileError",
    "list_models",
    "load_card",
    "render_card_markdown",
    "resolve_model",
    "sha256_file",
]

#: The shipped single-image package used when no model is named.
DEFAULT_MODEL = "s2sr-x2-10band"
#: The shipped multi-image package used when no model is named (the MISR UDF's default).
DEFAULT_MISR_MODEL = "s2sr-misr-x2"
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
    # degrade(sr) == their native values, read from the nearest-replicated input (sr_core.models.postprocess).
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
