"""sisr_step: an x2 network then the physical step of its coarse bands, the fine bands the input's."""

from __future__ import annotations

import pytest
import torch

from sr_core.archs import get_arch
from sr_core.bands import BANDS_20M, mtf
from sr_core.degradation import physical_step
from tests.sr_core.archs.arch_utils import assert_receptive_field

STEP_MTF = [mtf(b) for b in BANDS_20M]


def _net(**kw):
    net = get_arch("sisr_step", in_channels=10, sisr_kwargs=dict(scale=2, num_features=6, num_blocks=2, **kw),
                   step_mtf=STEP_MTF).double()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.2)
    return net


def test_equals_the_physical_step_of_the_x2_output_and_copies_the_fine_bands():
    net = _net()
    x = torch.rand(2, 10, 20, 18, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = net(x)
    sr = net.sisr(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y[:, :4], x[:, :4], rtol=0, atol=0)
    torch.testing.assert_close(y[:, 4:], physical_step(sr[:, 4:], 2, bands=list(BANDS_20M)), rtol=0, atol=1e-12)
    assert net.step_sigma == pytest.approx([float(s) for s in net.step_sigma])


@pytest.mark.parametrize("blocks", [1, 3])
def test_receptive_field_is_tight(blocks):
    net = get_arch("sisr_step", in_channels=10, sisr_kwargs=dict(scale=2, num_features=6, num_blocks=blocks),
                   step_mtf=STEP_MTF)
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    assert_receptive_field(net, torch.rand(1, 10, 41, 41, generator=gen), 1)


def test_a_flat_field_stays_flat_with_the_gated_network():
    net = _net(flat_gate=0.01)
    spectrum = torch.rand(1, 10, 1, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    y = net(spectrum.expand(1, 10, 16, 16))
    torch.testing.assert_close(y, spectrum.expand_as(y), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kw, words", [
    (dict(scale=2), "scale must be 1"),
    (dict(step_mtf=[0.3] * 5), "one MTF per coarse band"),
    (dict(step_mtf=[1.2] * 6), r"lie in \(0, 1\)"),
    (dict(fine_channels=10), "fine_channels must be below"),
    (dict(sisr_kwargs=dict(scale=4)), "x2 network"),
])
def test_rejects_unsupported_values(kw, words):
    args = dict(in_channels=10, sisr_kwargs=dict(scale=2, num_features=4, num_blocks=1), step_mtf=STEP_MTF)
    args.update(kw)
    with pytest.raises(ValueError, match=words):
        get_arch("sisr_step", **args)
