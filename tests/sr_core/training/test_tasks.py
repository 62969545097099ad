"""Task-network training: labelled sampler (zoom, augmentation), loss, a short run on the bundled sample."""

from __future__ import annotations

import pytest
import torch

from sr_core.io import SAMPLE_ID, sample_scene_path
from sr_core.training.tasks import (
    TaskSampler,
    TaskTrainConfig,
    load_labelled_scenes,
    segmentation_loss,
    train_task_net,
)

ROOT = str(sample_scene_path().parent)


def test_segmentation_loss_closed_form():
    logits = torch.tensor([[[[2.0, -1.0], [0.0, 3.0]]]])
    target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    valid = torch.tensor([[[[True, True], [True, False]]]])
    p = logits.sigmoid()
    bce = -(torch.log(p[0, 0, 0, 0]) + torch.log(1 - p[0, 0, 0, 1]) + torch.log(p[0, 0, 1, 0])) / 3
    inter = p[0, 0, 0, 0] + p[0, 0, 1, 0]
    den = p[0, 0, 0, 0] + p[0, 0, 0, 1] + p[0, 0, 1, 0] + 2
    want = bce + 1 - (2 * inter + 1) / (den + 1)
    torch.testing.assert_close(segmentation_loss(logits, target, valid), want)


def test_sampler_zoom_keeps_labels_aligned():
    scenes = load_labelled_scenes(ROOT, [{"scene": SAMPLE_ID, "y0": 0, "y1": 128, "x0": 0, "x1": 128}])
    g = torch.Generator().manual_seed(0)
    s = TaskSampler(scenes, patch=32, batch_size=3, zoom_prob=1.0, candidates=2, generator=g)
    x, y, v = s.batch()
    assert x.shape == (3, 4, 32, 32) and y.shape == (3, 3, 32, 32) and v.dtype == torch.bool
    # zoomed labels are nearest x2: constant over 2x2 blocks
    assert torch.equal(y[..., ::2, ::2], y[..., 1::2, 1::2])
    with pytest.raises(ValueError, match="at least"):
        TaskSampler(scenes, patch=256, batch_size=1, zoom_prob=0, candidates=1, generator=g)


def test_config_validation_and_short_run(tmp_path):
    with pytest.raises(ValueError, match="patch"):
        TaskTrainConfig(patch=40)
    with pytest.raises(ValueError, match="zoom_prob"):
        TaskTrainConfig(zoom_prob=2)
    cfg = TaskTrainConfig(arch="unet", arch_kwargs={"num_features": 4, "depth": 2}, root=ROOT,
                          train=[{"scene": SAMPLE_ID, "y0": 0, "y1": 128, "x0": 0, "x1": 256}],
                          val=[{"scene": SAMPLE_ID, "y0": 128, "y1": 192, "x0": 0, "x1": 64}],
                          steps=3, batch_size=2, patch=32, out_dir=str(tmp_path / "run"))
    net, rep = train_task_net(cfg, export=tmp_path / "pkg")
    assert (tmp_path / "pkg" / "task_net.pt").is_file() and (tmp_path / "pkg" / "task_card.json").is_file()
    assert rep["steps"] == 3 and set(rep["val_dice_10m"]) == set(rep["val_dice_5m_zoom"])
    assert torch.allclose(net.mean.flatten(), torch.tensor(net.kwargs["mean"]))
