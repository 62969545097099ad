"""Multi-image SR networks: HighRes-net (+ masked median), ShiftNet (+ Fourier shift, shifted loss), RAMS.

Values, not just shapes: untrained == bicubic of the reference / masked mean, numpy references for the
median / mean, exact receptive fields by impulse response, unusable revisits have no influence (bit for bit),
closed forms for sub-pixel shifts, gradcheck, ONNX Runtime parity with the mask as a second input.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tests.sr_core.archs.arch_utils import assert_receptive_field, lr_support_radius
from sr_core.archs import get_arch
from sr_core.archs._common import bicubic_upsample
from sr_core.archs.highresnet import HighResNet, masked_median, revisit_mask
from sr_core.archs.rams import RAMS, masked_mean
from sr_core.archs.shiftnet import ShiftNet, register, shift_corrected_loss, shift_image
from sr_core.models.export import check_onnx_parity, export_onnx

TINY_HRN = dict(num_features=8, num_blocks=1)
TINY_RAMS = dict(num_features=8, num_blocks=1, reduction=2)


def randomize_(model: nn.Module, gen: torch.Generator) -> nn.Module:
    """Non-zero random weights (std 1/sqrt(fan_in)) and small random biases / PReLU slopes, in place."""
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) / math.sqrt(p[0].numel()))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


def smooth_images(n: int, gen: torch.Generator, size: int = 24, channels: int = 1, dtype=torch.float32):
    """Smooth periodic random images (Gaussian-filtered white noise, sigma 1.5 px)."""
    x = torch.randn(n, channels, size, size, generator=gen, dtype=dtype)
    k = torch.exp(-torch.arange(-4, 5, dtype=dtype) ** 2 / (2 * 1.5**2))
    k = k / k.sum()
    w = (k[:, None] * k[None, :]).expand(channels, 1, 9, 9)
    return F.conv2d(F.pad(x, (4, 4, 4, 4), mode="circular"), w, groups=channels)


def np_masked(lr: torch.Tensor, mask: torch.Tensor, fn) -> np.ndarray:
    a, m = lr.double().numpy(), mask.numpy().astype(bool)
    return np.stack([fn(a[i][m[i]], axis=0) for i in range(a.shape[0])])


# --------------------------------------------------------------------------------------------------------
# masked median / revisit mask
# --------------------------------------------------------------------------------------------------------


def test_masked_median_matches_numpy(gen):
    # Samples with 1..6 usable revisits of 6 (odd and even counts); unusable values are NaN.
    lr = torch.randn(6, 6, 2, 5, 4, generator=gen, dtype=torch.float64)
    mask = torch.arange(6)[None, :] < torch.arange(1, 7)[:, None]
    perm = torch.stack([torch.randperm(6, generator=gen) for _ in range(6)])
    mask = torch.gather(mask, 1, perm)  # usable revisits at random positions
    lr_nan = torch.where(mask[:, :, None, None, None], lr, torch.full_like(lr, float("nan")))
    got = masked_median(lr_nan, mask)
    np.testing.assert_allclose(got.numpy(), np_masked(lr, mask, np.median), rtol=0, atol=1e-12)
    # No mask: plain median of all revisits.
    np.testing.assert_allclose(masked_median(lr).numpy(), np.median(lr.numpy(), axis=1), rtol=0, atol=1e-12)
    # A 0/1 float mask is the same as the bool mask.
    assert torch.equal(masked_median(lr_nan, mask.double()), got)


def test_masked_median_permutation_invariant(gen):
    lr = torch.randn(2, 5, 3, 6, 7, generator=gen)
    mask = torch.tensor([[1, 0, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    ref = masked_median(lr, mask)
    perm = torch.tensor([3, 0, 4, 2, 1])
    assert torch.equal(masked_median(lr[:, perm], mask[:, perm]), ref)


def test_masked_median_gradient_goes_to_median_revisit():
    lr = torch.tensor([3.0, 1.0, 2.0, 10.0]).reshape(1, 4, 1, 1, 1).requires_grad_(True)
    mask = torch.tensor([[True, True, True, False]])
    masked_median(lr, mask).sum().backward()
    assert lr.grad.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]


def test_revisit_mask_errors():
    lr = torch.zeros(3, 4, 1, 5, 5)
    with pytest.raises(ValueError, match=r"sample\(s\) \[1\]"):
        revisit_mask(lr, torch.tensor([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]], dtype=torch.bool))
    with pytest.raises(ValueError, match="shape"):
        revisit_mask(lr, torch.ones(3, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="0/1"):
        revisit_mask(lr, torch.full((3, 4), 0.5))
    with pytest.raises(ValueError, match=r"\(N, T, C, H, W\)"):
        revisit_mask(lr[0], None)
    assert revisit_mask(lr, None).all() and revisit_mask(lr, None).shape == (3, 4)


# --------------------------------------------------------------------------------------------------------
# HighRes-net
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "t,c,scale,out_channels",
    [(1, 1, 2, None), (3, 4, 3, 2), (5, 10, 4, None), (8, 4, 2, None), (8, 10, 3, 4)],
)
def test_highresnet_untrained_is_bicubic_of_reference(t, c, scale, out_channels, gen):
    model = HighResNet(c, out_channels, scale=scale, **TINY_HRN)
    lr = torch.rand(2, t, c, 7, 9, generator=gen)
    mask = torch.rand(2, t, generator=gen) > 0.4
    mask[:, 0] = True
    sr = model(lr, mask)
    oc = out_channels or c
    assert sr.shape == (2, oc, 7 * scale, 9 * scale)
    torch.testing.assert_close(sr, bicubic_upsample(masked_median(lr, mask), scale, oc), rtol=0, atol=0)


def test_highresnet_unusable_revisits_do_not_matter(gen):
    model = randomize_(HighResNet(3, scale=3, **TINY_HRN), gen)
    lr = torch.rand(2, 5, 3, 8, 7, generator=gen)
    mask = torch.tensor([[1, 0, 1, 1, 0], [0, 1, 1, 0, 1]], dtype=torch.bool)
    sr = model(lr, mask)
    other = lr.clone()
    other[~mask] = torch.rand(int((~mask).sum()), 3, 8, 7, generator=gen) * 100
    assert torch.equal(model(other, mask), sr)
    other[0, 1, 0, 0, 0] = float("nan")
    other[1, 3] = float("inf")
    assert torch.equal(model(other, mask), sr)
    # ... while a usable revisit does matter (the test above could fail).
    other = lr.clone()
    other[0, 2] += 0.5
    assert not torch.allclose(model(other, mask)[0], sr[0])
    torch.testing.assert_close(model(other, mask)[1], sr[1], rtol=0, atol=0)


def test_highresnet_trailing_unusable_revisit_equals_fewer_revisits(gen):
    # T = 3 is padded with one invalid dummy state to 4: identical to T = 4 with the last revisit unusable.
    model = randomize_(HighResNet(2, scale=2, **TINY_HRN), gen)
    lr = torch.rand(2, 4, 2, 9, 9, generator=gen)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 0]], dtype=torch.bool)
    torch.testing.assert_close(model(lr, mask), model(lr[:, :3]), rtol=0, atol=1e-6)
    # T = 1 with extra unusable revisits: the single revisit is its own reference.
    mask1 = torch.tensor([[1, 0, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    torch.testing.assert_close(model(lr, mask1), model(lr[:, :1]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("t", [1, 3, 5, 8])
def test_highresnet_batch_consistency(t, gen):
    model = randomize_(HighResNet(4, scale=2, **TINY_HRN), gen)
    lr = torch.rand(3, t, 4, 6, 5, generator=gen)
    mask = torch.ones(3, t, dtype=torch.bool)
    if t > 1:
        mask[1, 0] = False
        mask[2, t - 1] = False
    whole = model(lr, mask)
    parts = torch.cat([model(lr[i : i + 1], mask[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(whole, parts, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("t,scale,num_blocks", [(1, 2, 1), (3, 3, 1), (5, 4, 0), (8, 2, 2)])
def test_highresnet_receptive_field_exact(t, scale, num_blocks, gen):
    model = randomize_(HighResNet(2, scale=scale, num_features=8, num_blocks=num_blocks), gen)
    assert model.receptive_field == 4 * num_blocks + 9
    size = model.receptive_field + 4
    lr = torch.rand(1, t, 2, size, size, generator=gen)
    mask = torch.ones(1, t, dtype=torch.bool)
    mask[0, t // 2] = t == 1  # one unusable revisit (none when T = 1)
    assert_receptive_field(model, lr, scale, mask=mask)


def test_highresnet_crop_equals_whole_interior(gen):
    # A crop reproduces the whole-image output wherever its receptive field lies inside the crop.
    model = randomize_(HighResNet(3, scale=2, **TINY_HRN), gen)
    r = model.receptive_field // 2
    lr = torch.rand(1, 3, 3, 30, 28, generator=gen)
    whole = model(lr)
    y0, x0, h, w = 5, 3, 20, 22
    crop = model(lr[..., y0 : y0 + h, x0 : x0 + w])
    s = 2
    inner_crop = crop[..., s * r : s * (h - r), s * r : s * (w - r)]
    inner_whole = whole[..., s * (y0 + r) : s * (y0 + h - r), s * (x0 + r) : s * (x0 + w - r)]
    torch.testing.assert_close(inner_crop, inner_whole, rtol=0, atol=1e-5)
    # One pixel further out the zero padding of the crop shows (the margin is tight).
    assert not torch.allclose(
        crop[..., s * (r - 1), s * r : s * (w - r)],
        whole[..., s * (y0 + r - 1), s * (x0 + r) : s * (x0 + w - r)],
    )


def test_highresnet_learns(gen):
    # A few Adam steps reduce the loss on a fixed batch (all parts receive gradient despite the zero init).
    model = HighResNet(1, scale=2, **TINY_HRN)
    lr = torch.rand(2, 3, 1, 6, 6, generator=gen)
    hr = torch.rand(2, 1, 12, 12, generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = F.mse_loss(model(lr), hr)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
    assert model.encoder[0].weight.grad.abs().sum() > 0 and model.fuse.body[0].weight.grad.abs().sum() > 0


def test_highresnet_bad_arguments():
    for scale in (1, 5, 2.0, True):
        with pytest.raises(ValueError, match="scale"):
            HighResNet(2, scale=scale)
    with pytest.raises(ValueError, match="in_channels"):
        HighResNet(0)
    with pytest.raises(ValueError, match="out_channels"):
        HighResNet(2, out_channels=3)
    with pytest.raises(ValueError, match="num_features"):
        HighResNet(2, num_features=0)
    with pytest.raises(ValueError, match="num_blocks"):
        HighResNet(2, num_blocks=-1)
    model = HighResNet(2, scale=2, **TINY_HRN)
    with pytest.raises(ValueError, match="5-D"):
        model(torch.zeros(1, 2, 6, 6))
    with pytest.raises(ValueError, match="bands"):
        model(torch.zeros(1, 3, 4, 6, 6))
    with pytest.raises(ValueError, match=r"sample\(s\) \[0\]"):
        model(torch.zeros(1, 3, 2, 6, 6), torch.zeros(1, 3))


def test_highresnet_onnx_parity_with_mask(gen, tmp_path):
    # T is fixed to 3 in the exported graph; batch and spatial size are dynamic.
    model = randomize_(HighResNet(2, scale=3, **TINY_HRN), gen).eval()
    example = (torch.rand(1, 3, 2, 10, 10, generator=gen), torch.ones(1, 3))
    dyn = {
        "lr": {0: "batch", 3: "height", 4: "width"},
        "mask": {0: "batch"},
        "sr": {0: "batch", 2: "sr_height", 3: "sr_width"},
    }
    path = export_onnx(
        model, tmp_path / "highresnet.onnx", example, input_names=("lr", "mask"), dynamic_dims=dyn
    )
    for n, h, w in [(1, 10, 10), (2, 13, 9)]:
        lr = torch.rand(n, 3, 2, h, w, generator=gen)
        mask = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])[:n]
        err = check_onnx_parity(model, path, (lr, mask), input_names=("lr", "mask"))
        assert err <= 1e-4


# --------------------------------------------------------------------------------------------------------
# shift_image / ShiftNet / shift-corrected loss
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["circular", "symmetric"])
def test_shift_image_integer_equals_roll(padding, gen):
    x = torch.randn(2, 3, 12, 11, generator=gen, dtype=torch.float64)
    shifts = torch.tensor([[2.0, -3.0], [-1.0, 4.0]], dtype=torch.float64)
    got = shift_image(x, shifts, padding=padding)
    for i, (dy, dx) in enumerate([(2, -3), (-1, 4)]):
        want = torch.roll(x[i], (dy, dx), dims=(-2, -1))
        if padding == "circular":
            torch.testing.assert_close(got[i], want, rtol=0, atol=1e-12)
        else:  # interior: pixels whose source lies inside the image
            ys = slice(max(dy, 0), 12 + min(dy, 0))
            xs = slice(max(dx, 0), 11 + min(dx, 0))
            torch.testing.assert_close(got[i][:, ys, xs], want[:, ys, xs], rtol=0, atol=1e-12)
    if padding == "symmetric":
        # What enters at a border is the mirror image (half-sample symmetric), not the opposite side:
        # out[0, j] = x[-2 -> 1, j + 3 -> mirrored 21 - (j + 3) beyond the right edge].
        cols = [j + 3 if j + 3 < 11 else 21 - (j + 3) for j in range(11)]
        torch.testing.assert_close(got[0][:, 0], x[0][:, 1, cols], rtol=0, atol=1e-12)


def test_shift_image_subpixel_closed_form():
    # A sampled sinusoid below Nyquist shifts exactly: sin(2 pi (k (i - dy) / H + l (j - dx) / W)).
    h, w, k, l = 16, 15, 3, 2
    i = torch.arange(h, dtype=torch.float64)[:, None]
    j = torch.arange(w, dtype=torch.float64)[None, :]
    x = torch.sin(2 * math.pi * (k * i / h + l * j / w)).expand(1, 1, h, w)
    dy, dx = 0.37, -1.6
    want = torch.sin(2 * math.pi * (k * (i - dy) / h + l * (j - dx) / w))
    got = shift_image(x, torch.tensor([[dy, dx]], dtype=torch.float64), padding="circular")
    torch.testing.assert_close(got[0, 0], want, rtol=0, atol=1e-12)


def test_shift_image_roundtrip_and_composition(gen):
    x = torch.randn(2, 2, 13, 11, generator=gen, dtype=torch.float64)  # odd sizes: no Nyquist component
    a = torch.tensor([[0.3, -1.7], [1.25, 0.5]], dtype=torch.float64)
    b = torch.tensor([[-0.8, 0.45], [0.1, 2.2]], dtype=torch.float64)
    back = shift_image(shift_image(x, a, padding="circular"), -a, padding="circular")
    torch.testing.assert_close(back, x, rtol=0, atol=1e-12)
    ab = shift_image(shift_image(x, a, padding="circular"), b, padding="circular")
    torch.testing.assert_close(ab, shift_image(x, a + b, padding="circular"), rtol=0, atol=1e-12)
    # Symmetric padding, smooth image: shifting back restores the interior far better than no correction.
    s = smooth_images(2, gen, size=24, dtype=torch.float64)
    moved = shift_image(s, a)
    back = shift_image(moved, -a)
    err_back = (back - s)[..., 5:-5, 5:-5].abs().max()
    err_moved = (moved - s)[..., 5:-5, 5:-5].abs().max()
    assert err_back < 0.02 * err_moved


@pytest.mark.parametrize("padding", ["circular", "symmetric"])
def test_shift_image_gradcheck(padding, gen):
    x = torch.randn(2, 1, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    shifts = torch.tensor([[0.3, -1.2], [0.7, 0.45]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, d: shift_image(x, d, padding=padding), (x, shifts))


def test_shift_image_errors():
    x = torch.zeros(2, 1, 5, 5)
    with pytest.raises(ValueError, match="shifts"):
        shift_image(x, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="shifts"):
        shift_image(x, torch.zeros(1, 2))
    with pytest.raises(ValueError, match="padding"):
        shift_image(x, torch.zeros(2, 2), padding="reflect")
    with pytest.raises(ValueError, match="x must be a 4-D"):
        shift_image(x[0], torch.zeros(2, 2))
    with pytest.raises(ValueError, match="floating"):
        shift_image(x.long(), torch.zeros(2, 2))


def test_shiftnet_starts_at_zero_and_checks_arguments(gen):
    net = get_arch("shiftnet", in_channels=2, num_features=8, num_blocks=1)
    assert isinstance(net, ShiftNet) and net.receptive_field is None
    ref, mov = torch.rand(3, 2, 16, 16, generator=gen), torch.rand(3, 2, 16, 16, generator=gen)
    assert torch.equal(net(ref, mov), torch.zeros(3, 2))
    torch.testing.assert_close(net.register(ref, mov), mov, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="in_channels"):
        ShiftNet(0)
    with pytest.raises(ValueError, match="num_features"):
        ShiftNet(1, num_features=0)
    with pytest.raises(ValueError, match="same shape"):
        net(ref, mov[..., :8])
    with pytest.raises(ValueError, match="bands"):
        net(ref[:, :1], mov[:, :1])


def test_shiftnet_brightness_contrast_invariant(gen):
    net = randomize_(ShiftNet(1, num_features=8, num_blocks=1), gen)
    ref, mov = torch.rand(2, 1, 16, 16, generator=gen), torch.rand(2, 1, 16, 16, generator=gen)
    torch.testing.assert_close(net(3.0 * ref + 1.0, 0.5 * mov - 2.0), net(ref, mov), rtol=1e-4, atol=1e-5)


def test_shiftnet_learns_shifts_through_the_loss(gen):
    # Self-supervised, as at training time: only the shift-corrected loss, never the true shifts.
    with torch.random.fork_rng():
        torch.manual_seed(0)  # default init of the conv layers, without touching the global RNG
        net = ShiftNet(1, num_features=16, num_blocks=1)

    def batch(n):
        ref = smooth_images(n, gen)
        d = (torch.rand(n, 2, generator=gen) * 2 - 1) * 1.5
        return ref, shift_image(ref, d), d

    ref_t, mov_t, d_t = batch(32)
    with torch.no_grad():
        err0 = ((net(ref_t, mov_t) - d_t) ** 2).mean()
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    for _ in range(40):
        ref, mov, _ = batch(16)
        loss = shift_corrected_loss(mov, ref, net, lambda a, b: ((a - b) ** 2).mean(), border=3)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        err1 = ((net(ref_t, mov_t) - d_t) ** 2).mean()
    assert err1 < 0.7 * err0


class _Oracle(nn.Module):
    """A 'ShiftNet' that returns known shifts and records what it was given."""

    def __init__(self, shifts: torch.Tensor) -> None:
        super().__init__()
        self.shifts = shifts
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, reference, moving):
        self.seen.append((reference, moving))
        return self.shifts


def test_shift_corrected_loss_with_oracle(gen):
    hr = smooth_images(2, gen, size=20, channels=3, dtype=torch.float64)
    d = torch.tensor([[0.6, -1.3], [-0.4, 0.9]], dtype=torch.float64)
    sr = shift_image(hr, d).requires_grad_(True)  # a perfect SR, misregistered by d
    mse = lambda a, b: ((a - b) ** 2).mean()  # noqa: E731
    plain = mse(sr, hr)
    oracle = _Oracle(d)
    loss, shifts = shift_corrected_loss(sr, hr, oracle, mse, border=4, return_shifts=True)
    assert torch.equal(shifts, d)
    assert loss < 1e-4 * plain
    loss.backward()  # gradients reach sr through the shifted image
    assert sr.grad is not None and torch.isfinite(sr.grad).all()
    registered = register(hr, sr, oracle)
    torch.testing.assert_close(registered[..., 4:-4, 4:-4], hr[..., 4:-4, 4:-4], rtol=0, atol=1e-2)


def test_shift_corrected_loss_mask_and_nodata(gen):
    hr = smooth_images(1, gen, size=16, channels=2)
    sr = hr + 0.01
    mask = torch.ones(1, 1, 16, 16, dtype=torch.bool)
    mask[..., 6:9, 2:5] = False
    hr_nan = torch.where(mask, hr, torch.full_like(hr, float("nan")))
    got = {}

    def masked_mse(a, b, mask):
        got["shapes"] = (a.shape, b.shape, mask.shape)
        m = mask.expand_as(a)
        return ((a - b)[m] ** 2).mean()

    oracle = _Oracle(torch.zeros(1, 2))
    loss = shift_corrected_loss(sr, hr_nan, oracle, masked_mse, mask=mask, border=2)
    assert got["shapes"] == ((1, 2, 12, 12), (1, 2, 12, 12), (1, 1, 12, 12))
    torch.testing.assert_close(loss, torch.tensor(1e-4), rtol=1e-3, atol=0)
    reference_seen, moving_seen = oracle.seen[0]
    assert torch.isfinite(reference_seen).all() and not moving_seen.requires_grad
    with pytest.raises(ValueError, match="border"):
        shift_corrected_loss(sr, hr, oracle, masked_mse, border=8)
    with pytest.raises(ValueError, match="bool"):
        shift_corrected_loss(sr, hr, oracle, masked_mse, mask=mask.float())
    with pytest.raises(ValueError, match="same shape"):
        shift_corrected_loss(sr[..., :8], hr, oracle, masked_mse)


# --------------------------------------------------------------------------------------------------------
# RAMS
# --------------------------------------------------------------------------------------------------------


def test_masked_mean_matches_numpy(gen):
    lr = torch.randn(4, 5, 3, 4, 6, generator=gen, dtype=torch.float64)
    mask = torch.tensor([[1, 0, 0, 0, 0], [1, 1, 0, 1, 0], [0, 1, 1, 1, 1], [1] * 5], dtype=torch.bool)
    lr_nan = torch.where(mask[:, :, None, None, None], lr, torch.full_like(lr, float("nan")))
    want = np_masked(lr, mask, np.mean)
    np.testing.assert_allclose(masked_mean(lr_nan, mask).numpy(), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "t,num_frames,c,scale,out_channels",
    [(1, 1, 1, 2, None), (3, 5, 4, 3, 2), (5, 5, 10, 4, None), (8, 9, 4, 2, None)],
)
def test_rams_untrained_is_bicubic_of_masked_mean(t, num_frames, c, scale, out_channels, gen):
    model = RAMS(c, out_channels, scale=scale, num_frames=num_frames, **TINY_RAMS)
    lr = torch.rand(2, t, c, 7, 9, generator=gen)
    mask = torch.rand(2, t, generator=gen) > 0.4
    mask[:, -1] = True
    sr = model(lr, mask)
    oc = out_channels or c
    assert sr.shape == (2, oc, 7 * scale, 9 * scale)
    torch.testing.assert_close(sr, bicubic_upsample(masked_mean(lr, mask), scale, oc), rtol=0, atol=0)


def test_rams_unusable_and_missing_frames(gen):
    model = randomize_(RAMS(3, scale=2, num_frames=5, **TINY_RAMS), gen)
    lr = torch.rand(2, 5, 3, 8, 7, generator=gen)
    mask = torch.tensor([[1, 0, 1, 1, 0], [0, 1, 1, 0, 1]], dtype=torch.bool)
    sr = model(lr, mask)
    other = lr.clone()
    other[~mask] = float("nan")
    assert torch.equal(model(other, mask), sr)
    other = lr.clone()
    other[0, 2] += 0.5  # a usable frame matters
    assert not torch.allclose(model(other, mask)[0], sr[0])
    # Missing frames (T < num_frames) == the masked mean appended as frames (valid or not: same mean).
    short = lr[:, :3]
    mean = masked_mean(short)
    padded = torch.cat([short, mean[:, None], mean[:, None]], dim=1)
    torch.testing.assert_close(model(short), model(padded), rtol=0, atol=1e-6)
    invalid_tail = torch.tensor([[1, 1, 1, 0, 0]] * 2)
    torch.testing.assert_close(model(short), model(padded, invalid_tail), rtol=0, atol=1e-6)


def test_rams_batch_consistency(gen):
    model = randomize_(RAMS(2, scale=3, num_frames=4, **TINY_RAMS), gen)
    lr = torch.rand(3, 4, 2, 6, 5, generator=gen)
    mask = torch.tensor([[1, 1, 1, 1], [0, 1, 0, 1], [1, 0, 0, 0]], dtype=torch.bool)
    whole = model(lr, mask)
    parts = torch.cat([model(lr[i : i + 1], mask[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(whole, parts, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("num_frames,scale,num_blocks", [(1, 2, 1), (3, 3, 1), (4, 4, 0), (5, 2, 2)])
def test_rams_receptive_field_exact(num_frames, scale, num_blocks, gen):
    model = randomize_(
        RAMS(2, scale=scale, num_features=8, num_blocks=num_blocks, num_frames=num_frames, reduction=2), gen
    )
    assert model.receptive_field == 2 * (2 * num_blocks + 3 * (num_frames // 2) + 3) + 1
    size = model.receptive_field + 4
    lr = torch.rand(1, num_frames, 2, size, size, generator=gen)
    mask = torch.ones(1, num_frames, dtype=torch.bool)
    mask[0, 0] = num_frames == 1
    assert_receptive_field(model, lr, scale, mask=mask)


def test_rams_global_attention_is_global(gen):
    model = randomize_(RAMS(1, scale=2, num_frames=3, attention="global", **TINY_RAMS), gen)
    assert model.receptive_field is None
    lr = torch.rand(1, 3, 1, 30, 30, generator=gen)
    with pytest.raises(AssertionError, match="border"):
        lr_support_radius(model, lr, 2)


def test_rams_bad_arguments():
    with pytest.raises(ValueError, match="scale"):
        RAMS(2, scale=5)
    with pytest.raises(ValueError, match="num_frames"):
        RAMS(2, num_frames=0)
    with pytest.raises(ValueError, match="attention"):
        RAMS(2, attention="spatial")
    with pytest.raises(ValueError, match="reduction"):
        RAMS(2, reduction=0)
    with pytest.raises(ValueError, match="out_channels"):
        RAMS(2, out_channels=4)
    model = RAMS(2, scale=2, num_frames=3, **TINY_RAMS)
    with pytest.raises(ValueError, match="num_frames = 3"):
        model(torch.zeros(1, 4, 2, 6, 6))
    with pytest.raises(ValueError, match=r"sample\(s\) \[1\]"):
        model(torch.zeros(2, 3, 2, 6, 6), torch.tensor([[1, 0, 0], [0, 0, 0]], dtype=torch.bool))


def test_rams_onnx_parity_with_mask(gen, tmp_path):
    model = randomize_(RAMS(2, scale=2, num_frames=3, **TINY_RAMS), gen).eval()
    example = (torch.rand(1, 3, 2, 10, 10, generator=gen), torch.ones(1, 3))
    dyn = {
        "lr": {0: "batch", 3: "height", 4: "width"},
        "mask": {0: "batch"},
        "sr": {0: "batch", 2: "sr_height", 3: "sr_width"},
    }
    path = export_onnx(model, tmp_path / "rams.onnx", example, input_names=("lr", "mask"), dynamic_dims=dyn)
    lr = torch.rand(2, 3, 2, 11, 9, generator=gen)
    mask = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    assert check_onnx_parity(model, path, (lr, mask), input_names=("lr", "mask")) <= 1e-4


def test_registry_names():
    assert isinstance(get_arch("highresnet", in_channels=2, scale=2, **TINY_HRN), HighResNet)
    assert isinstance(get_arch("RAMS", in_channels=2, scale=2, num_frames=3, **TINY_RAMS), RAMS)
