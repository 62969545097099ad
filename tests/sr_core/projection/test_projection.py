"""Consistency projection (sr_core/projection.py) and its use inside S2Fast: closed forms, adjoint, exact RF, ONNX."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.sr_core.archs.arch_utils import assert_receptive_field
from sr_core.archs import get_arch
from sr_core.bands import mtf
from sr_core.degradation import degrade
from sr_core.models.export import check_onnx_parity, export_onnx
from sr_core.projection.layer import ConsistencyProjection, _apply, consistency_projection, projection_filters

BANDS = ["B02", "B03", "B04", "B08"]
MTF = [mtf(b) for b in BANDS]


def _smooth(gen, n, c, h, w):
    x = torch.rand(n, c, h, w, generator=gen, dtype=torch.float64)
    return x.cumsum(-1).cumsum(-2) / (h * w) + 0.1 * x


@pytest.mark.parametrize("ratio", [2, 4])
def test_filters_closed_form(ratio):
    f = projection_filters(MTF, ratio, lam=0.1, taps=8)
    assert f.psf.shape[0] == 4 and f.inverse.shape == (4, 17)
    np.testing.assert_allclose(f.psf.sum(1), 1.0, atol=1e-12)
    assert f.truncation < 1e-8
    # K = (G + lam)^-1: (g * K) + lam K = delta, checked on the kept taps (truncation is negligible)
    for h, kinv in zip(f.psf, f.inverse):
        k = len(h)
        ac = np.correlate(h, h, "full")
        g = {(i - (k - 1)) // ratio: v for i, v in enumerate(ac) if (i - (k - 1)) % ratio == 0}
        gv = np.array([g.get(t, 0.0) for t in range(-20, 21)])
        conv = np.convolve(gv, kinv)  # index 20 + 8 = lag 0
        out = conv + 0.1 * np.pad(kinv, (20, 20))
        delta = np.zeros_like(out)
        delta[28] = 1.0
        np.testing.assert_allclose(out, delta, atol=1e-5)  # the dropped tails are < 1e-5


def test_filters_bad_values():
    with pytest.raises(ValueError, match="mtf"):
        projection_filters([0.3, 1.2], 2)
    with pytest.raises(ValueError, match="lam"):
        projection_filters(MTF, 2, lam=-1.0)
    with pytest.raises(ValueError, match="taps"):
        projection_filters(MTF, 2, taps=0)
    with pytest.raises(ValueError, match="ratio"):
        projection_filters(MTF, 0)


@pytest.mark.parametrize("ratio", [2, 4])
def test_exact_projection_makes_degrade_equal_lr(ratio, gen):
    lr = degrade(_smooth(gen, 1, 4, 32 * ratio, 32 * ratio), ratio, mtf=MTF)
    sr = torch.nn.functional.interpolate(lr, scale_factor=ratio, mode="bicubic", align_corners=False)
    p = consistency_projection(sr, lr, mtf=MTF, ratio=ratio, lam=0.0, taps=14)
    inner = (..., slice(10, -10), slice(10, -10))
    before = (degrade(sr, ratio, mtf=MTF) - lr)[inner].abs().max()
    after = (degrade(p, ratio, mtf=MTF) - lr)[inner].abs().max()
    assert before > 1e-3 and after < 1e-4 * before


def test_regularised_projection_shrinks_residual_per_frequency(gen):
    # on a residual of frequency w along x (constant along y), one step leaves 1 - Gy Gx / ((Gy + lam)(Gx + lam))
    # of it: the regularised inverse is separable, (G_axis + lam)^-1 per axis, G_axis(0) = 1 / ratio
    lr = torch.zeros(1, 1, 64, 64, dtype=torch.float64)
    sr = torch.zeros(1, 1, 128, 128, dtype=torch.float64)
    lr[..., :, :] = torch.cos(0.4 * torch.arange(64, dtype=torch.float64))
    f = projection_filters(MTF[:1], 2, lam=0.3, taps=10)
    p = _apply(sr, lr, torch.as_tensor(f.psf), torch.as_tensor(f.inverse), 2)
    res = (lr - degrade(p, 2, mtf=MTF[:1]))[..., 24:40, 24:40]
    h = f.psf[0]
    ac = np.correlate(h, h, "full")
    lags = np.arange(len(ac)) - (len(h) - 1)
    even = lags % 2 == 0
    gx = float((ac[even] * np.cos(0.4 * lags[even] / 2)).sum())
    gy = float(ac[even].sum())
    np.testing.assert_allclose(gy, 0.5, atol=1e-9)
    expected = 1 - gy * gx / ((gy + 0.3) * (gx + 0.3))
    ratio = (res / lr[..., 24:40, 24:40]).reshape(-1)
    big = lr[..., 24:40, 24:40].reshape(-1).abs() > 0.2
    np.testing.assert_allclose(ratio[big].numpy(), expected, rtol=1e-4, atol=1e-5)


def test_adjoint_is_exact_in_the_interior(gen):
    # <D x, r> == <x, D^T r> for x supported away from the border (the replicated border is not linear-adjoint)
    f = projection_filters(MTF, 2, lam=0.1, taps=2)
    psf = torch.as_tensor(f.psf)
    x = torch.zeros(1, 4, 64, 64, dtype=torch.float64)
    x[..., 12:-12, 12:-12] = torch.rand(1, 4, 40, 40, generator=gen, dtype=torch.float64)
    r = torch.rand(1, 4, 32, 32, generator=gen, dtype=torch.float64)
    dx = degrade(x, 2, mtf=MTF, padding="replicate")
    # D^T r through _apply with the identity inverse filter and lr = D sr + r  ->  sr + D^T r
    ident = torch.zeros(4, 5, dtype=torch.float64)
    ident[:, 2] = 1.0
    zero = torch.zeros_like(x)
    dtr = _apply(zero, r, psf, ident, 2)
    lhs = (dx * r).sum()
    rhs = (x * dtr).sum()
    torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=1e-12)


def test_module_equals_function_and_gradcheck(gen):
    mod = ConsistencyProjection(MTF[:2], ratio=2, lam=0.1, taps=3, channels=[1, 3]).double()
    sr = torch.rand(1, 4, 16, 16, generator=gen, dtype=torch.float64)
    lr = torch.rand(1, 4, 8, 8, generator=gen, dtype=torch.float64)
    out = mod(sr, lr)
    ref = consistency_projection(sr[:, [1, 3]], lr[:, [1, 3]], mtf=MTF[:2], ratio=2, lam=0.1, taps=3)
    torch.testing.assert_close(out[:, [1, 3]], ref)
    torch.testing.assert_close(out[:, [0, 2]], sr[:, [0, 2]])
    srg = sr[:, :2, :8, :8].clone().requires_grad_(True)
    lrg = lr[:, :2, :4, :4].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b: consistency_projection(a, b, mtf=MTF[:2], ratio=2, lam=0.1, taps=2), (srg, lrg)
    )


def test_shape_errors(gen):
    with pytest.raises(ValueError, match="upsampled by 2"):
        consistency_projection(torch.zeros(1, 4, 16, 16), torch.zeros(1, 4, 9, 8), mtf=MTF, ratio=2)
    with pytest.raises(ValueError, match="bands"):
        consistency_projection(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 8, 8), mtf=MTF, ratio=2)
    with pytest.raises(ValueError, match="distinct"):
        ConsistencyProjection(MTF[:2], ratio=2, channels=[1, 1])


@pytest.mark.parametrize("scale", [2, 4])
def test_s2fast_with_projection_receptive_field_exact(scale, gen):
    net = get_arch("s2fast", in_channels=6, out_channels=4, scale=scale, num_features=6, num_blocks=1,
                   project_mtf=MTF[:3], project_taps=3).double()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.2, generator=gen)
    plain = get_arch("s2fast", in_channels=6, out_channels=4, scale=scale, num_features=6, num_blocks=1)
    assert net.receptive_field > plain.receptive_field
    r = net.receptive_field // 2
    lr = torch.rand(1, 6, 2 * r + 7, 2 * r + 9, generator=gen, dtype=torch.float64)
    assert_receptive_field(net, lr, scale)


def test_s2fast_projection_untrained_is_projected_bicubic_and_exports(gen, tmp_path):
    net = get_arch("s2fast", in_channels=10, scale=2, num_features=8, num_blocks=1, project_mtf=MTF)
    lr = torch.rand(1, 10, 20, 22, generator=gen)
    with torch.no_grad():
        out = net(lr)
    bic = torch.nn.functional.interpolate(lr, scale_factor=2, mode="bicubic", align_corners=False)
    ref = consistency_projection(bic[:, :4].double(), lr[:, :4].double(), mtf=MTF, ratio=2, lam=0.1, taps=4)
    torch.testing.assert_close(out[:, :4].double(), ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(out[:, 4:], bic[:, 4:], rtol=0, atol=1e-5)
    for p in net.tail.parameters():
        torch.nn.init.normal_(p, std=0.05, generator=gen)
    path = export_onnx(net.eval(), tmp_path / "p.onnx", torch.rand(1, 10, 16, 16, generator=gen))
    for shape in [(1, 10, 16, 16), (2, 10, 13, 19)]:
        assert check_onnx_parity(net, path, torch.rand(*shape, generator=gen)) <= 1e-4
    with pytest.raises(ValueError, match="project_mtf"):
        get_arch("s2fast", in_channels=4, scale=2, project_mtf=[0.3] * 5)


# ------------------------------------------------------------------------------- numpy twin, coarse bands

from sr_core.projection.layer import consistency_projection_numpy, project_coarse_bands, replicated_phase  # noqa: E402

MTF20 = [mtf(b) for b in ["B05", "B06", "B07", "B8A", "B11", "B12"]]


@pytest.mark.parametrize("ratio", [2, 4])
def test_numpy_twin_equals_torch(ratio):
    f = projection_filters(MTF20, ratio, lam=0.05, taps=3)
    rng = np.random.default_rng(ratio)
    sr, lr = rng.random((2, 6, ratio * 9, ratio * 7)), rng.random((2, 6, 9, 7))
    ref = consistency_projection(torch.tensor(sr), torch.tensor(lr), mtf=MTF20, ratio=ratio, lam=0.05, taps=3)
    np.testing.assert_allclose(consistency_projection_numpy(sr, lr, f), ref.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("ratio", [2, 4])
@pytest.mark.parametrize("lr_hw", [(1, 1), (2, 3), (5, 4)])
def test_numpy_twin_small_scenes_and_float32(ratio, lr_hw):
    # scenes smaller than the PSF (edge padding folded into the banded operators, the adjoint cropped)
    f = projection_filters(MTF20, ratio, lam=0.05, taps=3)
    rng = np.random.default_rng(sum(lr_hw) + ratio)
    h, w = lr_hw
    sr, lr = rng.random((1, 6, ratio * h, ratio * w)), rng.random((1, 6, h, w))
    ref = consistency_projection(torch.tensor(sr), torch.tensor(lr), mtf=MTF20, ratio=ratio, lam=0.05, taps=3).numpy()
    np.testing.assert_allclose(consistency_projection_numpy(sr, lr, f), ref, rtol=0, atol=1e-12)
    out32 = consistency_projection_numpy(sr.astype(np.float32), lr.astype(np.float32), f)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, ref, rtol=0, atol=2e-5)  # float32 rounding of the same sums


@pytest.mark.parametrize("phase", [0, 1])
def test_replicated_phase_tolerates_a_few_broken_blocks_and_refuses_the_rest(phase):
    rng = np.random.default_rng(phase)
    a = np.repeat(np.repeat(rng.random((3, 12, 12)), 2, -1), 2, -2)[:, phase:, phase:]
    assert replicated_phase(a, 2, -2) == phase and replicated_phase(a, 2, -1) == phase
    a = a.copy()
    a[0, 5, 5] += 1.0  # a filled nodata pixel breaks one block
    assert replicated_phase(a, 2, -2) == phase
    assert replicated_phase(rng.random((3, 20, 20)), 2, -1) is None  # not replicated
    assert replicated_phase(np.ones((3, 20, 20)), 2, -1) is None  # constant: ambiguous


def test_project_coarse_bands_makes_the_native_grid_consistent():
    # 20 m bands replicated (phase 1) on a 10 m grid, x2 output: afterwards degrade_x4(sr) ~= native values
    rng = np.random.default_rng(0)
    native = rng.random((1, 6, 10, 10)).cumsum(-1).cumsum(-2) / 20
    x = np.repeat(np.repeat(native, 2, -1), 2, -2)[:, :, 1:-1, 1:-1]  # 18 x 18, blocks start at row/col 1
    sr = np.repeat(np.repeat(x, 2, -1), 2, -2)  # a crude x2 output (36 x 36)
    f = projection_filters(MTF20, 4, lam=0.0, taps=10)
    out = project_coarse_bands(sr, x, channels=list(range(6)), factor=2, scale=2, filters=f)
    # whole native blocks are rows/cols 1..16 of x -> 5 m rows 2..33; compare on the interior of that region
    d = degrade(torch.tensor(out[:, :, 2:34, 2:34]), 4, mtf=MTF20).numpy()
    d0 = degrade(torch.tensor(sr[:, :, 2:34, 2:34]), 4, mtf=MTF20).numpy()
    nat = native[:, :, 1:9, 1:9]
    inner = (..., slice(2, -2), slice(2, -2))
    assert np.abs(d - nat)[inner].max() < 1e-3 * np.abs(d0 - nat)[inner].max()
    np.testing.assert_array_equal(out[:, :, :2], sr[:, :, :2])  # partial blocks untouched
    with pytest.raises(ValueError, match="ratio"):
        project_coarse_bands(sr, x, channels=list(range(6)), factor=2, scale=2, filters=projection_filters(MTF20, 2))


def test_project_coarse_bands_channel_lists_and_in_place():
    # a channel list that is not a contiguous range (fancy indexing) gives what each band gives alone; in place
    # on a writable array returns that array
    from sr_core.projection.filters import ProjectionFilters

    rng = np.random.default_rng(3)
    x = np.repeat(np.repeat(rng.random((1, 6, 9, 8)), 2, -1), 2, -2)
    sr = rng.random((1, 6, 36, 32))
    f2 = projection_filters([MTF20[4], MTF20[1]], 4, lam=0.05, taps=3)
    both = project_coarse_bands(sr, x, channels=[4, 1], factor=2, scale=2, filters=f2)
    for i, c in enumerate((4, 1)):  # the same band's filters alone
        fi = ProjectionFilters(psf=f2.psf[i : i + 1], inverse=f2.inverse[i : i + 1], ratio=4, lam=0.05, truncation=0.0)
        one = project_coarse_bands(sr, x, channels=[c], factor=2, scale=2, filters=fi)
        np.testing.assert_allclose(both[:, c], one[:, c], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(both[:, [0, 2, 3, 5]], sr[:, [0, 2, 3, 5]])
    assert np.abs(both[:, 4] - sr[:, 4]).max() > 1e-3  # it did something
    f = projection_filters(MTF20[:2], 4, lam=0.05, taps=3)
    work = sr.copy()
    out = project_coarse_bands(work, x, channels=[2, 3], factor=2, scale=2, filters=f, inplace=True)
    assert out is work
    np.testing.assert_array_equal(out, project_coarse_bands(sr, x, channels=[2, 3], factor=2, scale=2, filters=f))


def test_predictor_with_coarse_projection_is_seamless_and_widens_the_margin(tmp_path):
    import json
    import shutil

    from sr_core.models import load_predictor
    from sr_core.tiling import tiled_apply, whole_apply
    from udf.testing import make_package

    pkg = tmp_path / "pkg"
    make_package(pkg, arch="s2fast", weight_std=0.02)
    card = json.loads((pkg / "card.json").read_text())
    bands20 = [b for b in card["bands"] if b in ("B05", "B06", "B07", "B8A", "B11", "B12")]
    plain = load_predictor(pkg)
    pp = tmp_path / "pp"
    shutil.copytree(pkg, pp)
    card["postprocess"] = {"coarse_projection": {"bands": bands20, "factor": 2, "lam": 0.02, "taps": 3}}
    (pp / "card.json").write_text(json.dumps(card))
    pred = load_predictor(pp)
    assert pred.margin > plain.margin and pred.receptive_field == 2 * pred.margin + 1
    rng = np.random.default_rng(1)
    x = rng.uniform(0.02, 0.4, (1, len(card["bands"]), 70, 66)).astype(np.float32)
    idx = [card["bands"].index(b) for b in bands20]
    x[:, idx] = np.repeat(np.repeat(x[:, idx, ::2, ::2], 2, -1), 2, -2)[:, :, :70, :66]
    whole = whole_apply(pred, x, scale=2, margin=pred.margin)
    tiled = tiled_apply(pred, x, scale=2, tile=24, margin=pred.margin)
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=2e-5)
    assert np.abs(whole - whole_apply(plain, x, scale=2, margin=pred.margin)).max() > 1e-4  # it did something


def test_numpy_filters_use_the_degradation_psf_and_import_no_torch():
    import subprocess
    import sys

    from sr_core.degradation import gaussian_psf_1d, mtf_to_sigma

    for ratio in (2, 4):
        f = projection_filters(MTF20, ratio, lam=0.02, taps=4)
        for m, h in zip(MTF20, f.psf):
            ref = gaussian_psf_1d(mtf_to_sigma(m, ratio), ratio, size=len(h)).numpy()
            np.testing.assert_allclose(h, ref, rtol=0, atol=1e-15)
    code = ("import sys; sys.modules['torch'] = None; import numpy as np; "
            "from sr_core.projection.filters import projection_filters, project_coarse_bands; "
            "f = projection_filters([0.3], 4); x = np.repeat(np.repeat(np.random.rand(1, 1, 8, 8), 2, -1), 2, -2); "
            "project_coarse_bands(np.random.rand(1, 1, 32, 32), x, channels=[0], factor=2, scale=2, filters=f)")
    subprocess.run([sys.executable, "-c", code], check=True)
