"""S2Sharpen: the bicubic base from the replicated coarse bands, the fine bands unchanged, the receptive field."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sr_core.archs import get_arch
from sr_core.archs.s2sharpen import S2Sharpen, replicated_bicubic_taps
from tests.sr_core.archs.arch_utils import assert_receptive_field


def _input(gen: torch.Generator, n: int = 2, h: int = 12, w: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """A model input (fine bands + coarse bands replicated 2 x 2) and the coarse bands' native values."""
    fine = torch.rand(n, 4, 2 * h, 2 * w, generator=gen, dtype=torch.float64)
    coarse = torch.rand(n, 6, h, w, generator=gen, dtype=torch.float64)
    rep = coarse.repeat_interleave(2, -2).repeat_interleave(2, -1)
    return torch.cat([fine, rep], 1), coarse


def test_untrained_equals_bicubic_of_the_native_coarse_values_and_copies_the_fine_bands():
    gen = torch.Generator().manual_seed(0)
    x, coarse = _input(gen)
    net = S2Sharpen(10, num_features=8, num_blocks=2).double()
    y = net(x)
    want = F.interpolate(coarse, scale_factor=2, mode="bicubic", align_corners=False)
    torch.testing.assert_close(y[:, 4:], want, rtol=0, atol=1e-12)  # everywhere, the borders included
    torch.testing.assert_close(y[:, :4], x[:, :4], rtol=0, atol=0)


def test_base_does_not_depend_on_the_phase_of_the_blocks():
    """Cropping one fine pixel (blocks then start mid-way) gives the same base in the common interior."""
    gen = torch.Generator().manual_seed(1)
    x, _ = _input(gen, 1, 16, 16)
    net = S2Sharpen(10, num_features=8, num_blocks=1).double()
    whole = net(x)
    shifted = net(x[..., 1:, 1:])
    torch.testing.assert_close(shifted[..., 4:-4, 4:-4], whole[..., 5:-4, 5:-4], rtol=0, atol=1e-12)


def test_taps_closed_form():
    t = replicated_bicubic_taps()
    assert len(t) == 7 and t == t[::-1]
    assert sum(t) == pytest.approx(1.0, abs=1e-15)
    # pixel 2k weighs a_{k-2}, a_{k-1}, a_k, a_{k+1} by the cubic (a = -0.75) at 1.75, 0.75, 0.25, 1.25
    f3, f2, f1, f0 = t[:4]
    assert (f3, f2 + f1, f0 + f1, f2 + f3) == pytest.approx((-0.03515625, 0.26171875, 0.87890625, -0.10546875))


@pytest.mark.parametrize("blocks", [1, 3])
def test_receptive_field_is_tight(blocks):
    net = S2Sharpen(10, num_features=6, num_blocks=blocks)
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    assert net.receptive_field == 2 * (2 * blocks + 2) + 1
    assert_receptive_field(net, torch.rand(1, 10, 41, 41, generator=gen), 1)


def test_flops_closed_form_and_registry():
    net = get_arch("s2sharpen", in_channels=10, num_features=32, num_blocks=6)
    assert isinstance(net, S2Sharpen) and net.scale == 1
    c, f, b, cc = 10, 32, 6, 6
    assert net.flops_per_lr_pixel() == 18 * (c * f + 2 * b * f * f + f * cc) + 2 * 14 * cc


@pytest.mark.parametrize("kw, words", [
    (dict(scale=2), "scale must be 1"),
    (dict(out_channels=6), "out_channels must equal in_channels"),
    (dict(fine_channels=10), "fine_channels must be below"),
    (dict(factor=4), "factor"),
    (dict(num_blocks=0), "num_blocks"),
])
def test_rejects_unsupported_values(kw, words):
    with pytest.raises(ValueError, match=words):
        S2Sharpen(10, **kw)


@pytest.mark.parametrize("arch, kw", [("s2sharpen", {}), ("s2fast", {"scale": 2})])
def test_flat_gate_keeps_a_flat_field_exactly_flat_whatever_the_weights(arch, kw):
    net = get_arch(arch, in_channels=10, num_features=6, num_blocks=2, flat_gate=0.01, **kw).double()
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.3)
    spectrum = torch.rand(1, 10, 1, 1, generator=gen, dtype=torch.float64) * 3 - 1
    x = spectrum.expand(1, 10, 16, 16)
    y = net(x)
    torch.testing.assert_close(y, spectrum.expand_as(y), rtol=0, atol=1e-12)
    # without the gate the same weights do not keep it flat; with it, texture still gets a residual
    plain = get_arch(arch, in_channels=10, num_features=6, num_blocks=2, **kw).double()
    plain.load_state_dict(net.state_dict())
    assert (plain(x) - spectrum).abs().max() > 1e-3
    from sr_core.archs._common import contrast_gate

    t = x + 0.5 * torch.rand(1, 10, 16, 16, generator=gen, dtype=torch.float64)
    assert float(contrast_gate(t, 0.01).min()) > 0.9  # texture: the residual passes nearly whole
    d_gate, d_res = (net(t) - plain(t)).abs().max(), (plain(t) - plain(x)).abs().max()
    assert 0 < d_gate < 0.1 * d_res
    # the gate stays inside the receptive field
    assert_receptive_field(net.float(), torch.rand(1, 10, 41, 41, generator=gen), kw.get("scale", 1))


def test_contrast_gate_closed_form():
    from sr_core.archs._common import contrast_gate

    x = torch.zeros(1, 2, 5, 5, dtype=torch.float64)
    x[0, 0, 2, 2] = 1.0  # one bright pixel in band 0
    g = contrast_gate(x, 0.5)
    want = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    want[0, 0, 1:4, 1:4] = 0.5 / (0.5 + 0.5)  # range 1 in band 0, 0 in band 1: s = 0.5 in its 3 x 3 neighbourhood
    torch.testing.assert_close(g, want, rtol=0, atol=0)
    with pytest.raises(ValueError, match="flat_gate"):
        S2Sharpen(10, flat_gate=0.0)
