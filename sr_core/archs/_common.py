"""Pieces shared by the architectures: argument checks and the interpolation base."""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

SUPPORTED_SCALES = (2, 3, 4)


def check_scale(scale: int) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in SUPPORTED_SCALES:
        raise ValueError(f"scale must be one of {SUPPORTED_SCALES}, got {scale!r}")
    return scale


def check_positive_int(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_channels(in_channels: int, out_channels: int | None) -> tuple[int, int]:
    """Validate channel counts. ``out_channels`` defaults to ``in_channels`` and may not exceed it:
    the output is a residual over the interpolation of the first ``out_channels`` input bands."""
    check_positive_int("in_channels", in_channels)
    if out_channels is None:
        out_channels = in_channels
    check_positive_int("out_channels", out_channels)
    if out_channels > in_channels:
        raise ValueError(
            f"out_channels ({out_channels}) may not exceed in_channels ({in_channels}): the output is a "
            "residual over the interpolation of the first out_channels input bands"
        )
    return in_channels, out_channels


def _cubic(t: float, a: float = -0.75) -> float:
    t = abs(t)
    if t <= 1:
        return ((a + 2) * t - (a + 3)) * t * t + 1
    if t < 2:
        return (((t - 5) * t + 8) * t - 4) * a
    return 0.0


@functools.cache
def _bicubic_phase_weights(scale: int) -> tuple[tuple[float, ...], ...]:
    """1-D weights (scale phases x 5 taps at LR offsets -2..2) of half-pixel bicubic upsampling (a = -0.75)."""
    rows = []
    for k in range(scale):
        d = (k + 0.5) / scale - 0.5  # source position of output phase k relative to its LR pixel
        f = math.floor(d)
        t = d - f
        w = [0.0] * 5
        for off in (-1, 0, 1, 2):
            w[f + off + 2] += _cubic(t - off)
        rows.append(tuple(w))
    return tuple(rows)


def bicubic_kernel(scale: int, channels: int, dtype: torch.dtype = torch.float32,
                   device: torch.device | None = None) -> torch.Tensor:
    """Depthwise conv weight ``(channels * scale**2, 1, 5, 5)`` whose pixel-shuffled output is bicubic upsampling."""
    w1 = torch.tensor(_bicubic_phase_weights(scale), dtype=torch.float64)  # (s, 5)
    w2 = torch.einsum("ay,bx->abyx", w1, w1).reshape(scale * scale, 1, 5, 5)
    return w2.repeat(channels, 1, 1, 1).to(dtype=dtype, device=device)


def bicubic_upsample(lr: torch.Tensor, scale: int, out_channels: int | None = None) -> torch.Tensor:
    """Bicubic upsampling of the first ``out_channels`` bands by an integer ``scale``.

    Identical (to float rounding) to ``F.interpolate(mode="bicubic", align_corners=False)`` (a = -0.75,
    half-pixel centres, edge clamping) but computed as an edge-replicated 5 x 5 depthwise convolution per
    output phase followed by a pixel shuffle: ONNX Runtime's bicubic ``Resize`` kernel is slower than our whole
    network on one CPU core, this formulation costs ~1 % of it. Depends on LR pixels within radius 2.
    """
    x = lr if out_channels is None or out_channels == lr.shape[1] else lr[:, :out_channels]
    c = int(x.shape[1])  # a constant in exported graphs: the band count is fixed by the model
    w = bicubic_kernel(scale, c, x.dtype, x.device)
    y = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), w, groups=c)
    return F.pixel_shuffle(y, scale)


def check_lr(lr: torch.Tensor, in_channels: int, ndim: int = 4) -> None:
    if lr.ndim != ndim:
        layout = "(N, C, H, W)" if ndim == 4 else "(N, T, C, H, W)"
        raise ValueError(f"expected a {ndim}-D tensor {layout}, got shape {tuple(lr.shape)}")
    c = lr.shape[-3]
    if c != in_channels:
        raise ValueError(f"expected {in_channels} input bands (dim -3), got {c} (shape {tuple(lr.shape)})")


class BicubicUpsample(nn.Module):
    """``nn.Module`` wrapper of :func:`bicubic_upsample`."""

    def __init__(self, scale: int, out_channels: int | None = None) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        self.out_channels = out_channels

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return bicubic_upsample(lr, self.scale, self.out_channels)


def check_flat_gate(flat_gate: float | None) -> float | None:
    """``None`` (no gate) or a positive finite number: the contrast scale of :func:`contrast_gate`."""
    if flat_gate is None:
        return None
    if isinstance(flat_gate, bool) or not isinstance(flat_gate, (int, float)) or not 0 < flat_gate < math.inf:
        raise ValueError(f"flat_gate must be None or a positive number (input contrast scale), got {flat_gate!r}")
    return float(flat_gate)


def contrast_gate(x: torch.Tensor, eps: float, radius: int = 1) -> torch.Tensor:
    """``s / (s + eps)`` per pixel ``(N, 1, H, W)``: ``s`` the local range (max - min over ``(2 radius + 1)^2``
    pixels, edges replicated) of ``x`` averaged over its channels. Exactly 0 where every channel of ``x`` is
    constant over the window (max - min is exact in floating point), near 1 where the input has contrast well
    above ``eps``: a residual multiplied by it adds nothing to a flat field, whatever the network's weights."""
    k = 2 * radius + 1
    p = F.pad(x, (radius,) * 4, mode="replicate")
    s = (F.max_pool2d(p, k, stride=1) + F.max_pool2d(-p, k, stride=1)).mean(1, keepdim=True)
    return s / (s + eps)


def check_fine_grid(in_channels: int, out_channels: int | None, scale: int, fine_channels: int) -> int:
    """Argument checks of a scale-1 model whose input and output are the same bands on the grid of the first
    ``fine_channels`` (the fine bands unchanged, the coarse bands sharpened): returns ``in_channels``."""
    check_positive_int("in_channels", in_channels, 2)
    if out_channels is not None and out_channels != in_channels:
        raise ValueError(
            f"out_channels must equal in_channels ({in_channels}): the output holds the fine bands unchanged "
            f"and the coarse bands sharpened, got {out_channels!r}"
        )
    check_positive_int("fine_channels", fine_channels)
    if fine_channels >= in_channels:
        raise ValueError(f"fine_channels must be below in_channels ({in_channels}), got {fine_channels}")
    if isinstance(scale, bool) or scale != 1:
        raise ValueError(f"scale must be 1 (the output is on the grid of the input), got {scale!r}")
    return in_channels
