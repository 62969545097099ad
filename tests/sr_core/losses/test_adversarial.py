"""RaGAN losses and the U-Net discriminator (sr_core.losses.adversarial): closed forms, independent references, gradcheck, masks, module == function."""

from __future__ import annotations

import math

import pytest
import torch

import sr_core.losses as L
from tests.sr_core.losses.images import rand

# --------------------------------------------------------------------------------------------- GAN


def test_ragan_equal_logits_give_log2_per_term():
    log2 = math.log(2.0)
    for c in (-3.0, 0.0, 2.5):
        z = torch.full((4, 1, 5, 5), c)
        assert L.ragan_discriminator_loss(z, z.clone()).item() == pytest.approx(2 * log2, rel=1e-6)
        assert L.ragan_generator_loss(z, z.clone()).item() == pytest.approx(2 * log2, rel=1e-6)
    # constant logits: only the difference matters
    r, f = torch.full((3, 1), 1.5), torch.full((3, 1), -0.5)
    assert L.ragan_discriminator_loss(r, f).item() == pytest.approx(2 * math.log1p(math.exp(-2.0)), rel=1e-6)
    assert L.ragan_generator_loss(r, f).item() == pytest.approx(2 * math.log1p(math.exp(2.0)), rel=1e-6)


def test_ragan_hand_numbers_mask_and_modules():
    real = torch.tensor([[1.0], [3.0]], dtype=torch.float64)  # E = 2
    fake = torch.tensor([[0.0], [2.0]], dtype=torch.float64)  # E = 1
    d = L.ragan_discriminator_loss(real, fake)
    g = L.ragan_generator_loss(real, fake)
    assert d.item() == pytest.approx(math.log(2) + math.log1p(math.exp(-2)), abs=1e-12)
    assert g.item() == pytest.approx(math.log(2) + math.log1p(math.exp(2)), abs=1e-12)
    # per sample: sample 0 -> softplus(0) + softplus(-2); sample 1 -> softplus(-2) + softplus(0)
    torch.testing.assert_close(
        L.ragan_discriminator_loss(real, fake, reduction="none"),
        torch.full((2,), math.log(2) + math.log1p(math.exp(-2)), dtype=torch.float64),
    )
    # masked entries (even NaN) do not count: add a third, masked sample
    real3 = torch.cat([real, torch.tensor([[float("nan")]], dtype=torch.float64)])
    fake3 = torch.cat([fake, torch.tensor([[50.0]], dtype=torch.float64)])
    mask = torch.tensor([[True], [True], [False]])
    torch.testing.assert_close(L.ragan_discriminator_loss(real3, fake3, mask=mask), d)
    torch.testing.assert_close(L.RaGANGeneratorLoss()(real3, fake3, mask), g)
    torch.testing.assert_close(
        L.RaGANDiscriminatorLoss(reduction="none")(real, fake),
        L.ragan_discriminator_loss(real, fake, reduction="none"),
    )
    with pytest.raises(ValueError, match="same shape"):
        L.ragan_generator_loss(real, fake[:1])


def test_ragan_gradients_flow_through_fake_only_for_generator(gen):
    real = rand(gen, 3, 1, 4, 4, dtype=torch.float64)
    fake = rand(gen, 3, 1, 4, 4, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f: L.ragan_generator_loss(real, f), (fake,))
    assert torch.autograd.gradcheck(lambda f: L.ragan_discriminator_loss(real, f, reduction="none"), (fake,))


def test_unet_discriminator_shapes_highpass_and_spectral_norm(gen):
    torch.manual_seed(0)
    disc = L.UNetDiscriminator(3, num_features=8)
    x = rand(gen, 2, 3, 16, 16)
    assert disc(x).shape == (2, 1, 16, 16)
    assert disc(rand(gen, 1, 3, 13, 19)).shape == (1, 1, 13, 19)
    disc.eval()
    shift = torch.tensor([0.5, -1.0, 2.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(disc(x + shift), disc(x), atol=1e-5, rtol=1e-4)
    raw = L.UNetDiscriminator(3, num_features=8, highpass=False).eval()
    assert not torch.allclose(raw(x + shift), raw(x))
    disc.train()
    with torch.no_grad():
        for _ in range(30):
            disc(x)
    w = disc.down2.weight  # spectrally normalised weight
    sv = torch.linalg.matrix_norm(w.detach().flatten(1), ord=2)
    assert sv.item() == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match="H, W >= 8"):
        disc(rand(gen, 1, 3, 6, 16))
    with pytest.raises(ValueError, match="expected"):
        disc(rand(gen, 1, 2, 16, 16))
