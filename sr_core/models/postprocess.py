"""The post-processing a model card asks for after the network: engine-independent, numpy (no torch).

``card.postprocess`` may hold, applied in this order:

- ``{"coarse_projection": {"bands": [...], "factor": 2, "lam": 0.05, "taps": 4}}`` pulls those output bands
  towards ``degrade(sr) == their native values``, read from the nearest-replicated input
  (:func:`sr_core.projection.filters.project_coarse_bands`);
- ``{"nonnegative": {"radius": 1}}`` bounds every output band that is an input band from below by
  :func:`local_nonnegative_bound`: no negative reflectance where the input is non-negative;
- ``{"copy_bands": {"bands": [...]}}`` (scale-1 models) writes those input bands to the output unchanged.

The single-image and the multi-image predictors (:mod:`sr_core.models.predictor`) both apply it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sr_core.bands import mtf
from sr_core.models.card import POSTPROCESS_KEYS, ModelCard
from sr_core.projection.filters import project_coarse_bands, projection_filters

__all__ = ["apply_postprocess", "local_nonnegative_bound", "resolve_postprocess"]


def resolve_postprocess(card: ModelCard) -> tuple[dict[str, Any] | None, int, int]:
    """The card's resolved post-processing (None = none) and the receptive field and tiling margin (input px) of
    the network followed by it: the margin covers both, so tiles stay seamless. Shared by the single-image
    :class:`~sr_core.models.predictor.Predictor` and the multi-image predictor."""
    coarse = _coarse_projection(card)
    nonneg = _nonnegative(card)
    copy = _copy_bands(card)
    extra = (coarse["reach"] if coarse else 0) + (nonneg["radius"] if nonneg else 0)
    steps = {k: v for k, v in (("coarse", coarse), ("nonnegative", nonneg), ("copy", copy)) if v}
    return steps or None, int(card.receptive_field) + 2 * extra, int(card.margin) + extra


def apply_postprocess(steps: dict[str, Any] | None, y: np.ndarray, lr: np.ndarray, scale: int) -> np.ndarray:
    """The resolved post-processing ``steps`` (:func:`resolve_postprocess` of a card; None = none) of an engine
    output ``y`` for its input ``lr`` (``(N, C, H, W)`` float32), in place on ``y`` when it is writable, in the
    order: the 20 m-band projection, the non-negativity bound, the copied bands. Shared by the single-image
    :class:`~sr_core.models.predictor.Predictor` and the multi-image predictor (which passes the anchor as ``lr``)."""
    if not steps:
        return y
    c = steps.get("coarse")
    if c:
        y = project_coarse_bands(np.asarray(y), lr, channels=c["out_channels"], in_channels=c["in_channels"],
                                 factor=c["factor"], scale=scale, filters=c["filters"], inplace=True)
    nn, cp = steps.get("nonnegative"), steps.get("copy")
    if nn or cp:
        y = np.asarray(y)
        if not y.flags.writeable:
            y = y.copy()
    if nn:
        bound = local_nonnegative_bound(lr[:, nn["in_channels"]], nn["radius"], scale)
        y[:, nn["out_channels"]] = np.fmax(y[:, nn["out_channels"]], bound)
    if cp:
        y[:, cp["out_channels"]] = lr[:, cp["in_channels"]]
    return y


def local_nonnegative_bound(lr: np.ndarray, radius: int, scale: int) -> np.ndarray:
    """``min(0, local minimum of lr)`` over ``(2 radius + 1)^2`` input pixels (edges replicated, NaN ignored),
    nearest-upsampled by ``scale``: the lowest value an output pixel may take. Where the input is non-negative
    around a pixel the bound is 0 (no negative reflectance from non-negative input); where the input itself is
    negative (e.g. Level-2A over dark water), the output may go as low as the input does nearby."""
    x = np.asarray(lr, dtype=np.float32)
    h, w = x.shape[-2:]
    p = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(radius, radius), (radius, radius)], mode="edge")
    m = np.full(x.shape, np.inf, dtype=np.float32)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            m = np.fmin(m, p[..., dy : dy + h, dx : dx + w])
    m = np.minimum(np.where(np.isfinite(m), m, 0.0), 0.0).astype(np.float32)
    if scale > 1:
        m = np.repeat(np.repeat(m, scale, -2), scale, -1)
    return m


def _channels(card: ModelCard, bands: list[str]) -> dict[str, list[int]]:
    """The positions of ``bands`` among the card's input bands and among its output bands."""
    return {"in_channels": [list(card.bands).index(b) for b in bands],
            "out_channels": [list(card.out_bands).index(b) for b in bands]}


def _nonnegative(card: ModelCard) -> dict[str, Any] | None:
    """The card's ``postprocess.nonnegative`` resolved: the channels (every output band that is an input band)
    and the radius in input pixels."""
    spec = (card.postprocess or {}).get("nonnegative")
    if not spec:
        return None
    opts = {**POSTPROCESS_KEYS["nonnegative"], **spec}
    return {**_channels(card, [b for b in card.out_bands if b in card.bands]), "radius": int(opts["radius"])}


def _copy_bands(card: ModelCard) -> dict[str, Any] | None:
    """The card's ``postprocess.copy_bands`` resolved (a scale-1 model): output bands that are the input's, exactly."""
    spec = (card.postprocess or {}).get("copy_bands")
    if not spec:
        return None
    return _channels(card, list(spec["bands"]))


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
        **_channels(card, bands),
        "factor": factor,
        "filters": filters,
        # coarse px the correction reads (filters.radius) + the partial block, in input px
        "reach": factor * (filters.radius + 1),
    }
