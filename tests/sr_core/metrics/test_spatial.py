"""Spatial metrics (sr_core.metrics.spatial): phase correlation, radial power spectrum."""

from __future__ import annotations

import math

import pytest
import torch

from sr_core import metrics as M
from tests.sr_core.metrics.images import F64, fourier_shift, rand_images, smooth_field

# ------------------------------------------------------------------------------------------------------------
# phase correlation, radial spectrum
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(32, 32), (33, 40)])
def test_phase_correlation_subpixel_fourier_shift(gen, size):
    b = smooth_field(gen, 2, 2, *size, sigma=1.5)
    true = [(0.3, -1.7), (-2.46, 0.81)]
    a = torch.stack([fourier_shift(b[i], *true[i]) for i in range(2)])
    est = M.phase_correlation_shift(a, b, window=None)
    want = torch.tensor(true, dtype=F64)[:, None, :].expand(2, 2, 2)
    assert (est - want).abs().max().item() <= 0.02
    mag = M.spatial_misalignment(a, b, window=None)
    torch.testing.assert_close(mag, torch.linalg.vector_norm(est, dim=-1))


def test_phase_correlation_integer_shift_exact_and_sign(gen):
    b = rand_images(gen, 1, 3, 24, 24)
    a = torch.roll(b, shifts=(2, -3), dims=(-2, -1))  # a(y, x) = b(y - 2, x + 3)
    est = M.phase_correlation_shift(a, b, window=None)
    assert est.tolist() == [[[2.0, -3.0]] * 3]
    assert M.phase_correlation_shift(b, a, window=None).tolist() == [[[-2.0, 3.0]] * 3]
    assert (M.spatial_misalignment(b, b) == 0).all()


def test_phase_correlation_non_periodic_crop_with_hann(gen):
    big = smooth_field(gen, 1, 1, 128, 128, sigma=1.0)
    dy, dx = 0.4, -1.3
    a = fourier_shift(big, dy, dx)[..., 32:96, 32:96]
    b = big[..., 32:96, 32:96]
    est = M.phase_correlation_shift(a, b)  # default Hann window
    assert abs(est[0, 0, 0].item() - dy) <= 0.05 and abs(est[0, 0, 1].item() - dx) <= 0.05


def test_radial_power_spectrum_white_noise_flat(gen):
    sigma = 0.5
    x = sigma * torch.randn(64, 1, 32, 32, generator=gen, dtype=F64)
    freqs, power = M.radial_power_spectrum(x, subtract_mean=True)
    torch.testing.assert_close(freqs, torch.arange(17, dtype=F64) / 32)
    p = power.mean(dim=(0, 1))[1:]
    assert power[..., 0].abs().max().item() < 1e-20  # DC removed
    assert abs(p.mean().item() / sigma**2 - 1) < 0.05
    assert ((p / sigma**2 - 1).abs() < 0.3).all()


def test_radial_power_spectrum_sinusoid_peaks_at_its_frequency():
    y, x = torch.meshgrid(torch.arange(32, dtype=F64), torch.arange(32, dtype=F64), indexing="ij")
    for fy, fx in [(0.0, 5 / 32), (3 / 32, 4 / 32)]:  # radial frequencies 5/32 both
        img = torch.cos(2 * math.pi * (fy * y + fx * x))[None, None]
        freqs, power = M.radial_power_spectrum(img)
        k = int(power[0, 0].argmax())
        assert freqs[k].item() == 5 / 32
        assert power[0, 0, k] > 100 * power[0, 0, torch.arange(power.shape[-1]) != k].max()
