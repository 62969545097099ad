"""Values of the MTF-matched degradation, its grid convention, and the Wald-protocol builders."""

from __future__ import annotations

import math

import pytest
import torch

from sr_core.bands import BANDS_10M, BANDS_20M, MODEL_BANDS_10, mtf as band_mtf
from sr_core.degradation import (
    Degradation,
    WaldPair,
    area_downsample,
    bicubic_antialias_downsample,
    blur,
    decimate,
    default_psf_size,
    degrade,
    gaussian_box_degrade,
    gaussian_box_sigma,
    gaussian_psf,
    gaussian_psf_1d,
    kernel_mtf,
    lanczos_downsample,
    lanczos_kernel_1d,
    model_input_10band,
    mtf_to_sigma,
    pad,
    physical_step,
    physical_step_sigma,
    random_degrade,
    shifted_degrade,
    sigma_to_mtf,
    subpixel_shift,
    wald_crop_size,
    wald_pairs,
)

RATIOS = (2, 3, 4, 6)
PADDINGS = ("reflect", "replicate", "circular")
S2_MTFS = sorted({band_mtf(b) for b in BANDS_10M + BANDS_20M})


def keys_cubic(t: float, a: float = -0.75) -> float:
    """Keys' cubic convolution kernel."""
    t = abs(t)
    if t <= 1:
        return (a + 2) * t**3 - (a + 3) * t**2 + 1
    if t < 2:
        return a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a
    return 0.0


def lr_centre(i: int | torch.Tensor, r: int):
    """HR pixel-centre coordinate of the centre of LR pixel i (the project's grid convention)."""
    return r * i + (r - 1) / 2


# ----------------------------------------------------------------------------- PSF


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


# ----------------------------------------------------------------------------- degrade: values


@pytest.mark.parametrize("r", RATIOS)
@pytest.mark.parametrize("padding", PADDINGS)
def test_constant_degrades_to_same_constant(r, padding):
    hr = torch.full((2, 3, 2 * r, 3 * r), 0.37, dtype=torch.float64)
    lr = degrade(hr, r, mtf=[0.22, 0.3, 0.38], padding=padding)  # kernels wider than the 2r-pixel image
    assert lr.shape == (2, 3, 2, 3)
    torch.testing.assert_close(lr, torch.full_like(lr, 0.37), rtol=0, atol=1e-14)
    torch.testing.assert_close(blur(hr, 1.5, r, padding), hr, rtol=0, atol=1e-14)
    for fn in (area_downsample, bicubic_antialias_downsample):
        torch.testing.assert_close(fn(hr, r), torch.full_like(lr, 0.37), rtol=0, atol=1e-12)


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
def test_linear_ramp_is_sampled_at_lr_centres(r):
    sigma = mtf_to_sigma(0.26, r)
    # interior: LR pixels whose kernel footprint stays inside the image
    b = math.ceil(default_psf_size(sigma, r) / 2 / r) + 1
    h, w = (2 * b + 3) * r, (2 * b + 4) * r
    m = torch.arange(h, dtype=torch.float64).reshape(-1, 1)
    n = torch.arange(w, dtype=torch.float64).reshape(1, -1)
    hr = (0.3 * m - 0.7 * n + 2.0).expand(1, 1, h, w).repeat(1, 2, 1, 1)
    lr = degrade(hr, r, sigma=sigma)
    i = torch.arange(h // r, dtype=torch.float64).reshape(-1, 1)
    j = torch.arange(w // r, dtype=torch.float64).reshape(1, -1)
    expect = (0.3 * lr_centre(i, r) - 0.7 * lr_centre(j, r) + 2.0).expand_as(lr[0, 0])
    assert lr[0, :, b:-b, b:-b].shape[-2:] == (3, 4)
    torch.testing.assert_close(lr[0, :, b:-b, b:-b], expect[b:-b, b:-b].expand(2, -1, -1), rtol=0, atol=1e-12)
    # area and antialiased bicubic use the same grid convention
    torch.testing.assert_close(area_downsample(hr, r)[0, 0], expect, rtol=0, atol=1e-12)
    bic = bicubic_antialias_downsample(hr, r)[0, 0]
    torch.testing.assert_close(bic[2:-2, 2:-2], expect[2:-2, 2:-2], rtol=0, atol=1e-10)


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


# ----------------------------------------------------------------------------- noise, gradients, module


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


@pytest.mark.parametrize("r", [2, 3])
def test_gradcheck_float64(r, gen):
    hr = torch.rand(1, 2, 2 * r, 3 * r, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: degrade(x, r, mtf=[0.25, 0.35]), (hr,))
    assert torch.autograd.gradcheck(lambda x: blur(x, 1.2, r, "circular"), (hr,))
    assert torch.autograd.gradcheck(lambda x: bicubic_antialias_downsample(x, r), (hr,))
    assert torch.autograd.gradcheck(lambda x: subpixel_shift(x, 0.3 * r, -0.6, "replicate"), (hr,))
    # also differentiable in sigma
    sig = torch.tensor([0.9, 1.4], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: degrade(hr.detach(), r, sigma=s), (sig,))


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


# ----------------------------------------------------------------------------- errors


def test_degrade_errors():
    x = torch.zeros(1, 3, 12, 12)
    with pytest.raises(ValueError, match="exactly one of bands=, mtf= or sigma="):
        degrade(x, 2)
    with pytest.raises(ValueError, match="mtf, sigma"):
        degrade(x, 2, mtf=0.3, sigma=1.0)
    with pytest.raises(ValueError, match="2 values but the image has 3 bands"):
        degrade(x, 2, mtf=[0.3, 0.2])
    with pytest.raises(ValueError, match="4 names"):
        degrade(x, 2, bands=BANDS_10M)
    with pytest.raises(ValueError, match="unknown Sentinel-2 band 'B13'"):
        degrade(x, 2, bands=["B02", "B03", "B13"])
    with pytest.raises(ValueError, match=r"12x12 is not a multiple of ratio 5"):
        degrade(x, 5, sigma=1.0)
    with pytest.raises(ValueError, match=r"13x12 is not a multiple of ratio 2"):
        decimate(torch.zeros(1, 1, 13, 12), 2)
    with pytest.raises(ValueError, match="ratio"):
        degrade(x, 0, sigma=1.0)
    with pytest.raises(ValueError, match="ratio"):
        degrade(x, 2.0, sigma=1.0)
    with pytest.raises(ValueError, match="padding"):
        degrade(x, 2, sigma=1.0, padding="zeros")
    with pytest.raises(ValueError, match="generator"):
        degrade(x, 2, sigma=1.0, noise_std=0.1)
    with pytest.raises(ValueError, match="noise_std"):
        degrade(x, 2, sigma=1.0, noise_std=-0.1, generator=torch.Generator())
    with pytest.raises(ValueError, match="mtf"):
        degrade(x, 2, mtf=[0.3, 1.0, 0.2])
    with pytest.raises(ValueError, match="sigma"):
        degrade(x, 2, sigma=[1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="4-D"):
        degrade(torch.zeros(3, 12, 12), 2, sigma=1.0)
    with pytest.raises(ValueError, match="floating"):
        degrade(torch.zeros(1, 1, 4, 4, dtype=torch.int64), 2, sigma=1.0)
    with pytest.raises(ValueError, match="multiple of ratio 4"):
        area_downsample(torch.zeros(1, 1, 8, 6), 4)


# ----------------------------------------------------------------------------- random degradation


def test_subpixel_shift_values():
    x = torch.arange(8, dtype=torch.float64).reshape(1, 1, 1, 8).repeat(1, 1, 3, 1)
    # integer shift is exact: content moves right by 2
    torch.testing.assert_close(subpixel_shift(x, 0, 2)[0, 0, 0, 2:], x[0, 0, 0, :-2])
    # fractional shift of a ramp: out(n) = n - dx in the interior
    torch.testing.assert_close(subpixel_shift(x, 0, 0.3)[0, 0, 1, 1:], x[0, 0, 1, 1:] - 0.3)
    torch.testing.assert_close(subpixel_shift(x, -1.25, 0), x)  # constant along the rows


def test_random_degrade_reproducible_and_seed_dependent():
    hr = torch.rand(4, 3, 24, 24, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    lr1, p1 = random_degrade(hr, 2, generator=torch.Generator().manual_seed(11), bands=("B05", "B06", "B07"))
    lr2, p2 = random_degrade(hr, 2, generator=torch.Generator().manual_seed(11), bands=("B05", "B06", "B07"))
    lr3, p3 = random_degrade(hr, 2, generator=torch.Generator().manual_seed(12), bands=("B05", "B06", "B07"))
    assert lr1.shape == (4, 3, 12, 12) and len(p1) == 4
    torch.testing.assert_close(lr1, lr2, rtol=0, atol=0)
    assert p1 == p2
    assert p1 != p3 and not torch.allclose(lr1, lr3)
    for p in p1:
        assert set(p) == {"kernel", "mtf", "sigma", "phase", "noise_std"}
        assert all(abs(v) <= 0.5 for v in p["phase"]) and 0 <= p["noise_std"] <= 0.01


def test_random_degrade_replays_its_params():
    """The recorded parameters reproduce the output with the deterministic building blocks."""
    hr = torch.rand(6, 2, 12, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    base = [0.3, 0.25]
    lr, params = random_degrade(
        hr, 3, generator=torch.Generator().manual_seed(4), mtf=base, noise_std_range=(0.0, 0.0),
        mtf_jitter=0.1,
    )
    assert {p["kernel"] for p in params} == {"gaussian", "area", "bicubic_aa"}
    for x, y, p in zip(hr, lr, params):
        assert p["noise_std"] == 0.0
        dy, dx = p["phase"]
        xs = subpixel_shift(x[None], 3 * dy, 3 * dx)
        if p["kernel"] == "gaussian":
            assert all(abs(m / b - 1) <= 0.1 + 1e-12 for m, b in zip(p["mtf"], base))
            ref = degrade(xs, 3, mtf=p["mtf"])
        elif p["kernel"] == "area":
            ref = area_downsample(xs, 3)
        else:
            ref = bicubic_antialias_downsample(xs, 3)
        torch.testing.assert_close(y[None], ref, rtol=0, atol=1e-12)


def test_random_degrade_constant_and_noise():
    hr = torch.full((3, 1, 12, 12), 0.25, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    lr, _ = random_degrade(hr, 2, generator=g, mtf=0.3, noise_std_range=(0.0, 0.0))
    torch.testing.assert_close(lr, torch.full_like(lr, 0.25), rtol=0, atol=1e-12)
    lr, params = random_degrade(
        torch.zeros(1, 1, 128, 128), 2, generator=g, kernels=("area",), noise_std_range=(0.02, 0.03)
    )
    assert params[0]["mtf"] is None and 0.02 <= params[0]["noise_std"] <= 0.03
    assert float(lr.std()) == pytest.approx(params[0]["noise_std"], rel=0.05)


def test_random_degrade_errors():
    hr = torch.zeros(1, 2, 8, 8)
    g = torch.Generator()
    with pytest.raises(ValueError, match="bands= or mtf="):
        random_degrade(hr, 2, generator=g)
    with pytest.raises(ValueError, match="kernels"):
        random_degrade(hr, 2, generator=g, kernels=("lanczos",))
    with pytest.raises(ValueError, match="generator"):
        random_degrade(hr, 2, generator=None, kernels=("area",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="noise_std_range"):
        random_degrade(hr, 2, generator=g, kernels=("area",), noise_std_range=(0.1, 0.0))
    with pytest.raises(ValueError, match="max_phase"):
        random_degrade(hr, 2, generator=g, kernels=("area",), max_phase=-1)
    with pytest.raises(ValueError, match="mtf_jitter"):
        random_degrade(hr, 2, generator=g, mtf=0.3, mtf_jitter=1.5)


# ----------------------------------------------------------------------------- Wald protocol


def test_wald_pairs_crop_shapes_and_values(gen):
    b10 = torch.rand(2, 4, 30, 22, generator=gen, dtype=torch.float64)
    b20 = torch.rand(2, 6, 15, 11, generator=gen, dtype=torch.float64)
    pair = wald_pairs(b10, b20)
    assert isinstance(pair, WaldPair) and pair.crop == (28, 20) == wald_crop_size(30, 22, 2)
    lr10, lr20, hr10, hr20 = pair
    assert hr10.shape == (2, 4, 28, 20) and hr20.shape == (2, 6, 14, 10)
    assert lr10.shape == (2, 4, 14, 10) and lr20.shape == (2, 6, 7, 5)
    torch.testing.assert_close(hr10, b10[..., :28, :20], rtol=0, atol=0)
    torch.testing.assert_close(hr20, b20[..., :14, :10], rtol=0, atol=0)
    torch.testing.assert_close(lr10, degrade(hr10, 2, bands=BANDS_10M), rtol=0, atol=0)
    torch.testing.assert_close(lr20, degrade(hr20, 2, bands=BANDS_20M), rtol=0, atol=0)
    # factor 3: 10 m crop multiple of 6, custom degradation
    p3 = wald_pairs(b10, b20, 3, degrade_fn=lambda x, f, bands: area_downsample(x, f))
    assert p3.crop == (30, 18) and p3.lr20.shape == (2, 6, 5, 3)
    torch.testing.assert_close(p3.lr10, area_downsample(b10[..., :30, :18], 3))


def test_model_input_10band_is_nearest_replication(gen):
    b10 = torch.rand(1, 4, 16, 16, generator=gen, dtype=torch.float64)
    b20 = torch.rand(1, 6, 8, 8, generator=gen, dtype=torch.float64)
    x = model_input_10band(b10, b20)
    assert x.shape == (1, len(MODEL_BANDS_10), 16, 16)
    torch.testing.assert_close(x[:, :4], b10, rtol=0, atol=0)
    for i in range(16):
        for j in range(16):
            torch.testing.assert_close(x[0, 4:, i, j], b20[0, :, i // 2, j // 2], rtol=0, atol=0)
    pair = wald_pairs(b10, b20)
    torch.testing.assert_close(pair.model_input, model_input_10band(pair.lr10, pair.lr20))
    assert pair.model_input.shape == (1, 10, 8, 8)


def test_wald_errors():
    b10, b20 = torch.zeros(1, 4, 16, 16), torch.zeros(1, 6, 8, 8)
    with pytest.raises(ValueError, match="does not nest"):
        wald_pairs(b10, torch.zeros(1, 6, 9, 8))
    with pytest.raises(ValueError, match="bands10 has 4 bands but bands10_names has 3"):
        wald_pairs(b10, b20, bands10_names=("B02", "B03", "B04"))
    with pytest.raises(ValueError, match="bands20 has 6 bands"):
        wald_pairs(b10, b20, bands20_names=BANDS_10M)
    with pytest.raises(ValueError, match="smaller than 2"):
        wald_pairs(torch.zeros(1, 4, 2, 16), torch.zeros(1, 6, 1, 8))
    with pytest.raises(ValueError, match="batch"):
        wald_pairs(b10, torch.zeros(2, 6, 8, 8))
    with pytest.raises(ValueError, match="half"):
        model_input_10band(b10, torch.zeros(1, 6, 16, 16))


# --------------------------------------------------------------------------- evaluation operators


def _nyquist_cosine(channels: int, ratio: int, size: int = 96, axis: int = -1) -> torch.Tensor:
    """cos(2 pi f (m - c)) at the LR Nyquist f = 1 / (2 ratio), phased so that the LR pixel centres c_i = ratio i +
    (ratio - 1) / 2 see +-1: any kernel centred on the LR centres returns (-1)^i times its transfer at f."""
    m = torch.arange(size, dtype=torch.float64)
    v = torch.cos(2 * math.pi * (m - (ratio - 1) / 2) / (2 * ratio))
    img = v[None, :].expand(size, size) if axis == -1 else v[:, None].expand(size, size)
    return img.expand(1, channels, size, size).clone()


def _transfer(lr: torch.Tensor, axis: int = -1, edge: int = 8) -> torch.Tensor:
    """Per band, the amplitude of the (-1)^i pattern of an LR image in its interior (away from the padding)."""
    n = lr.shape[axis]
    sign = (-1.0) ** torch.arange(n, dtype=torch.float64)
    s = sign[None, :] if axis == -1 else sign[:, None]
    inner = (lr[0] * s)[:, edge:-edge, edge:-edge]
    return inner.mean((-2, -1))


@pytest.mark.parametrize("op", ["box", "lanczos", "shift", "physical"])
def test_evaluation_operators_keep_a_constant(op):
    hr = torch.full((1, 6, 24, 24), 0.3127, dtype=torch.float64)
    lr = {
        "box": lambda: gaussian_box_degrade(hr, 2, bands=BANDS_20M),
        "lanczos": lambda: lanczos_downsample(hr, 2),
        "shift": lambda: shifted_degrade(hr, 2, (0.25, -0.4), bands=BANDS_20M),
        "physical": lambda: physical_step(hr, 2, bands=BANDS_20M),
    }[op]()
    assert lr.shape == (1, 6, 12, 12)
    torch.testing.assert_close(lr, torch.full_like(lr, 0.3127), rtol=0, atol=1e-12)


@pytest.mark.parametrize("ratio", [2, 3])
def test_gaussian_box_has_the_band_mtf_at_nyquist(ratio):
    names = list(MODEL_BANDS_10)
    want = torch.tensor([band_mtf(b) for b in names], dtype=torch.float64)
    for axis in (-1, -2):
        x = _nyquist_cosine(len(names), ratio, size=32 * ratio, axis=axis)
        got = _transfer(gaussian_box_degrade(x, ratio, bands=names), axis)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-3)
        # the training operator has it too; the box alone transmits 1 / (r sin(pi / 2r)) there
        torch.testing.assert_close(_transfer(degrade(x, ratio, bands=names), axis), want, rtol=0, atol=1e-3)
    box = _transfer(area_downsample(_nyquist_cosine(1, ratio, size=32 * ratio), ratio))
    assert float(box) == pytest.approx(1 / (ratio * math.sin(math.pi / (2 * ratio))), abs=1e-9)
    # a different PSF with the same MTF: the Gaussian part is narrower than the training Gaussian
    assert gaussian_box_sigma(band_mtf("B04"), ratio) < mtf_to_sigma(band_mtf("B04"), ratio)
    assert kernel_mtf(gaussian_psf_1d(mtf_to_sigma(0.3, ratio), ratio), 1 / (2 * ratio)) == pytest.approx(0.3, abs=1e-3)


def test_gaussian_box_rejects_an_unreachable_mtf():
    with pytest.raises(ValueError, match="not reachable"):
        gaussian_box_sigma(0.8, 2)  # the 2 x 2 block mean alone transmits 0.707
    with pytest.raises(ValueError, match="exactly one of bands= or mtf="):
        gaussian_box_degrade(torch.zeros(1, 1, 4, 4), 2)


@pytest.mark.parametrize("ratio", [2, 3, 4])
def test_lanczos_kernel_sums_to_one_with_negative_lobes(ratio):
    k = lanczos_kernel_1d(ratio, 3)
    assert k.numel() == (6 * ratio if ratio % 2 == 0 else 6 * ratio - 1)  # parity of the ratio: centred
    assert float(k.sum()) == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(k, k.flip(0), rtol=0, atol=0)  # symmetric about the LR pixel centre
    assert float(k.min()) < -0.03  # negative lobes at 1 < |x| < 2 (x in LR pixels)
    x = (torch.arange(k.numel(), dtype=torch.float64) - (k.numel() - 1) / 2) / ratio
    assert bool((k[(x.abs() > 1) & (x.abs() < 2)] < 0).all()) and bool((k[x.abs() < 1] > 0).all())
    # a ramp stays exact in the interior (symmetric kernel summing to 1), the LR centres at ratio i + (ratio-1)/2
    ramp = torch.arange(24 * ratio, dtype=torch.float64)[None, :].expand(24 * ratio, -1)[None, None].clone()
    lr = lanczos_downsample(ramp, ratio)[0, 0, 4, 4:-4]
    torch.testing.assert_close(lr, ratio * torch.arange(4, 20, dtype=torch.float64) + (ratio - 1) / 2)


def test_shifted_degrade_moves_an_impulse_centroid_by_the_shift():
    # an impulse seen through a wide blur (the LR sampling resolves the blob: its centroid is exact to 1e-4 px)
    hr = torch.zeros(1, 1, 96, 96, dtype=torch.float64)
    hr[..., 48, 48] = 1.0
    hr = blur(hr, 6.0, 1)
    i = torch.arange(48, dtype=torch.float64)

    def centroid(lr: torch.Tensor) -> tuple[float, float]:
        a = lr[0, 0]
        return float((a.sum(1) * i).sum() / a.sum()), float((a.sum(0) * i).sum() / a.sum())

    y0, x0 = centroid(degrade(hr, 2, mtf=0.3))
    y1, x1 = centroid(shifted_degrade(hr, 2, (0.25, 0.25), mtf=0.3))
    y2, x2 = centroid(shifted_degrade(hr, 2, (-0.5, 0.1), mtf=0.3))
    assert (y1 - y0, x1 - x0) == (pytest.approx(0.25, abs=1e-4), pytest.approx(0.25, abs=1e-4))
    assert (y2 - y0, x2 - x0) == (pytest.approx(-0.5, abs=1e-4), pytest.approx(0.1, abs=1e-4))
    # no shift: the training operator itself; a ramp moves exactly by ratio * shift HR pixels
    b20 = torch.rand(1, 6, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(shifted_degrade(b20, 2, (0, 0), bands=BANDS_20M), degrade(b20, 2, bands=BANDS_20M),
                               rtol=0, atol=1e-15)
    ramp = torch.arange(64, dtype=torch.float64)[None, :].expand(64, -1)[None, None].clone()
    d = shifted_degrade(ramp, 2, (0.0, 0.25), mtf=0.3) - degrade(ramp, 2, mtf=0.3)
    # (to the +-3 sigma truncation of the PSF, as every kernel of this module)
    torch.testing.assert_close(d[..., 8:-8, 8:-8], torch.full_like(d[..., 8:-8, 8:-8], -0.5), rtol=0, atol=1e-5)


def test_physical_step_is_the_variance_difference():
    for b in BANDS_20M:
        s1, s2 = mtf_to_sigma(band_mtf(b), 1), mtf_to_sigma(band_mtf(b), 2)
        assert physical_step_sigma(band_mtf(b), 2) == pytest.approx(math.sqrt(s2**2 - s1**2), rel=1e-12)
    # transfer at the coarse Nyquist: MTF_2 / MTF_1 = mtf / mtf^(1/4) (the fine system passes mtf^(1/4) there)
    want = torch.tensor([band_mtf(b) ** 0.75 for b in BANDS_20M], dtype=torch.float64)
    got = _transfer(physical_step(_nyquist_cosine(6, 2), 2, bands=BANDS_20M))
    torch.testing.assert_close(got, want, rtol=0, atol=2e-3)
    with pytest.raises(ValueError, match="ratio must be >= 2"):
        physical_step_sigma(0.3, 1)
