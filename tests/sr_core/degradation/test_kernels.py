"""Other decimation kernels, sub-pixel shifts and randomised training degradations."""

from __future__ import annotations

import math

import pytest
import torch

from sr_core.bands import BANDS_10M, BANDS_20M
from sr_core.degradation import (
    KERNELS,
    WaldPair,
    area_downsample,
    bicubic_antialias_downsample,
    blur,
    decimate,
    default_psf_size,
    degrade,
    gaussian_box_degrade,
    lanczos_downsample,
    mtf_to_sigma,
    random_degrade,
    subpixel_shift,
    wald_crop_size,
    wald_pairs,
)
from tests.sr_core.degradation.helpers import PADDINGS, RATIOS, lr_centre


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
    hr = torch.rand(24, 2, 12, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    base = [0.3, 0.25]
    lr, params = random_degrade(
        hr, 3, generator=torch.Generator().manual_seed(4), mtf=base, noise_std_range=(0.0, 0.0),
        mtf_jitter=0.1,
    )
    assert {p["kernel"] for p in params} == set(KERNELS)
    for x, y, p in zip(hr, lr, params):
        assert p["noise_std"] == 0.0
        dy, dx = p["phase"]
        xs = subpixel_shift(x[None], 3 * dy, 3 * dx)
        if p["kernel"] in ("gaussian", "gaussian_box", "lanczos"):
            assert all(abs(m / b - 1) <= 0.1 + 1e-12 for m, b in zip(p["mtf"], base))
        if p["kernel"] == "gaussian":
            ref = degrade(xs, 3, mtf=p["mtf"])
        elif p["kernel"] == "gaussian_box":
            ref = gaussian_box_degrade(xs, 3, mtf=p["mtf"])
        elif p["kernel"] == "lanczos":
            full = [float(mtf_to_sigma(m, 3)) for m in p["mtf"]]
            f = p["sigma"][0] / full[0]
            assert 0.3 <= f <= 0.7 and p["lobes"] in (2, 3)
            assert all(s == pytest.approx(f * g) for s, g in zip(p["sigma"], full))
            ref = lanczos_downsample(blur(xs, p["sigma"], 1), 3, p["lobes"])
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
        random_degrade(hr, 2, generator=g, kernels=("sinc",))
    with pytest.raises(ValueError, match="generator"):
        random_degrade(hr, 2, generator=None, kernels=("area",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="noise_std_range"):
        random_degrade(hr, 2, generator=g, kernels=("area",), noise_std_range=(0.1, 0.0))
    with pytest.raises(ValueError, match="max_phase"):
        random_degrade(hr, 2, generator=g, kernels=("area",), max_phase=-1)
    with pytest.raises(ValueError, match="mtf_jitter"):
        random_degrade(hr, 2, generator=g, mtf=0.3, mtf_jitter=1.5)


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
