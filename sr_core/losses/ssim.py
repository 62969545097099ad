"""SSIM (Wang et al. 2004) map and the ``1 - SSIM`` loss: the project's one SSIM implementation.

Definition (the reference one): local statistics under a normalised Gaussian window (default 11 x 11,
sigma 1.5 px), biased (window-weighted) variances and covariance, ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2`` with
``K1 = 0.01``, ``K2 = 0.03`` and ``L = data_range`` (explicit, never guessed; one value or one per band); the
window is applied in "valid" mode (no padding), so the map of an ``H x W`` image is
``(H - window_size + 1) x (W - window_size + 1)``, map pixel ``(i, j)`` being the window whose top-left pixel is
image pixel ``(i, j)`` (centred on ``(i + window_size // 2, j + window_size // 2)``).

With a validity mask, masked-out pixels are zeroed before filtering and a map pixel is valid only if its whole
window lies on valid pixels (:func:`masked_ssim_map`), so nodata never enters the local statistics.
:mod:`sr_core.metrics` (``ssim``, ``ssim_map``, ``cssim``) computes its float64 results with these functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sr_core.checks import check_int
from sr_core.losses._utils import (
    apply_mask,
    check_pair,
    check_positive,
    check_reduction,
    expand_mask,
    masked_band_mean,
    reduce_weighted,
)
from sr_core.losses.filters import gaussian_kernel1d, separable_filter

__all__ = ["SSIMLoss", "masked_ssim_map", "ssim_loss", "ssim_map"]

DataRange = float | Sequence[float] | torch.Tensor


def check_ssim_args(
    window_size: int,
    sigma: float,
    k1: float,
    k2: float,
    height: int,
    width: int,
    *,
    window_name: str = "window_size",
) -> None:
    """Reject a bad SSIM window / constant at once; ``window_name`` is the caller's name for the window size."""
    check_int(window_name, window_size, 1)
    if window_size % 2 == 0:
        raise ValueError(f"{window_name} must be odd (centred window), got {window_size}")
    check_positive("sigma", sigma)
    check_positive("k1", k1)
    check_positive("k2", k2)
    if window_size > height or window_size > width:
        raise ValueError(f"{window_name}={window_size} is larger than the image ({height}x{width})")


def _range(data_range: DataRange, x: torch.Tensor) -> float | torch.Tensor:
    """``data_range`` as a float, or per band as a ``(1, C, 1, 1)`` tensor in the dtype/device of ``x``."""
    if isinstance(data_range, (torch.Tensor, list, tuple)):
        dr = torch.as_tensor(data_range, dtype=torch.float64, device=x.device).detach().reshape(-1)
        if dr.numel() not in (1, x.shape[1]):
            raise ValueError(f"data_range has {dr.numel()} values but the images have {x.shape[1]} bands")
        if not bool(torch.all(torch.isfinite(dr) & (dr > 0))):
            raise ValueError(f"data_range must be positive and finite, got {dr.tolist()}")
        return dr.to(x.dtype).reshape(1, -1, 1, 1)
    return check_positive("data_range", data_range)


def ssim_map(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: DataRange,
    window_size: int = 11,
    sigma: float = 1.5,
    *,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Per-pixel, per-band SSIM of ``x`` and ``y`` (N, C, H, W) in the dtype of the inputs (pure, differentiable).

    Returns ``(N, C, H - window_size + 1, W - window_size + 1)`` ("valid" window, see the module docstring).
    ``data_range`` is the dynamic range of the data (e.g. 1.0 for reflectances in [0, 1]): a number, or one
    value per band (sequence or tensor ``(C,)``).
    """
    check_pair("x", x, "y", y)
    check_ssim_args(window_size, sigma, k1, k2, x.shape[-2], x.shape[-1])
    dr = _range(data_range, x)
    g = gaussian_kernel1d(window_size, sigma, dtype=x.dtype, device=x.device)
    c1 = (k1 * dr) ** 2
    c2 = (k2 * dr) ** 2
    mu_x = separable_filter(x, g)
    mu_y = separable_filter(y, g)
    sxx = separable_filter(x * x, g) - mu_x * mu_x
    syy = separable_filter(y * y, g) - mu_y * mu_y
    sxy = separable_filter(x * y, g) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (sxx + syy + c2)
    return num / den


def masked_ssim_map(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: DataRange,
    *,
    mask: torch.Tensor | None = None,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`ssim_map` of ``x`` and ``y`` with their masked-out pixels zeroed, and the map's validity.

    ``mask``: bool, True = valid, broadcastable to ``x`` (see :mod:`sr_core.losses._utils`). Returns
    ``(map, valid)``: ``valid`` (bool, the map's shape) is True where the whole window is valid; ``None``
    without a mask. Masked-out values (NaN included) change neither the valid map pixels nor their gradient.
    """
    check_pair("x", x, "y", y)
    m = expand_mask(mask, x.shape)
    smap = ssim_map(apply_mask(x, m), apply_mask(y, m), data_range, window_size, sigma, k1=k1, k2=k2)
    if m is None:
        return smap, None
    invalid = F.max_pool2d((~m).to(smap.dtype), kernel_size=window_size, stride=1)
    return smap, invalid == 0


def ssim_loss(
    sr: torch.Tensor,
    hr: torch.Tensor,
    *,
    data_range: DataRange,
    mask: torch.Tensor | None = None,
    window_size: int = 11,
    sigma: float = 1.5,
    reduction: str = "mean",
) -> torch.Tensor:
    """``1 - SSIM`` per band: SSIM = mean of :func:`ssim_map` over the valid map pixels.

    With ``mask`` (True = valid, broadcastable to the image shape) a map pixel is valid only if its whole
    window lies on valid pixels (so nodata never enters the local statistics). ``"none"`` -> ``(N, C)``;
    ``"mean"`` -> mean over all valid map pixels; nothing valid -> 0.
    """
    check_pair("sr", sr, "hr", hr)
    check_reduction(reduction)
    smap, valid = masked_ssim_map(sr, hr, data_range, mask=mask, window_size=window_size, sigma=sigma)
    values, counts = masked_band_mean(apply_mask(1.0 - smap, valid), valid)
    return reduce_weighted(values, counts, reduction)


class SSIMLoss(nn.Module):
    """``nn.Module`` wrapper of :func:`ssim_loss`."""

    def __init__(
        self, *, data_range: float, window_size: int = 11, sigma: float = 1.5, reduction: str = "mean"
    ) -> None:
        super().__init__()
        self.data_range = check_positive("data_range", data_range)
        self.window_size = window_size
        self.sigma = check_positive("sigma", sigma)
        self.reduction = check_reduction(reduction)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return ssim_loss(
            sr,
            hr,
            data_range=self.data_range,
            mask=mask,
            window_size=self.window_size,
            sigma=self.sigma,
            reduction=self.reduction,
        )
