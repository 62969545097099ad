"""Single-image SR networks: CARN, EDSR, RRDBNet (ESRGAN), SRResNet, S2Fast.

Values, not just shapes: untrained == bicubic, exact receptive field by impulse response, batch
independence, closed-form parameter counts, ONNX Runtime parity at two spatial sizes.
"""

from __future__ import annotations

import math

import pytest
import torch

from tests.sr_core.archs.arch_utils import assert_receptive_field
from sr_core.archs._common import bicubic_upsample
from sr_core.archs._upsample import receptive_field_from_ops
from sr_core.archs.carn import CARN
from sr_core.archs.edsr import EDSR
from sr_core.archs.rrdbnet import RRDBNet
from sr_core.archs.s2fast import S2Fast
from sr_core.archs.srresnet import SRResNet
from sr_core.models.export import check_onnx_parity, export_onnx

CLASSES = {"carn": CARN, "edsr": EDSR, "rrdbnet": RRDBNet, "srresnet": SRResNet, "s2fast": S2Fast}
# Tiny default configuration per architecture.
TINY = {
    "carn": dict(num_features=8, num_blocks=2, num_units=2),
    "edsr": dict(num_features=8, num_blocks=2),
    "rrdbnet": dict(num_features=8, num_blocks=1, num_grow_ch=4),
    "srresnet": dict(num_features=8, num_blocks=2),
    "s2fast": dict(num_features=8, num_blocks=2),
}
SCALES = (2, 3, 4)


def expected_radius(name: str, kw: dict) -> int:
    """Closed-form LR radius of each architecture (same for every scale, see the module docstrings)."""
    if name == "carn":
        return 1 + 2 * kw["num_blocks"] * kw.get("num_units", 3) + 2
    if name == "edsr":
        return 1 + 2 * kw["num_blocks"] + 1 + 2
    if name == "rrdbnet":
        return 1 + 15 * kw["num_blocks"] + 1 + 2
    if name == "srresnet":
        return 4 + 2 * kw["num_blocks"] + 1 + 3
    if name == "s2fast":
        return 1 + 2 * kw["num_blocks"] + 1
    raise KeyError(name)


def randomize_(model: torch.nn.Module, gen: torch.Generator) -> torch.nn.Module:
    """Non-zero random weights (std 1/sqrt(fan_in)) and small random biases / PReLU slopes, in place."""
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) / math.sqrt(p[0].numel()))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv_params(cin: int, cout: int, k: int, groups: int = 1) -> int:
    return cin // groups * cout * k * k + cout


def upsampler_params(f: int, scale: int) -> int:
    return sum(conv_params(f, f * s * s, 3) for s in ((2, 2) if scale == 4 else (scale,)))


# --------------------------------------------------------------------------------------------- values


@pytest.mark.parametrize("name", sorted(CLASSES))
@pytest.mark.parametrize("bands", [4, 10, 12])
@pytest.mark.parametrize("scale", SCALES)
def test_untrained_equals_bicubic_odd_size(name, bands, scale, gen):
    model = CLASSES[name](bands, scale=scale, **TINY[name])
    lr = torch.rand(2, bands, 13, 17, generator=gen)
    with torch.no_grad():
        sr = model(lr)
    assert sr.shape == (2, bands, 13 * scale, 17 * scale)
    torch.testing.assert_close(sr, bicubic_upsample(lr, scale), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_out_channels_are_residual_over_first_bands(name, gen):
    model = randomize_(CLASSES[name](12, 10, scale=2, **TINY[name]), gen)
    lr = torch.rand(1, 12, 9, 11, generator=gen)
    with torch.no_grad():
        sr = model(lr)
        assert sr.shape == (1, 10, 18, 22)
        # zeroing the last conv of the residual branch leaves exactly bicubic of the first 10 bands
        last = {"carn": "exit", "edsr": "tail", "rrdbnet": "conv_last", "srresnet": "tail", "s2fast": "tail"}[name]
        residual = sr - bicubic_upsample(lr, 2, 10)
        assert residual.abs().max() > 1e-3  # the randomised branch participates
        for p in getattr(model, last).parameters():
            p.zero_()
        torch.testing.assert_close(model(lr), bicubic_upsample(lr[:, :10], 2), rtol=0, atol=1e-6)


RF_CONFIGS = [
    ("carn", dict(num_features=8, num_blocks=2, num_units=2)),
    ("carn", dict(num_features=8, num_blocks=1, num_units=3, groups=4, shared_weights=True)),
    ("edsr", dict(num_features=8, num_blocks=1)),
    ("edsr", dict(num_features=8, num_blocks=3, res_scale=0.5)),
    ("rrdbnet", dict(num_features=8, num_blocks=1, num_grow_ch=4)),
    ("rrdbnet", dict(num_features=4, num_blocks=2, num_grow_ch=2)),
    ("srresnet", dict(num_features=8, num_blocks=1)),
    ("srresnet", dict(num_features=6, num_blocks=3)),
    ("s2fast", dict(num_features=8, num_blocks=1)),
    ("s2fast", dict(num_features=6, num_blocks=3, res_scale=0.5)),
]


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name,kw", RF_CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(RF_CONFIGS)])
def test_receptive_field_exact(name, kw, scale, gen):
    model = randomize_(CLASSES[name](4, 3, scale=scale, **kw), gen).double()
    r = expected_radius(name, kw)
    assert model.receptive_field == 2 * r + 1
    lr = torch.rand(1, 4, 2 * r + 5, 2 * r + 7, generator=gen, dtype=torch.float64)
    assert_receptive_field(model, lr, scale)


def test_receptive_field_walk():
    # hand-derived interval walks: an HR 3x3 conv after a x s shuffle adds ceil(1/s) = 1 LR pixel
    conv3, conv9 = ("conv", 3), ("conv", 9)
    assert receptive_field_from_ops(2, [("shuffle", 2)]) == 5  # bicubic radius 2 dominates
    assert receptive_field_from_ops(3, [conv3] * 3 + [("shuffle", 3)]) == 7
    assert receptive_field_from_ops(2, [conv3] * 2 + [("shuffle", 2)] + [conv3] * 2) == 2 * 3 + 1
    assert receptive_field_from_ops(2, [conv3] * 2 + [("shuffle", 2)] + [conv3] * 3) == 2 * 4 + 1
    assert receptive_field_from_ops(3, [conv3] * 2 + [("shuffle", 3)] + [conv9]) == 2 * 4 + 1
    assert receptive_field_from_ops(4, [conv3] * 2 + [("shuffle", 2), ("shuffle", 2), conv9]) == 2 * 3 + 1
    with pytest.raises(ValueError, match="expected scale 4"):
        receptive_field_from_ops(4, [("shuffle", 2)])
    with pytest.raises(ValueError, match="bad receptive-field op"):
        receptive_field_from_ops(2, [("conv", 2), ("shuffle", 2)])


@pytest.mark.parametrize("name", sorted(CLASSES))
@pytest.mark.parametrize("scale", SCALES)
def test_batch_consistency(name, scale, gen):
    model = randomize_(CLASSES[name](4, scale=scale, **TINY[name]), gen)
    lr = torch.rand(3, 4, 13, 17, generator=gen)
    with torch.no_grad():
        whole = model(lr)
        for k in range(3):
            torch.testing.assert_close(whole[k : k + 1], model(lr[k : k + 1]), rtol=1e-5, atol=1e-5)
    assert (whole - bicubic_upsample(lr, scale)).abs().max() > 1e-3


def test_train_mode_equals_eval_mode(gen):
    # no batch norm / dropout anywhere: train and eval give identical outputs
    for name, cls in CLASSES.items():
        model = randomize_(cls(4, scale=2, **TINY[name]), gen)
        lr = torch.rand(2, 4, 8, 8, generator=gen)
        with torch.no_grad():
            a = model.train()(lr)
            b = model.eval()(lr)
        assert torch.equal(a, b), name


# --------------------------------------------------------------------------------------------- ONNX


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", sorted(CLASSES))
def test_onnx_parity_two_sizes(name, scale, gen, tmp_path):
    kw = dict(TINY[name])
    if name == "carn":
        kw.update(groups=2, shared_weights=True)
    model = randomize_(CLASSES[name](4, 3, scale=scale, **kw), gen).eval()
    path = export_onnx(model, tmp_path / f"{name}.onnx", torch.rand(1, 4, 12, 12, generator=gen))
    for shape in [(2, 4, 12, 12), (1, 4, 13, 17)]:
        lr = torch.rand(*shape, generator=gen)
        with torch.no_grad():
            assert (model(lr) - bicubic_upsample(lr, scale, 3)).abs().max() > 1e-3
        assert check_onnx_parity(model, path, lr) <= 1e-4


# --------------------------------------------------------------------------------------------- registry


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_registry_round_trip(name, gen):
    from sr_core.archs import arch_class, get_arch, list_archs

    assert name in list_archs()
    assert arch_class(name.upper()) is CLASSES[name]
    model = get_arch(name, in_channels=4, scale=3, **TINY[name])
    assert type(model) is CLASSES[name] and model.arch_name == name
    ref = CLASSES[name](4, scale=3, **TINY[name])
    ref.load_state_dict(model.state_dict())  # same parameter layout
    randomize_(model, gen)
    ref.load_state_dict(model.state_dict())
    lr = torch.rand(1, 4, 7, 9, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(model(lr), ref(lr), rtol=0, atol=0)


def test_constructors_are_silent_and_on_cpu(capsys):
    for name, cls in CLASSES.items():
        model = cls(4, scale=2, **TINY[name])
        assert all(p.device.type == "cpu" for p in model.parameters())
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


# --------------------------------------------------------------------------------------------- CARN


@pytest.mark.parametrize(
    "variant,expected",
    [
        ("carn_3x3x64g4sw", (3, 3, 64, 4, True)),
        ("carn_2x4x32g1", (2, 4, 32, 1, False)),
        ("CARN_1x2x16g8SW", (1, 2, 16, 8, True)),
    ],
)
def test_carn_from_name(variant, expected):
    model = CARN.from_name(variant, in_channels=10, scale=2)
    got = (model.num_blocks, model.num_units, model.num_features, model.groups, model.shared_weights)
    assert got == expected
    assert model.in_channels == 10 and model.out_channels == 10 and model.scale == 2
    assert model.variant_name == variant.lower()
    assert model.receptive_field == 2 * (1 + 2 * expected[0] * expected[1] + 2) + 1


@pytest.mark.parametrize(
    "bad",
    [
        "carn_3x3x64",
        "carn_3x3x64g4sws",
        "carn3x3x64g4",
        "edsr_3x3x64g4",
        "carn_3x3x64g4 ",
        "",
        "carn_axbxcgd",
        "carn_3x3x64g4_sw",
    ],
)
def test_carn_from_name_rejects_bad_names(bad):
    with pytest.raises(ValueError, match="bad CARN variant name"):
        CARN.from_name(bad, in_channels=4)


def test_carn_from_name_rejects_bad_values():
    with pytest.raises(ValueError, match="num_blocks"):
        CARN.from_name("carn_0x3x64g4", in_channels=4)
    with pytest.raises(ValueError, match="divisible by groups"):
        CARN.from_name("carn_3x3x30g4", in_channels=4)
    with pytest.raises(ValueError, match="bad CARN variant name"):
        CARN.from_name(None, in_channels=4)  # type: ignore[arg-type]


def carn_param_count(cin, cout, f, n, m, g, sw, scale):
    unit = 2 * conv_params(f, f, 3) if g == 1 else 2 * conv_params(f, f, 3, g) + conv_params(f, f, 1)
    fusions_m = sum(conv_params((k + 2) * f, f, 1) for k in range(m))
    block = (1 if sw else m) * unit + fusions_m
    fusions_n = sum(conv_params((k + 2) * f, f, 1) for k in range(n))
    head_tail = conv_params(cin, f, 3) + upsampler_params(f, scale) + conv_params(f, cout, 3)
    return head_tail + n * block + fusions_n


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("groups,sw", [(1, False), (1, True), (4, False), (4, True)])
def test_carn_param_count_closed_form(groups, sw, scale):
    kw = dict(num_features=16, num_blocks=3, num_units=3, groups=groups, shared_weights=sw)
    model = CARN(10, 8, scale=scale, **kw)
    assert n_params(model) == carn_param_count(10, 8, 16, 3, 3, groups, sw, scale)


def test_carn_sharing_and_groups_reduce_parameters():
    def count(**kw):
        return n_params(CARN(4, scale=2, num_features=16, num_blocks=2, num_units=3, **kw))

    f = 16
    plain, shared = count(), count(shared_weights=True)
    # sharing removes (m - 1) units per block, exactly
    assert plain - shared == 2 * (3 - 1) * 2 * conv_params(f, f, 3)
    grouped, grouped_shared = count(groups=4), count(groups=4, shared_weights=True)
    assert grouped < plain and grouped_shared < grouped and grouped_shared < shared
    e_unit = 2 * conv_params(f, f, 3, 4) + conv_params(f, f, 1)
    assert plain - grouped == 2 * 3 * (2 * conv_params(f, f, 3) - e_unit)


def test_carn_shared_unit_is_applied_recursively(gen):
    model = CARN(4, scale=2, num_features=8, num_blocks=2, num_units=3, groups=2, shared_weights=True)
    calls = []
    for block in model.blocks:
        assert len(block.units) == 1
        block.units[0].register_forward_hook(lambda mod, inp, out: calls.append(id(mod)))
    model(torch.rand(1, 4, 6, 6, generator=gen))
    assert len(calls) == 6 and len(set(calls)) == 2


# --------------------------------------------------------------------------------------------- EDSR


def edsr_param_count(cin, cout, f, b, scale):
    return (
        conv_params(cin, f, 3)
        + b * 2 * conv_params(f, f, 3)
        + conv_params(f, f, 3)
        + upsampler_params(f, scale)
        + conv_params(f, cout, 3)
    )


def test_edsr_baseline8_and_defaults():
    base = EDSR.baseline8(4, scale=3)
    assert (base.num_blocks, base.num_features, base.res_scale) == (8, 64, 1.0)
    assert n_params(base) == edsr_param_count(4, 4, 64, 8, 3)
    assert base.receptive_field == 2 * (2 * 8 + 4) + 1
    small = EDSR(12, 10, scale=4, num_features=8, num_blocks=5)
    assert n_params(small) == edsr_param_count(12, 10, 8, 5, 4)


def test_edsr_res_scale_scales_the_block_residual(gen):
    from sr_core.archs.edsr import ResBlock

    a, b = ResBlock(4, res_scale=1.0), ResBlock(4, res_scale=0.25)
    b.load_state_dict(randomize_(a, gen).state_dict())
    x = torch.randn(1, 4, 5, 5, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(b(x) - x, 0.25 * (a(x) - x))


# --------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", sorted(CLASSES))
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(scale=5), "scale"),
        (dict(scale=1), "scale"),
        (dict(scale=2.0), "scale"),
        (dict(in_channels=0), "in_channels"),
        (dict(out_channels=5), "out_channels"),
        (dict(out_channels=0), "out_channels"),
        (dict(num_features=0), "num_features"),
        (dict(num_blocks=0), "num_blocks"),
        (dict(num_blocks=True), "num_blocks"),
    ],
)
def test_bad_kwargs(name, kwargs, match):
    kw = dict(TINY[name], in_channels=4, scale=2)
    kw.update(kwargs)
    with pytest.raises(ValueError, match=match):
        CLASSES[name](**kw)


@pytest.mark.parametrize(
    "name,kwargs,match",
    [
        ("edsr", dict(res_scale=0.0), "res_scale"),
        ("edsr", dict(res_scale=float("nan")), "res_scale"),
        ("edsr", dict(res_scale="1"), "res_scale"),
        ("carn", dict(groups=3), "divisible by groups"),
        ("carn", dict(groups=0), "groups"),
        ("carn", dict(num_units=0), "num_units"),
        ("carn", dict(shared_weights=1), "shared_weights"),
        ("rrdbnet", dict(num_grow_ch=0), "num_grow_ch"),
    ],
)
def test_bad_arch_specific_kwargs(name, kwargs, match):
    kw = dict(TINY[name], in_channels=4)
    kw.update(kwargs)
    with pytest.raises(ValueError, match=match):
        CLASSES[name](**kw)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_forward_validates_input(name):
    model = CLASSES[name](4, scale=2, **TINY[name])
    with pytest.raises(ValueError, match="input bands"):
        model(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="4-D"):
        model(torch.zeros(4, 8, 8))


def test_s2fast_flops_closed_form():
    m = S2Fast(10, scale=2, num_features=32, num_blocks=6)
    convs = 10 * 32 + 2 * 6 * 32 * 32 + 32 * 10 * 4  # multiply-adds per LR pixel per 3x3 tap
    assert m.flops_per_lr_pixel() == 2 * 9 * convs + 2 * 25 * 10 * 4
    params = conv_params(10, 32, 3) + 6 * 2 * conv_params(32, 32, 3) + conv_params(32, 40, 3)
    assert n_params(m) == params
