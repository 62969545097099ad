"""Single-image training (sr_core.training.sisr): config validation, Wald patch sampling, the stage loop (resume ==
uninterrupted), export, Wald evaluation; the task-driven terms ("dice", "task_feature", dynamic weighting,
task-aware patch selection), with the loop unchanged without them.

Runs on the bundled real sample (no ../shared needed): the crop's left and right halves stand in for a
training and a validation region.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_core.bands import BANDS_10M
from sr_core.datasets.patches import Region, WaldBatch, band_statistics
from sr_core.io import SAMPLE_ID, sample_scene_path
from sr_core.tasks.nets import TaskChannels, build_task_net, save_task_net
from sr_core.training.config import TrainConfig
from sr_core.training.sisr import Trainer, _select_batch, train
from tests.sr_core.tasks.test_scores import Edges, edge_patches

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


# ------------------------------------------------------------------------------------------- task-driven terms


@pytest.fixture
def task_net_dir(tmp_path):
    torch.manual_seed(0)
    net = build_task_net("unet", num_features=4, depth=2)
    save_task_net(net, tmp_path / "tn", tasks=("water", "vegetation", "builtup"))
    return str(tmp_path / "tn")


def _stage(losses, **kw):
    return [{"name": "t", "steps": 3, "lr": 1e-3, "warmup": 1, "losses": losses, **kw}]


def test_task_config_validation(tmp_path, task_net_dir):
    with pytest.raises(ValueError, match="need task.model"):
        TrainConfig.from_dict(tiny_config(tmp_path, stages=_stage({"l1": 1.0, "dice": 0.1})))
    with pytest.raises(ValueError, match="unknown task keys"):
        TrainConfig.from_dict(tiny_config(tmp_path, stages=_stage({"l1": 1.0}, task={"model": "x", "bogus": 1})))
    with pytest.raises(ValueError, match="task.select"):
        TrainConfig.from_dict(tiny_config(tmp_path, stages=_stage({"l1": 1.0}, task={"model": "x", "select": 0})))
    cfg = TrainConfig.from_dict(tiny_config(tmp_path, stages=_stage({"l1": 1.0, "dice": 0.1},
                                                                       task={"model": task_net_dir, "tasks": ["lava"]})))
    with pytest.raises(ValueError, match="lava"):
        train(cfg, progress=False, log=None)


def test_dice_feature_dynamic_and_selection_stage_runs(tmp_path, task_net_dir):
    task_net_before = torch.load(task_net_dir + "/task_net.pt", weights_only=False)["state_dict"]
    cfg = tiny_config(tmp_path, stages=_stage(
        {"l1": 1.0, "dice": 0.1, "task_feature": 1.0},
        task={"model": task_net_dir, "tasks": ["water", "builtup"], "select": 2},
        dynamic_weighting={"task_feature": 0.5}, epoch_steps=2))
    tr = train(TrainConfig.from_dict(cfg), progress=False, log=None)
    assert tr.global_step == 3
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())
    header, *rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    cols = header.split(",")
    assert "dice" in cols and "task_feature" in cols
    last = dict(zip(cols, rows[-1].split(",")))
    assert 0.0 <= float(last["dice"]) <= 1.0 and float(last["task_feature"]) > 0
    # the task network is frozen: its file is untouched and no task parameter entered the checkpoint
    assert all(k.startswith("net.") or k in ("mean", "std", "out_mean", "out_std") for k in tr.model.state_dict())
    assert torch.load(task_net_dir + "/task_net.pt", weights_only=False)["state_dict"].keys() == task_net_before.keys()


def test_without_task_terms_the_loop_is_unchanged(tmp_path, task_net_dir):
    """A stage with an (unused) task mapping but no task term and select=1 trains bit-identically."""
    a = train(TrainConfig.from_dict(tiny_config(tmp_path / "a", stages=_stage({"l1": 1.0}))), progress=False, log=None)
    b = train(TrainConfig.from_dict(tiny_config(tmp_path / "b", stages=_stage({"l1": 1.0}, task={"model": task_net_dir}))),
              progress=False, log=None)
    for (k, va), (_, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        torch.testing.assert_close(va, vb, rtol=0, atol=0, msg=k)
    header = (tmp_path / "a" / "run" / "log.csv").read_text().splitlines()[0]
    assert "task_feature" not in header  # the log keeps its columns when the feature term is unused


def test_dice_term_gradient_reaches_sr_only(tmp_path, task_net_dir):
    from sr_core.losses import task_dice_loss
    from sr_core.tasks.nets import load_task_net

    net, _ = load_task_net(task_net_dir)
    ch = TaskChannels(net, [0, 2])
    hr = torch.rand(2, 4, 20, 20, generator=torch.Generator().manual_seed(1)) * 0.3
    sr = (hr + 0.05 * torch.randn(2, 4, 20, 20, generator=torch.Generator().manual_seed(2))).requires_grad_(True)
    loss = task_dice_loss(sr, hr, ch, activation="sigmoid")
    loss.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in net.parameters())
    # closed form: 1 - (2 sum p q + eps) / (sum p + sum q + eps) per sample and channel, p, q the sigmoids
    with torch.no_grad():
        p, q = net(sr.detach())[:, [0, 2]].sigmoid(), net(hr)[:, [0, 2]].sigmoid()
        want = 1 - (2 * (p * q).sum((2, 3)) + 1e-6) / (p.sum((2, 3)) + q.sum((2, 3)) + 1e-6)
    torch.testing.assert_close(loss.detach(), want.mean(), rtol=1e-5, atol=1e-6)


def test_pooled_dice_stage_uses_one_dice_per_task_over_the_batch(tmp_path, task_net_dir, monkeypatch):
    import sr_core.training.sisr as sisr

    seen = []
    real = sisr.task_dice_loss

    def spy(*a, **kw):
        seen.append(kw.get("pooled"))
        return real(*a, **kw)

    monkeypatch.setattr(sisr, "task_dice_loss", spy)
    cfg = tiny_config(tmp_path, stages=_stage({"l1": 1.0, "dice": 0.1}, task={"model": task_net_dir, "pooled": True}))
    tr = train(TrainConfig.from_dict(cfg), progress=False, log=None)
    assert tr.global_step == 3 and seen == [True] * 3


def test_select_batch_keeps_most_task_relevant_patches():
    n = 4
    hr = edge_patches()
    b = WaldBatch(torch.arange(n).float().view(n, 1, 1, 1), hr, None, hr[:, :, ::2, ::2], None)
    sel = _select_batch(b, 2, {"channels": Edges()})
    assert sel.lr.flatten().tolist() == [3.0, 1.0] and sel.hr20 is None
    torch.testing.assert_close(sel.hr10, hr[[3, 1]])


def test_the_x2_rgbn_task_trains_validates_and_exports_a_four_band_x2_package(tmp_path):
    from sr_core.degradation import degrade
    from sr_core.models import load_card, load_predictor
    from sr_core.training.sisr import _wald_losses

    cfg = tiny_config(tmp_path, model={"name": "t-rgbn", "arch": "s2fast", "arch_kwargs": {
        "in_channels": 4, "scale": 2, "num_features": 8, "num_blocks": 1}})
    cfg["data"]["task"] = "x2_rgbn"
    cfg["stages"] = cfg["stages"][:1]
    tr = train(TrainConfig.from_dict(cfg), progress=False, log=None)
    assert tr.validate() and set(tr.validate()) >= {"mtf_gaussian/10m/mean_gain_db", "mtf_gaussian/10m/min_gain_db"}
    card = tr.export(tmp_path / "pkg", checkpoint="last.pt")
    assert tuple(card.bands) == tuple(card.out_bands) == BANDS_10M and card.scale == 2
    assert load_card(tmp_path / "pkg") == card
    assert load_predictor(tmp_path / "pkg", threads=1)(np.full((1, 4, 16, 16), 0.1, np.float32)).shape == (1, 4, 32, 32)
    # the consistency term brings the output back by the task's scale (2), onto the input grid
    hr = torch.rand(1, 4, 16, 16)
    lr = degrade(hr, 2, bands=list(BANDS_10M))
    losses = _wald_losses(hr, WaldBatch(lr, hr, None, lr, None), {"l1": 1.0, "consistency": 1.0}, {})
    assert float(losses["l1"]) == 0.0 and float(losses["consistency"]) == 0.0
    with pytest.raises(ValueError, match="in_channels=4, scale=2"):
        bad = tiny_config(tmp_path / "bad")
        bad["data"]["task"] = "x2_rgbn"
        Trainer(TrainConfig.from_dict(bad), progress=False, log=None)


def test_coarse_ops_val_degradations_and_flat_fraction_are_checked(tmp_path):
    for stage_kw, words in (({"coarse_ops": ["blockmean"]}, "coarse_ops"), ({"coarse_ops": []}, "coarse_ops")):
        with pytest.raises(ValueError, match=words):
            TrainConfig.from_dict(tiny_config(tmp_path, stages=[{"name": "a", "steps": 1, **stage_kw}]))
    with pytest.raises(ValueError, match="val_degradations"):
        TrainConfig.from_dict(tiny_config(tmp_path, val_degradations=["mtf_sinc"]))


def test_coarse_truth_operators_closed_forms():
    from sr_core.bands import BANDS_20M
    from sr_core.degradation import degrade, physical_step
    from sr_core.training.sisr import _to_coarse_truth

    x = torch.rand(2, 6, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(_to_coarse_truth(x, "area"), x.reshape(2, 6, 8, 2, 8, 2).mean((3, 5)))
    torch.testing.assert_close(_to_coarse_truth(x, "gaussian"), degrade(x, 2, bands=list(BANDS_20M)))
    torch.testing.assert_close(_to_coarse_truth(x, "physical"), physical_step(x, 2, bands=list(BANDS_20M)))


def test_robust_x2_and_sharpen_runs_train_and_export(tmp_path):
    """A stage with random coarse operators, flat fields, the new kernels and a worst-of-operators validation; and
    the sharpening task (scale 1) with its exported package equal to the trained network."""
    from sr_core.models import load_predictor

    deg = {"kernels": ["gaussian", "gaussian_box", "lanczos", "area"], "max_phase": 0.1, "max_phase_20m": 0.3,
           "noise_std_range": [0.0, 0.005]}
    cfg = tiny_config(tmp_path / "x2", val_degradations=["mtf_gaussian", "mtf_lanczos3"],
                      stages=[{"name": "a", "steps": 4, "warmup": 1, "coarse_ops": ["gaussian", "physical", "area"]}])
    cfg["data"] = {**cfg["data"], "degradation": deg, "flat_fraction": 0.25}
    tr = train(TrainConfig.from_dict(cfg), progress=False, log=None)
    v = tr.validate()
    assert tr._val_score(v) == pytest.approx(min(
        v[f"{d}/10m/mean_gain_db"] + 0.25 * v[f"{d}/20m/mean_gain_db"] for d in ("mtf_gaussian", "mtf_lanczos3")))

    cfg = tiny_config(tmp_path / "sharp", stages=[{"name": "a", "steps": 4, "warmup": 1}])
    cfg["model"] = {"name": "s", "arch": "s2sharpen", "arch_kwargs": {"in_channels": 10, "num_features": 8,
                                                                     "num_blocks": 1},
                    "postprocess": {"copy_bands": {"bands": ["B02", "B03", "B04", "B08"]}}}
    cfg["data"] = {**cfg["data"], "task": "sharpen_20m", "degradation": deg}
    tr = train(TrainConfig.from_dict(cfg), progress=False, log=None)
    assert set(tr.validate()) == {"mtf_gaussian/20m/mean_gain_db", "mtf_gaussian/20m/min_gain_db"}
    card = tr.export(tmp_path / "pkg", checkpoint="last.pt")
    assert card.scale == 1 and card.out_bands == card.bands
    x = np.random.default_rng(0).uniform(0.01, 0.5, (1, 10, 20, 20)).astype(np.float32)
    with torch.no_grad():
        ref = tr.model(torch.from_numpy(x)).numpy()
    y = load_predictor(tmp_path / "pkg")(x)
    np.testing.assert_array_equal(y[:, :4], x[:, :4])
    np.testing.assert_allclose(y[:, 4:], ref[:, 4:], rtol=0, atol=1e-5)
