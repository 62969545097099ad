"""Fidelity metrics (sr_core.metrics.fidelity): closed forms, brute-force references, masks, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sr_core import metrics as M
from tests.sr_core.metrics.images import F64, rand_images

# ------------------------------------------------------------------------------------------------------------
# PSNR / MSE / masks
# ------------------------------------------------------------------------------------------------------------


def test_psnr_constant_offset_closed_form_per_band(gen):
    hr = rand_images(gen, 2, 3, 8, 8)
    d = torch.tensor([0.01, 0.05, 0.2], dtype=F64)
    dr = [1.0, 2.0, 10.0]
    sr = hr + d[None, :, None, None]
    out = M.psnr(sr, hr, data_range=dr)
    want = 20 * torch.log10(torch.tensor(dr, dtype=F64) / d)
    assert out.dtype == F64 and out.shape == (2, 3)
    torch.testing.assert_close(out, want.expand(2, 3), rtol=0, atol=1e-9)
    torch.testing.assert_close(M.mae(sr, hr), d.expand(2, 3), rtol=0, atol=1e-12)
    torch.testing.assert_close(M.rmse(sr, hr), d.expand(2, 3), rtol=0, atol=1e-12)


def test_psnr_accepts_numpy_and_identical_is_inf(gen):
    hr = rand_images(gen, 1, 2, 6, 6).numpy().astype(np.float32)
    out = M.psnr(hr, hr.copy(), data_range=1.0)
    assert isinstance(out, torch.Tensor) and out.dtype == F64
    assert torch.isinf(out).all() and (out > 0).all()


def test_mask_excludes_pixels_even_nan_and_empty_band_is_nan(gen):
    hr = rand_images(gen, 1, 2, 6, 6)
    sr = hr + 0.1
    sr[..., :2, :] = torch.nan  # garbage in the masked-out rows
    sr[..., 2:3, :] += 5.0
    mask = torch.ones(6, 6, dtype=torch.bool)
    mask[:3] = False
    torch.testing.assert_close(M.mse(sr, hr, mask=mask), torch.full((1, 2), 0.01, dtype=F64))
    torch.testing.assert_close(M.psnr(sr, hr, data_range=1.0, mask=mask), torch.full((1, 2), 20.0, dtype=F64))
    # per-band mask: band 1 has no valid pixel -> NaN (nodata stays nodata)
    m4 = torch.zeros(1, 2, 6, 6, dtype=torch.bool)
    m4[:, 0, 3:] = True
    out = M.mse(sr, hr, mask=m4)
    assert abs(out[0, 0].item() - 0.01) < 1e-12 and torch.isnan(out[0, 1])
    # without mask NaN propagates (a bug, not nodata)
    assert torch.isnan(M.mse(sr, hr)).all()


def test_bad_arguments_raise_clear_errors(gen):
    x = rand_images(gen, 1, 2, 12, 12)
    with pytest.raises(TypeError):
        M.psnr(x, x)  # data_range is a required keyword
    with pytest.raises(ValueError, match="data_range"):
        M.psnr(x, x, data_range=0.0)
    with pytest.raises(ValueError, match="data_range has 3"):
        M.psnr(x, x, data_range=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="same shape"):
        M.psnr(x, x[..., :4], data_range=1.0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        M.mse(x[0], x[0])
    with pytest.raises(ValueError, match="boolean"):
        M.mse(x, x, mask=torch.ones(12, 12))
    with pytest.raises(ValueError, match="broadcast"):
        M.mse(x, x, mask=torch.ones(1, 3, 12, 12, dtype=torch.bool))
    with pytest.raises(ValueError, match="win_size"):
        M.ssim(x[..., :8, :8], x[..., :8, :8], data_range=1.0)
    with pytest.raises(ValueError, match="ratio"):
        M.ergas(x, x, ratio=0)
    with pytest.raises(ValueError, match="max_shift"):
        M.cmse(x, x, border=1, max_shift=2)
    with pytest.raises(ValueError, match="upsample"):
        M.phase_correlation_shift(x, x, upsample=0)
    with pytest.raises(ValueError, match="finite"):
        M.phase_correlation_shift(x * torch.nan, x)


# ------------------------------------------------------------------------------------------------------------
# SSIM
# ------------------------------------------------------------------------------------------------------------


def _ssim_brute(x: np.ndarray, y: np.ndarray, data_range: float, valid: np.ndarray | None = None) -> float:
    """Direct loop over 11x11 windows with explicit Gaussian weights (sigma 1.5), Wang et al. 2004."""
    k = 11
    r = np.arange(k) - 5
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
    g /= g.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    vals = []
    for i in range(x.shape[0] - k + 1):
        for j in range(x.shape[1] - k + 1):
            if valid is not None and not valid[i : i + k, j : j + k].all():
                continue
            a, b = x[i : i + k, j : j + k], y[i : i + k, j : j + k]
            ma, mb = (g * a).sum(), (g * b).sum()
            va, vb = (g * (a - ma) ** 2).sum(), (g * (b - mb) ** 2).sum()
            cov = (g * (a - ma) * (b - mb)).sum()
            vals.append(((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def test_ssim_matches_brute_force_loop(gen):
    hr = rand_images(gen, 2, 2, 16, 17)
    sr = hr + 0.2 * rand_images(gen, 2, 2, 16, 17) - 0.05
    out = M.ssim(sr, hr, data_range=2.0)
    for n in range(2):
        for c in range(2):
            want = _ssim_brute(sr[n, c].numpy(), hr[n, c].numpy(), 2.0)
            assert abs(out[n, c].item() - want) < 1e-12
    assert not torch.allclose(out, torch.ones_like(out))  # the reference case is not trivial
    torch.testing.assert_close(out, M.ssim_map(sr, hr, data_range=2.0).mean(dim=(-2, -1)))


def test_ssim_identical_is_one_and_constants_closed_form():
    x = torch.linspace(0, 1, 2 * 13 * 13, dtype=F64).reshape(1, 2, 13, 13)
    torch.testing.assert_close(M.ssim(x, x, data_range=1.0), torch.ones(1, 2, dtype=F64))
    a, b, dr = 0.3, 0.7, 1.0
    sa, sb = torch.full((1, 1, 12, 12), a, dtype=F64), torch.full((1, 1, 12, 12), b, dtype=F64)
    c1 = (0.01 * dr) ** 2
    want = (2 * a * b + c1) / (a * a + b * b + c1)  # zero variances: contrast/structure term is 1
    assert abs(M.ssim(sa, sb, data_range=dr).item() - want) < 1e-12


def test_ssim_mask_keeps_only_fully_valid_windows(gen):
    hr = rand_images(gen, 1, 1, 16, 16)
    sr = hr + 0.1 * rand_images(gen, 1, 1, 16, 16)
    valid = np.ones((16, 16), dtype=bool)
    valid[0:2, 0:3] = False
    sr_bad = sr.clone()
    sr_bad[0, 0, 0:2, 0:3] = torch.nan
    out = M.ssim(sr_bad, hr, data_range=1.0, mask=torch.from_numpy(valid))
    want = _ssim_brute(sr[0, 0].numpy(), hr[0, 0].numpy(), 1.0, valid)
    assert abs(out.item() - want) < 1e-12
    none_valid = torch.zeros(16, 16, dtype=torch.bool)
    none_valid[::4] = True
    assert torch.isnan(M.ssim(sr, hr, data_range=1.0, mask=none_valid)).all()


def test_ssim_gradcheck_float64(gen):
    hr = rand_images(gen, 1, 1, 11, 12)
    sr = (hr + 0.1 * rand_images(gen, 1, 1, 11, 12)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s: M.ssim(s, hr, data_range=1.0), (sr,))


# ------------------------------------------------------------------------------------------------------------
# PROBA-V clear metrics
# ------------------------------------------------------------------------------------------------------------


def test_cmse_pure_brightness_bias_is_zero_and_cpsnr_inf(gen):
    hr = rand_images(gen, 2, 3, 18, 18)
    sr = hr - torch.tensor([0.1, -0.3, 0.02], dtype=F64)[None, :, None, None]
    assert M.cmse(sr, hr).abs().max().item() < 1e-28
    out = M.cpsnr(sr, hr, data_range=1.0)
    assert (out > 250).all()  # cMSE is 0 up to float64 rounding of hr - sr: ~300 dB (documented, no cap)
    exact = torch.full_like(hr, 0.5)
    assert torch.isinf(M.cpsnr(exact - 0.25, exact, data_range=1.0)).all()  # exactly representable bias: +inf
    torch.testing.assert_close(M.cssim(sr, hr, data_range=1.0), torch.ones(2, 3, dtype=F64))
    # plain PSNR is not bias corrected
    assert torch.isfinite(M.psnr(sr, hr, data_range=1.0)).all()


def test_cmse_zero_shift_matches_definition(gen):
    hr = rand_images(gen, 1, 2, 17, 18)
    sr = hr + 0.1 * rand_images(gen, 1, 2, 17, 18)
    s, h = sr[..., 3:-3, 3:-3], hr[..., 3:-3, 3:-3]
    bias = (h - s).mean(dim=(-2, -1), keepdim=True)
    want = ((h - s - bias) ** 2).mean(dim=(-2, -1))
    torch.testing.assert_close(M.cmse(sr, hr, max_shift=0), want)
    torch.testing.assert_close(M.cpsnr(sr, hr, data_range=2.0, max_shift=0), 10 * torch.log10(4.0 / want))
    got = M.cssim(sr, hr, data_range=1.0, max_shift=0)
    torch.testing.assert_close(got, M.ssim(s + bias, h, data_range=1.0))
    # searching over shifts can only improve
    assert (M.cmse(sr, hr) <= want + 1e-15).all()


def test_cpsnr_recovers_integer_shift_with_bias(gen):
    hr = rand_images(gen, 1, 2, 20, 20)
    sr = torch.roll(hr, shifts=(1, -2), dims=(-2, -1)) + 0.25  # sr(y, x) = hr(y - 1, x + 2) + bias
    val, shift = M.cpsnr(sr, hr, data_range=1.0, return_shift=True)
    assert (val > 250).all()
    assert shift.tolist() == [[[1, -2], [1, -2]]]
    v2, s2 = M.cssim(sr, hr, data_range=1.0, return_shift=True)
    torch.testing.assert_close(v2, torch.ones(1, 2, dtype=F64))
    assert s2.tolist() == [[[1, -2], [1, -2]]]
    # the sign matches phase correlation of (sr, hr)
    pc = M.phase_correlation_shift(sr, hr, window=None)
    torch.testing.assert_close(pc[0, 0], torch.tensor([1.0, -2.0], dtype=F64))


def test_cmse_joint_versus_per_band_shift(gen):
    hr = rand_images(gen, 1, 3, 20, 20)
    sr = hr.clone()
    sr[:, 0] = torch.roll(hr[:, 0], 1, dims=-2)
    sr[:, 1] = torch.roll(hr[:, 1], 1, dims=-1)
    sr[:, 2] = torch.roll(hr[:, 2], 1, dims=-2)
    v, s = M.cmse(sr, hr, joint=False, return_shift=True)
    assert v.abs().max().item() < 1e-28
    assert s.tolist() == [[[1, 0], [0, 1], [1, 0]]]
    vj, sj = M.cmse(sr, hr, joint=True, return_shift=True)
    assert sj.tolist() == [[[1, 0], [1, 0], [1, 0]]]  # one shift per image, the best on average over bands
    assert vj[0, 0] < 1e-28 and vj[0, 2] < 1e-28 and vj[0, 1] > 1e-3


def test_cmse_mask_moves_with_hr(gen):
    hr = rand_images(gen, 1, 1, 16, 16)
    sr = torch.roll(hr, 1, dims=-1)
    hr_bad = hr.clone()
    hr_bad[..., 5:8, 5:8] = torch.nan
    mask = ~torch.isnan(hr_bad)
    v, s = M.cmse(sr, hr_bad, mask=mask, return_shift=True)
    assert v.item() < 1e-28 and s.tolist() == [[[0, 1]]]


# ------------------------------------------------------------------------------------------------------------
# SAM, ERGAS
# ------------------------------------------------------------------------------------------------------------


def test_sam_closed_forms():
    hr = torch.zeros(1, 3, 2, 2, dtype=F64)
    sr = torch.zeros(1, 3, 2, 2, dtype=F64)
    hr[0, :, 0, 0], sr[0, :, 0, 0] = torch.tensor([1.0, 0, 0]), torch.tensor([0, 2.0, 0])  # orthogonal: 90
    hr[0, :, 0, 1], sr[0, :, 0, 1] = torch.tensor([1.0, 0, 0]), torch.tensor([1.0, 1.0, 0])  # 45
    hr[0, :, 1, 0], sr[0, :, 1, 0] = torch.tensor([0.2, 0.5, 0.1]), torch.tensor([0.6, 1.5, 0.3])  # scaled: 0
    # pixel (1, 1): zero spectrum -> undefined, left out of the mean
    amap = M.sam_map(sr, hr)
    torch.testing.assert_close(amap[0, 0], torch.tensor([90.0, 45.0], dtype=F64))
    assert abs(amap[0, 1, 0].item()) < 1e-6 and torch.isnan(amap[0, 1, 1])
    torch.testing.assert_close(M.sam(sr, hr), torch.tensor([45.0], dtype=F64), rtol=0, atol=1e-6)
    mask = torch.tensor([[False, True], [True, True]])
    torch.testing.assert_close(M.sam(sr, hr, mask=mask), torch.tensor([22.5], dtype=F64), rtol=0, atol=1e-6)


def test_sam_identical_is_exactly_zero(gen):
    x = rand_images(gen, 2, 4, 5, 5) + 0.1
    assert (M.sam_map(x, x) == 0).all()
    assert (M.sam(x, x) == 0).all() and M.sam(x, x).shape == (2,)


def test_ergas_closed_form_and_zero(gen):
    mu = torch.tensor([0.2, 0.5], dtype=F64)
    d = torch.tensor([0.02, -0.1], dtype=F64)
    hr = mu[None, :, None, None].expand(1, 2, 6, 6).clone()
    sr = hr + d[None, :, None, None]
    want = 100 / 2 * math.sqrt(((0.02 / 0.2) ** 2 + (0.1 / 0.5) ** 2) / 2)
    assert abs(M.ergas(sr, hr, ratio=2).item() - want) < 1e-12
    x = rand_images(gen, 3, 4, 6, 6)
    assert (M.ergas(x, x, ratio=6) == 0).all()
