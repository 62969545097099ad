"""The MTF-matched Gaussian PSF, padding, blur, decimation, noise and degrade: values and the grid convention."""

from __future__ import annotations

import math

import pytest
import torch

from sr_core.bands import BANDS_10M, BANDS_20M
from sr_core.bands import mtf as band_mtf
from sr_core.degradation import (
    Degradation,
    blur,
    decimate,
    default_psf_size,
    degrade,
    gaussian_psf,
    gaussian_psf_1d,
    mtf_to_sigma,
    pad,
    sigma_to_mtf,
)
from tests.sr_core.degradation.helpers import PADDINGS, RATIOS, S2_MTFS, lr_centre


@pytest.mark.parametrize("mtf", [0.1, 0.26, 0.5, 0.9])
@pytest.mark.parametrize("r", [1, 2, 3, 4.5])
def test_mtf_to_sigma_closed_form(mtf, r):
    sigma = mtf_to_sigma(mtf, r)
    # the continuous Gaussian's transfer function at the LR Nyquist frequency 1/(2r) is the MTF
    assert math.exp(-2 * math.pi**2 * sigma**2 * (1 / (2 * r)) ** 2) == pytest.approx(mtf, rel=1e-12)
    assert sigma_to_mtf(sigma, r) == pytest.approx(mtf, rel=1e-12)
    t = mtf_to_sigma(torch.tensor([mtf], dtype=torch.float64), r)
    assert float(t) == pytest.approx(sigma, rel=1e-12)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.2, 1.5, float("nan")])
def test_mtf_to_sigma_rejects_mtf(bad):
    with pytest.raises(ValueError, match="mtf"):
        mtf_to_sigma(bad, 2)
    with pytest.raises(ValueError, match="mtf"):
        mtf_to_sigma(torch.tensor([0.3, bad]), 2)


@pytest.mark.parametrize("bad", [0, -2, 0.0])
def test_mtf_to_sigma_rejects_ratio(bad):
    with pytest.raises(ValueError, match="ratio"):
        mtf_to_sigma(0.3, bad)


@pytest.mark.parametrize("r", RATIOS)
@pytest.mark.parametrize("sigma", [0.4, 1.3, 2.7])
def test_kernel_sums_to_one_and_is_centred_on_block_centre(r, sigma):
    k2 = gaussian_psf(sigma, r)
    k = k2.shape[0]
    assert k2.shape == (k, k) and k % 2 == r % 2 and k >= r and (k - 1) / 2 >= 3 * sigma
    assert k == default_psf_size(sigma, r)
    assert float(k2.sum()) == pytest.approx(1.0, abs=1e-12)
    # centre of mass at the centre of the taps, which is where the LR pixel centre sits
    idx = torch.arange(k, dtype=torch.float64)
    assert float((k2.sum(1) * idx).sum()) == pytest.approx((k - 1) / 2, abs=1e-12)
    assert float((k2.sum(0) * idx).sum()) == pytest.approx((k - 1) / 2, abs=1e-12)
    # separable: outer product of the 1-D kernel; symmetric
    k1 = gaussian_psf_1d(sigma, r)
    torch.testing.assert_close(k2, torch.outer(k1, k1))
    torch.testing.assert_close(k1, k1.flip(0))
    assert gaussian_psf(sigma, r, dtype=torch.float32).dtype == torch.float32


@pytest.mark.parametrize("r", [2, 3])
@pytest.mark.parametrize("sigma", [1.0, 1.7, 3.2])
def test_kernel_variance_is_sigma_squared_for_large_support(r, sigma):
    size = 2 * math.ceil(8 * sigma) + (1 if r % 2 else 2)
    k1 = gaussian_psf_1d(sigma, r, size=size)
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    assert float((k1 * offsets**2).sum()) == pytest.approx(sigma**2, rel=1e-6)
    # the default +-3 sigma truncation loses a bit of variance (truncated-Gaussian value)
    k = default_psf_size(sigma, r)
    taps = torch.arange(k, dtype=torch.float64) - (k - 1) / 2
    assert float((gaussian_psf_1d(sigma, r) * taps**2).sum()) < sigma**2


@pytest.mark.parametrize("r", RATIOS)
@pytest.mark.parametrize("mtf", S2_MTFS)
def test_measured_mtf_at_lr_nyquist_matches_request(r, mtf):
    k2 = gaussian_psf(mtf_to_sigma(mtf, r), r)
    n = 2 * r * 32
    padded = torch.zeros(n, n, dtype=torch.float64)
    padded[: k2.shape[0], : k2.shape[1]] = k2
    spec = torch.fft.fft2(padded).abs()
    nyq = n // (2 * r)  # LR Nyquist: 1/(2r) cycles per HR pixel
    assert float(spec[nyq, 0]) == pytest.approx(mtf, abs=2e-3)
    assert float(spec[0, nyq]) == pytest.approx(mtf, abs=2e-3)
    assert float(spec[0, 0]) == pytest.approx(1.0, abs=1e-12)


def test_psf_errors():
    with pytest.raises(ValueError, match="parity"):
        gaussian_psf(1.0, 2, size=7)
    with pytest.raises(ValueError, match="parity"):
        gaussian_psf_1d(1.0, 3, size=8)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_psf(0.0, 2)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_psf(-1.0, 3)
    with pytest.raises(ValueError, match="ratio"):
        gaussian_psf(1.0, 0)
    with pytest.raises(ValueError, match="size"):
        gaussian_psf(1.0, 2, size=0)


@pytest.mark.parametrize("r", [2, 3, 4])
def test_impulse_lands_in_its_lr_pixel(r):
    i, j = 2, 3
    hr = torch.zeros(1, 1, 6 * r, 6 * r, dtype=torch.float64)
    for a in range(r):
        for b in range(r):
            hr.zero_()
            hr[0, 0, r * i + a, r * j + b] = 1.0
            for kwargs in ({"mtf": 0.26}, {"sigma": 0.5 * r}):
                lr = degrade(hr, r, **kwargs)[0, 0]
                flat = int(lr.argmax())
                assert divmod(flat, lr.shape[1]) == (i, j), (a, b, kwargs)
                # the weight is the PSF at the impulse's offset from the LR centre
                s = mtf_to_sigma(0.26, r) if "mtf" in kwargs else 0.5 * r
                k1 = gaussian_psf_1d(s, r)
                d2 = (r * i + a - lr_centre(i, r)) ** 2 + (r * j + b - lr_centre(j, r)) ** 2
                expect = math.exp(-d2 / (2 * s**2))
                taps = torch.arange(k1.numel(), dtype=torch.float64) - (k1.numel() - 1) / 2
                expect /= float(torch.exp(-(taps**2) / (2 * s**2)).sum()) ** 2
                assert float(lr[i, j]) == pytest.approx(expect, rel=1e-12)


@pytest.mark.parametrize("r", RATIOS)
@pytest.mark.parametrize("padding", PADDINGS)
def test_blur_then_decimate_equals_degrade_and_direct_psf_sum(r, padding, gen):
    hr = torch.rand(1, 2, 3 * r, 4 * r, generator=gen, dtype=torch.float64)
    sig = [0.8, 1.9]
    lr = degrade(hr, r, sigma=sig, padding=padding)
    torch.testing.assert_close(decimate(blur(hr, sig, r, padding), r), lr, rtol=0, atol=1e-13)
    # direct sum of the continuous PSF at the LR centre over the padded HR pixels
    k = max(default_psf_size(s, r) for s in sig)
    before, half = (k - 1) // 2, (k - 1) / 2
    padded = pad(hr, before + r, k + r, padding)
    for c, s in enumerate(sig):
        for i in range(3):
            for j in range(4):
                ci, cj = lr_centre(i, r), lr_centre(j, r)
                ms = torch.arange(math.ceil(ci - half), math.floor(ci + half) + 1, dtype=torch.float64)
                ns = torch.arange(math.ceil(cj - half), math.floor(cj + half) + 1, dtype=torch.float64)
                g_m = torch.exp(-((ms - ci) ** 2) / (2 * s**2))
                g_n = torch.exp(-((ns - cj) ** 2) / (2 * s**2))
                gk = gaussian_psf_1d(s, r, size=k)
                taps = torch.arange(k, dtype=torch.float64) - half
                norm = float(torch.exp(-(taps**2) / (2 * s**2)).sum())
                vals = padded[0, c][(ms.long() + before + r)][:, (ns.long() + before + r)]
                ref = float((g_m.reshape(-1, 1) * g_n.reshape(1, -1) * vals).sum()) / norm**2
                assert gk.numel() == k
                assert float(lr[0, c, i, j]) == pytest.approx(ref, rel=1e-12)


def test_pad_modes_closed_form():
    x = torch.arange(4, dtype=torch.float64).reshape(1, 1, 1, 4).expand(1, 1, 4, 4)
    row = lambda mode, b, a: pad(x, b, a, mode)[0, 0, 0].tolist()  # noqa: E731
    assert row("reflect", 2, 2) == [2, 1, 0, 1, 2, 3, 2, 1]
    assert row("replicate", 2, 1) == [0, 0, 0, 1, 2, 3, 3]
    assert row("circular", 1, 2) == [3, 0, 1, 2, 3, 0, 1]
    assert row("reflect", 7, 0)[:7] == [1, 0, 1, 2, 3, 2, 1]  # wider than the image: keeps mirroring


def test_bands_equal_their_mtf_and_sigma():
    x = torch.rand(1, 4, 12, 12, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    by_name = degrade(x, 2, bands=["b2", "B03", "B4", "B08"])
    by_mtf = degrade(x, 2, mtf=[band_mtf(b) for b in BANDS_10M])
    by_sigma = degrade(x, 2, sigma=[mtf_to_sigma(band_mtf(b), 2) for b in BANDS_10M])
    torch.testing.assert_close(by_name, by_mtf, rtol=0, atol=0)
    torch.testing.assert_close(by_name, by_sigma, rtol=0, atol=1e-15)
    # a scalar broadcasts to every band; bands with a different MTF differ
    one = degrade(x, 2, mtf=0.26)
    torch.testing.assert_close(one[:, [0, 3]], by_mtf[:, [0, 3]], rtol=0, atol=0)  # B02, B08 have MTF 0.26
    assert not torch.allclose(one[:, 2], by_mtf[:, 2])


def test_float32_matches_float64(gen):
    hr = torch.rand(2, 3, 16, 16, generator=gen, dtype=torch.float64)
    lr64 = degrade(hr, 2, mtf=[0.2, 0.3, 0.4])
    lr32 = degrade(hr.float(), 2, mtf=[0.2, 0.3, 0.4])
    assert lr32.dtype == torch.float32
    torch.testing.assert_close(lr32.double(), lr64, rtol=0, atol=1e-6)


def test_nodata_stays_nodata():
    hr = torch.ones(1, 1, 24, 24, dtype=torch.float64)
    hr[0, 0, 11, 13] = float("nan")
    r, sigma = 2, 1.0
    lr = degrade(hr, r, sigma=sigma)
    k = default_psf_size(sigma, r)
    # LR pixel i is NaN iff the NaN pixel is within its kernel window [c - (k-1)/2, c + (k-1)/2]
    c = lr_centre(torch.arange(12, dtype=torch.float64), r)
    rows = (c - 11).abs() <= (k - 1) / 2
    cols = (c - 13).abs() <= (k - 1) / 2
    torch.testing.assert_close(torch.isnan(lr[0, 0]), rows.reshape(-1, 1) & cols.reshape(1, -1))
    assert bool((lr[~torch.isnan(lr)] - 1).abs().max() < 1e-12)


def test_noise_std_measured_on_flat_image():
    hr = torch.full((1, 2, 256, 256), 0.5, dtype=torch.float64)
    lr = degrade(hr, 2, mtf=0.3, noise_std=[0.01, 0.05], generator=torch.Generator().manual_seed(1))
    assert float(lr.mean()) == pytest.approx(0.5, abs=2e-3)
    for c, std in enumerate((0.01, 0.05)):
        assert float(lr[0, c].std()) == pytest.approx(std, rel=0.03)
    # zero std is a no-op; the same seed gives the same noise
    quiet = degrade(hr, 2, mtf=0.3, noise_std=0.0, generator=torch.Generator())
    torch.testing.assert_close(quiet, hr[:, :, ::2, ::2])
    a = degrade(hr[..., :16, :16], 2, mtf=0.3, noise_std=0.1, generator=torch.Generator().manual_seed(5))
    b = degrade(hr[..., :16, :16], 2, mtf=0.3, noise_std=0.1, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("kwargs", [{"bands": list(BANDS_20M[:3])}, {"mtf": [0.2, 0.3, 0.4]}, {"sigma": 1.1}])
def test_module_equals_function(kwargs, gen):
    hr = torch.rand(2, 3, 12, 18, generator=gen)
    mod = Degradation(3, **kwargs, padding="replicate")
    assert "kernels" in dict(mod.named_buffers()) and not list(mod.parameters())
    torch.testing.assert_close(mod(hr), degrade(hr, 3, **kwargs, padding="replicate"), rtol=0, atol=0)
    noisy = Degradation(3, **kwargs, noise_std=0.02)
    torch.testing.assert_close(
        noisy(hr, torch.Generator().manual_seed(7)),
        degrade(hr, 3, **kwargs, noise_std=0.02, generator=torch.Generator().manual_seed(7)),
        rtol=0,
        atol=0,
    )
    ref64 = degrade(hr.double(), 3, **kwargs, padding="replicate")
    torch.testing.assert_close(mod.double()(hr.double()), ref64)


def test_module_errors():
    mod = Degradation(2, bands=BANDS_10M)
    with pytest.raises(ValueError, match="4 band kernels"):
        mod(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="generator"):
        Degradation(2, mtf=0.3, noise_std=0.1)(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="exactly one"):
        Degradation(2)
