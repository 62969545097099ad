"""ShiftNet (HighRes-net's registration network), sub-pixel Fourier shifts, and a shift-corrected loss.

Conventions:

* Images are ``(N, C, H, W)``; translations are ``(N, 2)`` = ``(dy, dx)`` in pixels of that image,
  ``dy`` along rows (down is positive), ``dx`` along columns (right is positive).
* ``shift_image(x, d)`` moves the content by ``+d``: ``out[i, j] = x[i - dy, j - dx]``, the same sign as
  ``torch.roll(x, (dy, dx), dims=(-2, -1))``. Sub-pixel values are band-limited (Fourier phase ramp).
* ``ShiftNet()(reference, moving)`` estimates the displacement of ``moving`` relative to ``reference``,
  i.e. ``moving ~= shift_image(reference, d)``; ``register`` undoes it: ``shift_image(moving, -d)``.

ShiftNet is used at the loss (training time only): the super-resolved image is registered onto the target
before the loss, so that a sub-pixel misalignment of the target is not penalised
(:func:`shift_corrected_loss`).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn as nn

from sr_core.archs.registry import register_arch
from sr_core.archs._common import check_positive_int

__all__ = ["ShiftNet", "shift_image", "register", "shift_corrected_loss", "PADDINGS"]

PADDINGS = ("symmetric", "circular")


def _check_image(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a 4-D tensor (N, C, H, W), got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be floating point, got dtype {x.dtype}")


def shift_image(x: torch.Tensor, shifts: torch.Tensor, *, padding: str = "symmetric") -> torch.Tensor:
    """Translate each image of ``x`` ``(N, C, H, W)`` by ``shifts`` ``(N, 2)`` = ``(dy, dx)`` pixels.

    Fourier shift: the spectrum is multiplied by ``exp(-2 pi i (fy dy + fx dx))`` (frequencies in cycles per
    pixel), so ``out[i, j] = x[i - dy, j - dx]`` with band-limited (sinc) interpolation. Differentiable
    with respect to ``x`` and ``shifts``; the shift of an image is exact for integer shifts.

    ``padding``: ``"circular"`` shifts the periodic image (content leaving one side re-enters at the other;
    an integer shift equals ``torch.roll`` everywhere, and on odd sizes shifting back by ``-d`` restores
    ``x`` exactly; on even sizes the Nyquist component is scaled by ``cos(pi d)``, the real part of its
    phase ramp). ``"symmetric"`` (default) first mirrors the image to ``(2H, 2W)`` so that the periodic
    extension is continuous (no wrap-around and less ringing at the borders), shifts, and crops back:
    content entering at a border is the mirror image of the border region; in the interior an integer
    shift equals ``torch.roll``.
    """
    _check_image("x", x)
    if not isinstance(shifts, torch.Tensor) or tuple(shifts.shape) != (x.shape[0], 2):
        got = tuple(shifts.shape) if isinstance(shifts, torch.Tensor) else type(shifts).__name__
        raise ValueError(f"shifts must be a tensor of shape (N, 2) = ({x.shape[0]}, 2), got {got}")
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    h, w = x.shape[-2:]
    if padding == "symmetric":
        x = torch.cat([x, x.flip(-2)], dim=-2)
        x = torch.cat([x, x.flip(-1)], dim=-1)
    hh, ww = x.shape[-2:]
    shifts = shifts.to(x.dtype)
    fy = torch.fft.fftfreq(hh, dtype=x.dtype, device=x.device).reshape(1, 1, hh, 1)
    fx = torch.fft.fftfreq(ww, dtype=x.dtype, device=x.device).reshape(1, 1, 1, ww)
    dy = shifts[:, 0].reshape(-1, 1, 1, 1)
    dx = shifts[:, 1].reshape(-1, 1, 1, 1)
    phase = (-2.0 * math.pi) * (fy * dy + fx * dx)
    ramp = torch.complex(torch.cos(phase), torch.sin(phase))
    out = torch.fft.ifft2(torch.fft.fft2(x) * ramp).real
    return out[..., :h, :w]


def _standardise(x: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit standard deviation per image and band (a constant image becomes 0)."""
    m = x.mean(dim=(-2, -1), keepdim=True)
    v = x.var(dim=(-2, -1), keepdim=True, unbiased=False)
    return (x - m) / torch.sqrt(v + 1e-12)


@register_arch("shiftnet")
class ShiftNet(nn.Module):
    """Translation estimator: ``forward(reference, moving) -> (N, 2)`` = ``(dy, dx)`` of ``moving``.

    ``reference`` and ``moving`` are ``(N, C, H, W)`` images of the same size (HR images in HighRes-net).
    Each is standardised per band (so the estimate does not depend on brightness or contrast), the pair is
    concatenated on channels, and passes a conv stem, ``num_blocks`` stages (stride-2 conv + conv, leaky
    ReLU), global average pooling and a linear layer. The linear layer is zero-initialised, so an untrained
    ShiftNet returns ``(0, 0)``.

    Kwargs: ``in_channels`` (bands ``C``), ``num_features`` (width), ``num_blocks`` (stride-2 stages).
    There is no ``scale``. ``receptive_field`` is ``None``: the global pooling makes every output depend on
    the whole image (ShiftNet is a training-time loss component, never tiled).
    """

    receptive_field = None

    def __init__(self, in_channels: int, num_features: int = 32, num_blocks: int = 3) -> None:
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.num_features = check_positive_int("num_features", num_features)
        self.num_blocks = check_positive_int("num_blocks", num_blocks, minimum=0)
        f = self.num_features
        layers: list[nn.Module] = [nn.Conv2d(2 * self.in_channels, f, 3, padding=1), nn.LeakyReLU(0.1)]
        for _ in range(self.num_blocks):
            layers += [
                nn.Conv2d(f, f, 3, stride=2, padding=1),
                nn.LeakyReLU(0.1),
                nn.Conv2d(f, f, 3, padding=1),
                nn.LeakyReLU(0.1),
            ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(f, 2)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, reference: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
        _check_image("reference", reference)
        _check_image("moving", moving)
        if reference.shape != moving.shape:
            raise ValueError(
                f"reference and moving must have the same shape, got {tuple(reference.shape)} and "
                f"{tuple(moving.shape)}"
            )
        if reference.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} bands (dim 1), got {reference.shape[1]}")
        x = torch.cat([_standardise(reference), _standardise(moving)], dim=1)
        return self.head(self.features(x).mean(dim=(-2, -1)))

    def register(
        self, reference: torch.Tensor, moving: torch.Tensor, *, padding: str = "symmetric"
    ) -> torch.Tensor:
        """``moving`` shifted back onto ``reference`` (see :func:`register`)."""
        return register(reference, moving, self, padding=padding)


def register(
    reference: torch.Tensor, moving: torch.Tensor, shiftnet: nn.Module, *, padding: str = "symmetric"
) -> torch.Tensor:
    """``moving`` shifted back onto ``reference``: ``shift_image(moving, -shiftnet(reference, moving))``."""
    shifts = shiftnet(reference, moving)
    return shift_image(moving, -shifts, padding=padding)


def shift_corrected_loss(
    sr: torch.Tensor,
    hr: torch.Tensor,
    shiftnet: nn.Module,
    loss_fn: Callable[..., Any],
    mask: torch.Tensor | None = None,
    *,
    border: int = 3,
    padding: str = "symmetric",
    return_shifts: bool = False,
) -> Any:
    """Loss between ``sr`` registered onto ``hr`` and ``hr``, both ``(N, C, H, W)``.

    ``shifts = shiftnet(hr, sr)`` estimates the displacement of ``sr`` (its input is ``sr.detach()``: the
    SR network is not rewarded for being easy to register); ``sr`` is shifted back by ``-shifts`` with
    :func:`shift_image` (gradients reach the SR network through the image and ShiftNet through the
    shifts), then ``border`` pixels are cropped on every side of ``sr``, ``hr`` and ``mask`` (they hold
    content shifted in from outside) and the result is ``loss_fn(sr_reg, hr)``, or
    ``loss_fn(sr_reg, hr, mask=mask)`` when ``mask`` is given.

    ``mask``: bool, True = valid ``hr`` pixel, broadcastable to ``hr`` (e.g. ``(N, 1, H, W)``). Invalid
    ``hr`` pixels are replaced by ``sr`` in ShiftNet's input only (``hr`` nodata never reaches ShiftNet).
    Returns the loss, or ``(loss, shifts)`` with ``return_shifts=True``.
    """
    _check_image("sr", sr)
    _check_image("hr", hr)
    if sr.shape != hr.shape:
        raise ValueError(f"sr and hr must have the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}")
    h, w = hr.shape[-2:]
    if isinstance(border, bool) or not isinstance(border, int) or border < 0 or 2 * border >= min(h, w):
        top = (min(h, w) - 1) // 2
        raise ValueError(f"border must be an integer in [0, {top}] for size {(h, w)}, got {border!r}")
    hr_in = hr
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            got = getattr(mask, "dtype", type(mask).__name__)
            raise ValueError(f"mask must be a bool tensor (True = valid), got {got}")
        if mask.ndim != 4:
            raise ValueError(f"mask must be 4-D, broadcastable to (N, C, H, W), got {tuple(mask.shape)}")
        try:
            mb = torch.broadcast_to(mask, hr.shape)
        except RuntimeError:
            msg = f"mask of shape {tuple(mask.shape)} does not broadcast to hr {tuple(hr.shape)}"
            raise ValueError(msg) from None
        hr_in = torch.where(mb, hr, sr.detach())
    shifts = shiftnet(hr_in, sr.detach())
    sr_reg = shift_image(sr, -shifts, padding=padding)
    if border:
        crop = (..., slice(border, h - border), slice(border, w - border))
        sr_reg, hr = sr_reg[crop], hr[crop]
        if mask is not None:
            mask = mask[..., slice(border, h - border) if mask.shape[-2] == h else slice(None),
                        slice(border, w - border) if mask.shape[-1] == w else slice(None)]
    loss = loss_fn(sr_reg, hr) if mask is None else loss_fn(sr_reg, hr, mask=mask)
    return (loss, shifts) if return_shifts else loss
