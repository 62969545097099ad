"""Consistency projection, torch (sr_core.projection.layer) and its use inside S2Fast: closed forms, adjoint, exact
RF, ONNX."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.sr_core.archs.arch_utils import assert_receptive_field
from sr_core.archs import get_arch
from sr_core.bands import mtf
from sr_core.degradation import degrade
from sr_core.models.export import check_onnx_parity, export_onnx
from sr_core.projection.filters import projection_filters
from sr_core.projection.layer import ConsistencyProjection, _apply, consistency_projection

BANDS = ["B02", "B03", "B04", "B08"]
MTF = [mtf(b) for b in BANDS]


def _smooth(gen, n, c, h, w):
    x = torch.rand(n, c, h, w, generator=gen, dtype=torch.float64)
    return x.cumsum(-1).cumsum(-2) / (h * w) + 0.1 * x


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
