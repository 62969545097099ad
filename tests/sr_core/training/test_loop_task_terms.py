"""Task-driven training terms in the stage loop: "dice", "task_feature", dynamic weighting, task-aware patch
selection; existing behaviour unchanged without them. Runs on the bundled real sample (no ../shared needed)."""

from __future__ import annotations

import pytest
import torch
from tests.sr_core.training.test_loop import tiny_config

from sr_core.evaluation.tasks import TaskChannels, mask_boundaries, task_patch_scores
from sr_core.tasks.nets import build_task_net, save_task_net
from sr_core.training.config import TrainConfig
from sr_core.training.loop import _select_batch, train


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
    import sr_core.losses as losses

    seen = []
    real = losses.task_dice_loss

    def spy(*a, **kw):
        seen.append(kw.get("pooled"))
        return real(*a, **kw)

    monkeypatch.setattr(losses, "task_dice_loss", spy)
    cfg = tiny_config(tmp_path, stages=_stage({"l1": 1.0, "dice": 0.1}, task={"model": task_net_dir, "pooled": True}))
    tr = train(TrainConfig.from_dict(cfg), progress=False, log=None)
    assert tr.global_step == 3 and seen == [True] * 3


def test_select_batch_keeps_most_task_relevant_patches():
    from sr_core.datasets.patches import WaldBatch

    class Edges(torch.nn.Module):  # "task" = one channel that is positive where band 0 > 0.5
        num_classes, multiple = 1, 1

        def forward(self, x):
            return (x[:, :1] - 0.5) * 100

    n = 4
    hr = torch.zeros(n, 4, 8, 8)
    hr[1, 0, :, :4] = 1.0  # one vertical edge
    hr[3, 0, ::2] = 1.0  # many edges (stripes)
    hr[2, 0] = 1.0  # uniform positive: no boundary
    scores = task_patch_scores(Edges(), hr)
    assert scores[0] == 0 and scores[2] == 0 and scores[3] > scores[1] > 0
    b = WaldBatch(torch.arange(n).float().view(n, 1, 1, 1), hr, None, hr[:, :, ::2, ::2], None)
    sel = _select_batch(b, 2, {"channels": Edges()})
    assert sel.lr.flatten().tolist() == [3.0, 1.0] and sel.hr20 is None
    torch.testing.assert_close(sel.hr10, hr[[3, 1]])
    # boundaries of a closed form: a 2x2 square in a 6x6 field -> the 4x4 ring around and inside it
    m = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
    m[..., 2:4, 2:4] = True
    assert int(mask_boundaries(m).sum()) == 16
