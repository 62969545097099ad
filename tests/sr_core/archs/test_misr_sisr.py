"""``misr_sisr`` (sr_core/archs/misr_sisr.py): a multi-image residual over a single-image network on the anchor,
its training with a frozen single-image package, and the exported package against that single-image model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.sr_core.archs.arch_utils import assert_receptive_field

from sr_core.archs import get_arch
from sr_core.projection.layer import consistency_projection

MTF4 = [0.26, 0.28, 0.24, 0.26]
SISR_KW = {"in_channels": 10, "scale": 2, "num_features": 6, "num_blocks": 1, "project_mtf": MTF4,
           "project_lambda": 0.1, "project_taps": 2}


def _net(gen, *, randomise: bool = False, **kw):
    args = {"in_channels": 10, "num_features": 6, "num_blocks": 1, "sisr_kwargs": SISR_KW, "project_mtf": MTF4,
            "project_taps": 2}
    args.update(kw)
    net = get_arch("misr_sisr", **args).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            if randomise or p.ndim > 1 and p is not net.decoder[4].weight:
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.2)
    return net


def test_untrained_is_exactly_the_single_image_network_on_the_anchor(gen):
    net = _net(gen)
    lr = torch.rand(2, 5, 10, 12, 12, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(net(lr), net.sisr(lr[:, 0]), rtol=0, atol=0)


def test_without_a_usable_revisit_the_output_is_exactly_the_single_image_network(gen):
    net = _net(gen, randomise=True)
    lr = torch.rand(2, 4, 10, 12, 12, generator=gen, dtype=torch.float64)
    mask = torch.tensor([[True, False, False, False], [True, True, False, False]])
    with torch.no_grad():
        out = net(lr, mask)
        base = net.sisr(lr[:, 0])
        torch.testing.assert_close(out[0], base[0], rtol=0, atol=0)  # only the anchor usable
        torch.testing.assert_close(net(lr[:, :1]), base, rtol=0, atol=0)  # a single frame
        assert float((out[1] - base[1]).abs().max()) > 1e-6  # one usable revisit: fused


def test_residual_is_projected_and_the_other_bands_are_the_single_image_output(gen):
    net = _net(gen, randomise=True)
    lr = torch.rand(1, 3, 10, 14, 14, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        sr = net(lr)
        base = net.sisr(lr[:, 0])
        net.projection = None  # the raw residual: same layers, projection switched off
        raw = net(lr)[:, :4] - base[:, :4]
    torch.testing.assert_close(sr[:, 4:], base[:, 4:], rtol=0, atol=0)
    want = consistency_projection(raw, torch.zeros_like(lr[:, 0, :4]), mtf=MTF4, ratio=2, lam=0.1, taps=2)
    # the module's filters are stored in float32, the function's are float64
    torch.testing.assert_close(sr[:, :4] - base[:, :4], want, rtol=0, atol=1e-5 * float(raw.abs().max()))
    assert float((sr[:, :4] - base[:, :4]).abs().max()) > 1e-6  # the randomised fusion does add something


def test_receptive_field_is_exact(gen):
    net = _net(gen, randomise=True)
    r_sisr = (net.sisr.receptive_field - 1) // 2
    assert net.receptive_field == 2 * (max(r_sisr, 2 * 1 + 2) + 3 + net.projection.radius) + 1
    size = net.receptive_field + 4
    assert_receptive_field(net, torch.rand(1, 3, 10, size, size, generator=gen, dtype=torch.float64), 2)


def test_unusable_revisits_never_reach_the_output_and_the_anchor_must_be_usable(gen):
    net = _net(gen, randomise=True)
    lr = torch.rand(1, 4, 10, 10, 10, generator=gen, dtype=torch.float64)
    mask = torch.tensor([[True, False, True, False]])
    bad = lr.clone()
    bad[:, 1] = torch.nan
    bad[:, 3] = 1e6
    with torch.no_grad():
        torch.testing.assert_close(net(bad, mask), net(lr[:, [0, 2]]), rtol=1e-12, atol=1e-12)
        # the revisits' copies of the bands beyond fuse_channels are not read
        other = lr.clone()
        other[:, 1:, 4:] = torch.rand(1, 3, 6, 10, 10, generator=gen, dtype=torch.float64)
        torch.testing.assert_close(net(other), net(lr), rtol=0, atol=0)
    with pytest.raises(ValueError, match="anchor"):
        net(lr, torch.tensor([[False, True, True, True]]))


def test_gradcheck_float64(gen):
    net = _net(gen, randomise=True)
    lr = torch.rand(1, 2, 10, 6, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: net(x), (lr,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("kw, match", [
    ({"fuse_channels": 11}, "fuse_channels"),
    ({"project_mtf": [0.3, 0.3]}, "project_mtf"),
    ({"sisr_kwargs": {**SISR_KW, "in_channels": 4}}, "single-image network takes 4"),
    ({"sisr_kwargs": {**SISR_KW, "scale": 4}}, "scale"),
    ({"sisr_arch": ""}, "sisr_arch"),
])
def test_bad_arguments(gen, kw, match):
    with pytest.raises(ValueError, match=match):
        _net(gen, **kw)


def _sisr_package(folder: Path) -> Path:
    """A random 10-band s2fast package with the default model's 20 m post-processing on its card."""
    from udf.testing import make_package

    kw = {k: v for k, v in SISR_KW.items() if k not in ("in_channels", "scale")}
    make_package(folder, arch="s2fast", arch_kwargs=kw, seed=3,
                 postprocess={"coarse_projection": {"bands": ["B05", "B06", "B07", "B8A", "B11", "B12"], "factor": 2,
                                                    "lam": 0.02, "taps": 2}})
    return folder


def test_training_keeps_the_single_image_part_frozen_and_the_package_matches_it(shared_s2, tmp_path):
    from sr_core.models import load_misr_predictor
    from sr_core.training.misr import MISRTrainConfig, train_misr
    from sr_core.models import load_predictor, load_torch_model

    sisr_dir = _sisr_package(tmp_path / "tiny-s2fast")
    bands = ["B02", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12"]
    sk = {k: v for k, v in load_torch_model(sisr_dir)[1].arch_kwargs.items()}
    kw = {"in_channels": 10, "scale": 2, "num_features": 6, "num_blocks": 1, "sisr_arch": "s2fast",
          "sisr_kwargs": sk, "project_mtf": MTF4, "project_taps": 2}
    scene = {"scene": "S2A_MSIL1C_20170527_T33UUB", "y0": 344, "y1": 408, "x0": 344, "x1": 408}
    data = {"model": {"name": "tiny-misr-sisr", "arch": "misr_sisr", "arch_kwargs": kw, "bands": bands,
                      "sisr_from": str(sisr_dir)},
            "data": {"root": str(shared_s2), "train": [{**scene, "y0": 0, "y1": 64, "x0": 0, "x1": 64}],
                     "val": [scene], "patch": 16, "batch_size": 2, "frames": 3, "val_patch": 32, "val_stacks": 1,
                     "stack": {"cloud_prob": 0.5, "noise_std_range": [0.0, 0.002]}, "min_structure": 0.0},
            "stages": [{"name": "a", "steps": 3, "warmup": 1, "lr": 1e-2, "losses": {"cl1": 1.0}}],
            "out_dir": str(tmp_path / "run"), "log_every": 1, "val_every": 3, "ckpt_every": 1}
    sisr_model, sisr_card = load_torch_model(sisr_dir)
    tr = train_misr(MISRTrainConfig.from_dict(data), progress=False, log=None)
    assert tr.last_run["finished"] and tr.mean == list(sisr_card.mean)
    for k, v in sisr_model.net.state_dict().items():  # frozen: bit-identical after training
        torch.testing.assert_close(tr.model.net.sisr.state_dict()[k], v, rtol=0, atol=0)
    assert float(tr.model.net.decoder[4].weight.detach().abs().max()) > 0  # the fusion did train
    # a warm start is validated at step 0 (best.pt is never worse than the start)
    warm = dict(data, init_from=str(tmp_path / "run" / "last.pt"), out_dir=str(tmp_path / "warm"),
                stages=[{**data["stages"][0], "steps": 1}])
    tw = train_misr(MISRTrainConfig.from_dict(warm), progress=False, log=None)
    first = (tmp_path / "warm" / "log.csv").read_text().splitlines()[1].split(",")
    assert first[0] == "0" and (tmp_path / "warm" / "best.pt").is_file() and math.isfinite(tw.best_score)
    card = tr.export(tmp_path / "pkg", checkpoint="last.pt")
    assert card.bands == bands and card.out_bands == bands and card.postprocess == sisr_card.postprocess
    assert card.training["sisr_from"]["name"] == sisr_card.name
    misr_t = load_misr_predictor(tmp_path / "pkg", engine="torch")
    misr_o = load_misr_predictor(tmp_path / "pkg", engine="onnx")
    sisr = load_predictor(sisr_dir, engine="torch")
    assert misr_t.margin >= sisr.margin
    rng = np.random.default_rng(0)
    x = rng.uniform(0.02, 0.3, size=(1, 3, 10, 20, 20)).astype(np.float32)
    x[..., 4:, :, :] = x[..., 4:, ::2, ::2].repeat(2, -2).repeat(2, -1)  # 20 m bands replicated 2 x 2
    m = np.array([[True, True, False]])
    ya, yb, ys = misr_t(x, m), misr_o(x, m), sisr(x[:, 0])
    assert ya.shape == (1, 10, 40, 40) and np.abs(ya - yb).max() < 1e-5
    # the 20 m bands are the single-image model's output, post-processing included
    np.testing.assert_allclose(ya[:, 4:], ys[:, 4:], rtol=0, atol=1e-6)
    assert np.abs(ya[:, :4] - ys[:, :4]).max() > 1e-6
