"""The anchor-referenced HighRes-net (sr_core/archs/highresnet_anchor.py)."""

from __future__ import annotations

import pytest
import torch

from sr_core.archs import get_arch
from sr_core.archs._common import bicubic_upsample
from sr_core.archs.highresnet_anchor import AnchorHighResNet


def _net(seed: int = 0, **kw) -> AnchorHighResNet:
    torch.manual_seed(seed)
    net = get_arch("highresnet_anchor", in_channels=3, scale=2, num_features=6, num_blocks=1, **kw)
    assert isinstance(net, AnchorHighResNet) and net.receptive_field == 13
    return net


def test_untrained_is_bicubic_of_the_anchor(gen):
    net = _net()
    lr = torch.rand(2, 4, 3, 9, 9, generator=gen)
    torch.testing.assert_close(net(lr), bicubic_upsample(lr[:, 0], 2), rtol=0, atol=1e-6)


def test_unusable_revisits_never_reach_the_output_and_the_anchor_must_be_usable(gen):
    net = _net()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    lr = torch.rand(1, 5, 3, 8, 8, generator=gen)
    mask = torch.tensor([[True, True, False, True, False]])
    poisoned = lr.clone()
    poisoned[:, [2, 4]] = float("nan")
    a, b = net(lr, mask), net(poisoned, mask)
    assert torch.isfinite(b).all()
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (net(lr) - a).abs().max() > 1e-4  # the masked revisits do matter when usable
    with pytest.raises(ValueError, match="anchor .*frame 0"):
        net(lr, torch.tensor([[False, True, True, True, True]]))


def test_gradcheck_float64(gen):
    net = _net().double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
    lr = torch.rand(1, 3, 3, 5, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: net(x, torch.tensor([[True, False, True]])), (lr,), eps=1e-6,
                                    atol=1e-5)
