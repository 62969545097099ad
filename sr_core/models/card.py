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
import re
from dataclasses import MISSING, InitVar, asdict, dataclass, field
from pathlib import Path
from typing import Any

from sr_core.bands import BANDS, normalize_band_name
from sr_core.models.onnx_metadata import onnx_info, with_metadata

__all__ = [
    "CARD_VERSION",
    "CONTRACT_FIELDS",
    "CONTRACT_KEY",
    "DEFAULT_MISR_MODEL",
    "DEFAULT_MODEL",
    "MAX_RECEPTIVE_FIELD",
    "POSTPROCESS_KEYS",
    "SCALES",
    "WEIGHTS_DIR",
    "ModelCard",
    "ModelFileError",
    "card_contract",
    "check_onnx_contract",
    "list_models",
    "load_card",
    "render_card_markdown",
    "resolve_model",
    "sha256_file",
    "stamp_onnx_contract",
]

#: The shipped single-image package used when no model is named.
DEFAULT_MODEL = "s2sr-x2-10band"
#: The shipped multi-image package used when no model is named (the MISR UDF's default).
DEFAULT_MISR_MODEL = "s2sr-misr-x2"
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
CARD_VERSION = 1
#: Upscaling factors a card may declare.
SCALES = (1, 2, 3, 4)  # 1: the coarse bands sharpened onto the grid of the finest input bands
#: The largest receptive field (input px) a card may declare: tiles carry half of it as margin on every side.
MAX_RECEPTIVE_FIELD = 1023
#: The ``metadata_props`` key of an ONNX file holding the contract of its card (JSON of :data:`CONTRACT_FIELDS`).
CONTRACT_KEY = "s2sr.contract"
#: The card fields that decide what the network computes and how its input and output are read: written into the
#: checksummed ONNX file at export; a card whose fields differ from them is refused (see :func:`load_card`).
CONTRACT_FIELDS = (
    "arch", "arch_kwargs", "bands", "out_bands", "scale", "input_resolution_m", "receptive_field", "mean", "std",
    "postprocess",
)
#: ``postprocess`` entries, their keys, and the defaults of the optional ones (see :mod:`sr_core.models.postprocess`).
POSTPROCESS_KEYS = {
    "coarse_projection": {"bands": None, "factor": 2, "lam": 0.05, "taps": 4},
    "nonnegative": {"radius": 1},
    "copy_bands": {"bands": None},
}
_FILE_ROLES = ("weights", "onnx")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ModelFileError(ValueError):
    """A model file is missing, corrupt, or does not match its card; or the card breaks its schema."""


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------ schema


def _bad(where: str, name: str, problem: str) -> ModelFileError:
    return ModelFileError(f"model card {where}: field {name!r}: {problem}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _text_field(where: str, name: str, v: Any, *, empty: bool = False) -> str:
    if not isinstance(v, str) or (not empty and not v):
        raise _bad(where, name, f"must be {'a' if empty else 'a non-empty'} string, got {v!r}")
    return v


def _band_list(where: str, name: str, v: Any) -> list[str]:
    if not isinstance(v, list) or not v:
        raise _bad(where, name, f"must be a non-empty list of Sentinel-2 band names, got {v!r}")
    out = []
    for b in v:
        try:
            out.append(normalize_band_name(b))
        except (TypeError, ValueError) as err:
            raise _bad(where, name, str(err)) from None
    dup = sorted({b for b in out if out.count(b) > 1})
    if dup:
        raise _bad(where, name, f"names {', '.join(dup)} twice: {v}")
    return out


def _numbers(where: str, name: str, v: Any, n: int, positive: bool = False) -> list[float]:
    if not isinstance(v, list) or len(v) != n or not all(_is_number(x) and (x > 0 or not positive) for x in v):
        what = "positive finite numbers" if positive else "finite numbers"
        raise _bad(where, name, f"must be a list of {n} {what} (one per band), got {v!r}")
    return [float(x) for x in v]


def _check_postprocess(where: str, v: Any, bands: list[str], out_bands: list[str], res: float) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _bad(where, "postprocess", f"must be an object, got {v!r}")
    unknown = sorted(set(v) - set(POSTPROCESS_KEYS))
    if unknown:
        raise _bad(where, "postprocess", f"unknown entries {unknown}; known: {sorted(POSTPROCESS_KEYS)}")
    out: dict[str, Any] = {}
    spec = v.get("coarse_projection")
    if spec is not None:
        name = "postprocess.coarse_projection"
        if not isinstance(spec, dict):
            raise _bad(where, name, f"must be an object, got {spec!r}")
        known = POSTPROCESS_KEYS["coarse_projection"]
        unknown = sorted(set(spec) - set(known))
        if unknown:
            raise _bad(where, name, f"unknown keys {unknown}; known: {sorted(known)}")
        if "bands" not in spec:
            raise _bad(where, name, "lacks 'bands'")
        pb = _band_list(where, f"{name}.bands", spec["bands"])
        missing = [b for b in pb if b not in bands or b not in out_bands]
        if missing:
            raise _bad(where, f"{name}.bands", f"{missing} are not both input and output bands")
        factor = spec.get("factor", known["factor"])
        if not _is_int(factor) or factor < 2:
            raise _bad(where, f"{name}.factor", f"must be an integer >= 2, got {factor!r}")
        wrong = [b for b in pb if BANDS[b].resolution != factor * res]
        if wrong:
            raise _bad(where, f"{name}.factor", f"{factor} is not the ratio of the native resolution of {wrong} "
                       f"to the input resolution {res:g} m")
        lam = spec.get("lam", known["lam"])
        if not _is_number(lam) or lam <= 0:
            raise _bad(where, f"{name}.lam", f"must be a positive finite number, got {lam!r}")
        taps = spec.get("taps", known["taps"])
        if not _is_int(taps) or not 1 <= taps <= 16:
            raise _bad(where, f"{name}.taps", f"must be an integer in 1..16, got {taps!r}")
        out["coarse_projection"] = {**spec, "bands": pb}
    for name in ("nonnegative", "copy_bands"):
        spec = v.get(name)
        if spec is None:
            continue
        full = f"postprocess.{name}"
        if not isinstance(spec, dict):
            raise _bad(where, full, f"must be an object, got {spec!r}")
        unknown = sorted(set(spec) - set(POSTPROCESS_KEYS[name]))
        if unknown:
            raise _bad(where, full, f"unknown keys {unknown}; known: {sorted(POSTPROCESS_KEYS[name])}")
        if name == "nonnegative":
            radius = spec.get("radius", 1)
            if not _is_int(radius) or not 0 <= radius <= 8:
                raise _bad(where, f"{full}.radius", f"must be an integer in 0..8, got {radius!r}")
            out[name] = {"radius": radius}
        else:
            if "bands" not in spec:
                raise _bad(where, full, "lacks 'bands'")
            pb = _band_list(where, f"{full}.bands", spec["bands"])
            missing = [b for b in pb if b not in bands or b not in out_bands]
            if missing:
                raise _bad(where, f"{full}.bands", f"{missing} are not both input and output bands")
            out[name] = {"bands": pb}
    return out


def _check_card(c: ModelCard, where: str) -> None:
    """Every field of ``c`` against the schema (normalised in place); ``ModelFileError`` naming ``where`` and the
    field."""
    c.name = _text_field(where, "name", c.name)
    c.version = _text_field(where, "version", c.version)
    c.arch = _text_field(where, "arch", c.arch)
    if not isinstance(c.arch_kwargs, dict) or not all(isinstance(k, str) for k in c.arch_kwargs):
        raise _bad(where, "arch_kwargs", f"must be an object, got {c.arch_kwargs!r}")
    c.bands = _band_list(where, "bands", c.bands)
    c.out_bands = _band_list(where, "out_bands", c.out_bands)
    extra = [b for b in c.out_bands if b not in c.bands]
    if extra:
        raise _bad(where, "out_bands", f"{extra} are not input bands {c.bands}")
    if not _is_int(c.scale) or c.scale not in SCALES:
        raise _bad(where, "scale", f"must be one of {', '.join(map(str, SCALES))}, got {c.scale!r}")
    if not _is_number(c.input_resolution_m) or c.input_resolution_m <= 0:
        raise _bad(where, "input_resolution_m", f"must be a positive number of metres, got {c.input_resolution_m!r}")
    rf = c.receptive_field
    if not _is_int(rf) or rf < 1 or rf % 2 == 0 or rf > MAX_RECEPTIVE_FIELD:
        raise _bad(where, "receptive_field", f"must be an odd integer in 1..{MAX_RECEPTIVE_FIELD} (input px), "
                   f"got {rf!r}")
    c.mean = _numbers(where, "mean", c.mean, len(c.bands))
    c.std = _numbers(where, "std", c.std, len(c.bands), positive=True)
    if not isinstance(c.files, dict) or not all(
        r in _FILE_ROLES and isinstance(f, str) and f and f == Path(f).name and f not in (".", "..")
        for r, f in c.files.items()
    ):
        raise _bad(where, "files", f"must map roles {_FILE_ROLES} to file names in the package folder, "
                   f"got {c.files!r}")
    if not isinstance(c.sha256, dict) or not all(
        f in c.files.values() and isinstance(h, str) and _SHA256.fullmatch(h) for f, h in c.sha256.items()
    ):
        raise _bad(where, "sha256", f"must map the package's files {sorted(c.files.values())} to lowercase hex "
                   f"sha256 digests, got {c.sha256!r}")
    c.licence = _text_field(where, "licence", c.licence, empty=True)
    c.description = _text_field(where, "description", c.description, empty=True)
    for name in ("training", "validation"):
        if not isinstance(getattr(c, name), dict):
            raise _bad(where, name, f"must be an object, got {getattr(c, name)!r}")
    if not _is_int(c.card_version) or c.card_version != CARD_VERSION:
        raise _bad(where, "card_version", f"must be {CARD_VERSION} (this s2sr's card format), got "
                   f"{c.card_version!r}")
    c.postprocess = _check_postprocess(where, c.postprocess, c.bands, c.out_bands, float(c.input_resolution_m))
    if "copy_bands" in c.postprocess and c.scale != 1:
        raise _bad(where, "postprocess.copy_bands", f"needs a scale-1 model (output on the input grid), scale is {c.scale}")


@dataclass
class ModelCard:
    """The machine-readable model card (``card.json``), checked against its schema when built (every error a
    :class:`ModelFileError` naming the card, or its file when read with :meth:`from_json`, and the field)."""

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
    #: the card file this card was read from (for messages); not a field of card.json
    card_file: InitVar[str | os.PathLike | None] = None

    def __post_init__(self, card_file: str | os.PathLike | None) -> None:
        self.source = str(card_file) if card_file is not None else None
        _check_card(self, self.where)

    @property
    def where(self) -> str:
        """How messages name this card: its file, or its name when it was not read from one."""
        return self.source if self.source is not None else repr(self.name)

    @property
    def margin(self) -> int:
        """Tiling margin in input pixels (``receptive_field // 2``)."""
        return self.receptive_field // 2

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> ModelCard:
        """The card in ``path``; unreadable JSON, a missing or unknown field or a value off the schema is a
        :class:`ModelFileError` naming ``path`` and the field."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ModelFileError(f"cannot read model card {path}: {e}") from e
        if not isinstance(data, dict):
            raise ModelFileError(f"model card {path}: must be a JSON object, got {type(data).__name__}")
        known = [f for f in cls.__dataclass_fields__ if f != "card_file"]
        fields = cls.__dataclass_fields__
        missing = [k for k in known if k not in data and fields[k].default is MISSING
                   and fields[k].default_factory is MISSING]
        if missing:
            raise ModelFileError(f"model card {path}: missing fields {', '.join(missing)}")
        extra = sorted(k for k in data if k not in known)
        if extra:
            raise ModelFileError(f"model card {path}: unknown fields {', '.join(map(repr, extra))}; "
                                 f"known: {', '.join(known)}")
        return cls(**data, card_file=path)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write_json(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")



# ------------------------------------------------------------------------------------------------ contract


def card_contract(card: ModelCard) -> dict[str, Any]:
    """The card's :data:`CONTRACT_FIELDS` (JSON values)."""
    return json.loads(json.dumps({k: getattr(card, k) for k in CONTRACT_FIELDS}))


def _onnx_info(card: ModelCard, data: bytes, path: Path) -> Any:
    """The ONNX file's metadata and graph shapes, its graph's input and output channel counts checked against
    ``bands`` / ``out_bands``."""
    try:
        info = onnx_info(data)
    except ValueError as err:
        raise ModelFileError(f"model {card.name!r}: {path}: {err}") from None
    lr = next((i for i in info.inputs if i.name == "lr"), info.inputs[0] if info.inputs else None)
    in_dims = lr.dims if lr is not None else ()
    c_in = in_dims[2] if len(in_dims) == 5 else in_dims[1] if len(in_dims) == 4 else None
    c_out = info.outputs[0].dims[1] if len(info.outputs[0].dims) == 4 else None
    for name, want, got, verb in (("bands", len(card.bands), c_in, "takes"),
                                  ("out_bands", len(card.out_bands), c_out, "computes")):
        if isinstance(got, int) and got != want:
            raise _bad(card.where, name, f"{want} {name} {getattr(card, name)}, but the network in {path} {verb} "
                       f"{got} bands")
    return info


def check_onnx_contract(card: ModelCard, path: str | os.PathLike, data: bytes | None = None) -> None:
    """``card`` against the ONNX file ``path`` (its bytes ``data`` when already read): the channel counts of the
    graph's input and output, and the contract recorded in the file's metadata (:data:`CONTRACT_KEY`), field by
    field. A mismatch, or a file without the contract, is a :class:`ModelFileError` naming the card file, the
    field and the ONNX file."""
    path = Path(path)
    data = path.read_bytes() if data is None else data
    text = _onnx_info(card, data, path).metadata.get(CONTRACT_KEY)
    if text is None:
        raise ModelFileError(
            f"model card {card.where}: {path} carries no contract (metadata {CONTRACT_KEY!r}) to check the card "
            f"against: export the package again (sr_core.models.export.save_model_package), or write the contract "
            f"of a card you trust into it (sr_core.models.stamp_onnx_contract)"
        )
    try:
        recorded = json.loads(text)
    except json.JSONDecodeError as err:
        raise ModelFileError(f"model {card.name!r}: {path}: metadata {CONTRACT_KEY!r} is not JSON: {err}") from None
    mine = card_contract(card)
    if not isinstance(recorded, dict):
        raise ModelFileError(f"model {card.name!r}: {path}: metadata {CONTRACT_KEY!r} is not a JSON object")
    differ = [k for k in CONTRACT_FIELDS if mine.get(k) != recorded.get(k)]
    if differ:
        k = differ[0]
        if k == "scale":
            says = f"scale {mine.get(k)}, but the network in {path} works at x{recorded.get(k)}"
        else:
            says = f"{json.dumps(mine.get(k))}, but the network in {path} has {json.dumps(recorded.get(k))}"
        also = f"; {', '.join(map(repr, differ[1:]))} differ too" if differ[1:] else ""
        raise _bad(card.where, k, f"{says} (the contract checksummed with it){also}: card.json was edited or "
                   "belongs to another network")


def stamp_onnx_contract(card: ModelCard, path: str | os.PathLike) -> str:
    """Write ``card``'s contract into the ONNX file ``path`` (appended metadata: the network's bytes unchanged);
    returns the file's new sha256. Refused when the graph's channel counts do not fit the card or the file already
    has a contract (a different one: :class:`ModelFileError`; the same: nothing is written)."""
    path = Path(path)
    data = path.read_bytes()
    if CONTRACT_KEY in _onnx_info(card, data, path).metadata:
        check_onnx_contract(card, path, data)
        return hashlib.sha256(data).hexdigest()
    text = json.dumps(card_contract(card), sort_keys=True, separators=(",", ":"))
    new = with_metadata(data, {CONTRACT_KEY: text})
    tmp = path.with_name(f".{path.name}.stamp-{os.getpid()}")
    tmp.write_bytes(new)
    os.replace(tmp, path)
    return hashlib.sha256(new).hexdigest()


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
    """Read a package's card (checked against its schema) and check it against the contract recorded in its ONNX
    file (:func:`check_onnx_contract`) when the package has one. With ``verify``, also check the sha256 of its
    files (only the file of ``role`` if given, and the ONNX file whose contract is read) and require them all."""
    folder = resolve_model(name_or_path)
    card = ModelCard.from_json(folder / "card.json")
    onnx = card.files.get("onnx")
    if verify:
        names = [card.files[role]] if role is not None and role in card.files else list(card.files.values())
        if onnx is not None and onnx not in names:
            names.append(onnx)
        for fname in names:
            path = folder / fname
            if not path.is_file():
                raise ModelFileError(f"model {card.name!r}: file {path} is missing")
            want = card.sha256.get(fname)
            if want is None:
                raise ModelFileError(f"model {card.name!r}: card.json has no sha256 for {fname}")
            data = path.read_bytes() if fname == onnx else None
            got = hashlib.sha256(data).hexdigest() if data is not None else sha256_file(path)
            if got != want:
                raise ModelFileError(
                    f"model {card.name!r}: checksum mismatch for {path}: sha256 {got} != {want} in card.json "
                    "(corrupt or replaced file)"
                )
            if data is not None:
                check_onnx_contract(card, path, data)
    elif onnx is not None and (folder / onnx).is_file():
        check_onnx_contract(card, folder / onnx)
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
