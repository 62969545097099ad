"""The shipped single-image model chosen by the bands of an input and the output resolution asked, when no model
is named.

One rule for ``s2sr superres``, the UDF and ``s2sr graph``: among the models of :data:`AUTO_MODELS` that are
shipped and output pixels of the resolution asked (:func:`model_resolution`: ``card.input_resolution_m /
card.scale``; default :data:`DEFAULT_RESOLUTION`), the first, in that order, whose card's ``bands`` are all among
the input's bands.

* 5 m (x2): an input with the 10 bands gets the default model :data:`~sr_core.models.card.DEFAULT_MODEL`; one with
  the four 10 m bands alone gets :data:`RGBN_MODEL`.
* 10 m (the 20 m bands sharpened onto the 10 m grid, the 10 m bands unchanged): an input with the 10 bands gets
  :data:`SHARPEN_MODEL`.

The choice reads only ``card.json`` files (no network, no ONNX), so it is cheap and deterministic.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable
from typing import Any

from sr_core.bands import normalize_band_name
from sr_core.models.card import DEFAULT_MODEL, WEIGHTS_DIR, ModelCard, load_card

__all__ = [
    "AUTO_MODELS",
    "DEFAULT_RESOLUTION",
    "RGBN_MODEL",
    "SHARPEN_MODEL",
    "auto_model_bands",
    "auto_resolutions",
    "check_model_resolution",
    "check_resolution",
    "choose_model",
    "model_resolution",
    "pick_model",
]

#: The shipped x2 model of the four 10 m bands B02, B03, B04, B08 alone.
RGBN_MODEL = "s2sr-x2-rgbn"
#: The shipped 20 m -> 10 m model: the 10 bands on the 10 m grid, the six 20 m bands sharpened (scale 1).
SHARPEN_MODEL = "s2sr-10m-10band"
#: The models :func:`pick_model` chooses from, in order of preference (the first of the resolution asked whose
#: bands the input holds).
AUTO_MODELS = (DEFAULT_MODEL, RGBN_MODEL, SHARPEN_MODEL)
#: The output resolution (metres) chosen when none is asked: the x2 product.
DEFAULT_RESOLUTION = 5.0


def model_resolution(card: Any) -> float:
    """The output pixel size of a model in metres: ``card.input_resolution_m / card.scale`` (5 for the x2 models
    on the 10 m grid, 10 for :data:`SHARPEN_MODEL`)."""
    return float(card.input_resolution_m) / int(card.scale)


def check_resolution(resolution: Any, *, name: str = "resolution") -> float:
    """``resolution`` as a float number of metres; ``ValueError`` naming ``name`` unless it is a finite number
    > 0."""
    if isinstance(resolution, bool) or not isinstance(resolution, numbers.Real) or not (
        math.isfinite(resolution) and resolution > 0
    ):
        raise ValueError(f"{name} must be a positive number of metres (e.g. 5 or 10), got {resolution!r}")
    return float(resolution)


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def check_model_resolution(card: Any, resolution: Any, *, name: str = "resolution") -> None:
    """``ValueError`` when ``resolution`` (metres; None: nothing to check) is not the output resolution of the model
    of ``card`` (:func:`model_resolution`); ``name`` names the argument in the message."""
    if resolution is None:
        return
    want = check_resolution(resolution, name=name)
    have = model_resolution(card)
    if not _same(have, want):
        raise ValueError(
            f"model {card.name!r} outputs {have:g} m, {name} asks {want:g} m: name a model of {want:g} m, or no "
            "model to have one chosen by the input's bands and the resolution"
        )


def _auto_cards(weights_dir: str | os.PathLike | None) -> dict[str, ModelCard]:
    root = WEIGHTS_DIR if weights_dir is None else os.fspath(weights_dir)
    out: dict[str, ModelCard] = {}
    for name in AUTO_MODELS:
        path = os.path.join(root, name, "card.json")
        if os.path.isfile(path):
            out[name] = ModelCard.from_json(path)
    return out


def auto_resolutions(weights_dir: str | os.PathLike | None = None) -> tuple[float, ...]:
    """The output resolutions (metres, ascending) of the models of :data:`AUTO_MODELS` shipped in ``weights_dir``
    (default :data:`~sr_core.models.card.WEIGHTS_DIR`): what :func:`pick_model` offers."""
    return tuple(sorted({model_resolution(c) for c in _auto_cards(weights_dir).values()}))


def auto_model_bands(
    weights_dir: str | os.PathLike | None = None, *, resolution: float | None = None
) -> dict[str, tuple[str, ...]]:
    """``{name: card bands}`` of the models of :data:`AUTO_MODELS` shipped in ``weights_dir`` (default
    :data:`~sr_core.models.card.WEIGHTS_DIR`), in order of preference; with ``resolution`` (metres) only those that
    output it."""
    want = None if resolution is None else check_resolution(resolution)
    return {
        name: tuple(card.bands)
        for name, card in _auto_cards(weights_dir).items()
        if want is None or _same(model_resolution(card), want)
    }


def _canonical(labels: Iterable[Any]) -> set[str]:
    out = set()
    for lab in labels:
        try:
            out.add(normalize_band_name(str(lab)))
        except ValueError:  # not a Sentinel-2 band (e.g. SCL): never a model input
            pass
    return out


def pick_model(
    bands: Iterable[Any],
    *,
    resolution: float = DEFAULT_RESOLUTION,
    weights_dir: str | os.PathLike | None = None,
) -> str:
    """The name of the shipped model for an input holding ``bands`` (labels; aliases such as ``"B2"`` accepted,
    non-Sentinel-2 labels ignored) with output pixels of ``resolution`` metres: the first of :data:`AUTO_MODELS`
    shipped in ``weights_dir`` at that resolution whose bands are all present.

    ``ValueError`` for a resolution no shipped model outputs (naming those offered), and when no model of the
    resolution fits the bands (naming the bands found, the resolution, and each model's bands and what is
    missing)."""
    res = check_resolution(resolution)
    labels = list(bands)
    have = _canonical(labels)
    cards = _auto_cards(weights_dir)
    if not cards:
        raise ValueError(f"no shipped model outputs {res:g} m: none shipped in {weights_dir or WEIGHTS_DIR}")
    at_res = {n: tuple(c.bands) for n, c in cards.items() if _same(model_resolution(c), res)}
    if not at_res:
        offered = ", ".join(f"{r:g}" for r in sorted({model_resolution(c) for c in cards.values()}))
        raise ValueError(f"no shipped model outputs {res:g} m: resolutions offered {offered} (metres)")
    for name, need in at_res.items():
        if set(need) <= have:
            return name
    found = ", ".join(str(v) for v in labels) or "none"
    models = "; ".join(
        f"{n} needs {', '.join(b)} (missing {', '.join(x for x in b if x not in have)})" for n, b in at_res.items()
    )
    raise ValueError(
        f"no shipped {res:g} m model fits the input's bands ({found}): {models}; name a model to use another band "
        "set"
    )


def choose_model(
    model: str | os.PathLike | None, bands: Iterable[Any], *, resolution: Any = None, name: str = "resolution"
) -> str | os.PathLike:
    """The model to run for an input holding ``bands``: ``model`` when given, refused (``ValueError`` naming
    ``name``) when it does not output ``resolution`` metres (its card read, not verified); else
    :func:`pick_model` at ``resolution`` (None: :data:`DEFAULT_RESOLUTION`)."""
    if model is None:
        return pick_model(bands, resolution=DEFAULT_RESOLUTION if resolution is None else resolution)
    if resolution is not None:
        check_model_resolution(load_card(model, verify=False), resolution, name=name)
    return model
