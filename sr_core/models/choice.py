"""The shipped single-image model chosen by the bands of an input when no model is named.

One rule for ``s2sr superres``, the UDF and ``s2sr graph``: the first model of :data:`AUTO_MODELS` (shipped, in
that order) whose card's ``bands`` are all among the input's bands. An input with the 10 bands gets the default
model :data:`~sr_core.models.card.DEFAULT_MODEL`; one with the four 10 m bands alone gets :data:`RGBN_MODEL`.
The choice reads only ``card.json`` files (no network, no ONNX), so it is cheap and deterministic.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from sr_core.bands import normalize_band_name
from sr_core.models.card import DEFAULT_MODEL, WEIGHTS_DIR, ModelCard

__all__ = ["AUTO_MODELS", "RGBN_MODEL", "auto_model_bands", "pick_model"]

#: The shipped x2 model of the four 10 m bands B02, B03, B04, B08 alone.
RGBN_MODEL = "s2sr-x2-rgbn"
#: The models :func:`pick_model` chooses from, in order of preference (the first whose bands the input holds).
AUTO_MODELS = (DEFAULT_MODEL, RGBN_MODEL)


def auto_model_bands(weights_dir: str | os.PathLike | None = None) -> dict[str, tuple[str, ...]]:
    """``{name: card bands}`` of the models of :data:`AUTO_MODELS` shipped in ``weights_dir`` (default
    :data:`~sr_core.models.card.WEIGHTS_DIR`), in order of preference."""
    root = WEIGHTS_DIR if weights_dir is None else os.fspath(weights_dir)
    out: dict[str, tuple[str, ...]] = {}
    for name in AUTO_MODELS:
        path = os.path.join(root, name, "card.json")
        if os.path.isfile(path):
            out[name] = tuple(ModelCard.from_json(path).bands)
    return out


def _canonical(labels: Iterable[Any]) -> set[str]:
    out = set()
    for lab in labels:
        try:
            out.add(normalize_band_name(str(lab)))
        except ValueError:  # not a Sentinel-2 band (e.g. SCL): never a model input
            pass
    return out


def pick_model(bands: Iterable[Any], *, weights_dir: str | os.PathLike | None = None) -> str:
    """The name of the shipped model for an input holding ``bands`` (labels; aliases such as ``"B2"`` accepted,
    non-Sentinel-2 labels ignored): the first of :data:`AUTO_MODELS` whose bands are all present. ``ValueError``
    naming the bands found and each model's bands when none fits."""
    labels = list(bands)
    have = _canonical(labels)
    shipped = auto_model_bands(weights_dir)
    for name, need in shipped.items():
        if set(need) <= have:
            return name
    found = ", ".join(str(v) for v in labels) or "none"
    models = "; ".join(f"{n} needs {', '.join(b)}" for n, b in shipped.items()) or "none shipped"
    raise ValueError(
        f"no shipped model fits the input's bands ({found}): {models}; name a model to use another band set"
    )
