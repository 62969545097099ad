"""SSIM (Wang et al. 2004) map and the ``1 - SSIM`` loss.

Definition (the reference one): local statistics under a normalised Gaussian window (default 11 x 11,
sigma 1.5 px), biased (window-weighted) variances and covariance, ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2`` with
``K1 = 0.01``, ``K2 = 0.03`` and ``L = data_range`` (explicit, never guessed); the window is applied in
"valid" mode (no padding), so the map of an ``H x W`` image is ``(H - window_size + 1) x (W - window_size + 1)``,
map pixel ``(i, j)`` being centred on image pixel ``(i + window_size // 2, j + window_size // 2)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._utils import (
    apply_mask,
    check_pair,
    check_positive,
    check_reduction,
    expand_mask,
    masked_band_mean,
    reduce_weighted,
)
from .filters import gaussian_kernel1d, separable_filter

__all__ = ["SSIMLoss", "ssim_loss", "ssim_map"]


def ssim_map(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float,
    window_size: int = 11,
    sigma: float = 1.5,
    *,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Per-pixel, per-band SSIM of ``x`` and ``y`` (N, C, H, W) in the dtype of the inputs (pure, differentiable).

    Returns ``(N, C, H - window_size + 1, W - window_size + 1)`` ("valid" window, see the module docstring).
    ``data_range`` is the dynamic range of the data (e.g. 1.0 for reflectances in [0, 1]).
    """
    check_pair("x", x, "y", y)
    data_range = check_positive("data_range", data_range)
    k1 = check_positive("k1", k1)
    k2 = check_positive("k2", k2)
    g = gaussian_kernel1d(window_size, sigma, dtype=x.dtype, device=x.device)
    h, w = x.shape[-2:]
    if window_size > h or window_size > w:
        raise ValueError(f"window_size={window_size} is larger than the image ({h}x{w})")
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    mu_x = separable_filter(x, g)
    mu_y = separable_filter(y, g)
    sxx = separable_filter(x * x, g) - mu_x * mu_x
    syy = separable_filter(y * y, g) - mu_y * mu_y
    sxy = separable_filter(x * y, g) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (sxx + syy + c2)
    return num / den


def ssim_loss(
    sr: torch.Tensor,
    hr: torch.Tensor,
    *,
    data_range: float,
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
    m = expand_mask(mask, sr.shape)
    smap = ssim_map(apply_mask(sr, m), apply_mask(hr, m), data_range, window_size, sigma)
    mm = None
    if m is not None:
        invalid = F.max_pool2d((~m).to(sr.dtype), kernel_size=window_size, stride=1)
        mm = invalid == 0
    values, counts = masked_band_mean(apply_mask(1.0 - smap, mm), mm)
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
