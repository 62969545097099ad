"""Training pipeline: config validation, Wald patch sampling, loop (resume == uninterrupted), export, Wald evaluation.

Runs on the bundled real sample (no ../shared needed): the crop's left and right halves stand in for a
training and a validation region.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_core.bands import BANDS_10M, BANDS_20M
from sr_core.io import SAMPLE_ID, sample_scene_path
from sr_core.degradation import degrade
from sr_core.training.config import TrainConfig
from sr_core.datasets.patches import PatchSampler, Region, SceneTensors, load_scene_tensors, wald_scene_input
from sr_core.training.loop import Trainer, band_statistics, train
from sr_core.evaluation.wald import summarize, wald_evaluate

ROOT = str(sample_scene_path().parent)


def tiny_config(tmp_path, **over) -> dict:
    cfg = {
        "seed": 3,
        "out_dir": str(tmp_path / "run"),
        "log_every": 2,
        "val_every": 4,
        "ckpt_every": 2,
        "val_crop": 64,
        "model": {"name": "t", "arch": "s2fast", "arch_kwargs": {"in_channels": 10, "scale": 2, "num_features": 8,
                                                                   "num_blocks": 1}},
        "data": {
            "root": ROOT,
            "train": [{"scene": SAMPLE_ID, "y0": 0, "y1": 256, "x0": 0, "x1": 128}],
            "val": [{"scene": SAMPLE_ID, "y0": 0, "y1": 128, "x0": 128, "x1": 256}],
            "patch": 32,
            "batch_size": 2,
            "degradation": {"max_phase": 0.1, "noise_std_range": [0.0, 0.001]},
        },
        "stages": [{"name": "a", "steps": 4, "lr": 1e-3, "warmup": 1, "losses": {"l1": 1.0, "consistency": 0.1}},
                   {"name": "b", "steps": 2, "lr": 1e-4, "warmup": 1, "losses": {"l1": 1.0, "ssim": 0.1}}],
    }
    for k, v in over.items():
        cfg[k] = v
    return cfg


def test_config_rejects_unknown_keys_and_mismatches(tmp_path):
    with pytest.raises(ValueError, match="unknown top-level config keys"):
        TrainConfig.from_dict({**tiny_config(tmp_path), "lr": 1})
    bad = tiny_config(tmp_path)
    bad["stages"] = [{"name": "a", "steps": 1, "losses": {"l1": 1.0, "perceptul": 1.0}}]
    with pytest.raises(ValueError, match="unknown loss terms"):
        TrainConfig.from_dict(bad)
    bad = tiny_config(tmp_path)
    bad["data"] = {**bad["data"], "task": "x3"}
    with pytest.raises(ValueError, match="data.task"):
        TrainConfig.from_dict(bad)
    bad = tiny_config(tmp_path)
    bad["model"] = {**bad["model"], "bands": ["B02", "B03", "B04", "B08"]}
    with pytest.raises(ValueError, match="do not fit data.task"):
        TrainConfig.from_dict(bad)
    with pytest.raises(ValueError, match="multiple of 4"):
        Region("x", 0, 10, 0, 8)


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


def test_untrained_model_is_bicubic_under_wald():
    from sr_core.archs import get_arch

    scene = load_scene_tensors(ROOT, Region(SAMPLE_ID, 0, 128, 0, 128))
    net = get_arch("s2fast", in_channels=10, scale=2, num_features=8, num_blocks=1).eval()
    rows = wald_evaluate(net, [scene], margin=net.receptive_field // 2)
    g10 = [r["gain_db"] for r in rows if r["band"] in BANDS_10M]
    assert len(rows) == 10 and max(abs(x) for x in g10) < 1e-5  # 10 m bands: SR == bicubic exactly
    # 20 m bands: bicubic of the replicated 40 m input, mapped back by the MTF, is a (weaker) baseline than
    # bicubic of the native 40 m grid: the untrained model must not beat it
    assert all(r["gain_db"] < 0 for r in rows if r["band"] in BANDS_20M)
    summ = summarize(rows)
    assert summ["mtf_gaussian/10m/mean_gain_db"] == pytest.approx(np.mean(g10))


def test_x4_task_batches_and_evaluation():
    scene = load_scene_tensors(ROOT, Region(SAMPLE_ID, 0, 128, 0, 128))
    s = PatchSampler([scene], patch=32, batch_size=2, generator=torch.Generator().manual_seed(0),
                     random_degradation=False, task="x4_rgbn")
    b = s.batch()
    assert b.lr.shape == (2, 4, 8, 8) and b.hr20 is None
    torch.testing.assert_close(b.lr, degrade(b.hr10, 4, bands=list(BANDS_10M)))
    w = wald_scene_input(scene, task="x4_rgbn")
    assert w.lr.shape == (1, 4, 32, 32)


def test_resume_equals_uninterrupted_and_export(tmp_path):
    cfg_a = TrainConfig.from_dict(tiny_config(tmp_path / "a"))
    tr_a = train(cfg_a, progress=False, log=None)
    assert tr_a.last_run["finished"] and tr_a.global_step == 6
    cfg_b = TrainConfig.from_dict(tiny_config(tmp_path / "b"))
    tr_b = train(cfg_b, progress=False, log=None, max_steps=3)
    assert not tr_b.last_run["finished"] and tr_b.global_step == 3
    tr_b = train(cfg_b, progress=False, log=None, resume=True)
    assert tr_b.global_step == 6
    for (k, va), (_, vb) in zip(tr_a.model.state_dict().items(), tr_b.model.state_dict().items()):
        torch.testing.assert_close(va, vb, rtol=0, atol=0, msg=k)
    log = (tmp_path / "a" / "run" / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,stage,lr") and len(log) == 1 + 3
    # export: a package both engines load, with the card's contract
    from sr_core.models import load_card, load_predictor

    card = tr_a.export(tmp_path / "pkg", checkpoint="last.pt")
    assert load_card(tmp_path / "pkg").sha256 == card.sha256
    assert card.training["steps"] == 6 and card.mean == pytest.approx(band_statistics(tr_a.train_scenes)[0])
    x = np.random.default_rng(0).uniform(0, 0.4, (1, 10, 24, 20)).astype(np.float32)
    onnx, tch = load_predictor(tmp_path / "pkg"), load_predictor(tmp_path / "pkg", engine="torch")
    assert np.abs(onnx(x) - tch(x)).max() < 1e-4
    assert onnx(x).shape == (1, 10, 48, 40)


def test_gan_colour_and_dynamic_weighting_stage_runs(tmp_path):
    cfg = tiny_config(tmp_path, stages=[{
        "name": "gan", "steps": 3, "lr": 1e-4, "warmup": 1,
        "losses": {"l1": 1.0, "gan": 0.01, "colour": 0.1}, "gan": {"num_features": 4},
        "dynamic_weighting": {"gan": 0.01}, "epoch_steps": 2}])
    tr = train(TrainConfig.from_dict(cfg), progress=False, log=None)
    assert "disc" in tr.extra and "colour_head" in tr.extra and tr.global_step == 3
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())


def test_mismatching_arch_is_rejected(tmp_path):
    cfg = tiny_config(tmp_path)
    cfg["model"] = {**cfg["model"], "arch_kwargs": {"in_channels": 10, "scale": 3, "num_features": 8, "num_blocks": 1}}
    with pytest.raises(ValueError, match="scale=2"):
        Trainer(TrainConfig.from_dict(cfg), progress=False)


def test_warm_start_trainable_prefixes_and_frozen_band_rows(tmp_path):
    # stage 1: a tiny run; stage 2 warm-starts from it, validates the start first, and trains only the tail rows
    # of the 20 m bands: the 10 m outputs stay bit-identical, the 20 m outputs change
    tr1 = train(TrainConfig.from_dict(tiny_config(tmp_path / "a")), progress=False, log=None)
    ckpt = tmp_path / "a" / "run" / "last.pt"
    cfg2 = tiny_config(tmp_path / "b", init_from=str(ckpt), stages=[{
        "name": "tail20", "steps": 3, "lr": 1e-2, "warmup": 1, "losses": {"l1": 1.0, "consistency": 1.0},
        "trainable": ["net.tail"], "freeze_bands": list(BANDS_10M)}])
    tr2 = train(TrainConfig.from_dict(cfg2), progress=False, log=None)
    log = (tmp_path / "b" / "run" / "log.csv").read_text().splitlines()
    assert log[1].startswith("0,init,")  # the warm start was validated before any step
    x = torch.rand(1, 10, 20, 20, generator=torch.Generator().manual_seed(0)) * 0.3
    with torch.no_grad():
        a, b = tr1.model.eval()(x), tr2.model.eval()(x)
    torch.testing.assert_close(a[:, :4], b[:, :4], rtol=0, atol=0)
    assert (a[:, 4:] - b[:, 4:]).abs().max() > 1e-6
    sd1, sd2 = tr1.model.state_dict(), tr2.model.state_dict()
    changed = [k for k in sd1 if not torch.equal(sd1[k], sd2[k])]
    assert changed and all(k.startswith("net.tail") for k in changed)
    with pytest.raises(ValueError, match="match no parameter"):
        train(TrainConfig.from_dict(tiny_config(tmp_path / "c", stages=[{
            "name": "x", "steps": 1, "trainable": ["net.nope"]}])), progress=False, log=None)
    with pytest.raises(ValueError, match="freeze_bands needs trainable"):
        train(TrainConfig.from_dict(tiny_config(tmp_path / "d", stages=[{
            "name": "x", "steps": 1, "freeze_bands": ["B02"]}])), progress=False, log=None)
