"""Wald-protocol data (sr_core.datasets.patches): patch sampling (nodata, flat patches, radiometry,
reproducibility), the x4 task's batches, scene specs and central crops, on the bundled real sample."""

from __future__ import annotations

import pytest
import torch

from sr_core.bands import BANDS_10M, BANDS_20M
from sr_core.datasets.patches import (
    PatchSampler,
    Region,
    SceneTensors,
    band_statistics,
    crop_window,
    load_scene_tensors,
    parse_scene_spec,
    rgbn_scale,
    wald_scene_input,
)
from sr_core.degradation import degrade
from sr_core.io import SAMPLE_ID, sample_scene_path

ROOT = str(sample_scene_path().parent)


def test_patch_sampler_skips_nodata_and_flat_and_keeps_radiometry():
    scene = load_scene_tensors(ROOT, SAMPLE_ID)
    flat = SceneTensors("flat", "L1C", torch.full((4, 64, 64), 0.1), torch.full((6, 32, 32), 0.2))
    holed = SceneTensors("holed", "L1C", scene.hr10[:, :64, :64].clone(), scene.hr20[:, :32, :32].clone())
    holed.hr10[:, 10:50, 10:50] = float("nan")
    g = torch.Generator().manual_seed(0)
    s = PatchSampler([flat, holed, scene], patch=32, batch_size=8, generator=g, random_degradation=False)
    b = s.batch()
    assert torch.isfinite(b.hr10).all() and torch.isfinite(b.lr).all()
    # the flat scene is never chosen: every patch has structure
    assert all(float(b.hr10[i].std()) > 0 for i in range(8))
    # flips/rotations keep the values (radiometry): each patch's sorted values are those of some crop of the scene
    assert b.hr10.min() >= scene.hr10.min() and b.hr10.max() <= scene.hr10.max()
    # Wald input: 10 m bands degraded by 2, 20 m bands degraded by 2 and replicated
    torch.testing.assert_close(b.lr[:, :4], degrade(b.hr10, 2, bands=list(BANDS_10M)))
    lr40 = degrade(b.hr20, 2, bands=list(BANDS_20M))
    torch.testing.assert_close(b.lr[:, 4:, ::2, ::2], lr40)
    torch.testing.assert_close(b.lr[:, 4:, 1::2, 1::2], lr40)
    with pytest.raises(RuntimeError, match="non-flat"):
        PatchSampler([flat], patch=32, batch_size=1, generator=g).batch()


def test_patch_sampler_is_reproducible():
    scene = load_scene_tensors(ROOT, SAMPLE_ID)
    a = PatchSampler([scene], patch=32, batch_size=3, generator=torch.Generator().manual_seed(5)).batch()
    b = PatchSampler([scene], patch=32, batch_size=3, generator=torch.Generator().manual_seed(5)).batch()
    c = PatchSampler([scene], patch=32, batch_size=3, generator=torch.Generator().manual_seed(6)).batch()
    torch.testing.assert_close(a.lr, b.lr, rtol=0, atol=0)
    assert not torch.equal(a.lr, c.lr)


def test_x4_task_batches_and_evaluation():
    scene = load_scene_tensors(ROOT, Region(SAMPLE_ID, 0, 128, 0, 128))
    s = PatchSampler([scene], patch=32, batch_size=2, generator=torch.Generator().manual_seed(0),
                     random_degradation=False, task="x4_rgbn")
    b = s.batch()
    assert b.lr.shape == (2, 4, 8, 8) and b.hr20 is None
    torch.testing.assert_close(b.lr, degrade(b.hr10, 4, bands=list(BANDS_10M)))
    w = wald_scene_input(scene, task="x4_rgbn")
    assert w.lr.shape == (1, 4, 32, 32)


def test_x2_rgbn_task_batches_statistics_and_evaluation():
    scene = load_scene_tensors(ROOT, Region(SAMPLE_ID, 0, 128, 0, 128))
    s = PatchSampler([scene], patch=32, batch_size=2, generator=torch.Generator().manual_seed(0),
                     random_degradation=False, task="x2_rgbn")
    b = s.batch()
    assert b.lr.shape == (2, 4, 16, 16) and b.hr10.shape == (2, 4, 32, 32) and b.hr20 is None and b.lr40 is None
    torch.testing.assert_close(b.lr, degrade(b.hr10, 2, bands=list(BANDS_10M)), rtol=0, atol=0)
    r = PatchSampler([scene], patch=32, batch_size=2, generator=torch.Generator().manual_seed(0), task="x2_rgbn")
    assert r.batch().lr.shape == (2, 4, 16, 16)
    w = wald_scene_input(scene, task="x2_rgbn")
    assert w.lr.shape == (1, 4, 64, 64) and w.hr20 is None
    torch.testing.assert_close(w.lr, degrade(scene.hr10[None], 2, bands=list(BANDS_10M)), rtol=0, atol=0)
    means, stds = band_statistics([scene], "x2_rgbn")
    assert len(means) == len(stds) == 4
    assert means == band_statistics([scene], "x2_10band")[0][:4]
    assert (rgbn_scale("x2_rgbn"), rgbn_scale("x4_rgbn"), rgbn_scale("x2_10band")) == (2, 4, None)
    with pytest.raises(ValueError, match="x2_rgbn"):
        PatchSampler([scene], patch=32, generator=torch.Generator(), task="x3_rgbn")


def test_parse_scene_spec():
    assert parse_scene_spec("S2X") == "S2X"
    assert parse_scene_spec("S2X[344:600,344:600]") == Region("S2X", 344, 600, 344, 600)
    assert parse_scene_spec({"scene": "a/b", "y0": 0, "y1": 8, "x0": 4, "x1": 12}) == Region("a/b", 0, 8, 4, 12)
    with pytest.raises(ValueError, match="window"):
        parse_scene_spec("S2X[1:2]")
    with pytest.raises(ValueError, match="multiple of 4"):
        parse_scene_spec("S2X[2:8,0:8]")


def test_crop_window_is_central_and_nests_the_grids():
    assert crop_window(30, 22, None) == (0, 28, 0, 20)
    y0, y1, x0, x1 = crop_window(100, 64, 40)
    assert (y1 - y0, x1 - x0) == (40, 40) and y0 == 28 and x0 == 12
    assert all(v % 4 == 0 for v in (y0, y1, x0, x1))


def test_flat_fraction_gives_flat_fields_with_a_real_spectrum():
    scene = load_scene_tensors(ROOT, SAMPLE_ID)
    g = torch.Generator().manual_seed(0)
    s = PatchSampler([scene], patch=32, batch_size=32, generator=g, random_degradation=False, flat_fraction=0.5)
    b = s.batch()
    flat = [i for i in range(32) if bool((b.hr20[i] == b.hr20[i, :, :1, :1]).all())]
    assert 8 <= len(flat) <= 24  # about half
    for i in flat:
        assert bool((b.hr10[i] == b.hr10[i, :, :1, :1]).all())  # every band constant
        # the 20 m spectrum is one pixel of the scene, the 10 m one the mean of its 2 x 2 pixels
        hit = (scene.hr20 == b.hr20[i, :, :1, :1]).all(0).nonzero()
        assert len(hit) >= 1
        y, x = (int(v) for v in hit[0])
        torch.testing.assert_close(b.hr10[i, :, 0, 0], scene.hr10[:, 2 * y : 2 * y + 2, 2 * x : 2 * x + 2].mean((-2, -1)))
        # degraded without noise a flat field stays flat: the Wald input is the same constant
        torch.testing.assert_close(b.lr[i, 4:], b.hr20[i, :, :1, :1].expand_as(b.lr[i, 4:]), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="flat_fraction"):
        PatchSampler([scene], patch=32, generator=g, flat_fraction=1.0)


def test_max_phase_20m_moves_the_20m_group_alone():
    scene = load_scene_tensors(ROOT, SAMPLE_ID)
    kw = dict(kernels=["gaussian"], max_phase=0.0, noise_std_range=[0.0, 0.0])
    a = PatchSampler([scene], patch=32, batch_size=4, generator=torch.Generator().manual_seed(5),
                     degradation_kwargs={**kw, "max_phase_20m": 0.0}).batch()
    b = PatchSampler([scene], patch=32, batch_size=4, generator=torch.Generator().manual_seed(5),
                     degradation_kwargs={**kw, "max_phase_20m": 0.4}).batch()
    torch.testing.assert_close(a.hr10, b.hr10, rtol=0, atol=0)  # the same crops
    torch.testing.assert_close(a.lr10, b.lr10, rtol=0, atol=0)  # the 10 m group is not moved
    assert float((a.lr40 - b.lr40).abs().max()) > 1e-3  # the 20 m group is


def test_sharpen_task_batches_and_evaluation():
    from sr_core.archs import get_arch
    from sr_core.evaluation.wald import wald_evaluate

    scene = load_scene_tensors(ROOT, SAMPLE_ID)
    assert rgbn_scale("sharpen_20m") is None
    g = torch.Generator().manual_seed(0)
    b = PatchSampler([scene], patch=32, batch_size=2, generator=g, task="sharpen_20m").batch()
    assert b.lr.shape == (2, 10, 16, 16) and b.hr20.shape == (2, 6, 16, 16)  # input and target on one grid
    net = get_arch("s2sharpen", in_channels=10, num_features=4, num_blocks=1).eval()  # untrained: bicubic
    rows = wald_evaluate(net, [scene], task="sharpen_20m", crop=64)
    assert [r["band"] for r in rows] == list(BANDS_20M)  # only the sharpened bands are scored
    assert all(abs(r["gain_db"]) < 1e-4 for r in rows)  # scored directly against the 20 m truth, like bicubic
