"""The evaluation's operator family: closed forms (constant images, MTF at Nyquist, Lanczos lobes, shifts)."""

from __future__ import annotations

import math

import pytest
import torch

from sr_core.bands import BANDS_20M, MODEL_BANDS_10
from sr_core.bands import mtf as band_mtf
from sr_core.degradation import (
    area_downsample,
    blur,
    degrade,
    gaussian_box_degrade,
    gaussian_box_sigma,
    gaussian_psf_1d,
    kernel_mtf,
    lanczos_downsample,
    lanczos_kernel_1d,
    mtf_to_sigma,
    physical_step,
    physical_step_sigma,
    shifted_degrade,
)
from tests.sr_core.degradation.helpers import _nyquist_cosine, _transfer


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
