"""The post-processing a model card asks for after the network: engine-independent, numpy (no torch).

``card.postprocess`` = ``{"coarse_projection": {"bands": [...], "factor": 2, "lam": 0.05, "taps": 4}}`` pulls
those output bands towards ``degrade(sr) == their native values``, read from the nearest-replicated input
(:func:`sr_core.projection.filters.project_coarse_bands`). The single-image and the multi-image predictors
(:mod:`sr_core.models.predictor`) both apply it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sr_core.bands import mtf
from sr_core.models.card import POSTPROCESS_KEYS, ModelCard
from sr_core.projection.filters import project_coarse_bands, projection_filters

__all__ = ["apply_postprocess", "resolve_postprocess"]


def resolve_postprocess(card: ModelCard) -> tuple[dict[str, Any] | None, int, int]:
    """The card's resolved post-processing (:func:`_coarse_projection`, None = none) and the receptive field and
    tiling margin (input px) of the network followed by it: the margin covers both, so tiles stay seamless.
    Shared by the single-image :class:`~sr_core.models.predictor.Predictor` and the multi-image predictor."""
    coarse = _coarse_projection(card)
    extra = coarse["reach"] if coarse else 0
    return coarse, int(card.receptive_field) + 2 * extra, int(card.margin) + extra


def apply_postprocess(coarse: dict[str, Any] | None, y: np.ndarray, lr: np.ndarray, scale: int) -> np.ndarray:
    """The resolved post-processing ``coarse`` (:func:`_coarse_projection` of a card; None = none) of an engine
    output ``y`` for its input ``lr`` (``(N, C, H, W)`` float32), in place on ``y`` when it is writable. Shared by
    the single-image :class:`~sr_core.models.predictor.Predictor` and the multi-image predictor (which passes the
    anchor as ``lr``)."""
    if not coarse:
        return y
    c = coarse
    return project_coarse_bands(np.asarray(y), lr, channels=c["out_channels"], in_channels=c["in_channels"],
                                factor=c["factor"], scale=scale, filters=c["filters"], inplace=True)


def _coarse_projection(card: ModelCard) -> dict[str, Any] | None:
    """The card's ``postprocess.coarse_projection`` resolved: channels, filters and the reach in input pixels. The
    card's schema (:class:`~sr_core.models.card.ModelCard`) has checked the entry: known keys and types, bands that
    are input and output bands, ``factor`` the ratio of their native resolution to the input's."""
    spec = (card.postprocess or {}).get("coarse_projection")
    if not spec:
        return None
    opts = {**POSTPROCESS_KEYS["coarse_projection"], **spec}
    bands = list(opts["bands"])
    factor = int(opts["factor"])
    filters = projection_filters([mtf(b) for b in bands], factor * card.scale, lam=float(opts["lam"]),
                                 taps=int(opts["taps"]))
    return {
        "in_channels": [list(card.bands).index(b) for b in bands],
        "out_channels": [list(card.out_bands).index(b) for b in bands],
        "factor": factor,
        "filters": filters,
        # coarse px the correction reads (filters.radius) + the partial block, in input px
        "reach": factor * (filters.radius + 1),
    }
