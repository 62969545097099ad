"""Dynamic loss weighting: keep every auxiliary loss term at a fixed proportion of a reference term.

During an epoch, :meth:`DynamicLossWeighting.update` accumulates the (unweighted, detached) value of every
term; :meth:`~DynamicLossWeighting.epoch_end` then sets, for each auxiliary term ``k``,
``weight_k = proportion_k * mean_reference / |mean_k|`` so that ``weight_k * |mean_k| = proportion_k *
mean_reference`` over the epoch just finished (the reference keeps weight 1; values are the unweighted
terms, averaged over the ``update`` calls). A term whose epoch mean is 0
or that was never seen keeps its weight. Before the first ``epoch_end`` the weights are ``initial_weights``
(default: the proportions themselves). Terms that are neither the reference nor in ``proportions`` are
"unmanaged": they keep weight 1 in :meth:`~DynamicLossWeighting.total` and are averaged by ``update`` (see
``epoch_means``), unless ``strict=True``, which rejects them with a ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from sr_core.losses._utils import check_positive

__all__ = ["DynamicLossWeighting"]


def _scalar(name: str, value: Any) -> float:
    if isinstance(value, torch.Tensor):
        value = value.detach()
        value = value.double().mean().item() if value.numel() != 1 else value.double().item()
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"loss {name!r} must be a number or a tensor, got {type(value).__name__}") from None
    if not math.isfinite(v):
        raise ValueError(f"loss {name!r} is not finite: {v}")
    return v


class DynamicLossWeighting:
    """Per-epoch rescaling of loss weights to fixed proportions of a reference term.

    ``reference``: name of the reference term (weight 1); ``proportions``: name -> target proportion (> 0)
    of the reference, e.g. ``{"dice": 0.1, "ssim": 0.5}``; ``initial_weights``: optional starting weights.
    """

    def __init__(
        self,
        reference: str = "l1",
        proportions: Mapping[str, float] | None = None,
        *,
        initial_weights: Mapping[str, float] | None = None,
        strict: bool = False,
    ) -> None:
        if not isinstance(reference, str) or not reference:
            raise ValueError(f"reference must be a non-empty loss name, got {reference!r}")
        proportions = dict(proportions or {})
        if reference in proportions:
            raise ValueError(f"the reference term {reference!r} may not have a proportion (its weight is 1)")
        self.reference = reference
        self.proportions = {k: check_positive(f"proportions[{k!r}]", v) for k, v in proportions.items()}
        self._weights = {reference: 1.0, **self.proportions}
        if initial_weights:
            for k, v in initial_weights.items():
                if k not in self.proportions:
                    raise ValueError(
                        f"initial_weights has unknown term {k!r}; terms with a proportion: {list(self.proportions)}"
                    )
                self._weights[k] = check_positive(f"initial_weights[{k!r}]", v)
        self.strict = bool(strict)
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    @property
    def weights(self) -> dict[str, float]:
        """Current weights (a copy), reference included (1.0)."""
        return dict(self._weights)

    def _check_keys(self, losses: Mapping[str, Any]) -> None:
        if not isinstance(losses, Mapping):
            raise TypeError(f"losses must be a mapping name -> value, got {type(losses).__name__}")
        unknown = [k for k in losses if k not in self._weights]
        if unknown and self.strict:
            raise ValueError(f"unknown loss terms {unknown}; known: {list(self._weights)} (strict=True)")

    def update(self, losses: Mapping[str, Any]) -> None:
        """Accumulate the unweighted values of some terms (tensors are detached and averaged)."""
        self._check_keys(losses)
        for k, v in losses.items():
            self._sums[k] = self._sums.get(k, 0.0) + _scalar(k, v)
            self._counts[k] = self._counts.get(k, 0) + 1

    def epoch_means(self) -> dict[str, float]:
        """Mean of each term accumulated since the last ``epoch_end`` (terms never updated are left out)."""
        return {k: self._sums[k] / self._counts[k] for k in self._sums if self._counts[k]}

    def epoch_end(self) -> dict[str, float]:
        """Rescale the weights from this epoch's means, reset the accumulators, return the new weights."""
        means = self.epoch_means()
        ref = means.get(self.reference)
        if ref is not None:
            for k, p in self.proportions.items():
                mk = means.get(k)
                if mk is not None and mk != 0.0:
                    self._weights[k] = p * ref / abs(mk)
        self._sums, self._counts = {}, {}
        return self.weights

    def total(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``sum_k weight_k * losses[k]`` over the given terms (differentiable; weights are constants;
        unmanaged terms have weight 1)."""
        self._check_keys(losses)
        if not losses:
            raise ValueError("total() needs at least one loss term")
        out = None
        for k, v in losses.items():
            term = self._weights.get(k, 1.0) * v
            out = term if out is None else out + term
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "proportions": dict(self.proportions),
            "weights": dict(self._weights),
            "sums": dict(self._sums),
            "counts": dict(self._counts),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("reference") != self.reference or dict(state.get("proportions", {})) != self.proportions:
            raise ValueError(
                "state_dict was saved for reference/proportions "
                f"{state.get('reference')!r}/{state.get('proportions')!r}, this object has "
                f"{self.reference!r}/{self.proportions!r}"
            )
        self._weights = {k: float(v) for k, v in state["weights"].items()}
        self._sums = {k: float(v) for k, v in state["sums"].items()}
        self._counts = {k: int(v) for k, v in state["counts"].items()}

    def __repr__(self) -> str:
        return f"DynamicLossWeighting(reference={self.reference!r}, weights={self._weights!r})"
