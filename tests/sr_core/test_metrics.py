"""Value tests for sr_core.metrics: closed forms, independent brute-force references, masks, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sr_core import metrics as M

F64 = torch.float64


def _rand(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=gen, dtype=F64)


def _smooth(gen: torch.Generator, n: int, c: int, h: int, w: int, sigma: float) -> torch.Tensor:
    """Periodic smooth random field (white noise times a Gaussian transfer function)."""
    x = torch.randn(n, c, h, w, generator=gen, dtype=F64)
    fy = torch.fft.fftfreq(h, dtype=F64)[:, None]
    fx = torch.fft.fftfreq(w, dtype=F64)[None, :]
    g = torch.exp(-2 * math.pi**2 * sigma**2 * (fy**2 + fx**2))
    return torch.fft.ifft2(torch.fft.fft2(x) * g).real


def _fourier_shift(x: torch.Tensor, dy: float, dx: float) -> torch.Tensor:
    """x translated by (+dy, +dx): out(y, x) = x(y - dy, x - dx), circularly."""
    h, w = x.shape[-2:]
    fy = torch.fft.fftfreq(h, dtype=F64)[:, None]
    fx = torch.fft.fftfreq(w, dtype=F64)[None, :]
    return torch.fft.ifft2(torch.fft.fft2(x) * torch.exp(-2j * math.pi * (fy * dy + fx * dx))).real


# ------------------------------------------------------------------------------------------------------------
# PSNR / MSE / masks
# ------------------------------------------------------------------------------------------------------------


def test_psnr_constant_offset_closed_form_per_band(gen):
    hr = _rand(gen, 2, 3, 8, 8)
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
    hr = _rand(gen, 1, 2, 6, 6).numpy().astype(np.float32)
    out = M.psnr(hr, hr.copy(), data_range=1.0)
    assert isinstance(out, torch.Tensor) and out.dtype == F64
    assert torch.isinf(out).all() and (out > 0).all()


def test_mask_excludes_pixels_even_nan_and_empty_band_is_nan(gen):
    hr = _rand(gen, 1, 2, 6, 6)
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
    x = _rand(gen, 1, 2, 12, 12)
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
    hr = _rand(gen, 2, 2, 16, 17)
    sr = hr + 0.2 * _rand(gen, 2, 2, 16, 17) - 0.05
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
    hr = _rand(gen, 1, 1, 16, 16)
    sr = hr + 0.1 * _rand(gen, 1, 1, 16, 16)
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
    hr = _rand(gen, 1, 1, 11, 12)
    sr = (hr + 0.1 * _rand(gen, 1, 1, 11, 12)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s: M.ssim(s, hr, data_range=1.0), (sr,))


# ------------------------------------------------------------------------------------------------------------
# PROBA-V clear metrics
# ------------------------------------------------------------------------------------------------------------


def test_cmse_pure_brightness_bias_is_zero_and_cpsnr_inf(gen):
    hr = _rand(gen, 2, 3, 18, 18)
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
    hr = _rand(gen, 1, 2, 17, 18)
    sr = hr + 0.1 * _rand(gen, 1, 2, 17, 18)
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
    hr = _rand(gen, 1, 2, 20, 20)
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
    hr = _rand(gen, 1, 3, 20, 20)
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
    hr = _rand(gen, 1, 1, 16, 16)
    sr = torch.roll(hr, 1, dims=-1)
    hr_bad = hr.clone()
    hr_bad[..., 5:8, 5:8] = torch.nan
    mask = ~torch.isnan(hr_bad)
    v, s = M.cmse(sr, hr_bad, mask=mask, return_shift=True)
    assert v.item() < 1e-28 and s.tolist() == [[[0, 1]]]


# ------------------------------------------------------------------------------------------------------------
# SAM, ERGAS, consistency
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
    x = _rand(gen, 2, 4, 5, 5) + 0.1
    assert (M.sam_map(x, x) == 0).all()
    assert (M.sam(x, x) == 0).all() and M.sam(x, x).shape == (2,)


def test_ergas_closed_form_and_zero(gen):
    mu = torch.tensor([0.2, 0.5], dtype=F64)
    d = torch.tensor([0.02, -0.1], dtype=F64)
    hr = mu[None, :, None, None].expand(1, 2, 6, 6).clone()
    sr = hr + d[None, :, None, None]
    want = 100 / 2 * math.sqrt(((0.02 / 0.2) ** 2 + (0.1 / 0.5) ** 2) / 2)
    assert abs(M.ergas(sr, hr, ratio=2).item() - want) < 1e-12
    x = _rand(gen, 3, 4, 6, 6)
    assert (M.ergas(x, x, ratio=6) == 0).all()


def test_reflectance_consistency_with_custom_degradation(gen):
    sr = _rand(gen, 1, 2, 8, 8)
    lr = F.avg_pool2d(sr, 2) + torch.tensor([0.03, -0.01], dtype=F64)[None, :, None, None]

    def pool(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2)

    out = M.reflectance_consistency(sr, lr, ratio=2, degrade_fn=pool)
    torch.testing.assert_close(out, torch.tensor([[0.03, 0.01]], dtype=F64))
    lr_bad = lr.clone()
    lr_bad[..., 0, 0] = 99.0
    mask = torch.ones(4, 4, dtype=torch.bool)
    mask[0, 0] = False
    masked = M.reflectance_consistency(sr, lr_bad, ratio=2, degrade_fn=pool, mask=mask)
    torch.testing.assert_close(masked, out)
    with pytest.raises(ValueError, match="lr has"):
        M.reflectance_consistency(sr, lr[..., :3, :], ratio=2, degrade_fn=pool)
    with pytest.raises(ValueError, match="not both"):
        M.reflectance_consistency(sr, lr, ratio=2, degrade_fn=pool, mtf=[0.3, 0.3])


def test_consistency_of_degraded_hr_is_zero(gen):
    deg = pytest.importorskip("sr_core.degradation")
    hr = _rand(gen, 1, 4, 12, 12) + 0.1
    bands = ["B02", "B03", "B04", "B08"]
    lr = deg.degrade(hr, 2, bands=bands)
    assert M.reflectance_consistency(hr, lr, ratio=2, bands=bands).abs().max().item() < 1e-14
    assert M.spectral_consistency(hr, lr, ratio=2, bands=bands).abs().max().item() < 1e-5
    off = M.reflectance_consistency(hr, lr + 0.05, ratio=2, bands=bands)
    torch.testing.assert_close(off, torch.full((1, 4), 0.05, dtype=F64))


# ------------------------------------------------------------------------------------------------------------
# phase correlation, radial spectrum
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(32, 32), (33, 40)])
def test_phase_correlation_subpixel_fourier_shift(gen, size):
    b = _smooth(gen, 2, 2, *size, sigma=1.5)
    true = [(0.3, -1.7), (-2.46, 0.81)]
    a = torch.stack([_fourier_shift(b[i], *true[i]) for i in range(2)])
    est = M.phase_correlation_shift(a, b, window=None)
    want = torch.tensor(true, dtype=F64)[:, None, :].expand(2, 2, 2)
    assert (est - want).abs().max().item() <= 0.02
    mag = M.spatial_misalignment(a, b, window=None)
    torch.testing.assert_close(mag, torch.linalg.vector_norm(est, dim=-1))


def test_phase_correlation_integer_shift_exact_and_sign(gen):
    b = _rand(gen, 1, 3, 24, 24)
    a = torch.roll(b, shifts=(2, -3), dims=(-2, -1))  # a(y, x) = b(y - 2, x + 3)
    est = M.phase_correlation_shift(a, b, window=None)
    assert est.tolist() == [[[2.0, -3.0]] * 3]
    assert M.phase_correlation_shift(b, a, window=None).tolist() == [[[-2.0, 3.0]] * 3]
    assert (M.spatial_misalignment(b, b) == 0).all()


def test_phase_correlation_non_periodic_crop_with_hann(gen):
    big = _smooth(gen, 1, 1, 128, 128, sigma=1.0)
    dy, dx = 0.4, -1.3
    a = _fourier_shift(big, dy, dx)[..., 32:96, 32:96]
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


# ------------------------------------------------------------------------------------------------------------
# improvement / omission / hallucination
# ------------------------------------------------------------------------------------------------------------


def test_correctness_classes_hand_made_pixels():
    hr = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.5, 1.0], dtype=F64).reshape(1, 1, 1, 6)
    lr = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.5, 0.0], dtype=F64).reshape(1, 1, 1, 6)
    # sr == hr -> improvement; sr == lr -> omission; far from both -> hallucination;
    # slightly towards hr -> still omission; lr == hr -> excluded; mostly towards hr -> improvement
    sr = torch.tensor([1.0, 0.0, 4.0, 0.1, 0.9, 0.9], dtype=F64).reshape(1, 1, 1, 6)
    cls = M.correctness_classes(sr, lr, hr)
    I, O, H, X = M.IMPROVEMENT, M.OMISSION, M.HALLUCINATION, M.EXCLUDED  # noqa: E741
    assert cls.flatten().tolist() == [I, O, H, O, X, I]
    fr = M.hallucination_omission_improvement(sr, lr, hr)
    torch.testing.assert_close(fr.improvement, torch.tensor([[2 / 5]], dtype=F64))
    torch.testing.assert_close(fr.omission, torch.tensor([[2 / 5]], dtype=F64))
    torch.testing.assert_close(fr.hallucination, torch.tensor([[1 / 5]], dtype=F64))
    mask = torch.tensor([[True, False, False, True, True, True]])
    fr = M.hallucination_omission_improvement(sr, lr, hr, mask=mask)
    torch.testing.assert_close(torch.stack(list(fr)).flatten(), torch.tensor([0.0, 1 / 3, 2 / 3], dtype=F64))


def test_correctness_fractions_sum_to_one(gen):
    hr = _rand(gen, 2, 3, 8, 8)
    lr_up = hr + 0.2 * (_rand(gen, 2, 3, 8, 8) - 0.5)
    sr = hr + 0.3 * (_rand(gen, 2, 3, 8, 8) - 0.5)
    fr = M.hallucination_omission_improvement(sr, lr_up, hr, min_reference_distance=0.01)
    total = fr.hallucination + fr.omission + fr.improvement
    torch.testing.assert_close(total, torch.ones(2, 3, dtype=F64))
    assert (fr.improvement > 0).all() and (fr.hallucination + fr.omission > 0).any()
    assert torch.isnan(M.hallucination_omission_improvement(hr, hr, hr).improvement).all()  # nothing to judge
    sr[0, 0, 0, 0] = torch.nan
    with pytest.raises(ValueError, match="finite"):
        M.hallucination_omission_improvement(sr, lr_up, hr)
    mask = torch.ones(8, 8, dtype=torch.bool)
    mask[0, 0] = False
    fr = M.hallucination_omission_improvement(sr, lr_up, hr, mask=mask)
    assert torch.isfinite(fr.improvement).all()


# ------------------------------------------------------------------------------------------------------------
# segmentation
# ------------------------------------------------------------------------------------------------------------


def test_dice_iou_precision_recall_hand_made():
    pred = torch.zeros(4, 4, dtype=torch.bool)
    target = torch.zeros(4, 4, dtype=torch.bool)
    pred[0, :3] = True  # 3 predicted
    target[0, 1:] = True  # 3 targets, 2 overlap -> TP 2, FP 1, FN 1
    target[3, 3] = True  # FN 2
    assert M.dice(pred, target).item() == pytest.approx(4 / 7)
    assert M.iou(pred, target).item() == pytest.approx(2 / 5)
    assert M.precision(pred, target).item() == pytest.approx(2 / 3)
    assert M.recall(pred, target).item() == pytest.approx(2 / 4)
    mask = torch.ones(4, 4, dtype=torch.bool)
    mask[3, 3] = False
    mask[0, 0] = False
    assert M.dice(pred, target, mask=mask).item() == pytest.approx(4 / 5)
    empty = torch.zeros(1, 2, 4, 4, dtype=torch.bool)
    out = M.iou(empty, empty)
    assert out.shape == (1, 2) and torch.isnan(out).all()
    assert (M.dice(empty, empty, empty=1.0) == 1).all()
    with pytest.raises(ValueError, match="boolean"):
        M.dice(pred.float(), target)


def test_instance_f1_two_matched_one_missed_one_false_positive():
    target = np.zeros((16, 16), dtype=bool)
    pred = np.zeros((16, 16), dtype=bool)
    target[1:4, 1:4] = True  # matched exactly
    pred[1:4, 1:4] = True
    target[8:12, 1:5] = True  # matched with IoU 12/16
    pred[8:12, 2:5] = True
    target[1:3, 10:13] = True  # missed
    pred[12:15, 12:15] = True  # false positive
    pred[8, 8] = pred[9, 9] = True  # diagonal pair: one object with 8-connectivity
    target[8:10, 8:10] = True  # IoU 2/4 with it
    tp, fp, fn = M.instance_matches(pred, target)
    assert (tp.item(), fp.item(), fn.item()) == (3, 1, 1)
    target[8:10, 8:10] = False
    pred[8, 8] = pred[9, 9] = False
    assert M.instance_f1(pred, target).item() == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    # 4-connectivity splits a diagonal pair into two objects
    d = np.zeros((1, 1, 5, 5), dtype=bool)
    d[0, 0, 1, 1] = d[0, 0, 2, 2] = True
    tp8, fp8, _ = M.instance_matches(d, d, connectivity=8)
    tp4, fp4, _ = M.instance_matches(d, d, connectivity=4)
    assert (tp8.item(), tp4.item(), fp8.item(), fp4.item()) == (1, 2, 0, 0)
    # the IoU threshold is applied: a weak overlap is no match
    p, t = np.zeros((8, 8), bool), np.zeros((8, 8), bool)
    p[0:4, 0:4], t[0:4, 3:7] = True, True  # IoU 4 / 28
    assert M.instance_f1(p, t).item() == 0.0
    assert M.instance_f1(p, t, iou_threshold=0.1).item() == 1.0


def test_instance_matching_is_one_to_one():
    # one big prediction overlapping two targets: only one can be matched
    p, t = np.zeros((6, 10), bool), np.zeros((6, 10), bool)
    p[1:5, 1:9] = True
    t[1:5, 1:5] = True
    t[1:5, 6:9] = True
    tp, fp, fn = M.instance_matches(p, t, iou_threshold=0.25)
    assert (tp.item(), fp.item(), fn.item()) == (1, 0, 1)


def _match_one_dense(p, t, iou_threshold, structure):
    """Reference for ``M._match_one``: the full IoU matrix of all object pairs, one Hungarian assignment."""
    from scipy import ndimage
    from scipy.optimize import linear_sum_assignment

    lp, n_p = ndimage.label(p, structure=structure)
    lt, n_t = ndimage.label(t, structure=structure)
    if n_p == 0 or n_t == 0:
        return 0, n_p, n_t
    inter = np.bincount(lp.ravel() * (n_t + 1) + lt.ravel(), minlength=(n_p + 1) * (n_t + 1))
    inter = inter.reshape(n_p + 1, n_t + 1)[1:, 1:].astype(np.float64)
    area_p = np.bincount(lp.ravel(), minlength=n_p + 1)[1:].astype(np.float64)
    area_t = np.bincount(lt.ravel(), minlength=n_t + 1)[1:].astype(np.float64)
    ious = inter / (area_p[:, None] + area_t[None, :] - inter)
    eligible = np.where(ious >= iou_threshold, ious, 0.0)
    rows, cols = linear_sum_assignment(eligible, maximize=True)
    tp = int(np.count_nonzero(eligible[rows, cols] > 0))
    return tp, n_p - tp, n_t - tp


@pytest.mark.parametrize("thr", [0.1, 0.25, 0.5])
def test_instance_matching_by_groups_equals_the_dense_assignment(thr):
    # blobby random masks with many touching / overlapping objects: the grouped sparse assignment gives the same
    # counts as one Hungarian assignment over the full IoU matrix
    from scipy import ndimage

    rng = np.random.default_rng(int(thr * 100))
    structure = np.ones((3, 3), bool)
    for _ in range(6):
        a = ndimage.gaussian_filter(rng.standard_normal((64, 64)), 1.5) > 0.15
        b = ndimage.gaussian_filter(rng.standard_normal((64, 64)), 1.5) > 0.15
        b = b | np.roll(a, (1, 2), (0, 1)) & (rng.random((64, 64)) > 0.3)  # partly shifted copies: real overlaps
        assert M._match_one(a, b, thr, structure) == _match_one_dense(a, b, thr, structure)
        assert M._match_one(a, a, thr, structure)[1:] == (0, 0)


# ------------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------------


def test_band_and_image_means():
    v = torch.tensor([[1.0, 3.0, math.nan], [2.0, 4.0, 6.0]], dtype=F64)
    torch.testing.assert_close(M.band_mean(v), torch.tensor([2.0, 4.0], dtype=F64))
    torch.testing.assert_close(M.image_mean(v), torch.tensor([1.5, 3.5, 6.0], dtype=F64))
    torch.testing.assert_close(M.band_mean(v, weights=[1.0, 3.0, 1.0]), torch.tensor([2.5, 4.0], dtype=F64))
    with pytest.raises(ValueError, match="weights"):
        M.band_mean(v, weights=[1.0, 2.0])
