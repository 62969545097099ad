"""Relativistic average GAN (RaGAN, ESRGAN) losses and a U-Net discriminator fed with high-pass images.

With ``C`` the raw critic output (logits) and ``E`` the mean over the batch (and over the pixels, for
per-pixel logits; valid entries only when a mask is given):

* discriminator: ``BCE(C(x_r) - E[C(x_f)], 1) + BCE(C(x_f) - E[C(x_r)], 0)``
* generator:     ``BCE(C(x_r) - E[C(x_f)], 0) + BCE(C(x_f) - E[C(x_r)], 1)``

each BCE being averaged over its entries (the sum of the two terms, as in the ESRGAN paper; equal logits give
``log 2`` per term). Compute ``fake_logits`` from a detached SR image for the discriminator step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from sr_core.checks import check_int
from sr_core.losses._utils import check_positive, check_reduction, expand_mask
from sr_core.losses.filters import highpass as _highpass

__all__ = [
    "RaGANDiscriminatorLoss",
    "RaGANGeneratorLoss",
    "UNetDiscriminator",
    "ragan_discriminator_loss",
    "ragan_generator_loss",
]


def _check_logits(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> None:
    for name, t in (("real_logits", real_logits), ("fake_logits", fake_logits)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.ndim < 1:
            raise ValueError(f"{name} must be a floating point tensor with a batch dimension")
    if real_logits.shape != fake_logits.shape:
        raise ValueError(
            f"real_logits and fake_logits must have the same shape, got {tuple(real_logits.shape)} "
            f"and {tuple(fake_logits.shape)}"
        )


def _mean(x: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
    if m is None:
        return x.mean()
    return torch.where(m, x, torch.zeros_like(x)).sum() / m.sum().clamp_min(1)


def _term_mean(term: torch.Tensor, m: torch.Tensor | None, reduction: str) -> torch.Tensor:
    if m is not None:
        term = torch.where(m, term, torch.zeros_like(term))
    if reduction == "mean":
        return term.sum() / (term.numel() if m is None else m.sum().clamp_min(1))
    n = term.shape[0]
    cnt = term[0].numel() if m is None else m.reshape(n, -1).sum(dim=1).clamp_min(1)
    return term.reshape(n, -1).sum(dim=1) / cnt


def _ragan(real_logits, fake_logits, mask, reduction, real_label: float) -> torch.Tensor:
    _check_logits(real_logits, fake_logits)
    check_reduction(reduction)
    m = expand_mask(mask, real_logits.shape)
    if m is not None:  # nodata logits (even NaN) must not reach the means
        zero = torch.zeros((), dtype=real_logits.dtype, device=real_logits.device)
        real_logits, fake_logits = torch.where(m, real_logits, zero), torch.where(m, fake_logits, zero)
    d_real = real_logits - _mean(fake_logits, m)
    d_fake = fake_logits - _mean(real_logits, m)
    t_real = F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, real_label), reduction="none")
    t_fake = F.binary_cross_entropy_with_logits(
        d_fake, torch.full_like(d_fake, 1.0 - real_label), reduction="none"
    )
    return _term_mean(t_real, m, reduction) + _term_mean(t_fake, m, reduction)


def ragan_discriminator_loss(
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """RaGAN discriminator loss (see the module docstring). Logits ``(N, ...)`` of equal shapes, e.g. per image
    ``(N, 1)`` or per pixel ``(N, 1, H, W)``; ``mask`` (True = valid) broadcastable to them.
    ``"none"`` -> per sample ``(N,)`` (the relativistic means stay over the whole batch)."""
    return _ragan(real_logits, fake_logits, mask, reduction, real_label=1.0)


def ragan_generator_loss(
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """RaGAN generator loss: the discriminator loss with the labels swapped (see the module docstring).
    Gradients reach the generator through ``fake_logits`` (in both terms)."""
    return _ragan(real_logits, fake_logits, mask, reduction, real_label=0.0)


class RaGANDiscriminatorLoss(nn.Module):
    """``nn.Module`` wrapper of :func:`ragan_discriminator_loss`."""

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, real_logits, fake_logits, mask: torch.Tensor | None = None) -> torch.Tensor:
        return ragan_discriminator_loss(real_logits, fake_logits, mask=mask, reduction=self.reduction)


class RaGANGeneratorLoss(RaGANDiscriminatorLoss):
    """``nn.Module`` wrapper of :func:`ragan_generator_loss`."""

    def forward(self, real_logits, fake_logits, mask: torch.Tensor | None = None) -> torch.Tensor:
        return ragan_generator_loss(real_logits, fake_logits, mask=mask, reduction=self.reduction)


class UNetDiscriminator(nn.Module):
    """U-Net discriminator with spectral normalisation and per-pixel logits (Real-ESRGAN style).

    Encoder: 3x3 conv, then three 4x4 stride-2 convs (``num_features`` x 2, 4, 8); decoder: three bilinear
    upsamplings back to the skip's size, each followed by a 3x3 conv and (``skip_connection``) the addition of
    the encoder feature of that size; then two 3x3 convs and a 3x3 conv to one channel. LeakyReLU(0.2);
    spectral norm on every conv but the first and the last. Input ``(N, in_channels, H, W)`` with H, W >= 8
    (any size: upsampling goes to the skip's exact size); output logits ``(N, 1, H, W)``.

    With ``highpass=True`` the input is first replaced by :func:`sr_core.losses.filters.highpass` (``x -
    gaussian_blur(x, highpass_sigma)``, reflect padding, replicate for
    images too small to reflect), so the critic judges only the high-frequency detail
    and not the (already consistency-constrained) low-frequency radiometry.
    """

    def __init__(
        self,
        in_channels: int,
        num_features: int = 64,
        highpass: bool = True,
        *,
        highpass_sigma: float = 1.0,
        skip_connection: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, 1)
        nf = check_int("num_features", num_features, 1)
        self.num_features = nf
        self.highpass = bool(highpass)
        self.highpass_sigma = check_positive("highpass_sigma", highpass_sigma)
        self.skip_connection = bool(skip_connection)

        def sn(cin: int, cout: int, k: int = 3, s: int = 1, p: int = 1) -> nn.Module:
            return spectral_norm(nn.Conv2d(cin, cout, k, s, p, bias=False))

        self.conv0 = nn.Conv2d(in_channels, nf, 3, 1, 1)
        self.down1 = sn(nf, nf * 2, 4, 2, 1)
        self.down2 = sn(nf * 2, nf * 4, 4, 2, 1)
        self.down3 = sn(nf * 4, nf * 8, 4, 2, 1)
        self.up1 = sn(nf * 8, nf * 4)
        self.up2 = sn(nf * 4, nf * 2)
        self.up3 = sn(nf * 2, nf)
        self.extra1 = sn(nf, nf)
        self.extra2 = sn(nf, nf)
        self.out = nn.Conv2d(nf, 1, 3, 1, 1)
        self.act = nn.LeakyReLU(0.2)

    def _up(self, x: torch.Tensor, skip: torch.Tensor, conv: nn.Module) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        x = self.act(conv(x))
        return x + skip if self.skip_connection else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (N, {self.in_channels}, H, W), got shape {tuple(x.shape)}")
        if x.shape[-2] < 8 or x.shape[-1] < 8:
            raise ValueError(f"UNetDiscriminator needs H, W >= 8, got {x.shape[-2]}x{x.shape[-1]}")
        if self.highpass:
            pad = "reflect" if min(x.shape[-2:]) > math.ceil(3.0 * self.highpass_sigma) else "replicate"
            x = _highpass(x, self.highpass_sigma, padding=pad)
        x0 = self.act(self.conv0(x))
        x1 = self.act(self.down1(x0))
        x2 = self.act(self.down2(x1))
        x3 = self.act(self.down3(x2))
        y = self._up(x3, x2, self.up1)
        y = self._up(y, x1, self.up2)
        y = self._up(y, x0, self.up3)
        y = self.act(self.extra1(y))
        y = self.act(self.extra2(y))
        return self.out(y)
