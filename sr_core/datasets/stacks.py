"""Simulated revisit stacks for multi-image SR (MISR): K low-resolution frames of one high-resolution crop.

Layouts: ``hr`` ``(C, H, W)`` (any bands, reflectance), a stack ``lr`` ``(K, C, h, w)`` with ``h = H / ratio``,
per-pixel validity ``mask`` ``(K, h, w)`` bool (True = clear). Batched forms add a leading ``N``.

Frame model (frame ``k``, drawn from a ``torch.Generator`` in a documented order, :func:`simulate_stack`)::

    lr_k = gain_k * D_{s_k}(hr) + offset_k + noise_k,     cloudy pixels of lr_k = NaN, mask_k = False

where ``D_s`` is the MTF-matched Gaussian acquisition of :func:`sr_core.degradation.degrade` with the scene
translated by ``s_k = (dy, dx)`` LR pixels (positive = content moves down/right, the
:func:`sr_core.degradation.subpixel_shift` sign). The translation is not interpolated: its integer part (in HR
pixels) is an exact index shift (``padding`` at the borders), its fractional part moves the sampled Gaussian PSF
(taps at ``offset + frac``), so a frame is the PSF integrated at the shifted LR pixel centres. With zero shift
``D_0`` is exactly ``degrade(hr, ratio, ...)``. The anchor frame (the clearest, or a given index) has zero shift,
gain 1, offset 0: the target ``hr`` is on the anchor's grid and in its radiometry.

Clouds are blobby: white noise smoothed by a Gaussian of ``cloud_sigma`` LR pixels (circular), thresholded so
that exactly ``round(cover * h * w)`` pixels are cloudy (:func:`cloud_mask`).

Model input (shared by training, evaluation and the UDF, ``sr_core.inference.misr._temporal_fill`` is the numpy twin):
:func:`fill_invalid` replaces the cloudy pixels of each frame by the per-pixel median of the clear frames (mean of
the two middle values for an even count); :func:`anchor_first` puts the anchor at index 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F

from sr_core.bands import mtf as _band_mtf
from sr_core.bands import normalize_band_names
from sr_core.degradation import (
    PADDING_MODES,
    blur,
    default_psf_size,
    model_input_10band,
    mtf_to_sigma,
    subpixel_shift,
)
from sr_core.degradation.psf import _pad_dim  # the degradation's own padding rule

__all__ = [
    "MISRStack",
    "anchor_first",
    "cloud_mask",
    "fill_invalid",
    "shifted_degrade",
    "simulate_batch",
    "simulate_stack",
    "stack_input_10band",
]


class MISRStack(NamedTuple):
    """One simulated revisit stack (see the module docstring)."""

    lr: torch.Tensor  # (K, C, h, w), NaN where cloudy
    mask: torch.Tensor  # (K, h, w) bool, True = clear
    hr: torch.Tensor  # (C, H, W) target (anchor grid and radiometry)
    anchor: int  # index of the anchor frame
    shifts: torch.Tensor  # (K, 2) float64 (dy, dx) in LR pixels
    gains: torch.Tensor  # (K, C) float64
    offsets: torch.Tensor  # (K, C) float64
    noise_std: torch.Tensor  # (K,) float64


# ---------------------------------------------------------------------------------------------- checks


def _check_generator(generator: object) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return generator


def _check_range(name: str, value: object, low: float = 0.0, high: float = math.inf) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    if not (low <= a <= b <= high):
        raise ValueError(f"{name} must satisfy {low} <= low <= high <= {high}, got {value!r}")
    return a, b


def _check_nonneg(name: str, value: object, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value <= high):
        raise ValueError(f"{name} must be a number in [0, {high}], got {value!r}")
    return float(value)


def _sigmas(channels: int, ratio: int, bands: Sequence[str] | None, mtf: object) -> torch.Tensor:
    if (bands is None) == (mtf is None):
        raise ValueError("give exactly one of bands= (Sentinel-2 names) or mtf= (MTF at the LR Nyquist frequency)")
    if bands is not None:
        names = normalize_band_names((bands,) if isinstance(bands, str) else bands)
        if len(names) != channels:
            raise ValueError(f"bands has {len(names)} names ({', '.join(names)}) but hr has {channels} bands (C)")
        m = torch.tensor([_band_mtf(b) for b in names], dtype=torch.float64)
    else:
        m = torch.as_tensor(mtf, dtype=torch.float64).flatten()
        if m.numel() == 1:
            m = m.expand(channels).clone()
        if m.numel() != channels:
            raise ValueError(f"mtf needs 1 or {channels} values (one per band), got {m.numel()}")
    if not bool(((m > 0) & (m < 1)).all()):
        raise ValueError(f"mtf must lie in the open interval (0, 1) for every band, got {m.tolist()!r}")
    return m


# ---------------------------------------------------------------------------------------------- degradation


def _shifted_kernels(sigmas: torch.Tensor, ratio: int, frac: float) -> torch.Tensor:
    """Per-band 1-D PSF taps ``(C, k + 2)`` at offsets ``t - (k+1)/2`` from the LR centre, moved by ``frac``.

    ``k`` is the default PSF size (:func:`sr_core.degradation.default_psf_size`, longest band); the two extra
    taps give room to the moved Gaussian (parity kept: still centred on the LR pixel centre). ``frac == 0``
    gives the default kernel exactly, zero-padded by one tap on each side.
    """
    k = max(default_psf_size(float(s), ratio) for s in sigmas.tolist())
    if frac == 0.0:
        off = torch.arange(k, dtype=torch.float64) - (k - 1) / 2.0
        w = torch.exp(-0.5 * (off[None, :] / sigmas[:, None]) ** 2)
        return F.pad(w / w.sum(dim=1, keepdim=True), (1, 1))
    off = torch.arange(k + 2, dtype=torch.float64) - (k + 1) / 2.0 + frac
    w = torch.exp(-0.5 * (off[None, :] / sigmas[:, None]) ** 2)
    return w / w.sum(dim=1, keepdim=True)


def _split(d: float) -> tuple[int, float]:
    n = math.floor(d)
    return n, d - n


def _filter_sep(x: torch.Tensor, ky: torch.Tensor, kx: torch.Tensor, ratio: int, padding: str) -> torch.Tensor:
    """Strided separable per-band filter: rows with ``ky`` ``(C, k1)``, columns with ``kx`` ``(C, k2)``; output
    sample ``i`` is centred on the LR pixel centre ``ratio * i + (ratio - 1) / 2`` (the rule of
    ``sr_core.degradation``)."""
    off = (ratio - 1) // 2
    out = x
    for dim, ker in ((-2, ky), (-1, kx)):
        k = ker.shape[-1]
        before, after = (k - 1) // 2, k - 1 - (k - 1) // 2
        out = _pad_dim(out, dim, before, after, padding)
        out = out[:, :, off:, :] if dim == -2 else out[:, :, :, off:]
        w = ker.to(dtype=x.dtype, device=x.device)
        if dim == -2:  # windows (N, C, h, W, k)
            out = torch.einsum("ncwxk,ck->ncwx", out.unfold(-2, k, ratio), w)
        else:  # windows (N, C, h, w, k)
            out = torch.einsum("nchwk,ck->nchw", out.unfold(-1, k, ratio), w)
    return out


def shifted_degrade(
    hr: torch.Tensor,
    ratio: int,
    shift: tuple[float, float] = (0.0, 0.0),
    *,
    bands: Sequence[str] | None = None,
    mtf: object = None,
    padding: str = "reflect",
) -> torch.Tensor:
    """The Gaussian-PSF acquisition of ``hr`` ``(N, C, H, W)`` with the scene translated by ``shift`` LR pixels.

    ``shift = (dy, dx)`` in LR pixels (positive = content moves down/right). Let ``d = ratio * shift`` (HR
    pixels) ``= n + f`` with ``n`` integer and ``0 <= f < 1``: ``hr`` is index-shifted by ``n`` (exact, borders
    from ``padding``) and the PSF taps are sampled at ``offset + f`` (``lr[i] = sum_t psf(o_t + f) x[c_i + o_t]``),
    so no interpolation kernel is added. ``shift = (0, 0)`` gives exactly
    ``sr_core.degradation.degrade(hr, ratio, bands=..., mtf=...)``; with ``padding="circular"`` a shift by an
    integer number of LR pixels is a ``torch.roll`` of the unshifted frame. PSF from exactly one of ``bands``
    or ``mtf`` (number or one per band). ``H``, ``W`` must be multiples of ``ratio``.
    """
    if not isinstance(hr, torch.Tensor) or hr.ndim != 4 or not hr.is_floating_point():
        raise ValueError(f"hr must be a floating (N, C, H, W) tensor, got {getattr(hr, 'shape', type(hr))}")
    if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
        raise ValueError(f"ratio must be a positive integer, got {ratio!r}")
    if hr.shape[-2] % ratio or hr.shape[-1] % ratio:
        raise ValueError(f"hr size {tuple(hr.shape[-2:])} must be a multiple of ratio={ratio}")
    if padding not in PADDING_MODES:
        raise ValueError(f"padding must be one of {PADDING_MODES}, got {padding!r}")
    try:
        dy, dx = (float(v) for v in shift)
    except (TypeError, ValueError):
        raise ValueError(f"shift must be a pair (dy, dx) of numbers, got {shift!r}") from None
    if not (math.isfinite(dy) and math.isfinite(dx)):
        raise ValueError(f"shift must be finite, got {shift!r}")
    sig = mtf_to_sigma(_sigmas(hr.shape[1], ratio, bands, mtf), ratio)
    return _degrade_frames(hr, sig, ratio, [(dy, dx)], padding)[:, 0]


def _degrade_frames(
    hr: torch.Tensor, sig: torch.Tensor, ratio: int, shifts: list[tuple[float, float]], padding: str
) -> torch.Tensor:
    """All frames at once: ``hr`` ``(N, C, H, W)`` (or one scene per frame, ``(N, K, C, H, W)``) ->
    ``(N, K, C, h, w)`` for the ``K`` shifts (LR px)."""
    n, c = hr.shape[0], hr.shape[-3]
    xs, kys, kxs = [], [], []
    for k, (dy, dx) in enumerate(shifts):
        ny, fy = _split(ratio * dy)
        nx, fx = _split(ratio * dx)
        src = hr[:, k] if hr.ndim == 5 else hr
        xs.append(subpixel_shift(src, ny, nx, padding) if (ny or nx) else src)
        kys.append(_shifted_kernels(sig, ratio, fy))
        kxs.append(_shifted_kernels(sig, ratio, fx))
    x = torch.cat(xs, dim=1)  # (N, K*C, H, W)
    out = _filter_sep(x, torch.cat(kys), torch.cat(kxs), ratio, padding)
    return out.reshape(n, len(shifts), c, *out.shape[-2:])


# ---------------------------------------------------------------------------------------------- clouds


def cloud_mask(
    height: int, width: int, cover: float, *, generator: torch.Generator, sigma: float = 3.0
) -> torch.Tensor:
    """Blobby clear-sky mask ``(height, width)`` bool (True = clear) with exactly ``round(cover * h * w)``
    cloudy pixels: white noise (from ``generator``) smoothed by a circular Gaussian of ``sigma`` pixels, the
    highest values are cloud. ``cover`` in [0, 1]; ``sigma > 0`` (pixels)."""
    _check_generator(generator)
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    cover = _check_nonneg("cover", cover, 1.0)
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0:
        raise ValueError(f"sigma must be a number > 0 (pixels), got {sigma!r}")
    noise = torch.randn(height, width, generator=generator, dtype=torch.float64)
    n_cloud = int(round(cover * height * width))
    if n_cloud == 0:
        return torch.ones(height, width, dtype=torch.bool)
    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(width, dtype=torch.float64)[None, :]
    transfer = torch.exp(-2.0 * math.pi**2 * float(sigma) ** 2 * (fy**2 + fx**2))
    smooth = torch.fft.ifft2(torch.fft.fft2(noise) * transfer).real.flatten()
    order = torch.argsort(smooth, descending=True, stable=True)
    clear = torch.ones(height * width, dtype=torch.bool)
    clear[order[:n_cloud]] = False
    return clear.reshape(height, width)


# ---------------------------------------------------------------------------------------------- stacks


def _uniform(generator: torch.Generator, low: float, high: float, shape: tuple[int, ...]) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)


def simulate_stack(
    hr: torch.Tensor,
    *,
    generator: torch.Generator,
    frames: int = 8,
    ratio: int = 2,
    bands: Sequence[str] | None = None,
    mtf: object = None,
    max_shift: float = 0.5,
    gain_range: float = 0.0,
    offset_range: float = 0.0,
    noise_std_range: tuple[float, float] = (0.0, 0.0),
    cloud_prob: float = 0.0,
    cloud_cover: tuple[float, float] = (0.05, 0.6),
    cloud_sigma: float = 3.0,
    change_prob: float = 0.0,
    change_cover: tuple[float, float] = (0.05, 0.5),
    change_gain: float = 0.3,
    anchor: int | str = "clearest",
    padding: str = "reflect",
    change_texture_prob: float = 0.0,
    zero_shift_prob: float = 0.0,
) -> MISRStack:
    """Simulate ``frames`` revisits of ``hr`` ``(C, H, W)`` (see the module docstring for the frame model).

    Draws, in this order, from ``generator``: per frame whether it is cloudy (probability ``cloud_prob``), its
    cover ``~ U(cloud_cover)`` and its :func:`cloud_mask` (``cloud_sigma`` LR px); then for all frames the shifts
    ``(dy, dx) ~ U(-max_shift, max_shift)`` LR px ``(K, 2)``, the gains ``1 + U(-gain_range, gain_range)``
    ``(K, C)``, the offsets ``U(-offset_range, offset_range)`` ``(K, C)``, the noise stds ``~ U(noise_std_range)``
    ``(K,)``; then per frame the temporal change: whether the frame shows a changed scene (probability
    ``change_prob``), its cover ``~ U(change_cover)``, a blobby change mask on the HR grid (:func:`cloud_mask`,
    ``ratio * cloud_sigma`` HR px), a circular offset ``(oy, ox)`` and per-band gains ``1 + U(-change_gain,
    change_gain)``: inside the mask the frame sees ``gain * roll(hr, (oy, ox))`` (other content, other
    radiometry: phenology, harvest, construction) instead of ``hr``; with ``change_texture_prob > 0`` one more draw
    per changed frame picks a *texture* change instead (probability ``change_texture_prob``): inside the mask the
    frame keeps the scene's low-pass content (Gaussian, 2 HR px) and gets the high-pass content of
    ``roll(hr, (oy, ox))`` (the same fields and levels, other texture: crops grown or harvested); with
    ``zero_shift_prob > 0`` one draw decides whether the whole stack is co-registered (all shifts 0: revisits on
    one sampling grid, nothing to gain from sub-pixel diversity); last the unit noise ``(K, C, h, w)``. Both
    extra draws happen only when their probability is > 0 (the other draws do not change). The anchor (``"clearest"``: most clear pixels, lowest index on
    ties; or an index) gets shift 0, gain 1, offset 0 (its draws are still consumed, so the other frames do not
    depend on the anchor choice). Noise is added to every frame, anchor included. Cloudy pixels are NaN in ``lr``.
    """
    _check_generator(generator)
    if not isinstance(hr, torch.Tensor) or hr.ndim != 3 or not hr.is_floating_point():
        raise ValueError(f"hr must be a floating (C, H, W) tensor, got {getattr(hr, 'shape', type(hr))}")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be a positive integer, got {frames!r}")
    max_shift = _check_nonneg("max_shift", max_shift)
    gain_range = _check_nonneg("gain_range", gain_range, 0.5)
    offset_range = _check_nonneg("offset_range", offset_range)
    n_lo, n_hi = _check_range("noise_std_range", noise_std_range)
    cloud_prob = _check_nonneg("cloud_prob", cloud_prob, 1.0)
    c_lo, c_hi = _check_range("cloud_cover", cloud_cover, 0.0, 1.0)
    change_prob = _check_nonneg("change_prob", change_prob, 1.0)
    ch_lo, ch_hi = _check_range("change_cover", change_cover, 0.0, 1.0)
    change_gain = _check_nonneg("change_gain", change_gain, 0.9)
    change_texture_prob = _check_nonneg("change_texture_prob", change_texture_prob, 1.0)
    zero_shift_prob = _check_nonneg("zero_shift_prob", zero_shift_prob, 1.0)
    c, hh, ww = hr.shape
    if hh % ratio or ww % ratio:
        raise ValueError(f"hr size {(hh, ww)} must be a multiple of ratio={ratio}")
    h, w = hh // ratio, ww // ratio
    masks = []
    for _ in range(frames):
        cloudy = bool(torch.rand((), generator=generator, dtype=torch.float64) < cloud_prob)
        cover = float(_uniform(generator, c_lo, c_hi, ()))
        masks.append(cloud_mask(h, w, cover if cloudy else 0.0, generator=generator, sigma=cloud_sigma))
    mask = torch.stack(masks)
    if anchor == "clearest":
        a = int(torch.argmax(mask.reshape(frames, -1).sum(dim=1)))  # first maximum
    elif isinstance(anchor, int) and not isinstance(anchor, bool) and 0 <= anchor < frames:
        a = anchor
    else:
        raise ValueError(f"anchor must be 'clearest' or an index in [0, {frames}), got {anchor!r}")
    shifts = _uniform(generator, -max_shift, max_shift, (frames, 2))
    gains = 1.0 + _uniform(generator, -gain_range, gain_range, (frames, c))
    offsets = _uniform(generator, -offset_range, offset_range, (frames, c))
    noise_std = _uniform(generator, n_lo, n_hi, (frames,))
    shifts[a], gains[a], offsets[a] = 0.0, 1.0, 0.0
    if padding not in PADDING_MODES:
        raise ValueError(f"padding must be one of {PADDING_MODES}, got {padding!r}")
    sig = mtf_to_sigma(_sigmas(c, ratio, bands, mtf), ratio)
    scenes = hr[None].expand(frames, c, hh, ww)
    if change_prob > 0:
        scenes = scenes.clone()
        for k in range(frames):
            changed = bool(torch.rand((), generator=generator, dtype=torch.float64) < change_prob)
            cover = float(_uniform(generator, ch_lo, ch_hi, ()))
            if not changed:
                continue
            blob = ~cloud_mask(hh, ww, cover, generator=generator, sigma=ratio * cloud_sigma)
            oy = int(torch.randint(hh, (), generator=generator))
            ox = int(torch.randint(ww, (), generator=generator))
            g = (1.0 + _uniform(generator, -change_gain, change_gain, (c,))).to(hr.dtype)[:, None, None]
            texture = change_texture_prob > 0 and bool(
                torch.rand((), generator=generator, dtype=torch.float64) < change_texture_prob)
            if k != a:
                other = torch.roll(hr, (oy, ox), (-2, -1))
                if texture:
                    low, other_low = _lowpass(hr), _lowpass(other)
                    new = low + g * (other - other_low)
                else:
                    new = g * other
                scenes[k] = torch.where(blob[None], new, hr)
    if zero_shift_prob > 0 and bool(torch.rand((), generator=generator, dtype=torch.float64) < zero_shift_prob):
        shifts = torch.zeros_like(shifts)
    y = _degrade_frames(scenes[None], sig, ratio, [(float(v[0]), float(v[1])) for v in shifts], padding)[0]
    noise = torch.randn(y.shape, generator=generator, dtype=y.dtype)
    y = gains.to(y.dtype)[:, :, None, None] * y + offsets.to(y.dtype)[:, :, None, None]
    y = y + noise * noise_std.to(y.dtype)[:, None, None, None]
    lr = torch.where(mask[:, None], y, torch.full_like(y, float("nan")))
    return MISRStack(lr, mask, hr, a, shifts, gains, offsets, noise_std)


def _lowpass(x: torch.Tensor) -> torch.Tensor:
    """Zero-phase Gaussian low-pass (sigma 2 HR px) of ``x`` ``(C, H, W)``."""
    return blur(x[None], 2.0, 1)[0]


def stack_input_10band(lr: torch.Tensor, lr20: torch.Tensor) -> torch.Tensor:
    """The 10-band model input layout for every frame of a stack: ``lr`` ``(N, K, 4, h, w)`` (``BANDS_10M``) and
    the 20 m bands ``lr20`` ``(N, 6, h/2, w/2)`` (the same for every frame) or ``(N, K, 6, h/2, w/2)`` (per frame)
    give ``(N, K, 10, h, w)``: :func:`sr_core.degradation.model_input_10band` frame by frame (20 m bands
    nearest-replicated onto the frame grid)."""
    n, k = lr.shape[:2]
    if lr20.ndim == 4:
        lr20 = lr20[:, None].expand(-1, k, -1, -1, -1)
    x = model_input_10band(lr.flatten(0, 1), lr20.to(lr.dtype).flatten(0, 1))
    return x.unflatten(0, (n, k))


def simulate_batch(hr: torch.Tensor, **kwargs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`simulate_stack` for each crop of ``hr`` ``(N, C, H, W)`` (same keyword arguments, in sample order),
    then :func:`anchor_first`. Returns ``lr`` ``(N, K, C, h, w)``, ``mask`` ``(N, K, h, w)``, ``anchors`` ``(N,)``
    (the original anchor indices)."""
    if not isinstance(hr, torch.Tensor) or hr.ndim != 4:
        raise ValueError(f"hr must be (N, C, H, W), got {getattr(hr, 'shape', type(hr))}")
    stacks = [simulate_stack(hr[i], **kwargs) for i in range(hr.shape[0])]
    lr = torch.stack([s.lr for s in stacks])
    mask = torch.stack([s.mask for s in stacks])
    anchors = torch.tensor([s.anchor for s in stacks])
    lr, mask = anchor_first(lr, mask, anchors)
    return lr, mask, anchors


def anchor_first(lr: torch.Tensor, mask: torch.Tensor, anchor: torch.Tensor | Sequence[int] | int):
    """Reorder the frames of ``lr`` ``(N, K, ...)`` and ``mask`` ``(N, K, ...)`` so that the anchor comes first
    and the others keep their order: ``[a, 0, .., a-1, a+1, .., K-1]`` per sample (``anchor`` an int or one
    index per sample)."""
    if lr.ndim < 2 or mask.shape[:2] != lr.shape[:2]:
        raise ValueError(f"lr and mask must share (N, K), got {tuple(lr.shape)} and {tuple(mask.shape)}")
    n, k = lr.shape[:2]
    a = torch.as_tensor(anchor, dtype=torch.long).reshape(-1).expand(n) if not isinstance(anchor, int) else (
        torch.full((n,), anchor, dtype=torch.long))
    if bool(((a < 0) | (a >= k)).any()):
        raise ValueError(f"anchor indices must be in [0, {k}), got {a.tolist()}")
    order = []
    for i in range(n):
        ai = int(a[i])
        order.append([ai] + [j for j in range(k) if j != ai])
    idx = torch.tensor(order, dtype=torch.long, device=lr.device)
    lr_o = torch.gather(lr, 1, idx.reshape(n, k, *([1] * (lr.ndim - 2))).expand_as(lr))
    m_o = torch.gather(mask, 1, idx.reshape(n, k, *([1] * (mask.ndim - 2))).expand_as(mask))
    return lr_o, m_o


def fill_invalid(
    lr: torch.Tensor, mask: torch.Tensor, *, min_valid: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Model input of a stack: ``lr`` ``(N, K, C, h, w)`` with ``mask`` ``(N, K, h, w)`` (True = clear).

    Returns ``(filled, frame_valid (N, K) bool, any_valid (N, h, w) bool)``: each cloudy pixel is replaced by the
    per-pixel, per-band median of the clear frames at that pixel (mean of the two middle values for an even
    count, numpy's rule); a pixel clear in no frame gets the per-band mean of the filled median over the sample's
    clear pixels (0 if none) and ``any_valid`` False there. A frame is usable (``frame_valid``) when its clear
    fraction is ``> 0`` and ``>= min_valid``; at least one frame per sample stays usable (the clearest). Cloudy
    values (NaN included) never reach the output.
    """
    if lr.ndim != 5 or mask.shape != lr.shape[:2] + lr.shape[3:]:
        raise ValueError(f"lr must be (N, K, C, h, w) and mask (N, K, h, w), got {tuple(lr.shape)}, "
                         f"{tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool (True = clear), got {mask.dtype}")
    min_valid = _check_nonneg("min_valid", min_valid, 1.0)
    n, k = lr.shape[:2]
    m = mask[:, :, None].expand_as(lr)
    x = torch.where(m, lr, torch.full_like(lr, float("inf")))
    s = torch.sort(x, dim=1).values
    cnt = mask.sum(dim=1)[:, None, None].expand(n, 1, lr.shape[2], *lr.shape[3:])  # (N, 1, C, h, w)
    lo = ((cnt - 1).clamp(min=0) // 2).clamp(max=k - 1)
    hi = (cnt // 2).clamp(max=k - 1)
    med = 0.5 * (torch.gather(s, 1, lo) + torch.gather(s, 1, hi))[:, 0]  # (N, C, h, w)
    any_valid = mask.any(dim=1)
    av = any_valid[:, None].expand_as(med)
    safe = torch.where(av, med, torch.zeros_like(med))
    num = safe.sum(dim=(-2, -1))
    den = av.sum(dim=(-2, -1)).clamp(min=1).to(lr.dtype)
    fallback = (num / den)[..., None, None].expand_as(med)
    med = torch.where(av, med, fallback)
    filled = torch.where(m, lr, med[:, None].expand_as(lr))
    frac = mask.reshape(n, k, -1).float().mean(dim=2)
    frame_valid = (frac > 0) & (frac >= min_valid)
    best = torch.argmax(frac, dim=1)
    none = ~frame_valid.any(dim=1)
    frame_valid[none, best[none]] = True
    return filled, frame_valid, any_valid
