"""Private helpers shared by the losses: argument checks, masks, per-band masked means, reductions.

Conventions used by every loss of the package:

* images are ``(N, C, H, W)`` floating tensors (``C`` = bands or classes);
* ``mask`` is a bool tensor, True = valid, whose shape broadcasts to the image shape (typically
  ``(N, 1, H, W)``, ``(N, C, H, W)`` or ``(H, W)``; a 3-D mask is read as ``(N, H, W)``); masked-out
  pixels are replaced by zeros *before* any arithmetic, so their values (NaN nodata included) change
  neither the loss nor its gradient;
* ``reduction="none"`` returns one value per sample and band ``(N, C)`` (per sample ``(N,)`` where the
  loss has no band axis); ``reduction="mean"`` returns the mean over all valid elements (pixel
  weighted, so with no mask it equals the plain mean). A band (or a whole batch) without any valid
  pixel contributes 0 (and a zero gradient): this is the documented behaviour of an all-False mask,
  so that a fully nodata tile never breaks a training loop.
"""

from __future__ import annotations

import math
from typing import Any

import torch

REDUCTIONS = ("mean", "none")


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def check_image(name: str, x: Any, ndim: int = 4) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D tensor (N, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating point tensor, got dtype {x.dtype}")
    return x


def check_pair(a_name: str, a: Any, b_name: str, b: Any) -> None:
    check_image(a_name, a)
    check_image(b_name, b)
    if a.shape != b.shape:
        raise ValueError(
            f"{a_name} and {b_name} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def expand_mask(mask: torch.Tensor | None, shape: torch.Size | tuple[int, ...], name: str = "mask"):
    """Validate ``mask`` (bool, broadcastable to ``shape``) and expand it to ``shape``; None stays None."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a bool torch.Tensor (True = valid), got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise ValueError(f"{name} must be a bool tensor (True = valid), got dtype {mask.dtype}")
    if mask.ndim == 3 and len(shape) == 4:  # (N, H, W): one mask per sample, shared by the bands
        mask = mask.unsqueeze(1)
    try:
        out = torch.broadcast_shapes(mask.shape, tuple(shape))
    except RuntimeError:
        out = None
    if out != torch.Size(shape):
        raise ValueError(
            f"{name} of shape {tuple(mask.shape)} does not broadcast to the data shape {tuple(shape)}"
        )
    return mask.expand(shape)


def apply_mask(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Zero the masked-out entries (mask already expanded); NaN there is fine, gradient there is 0."""
    if mask is None:
        return x
    return torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))


def masked_band_mean(err: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of ``err`` (N, C, H, W, already zero where masked) over valid pixels, per sample and band.

    Returns ``(values, counts)``, both ``(N, C)``; a band without valid pixels has value 0.
    """
    if mask is None:
        values = err.mean(dim=(-2, -1))
        counts = torch.full_like(values, float(err.shape[-2] * err.shape[-1])).detach()
        return values, counts
    counts = mask.sum(dim=(-2, -1)).to(err.dtype)
    values = err.sum(dim=(-2, -1)) / counts.clamp_min(1.0)
    return values, counts


def reduce_weighted(values: torch.Tensor, counts: torch.Tensor, reduction: str) -> torch.Tensor:
    """``"none"`` -> ``values``; ``"mean"`` -> count-weighted mean (0 when nothing is valid)."""
    if reduction == "none":
        return values
    return (values * counts).sum() / counts.sum().clamp_min(1.0)


def features_as_dict(feats: Any, what: str = "feature extractor") -> dict[Any, torch.Tensor]:
    """Normalise what a feature extractor returns: tensor -> {0: t}; list/tuple -> {i: t}; dict as is."""
    if isinstance(feats, torch.Tensor):
        return {0: feats}
    if isinstance(feats, (list, tuple)):
        return dict(enumerate(feats))
    if isinstance(feats, dict):
        return dict(feats)
    raise TypeError(
        f"the {what} must return a tensor, a list/tuple of tensors or a dict of tensors, got {type(feats).__name__}"
    )


def resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bring a ``(N, C|1, H, W)`` validity mask to a feature-map size: a feature pixel is valid only if every
    image pixel of its (adaptive pooling) footprint, in every band, is valid. Returns ``(N, 1, h, w)`` bool."""
    m = mask.all(dim=1, keepdim=True)
    if tuple(m.shape[-2:]) == tuple(size):
        return m
    invalid = torch.nn.functional.adaptive_max_pool2d((~m).float(), size)
    return invalid == 0


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """Put ``model`` in eval mode and stop gradients to its parameters (in place); returns it.
    Gradients still flow through it to its input."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
