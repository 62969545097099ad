"""Training of the task networks on real 10 m images (the Wald "HR") to predict the automatic masks.

Samples: random crops of the training scenes (split by scene, as the SR training: ``data.train`` of a
training config), flips / 90-degree rotations, and a random x2 zoom (``zoom_prob``): a crop of half the
size is bicubic-upsampled x2 (image) and nearest-upsampled x2 (labels), so that the network also sees
images with the look of a 5 m grid (the scale of real super-resolved output). Loss: binary cross-entropy +
soft Dice, per task channel, over valid pixels. Patches whose labels are all-negative are kept (they teach
"no water here") but each batch is drawn with probability proportional to ``1 + positives`` over a few
candidates so that the rare classes (water, built-up) are seen often.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml

from sr_core.datasets.patches import load_scene_tensors
from sr_core.metrics import dice
from sr_core.tasks.labels import TASK_NAMES, auto_labels, valid_mask
from sr_core.tasks.nets import build_task_net, predict_probs, save_task_net
from sr_core.training.config import parse_regions
from sr_core.training.loop import seeded_generator

__all__ = ["TaskSampler", "TaskTrainConfig", "evaluate_task_net", "load_labelled_scenes", "segmentation_loss", "train_task_net"]


@dataclass
class TaskTrainConfig:
    """Hyper-parameters of :func:`train_task_net` (YAML keys of ``configs/task-*.yaml``)."""

    arch: str = "unet"
    arch_kwargs: dict[str, Any] = field(default_factory=lambda: {"num_features": 12, "depth": 3})
    root: str = "../shared/data/s2"
    train: list[Any] = field(default_factory=list)
    val: list[Any] = field(default_factory=list)
    steps: int = 600
    batch_size: int = 12
    patch: int = 64
    lr: float = 3e-3
    zoom_prob: float = 0.3
    candidates: int = 3
    seed: int = 0
    threads: int | None = None
    out_dir: str = "runs/task-unet"

    def __post_init__(self) -> None:
        for k in ("steps", "batch_size", "patch", "candidates"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{k} must be a positive int, got {v!r}")
        if self.patch % 16:
            raise ValueError(f"patch must be a multiple of 16, got {self.patch}")
        if not 0 <= self.zoom_prob <= 1:
            raise ValueError(f"zoom_prob must be in [0, 1], got {self.zoom_prob!r}")

    @classmethod
    def from_yaml(cls, path: str | Path) -> TaskTrainConfig:
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a task training config is a YAML mapping")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"{path}: unknown keys {unknown}; valid: {sorted(cls.__dataclass_fields__)}")
        return cls(**data)


def load_labelled_scenes(root: str, items: Sequence[Any]) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``[(id, hr10 (4, H, W), labels (3, H, W) bool, valid (H, W) bool)]`` for scene ids / region dicts."""
    out = []
    for r in parse_regions(list(items), "scenes"):
        s = load_scene_tensors(root, r)
        out.append((s.id, s.hr10, auto_labels(s.hr10, s.hr20), valid_mask(s.hr10, s.hr20)))
    return out


class TaskSampler:
    """Random labelled batches ``(x (N, 4, P, P), y (N, 3, P, P) float, valid (N, 1, P, P) bool)``."""

    def __init__(self, scenes, *, patch: int, batch_size: int, zoom_prob: float, candidates: int,
                 generator: torch.Generator) -> None:
        self.scenes = [s for s in scenes if min(s[1].shape[-2:]) >= patch]
        if not self.scenes:
            raise ValueError(f"no scene is at least {patch} px")
        self.patch, self.batch_size, self.zoom_prob, self.candidates = patch, batch_size, zoom_prob, candidates
        self.gen = generator
        areas = torch.tensor([float(s[1].shape[-1] * s[1].shape[-2]) for s in self.scenes])
        self._p = areas / areas.sum()

    def _ri(self, n: int) -> int:
        return int(torch.randint(n, (1,), generator=self.gen))

    def _one(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        zoom = float(torch.rand(1, generator=self.gen)) < self.zoom_prob
        size = self.patch // 2 if zoom else self.patch
        cands = []
        for _ in range(self.candidates):
            _, x, y, v = self.scenes[int(torch.multinomial(self._p, 1, generator=self.gen))]
            h, w = x.shape[-2:]
            i, j = self._ri(h - size + 1), self._ri(w - size + 1)
            cands.append((x[:, i:i + size, j:j + size], y[:, i:i + size, j:j + size], v[i:i + size, j:j + size]))
        # favour rare positives: weight 1 + number of positive pixels of the rarest present class
        wts = torch.tensor([1.0 + float(c[1].float().mean(dim=(1, 2)).clamp_min(0).sqrt().sum()) * 10 for c in cands])
        x, y, v = cands[int(torch.multinomial(wts / wts.sum(), 1, generator=self.gen))]
        x, y, v = x.clone(), y.float(), v[None].float()
        if zoom:
            x = F.interpolate(x[None], scale_factor=2, mode="bicubic", align_corners=False)[0].clamp_min(0)
            y = F.interpolate(y[None], scale_factor=2, mode="nearest")[0]
            v = F.interpolate(v[None], scale_factor=2, mode="nearest")[0]
        k = self._ri(4)
        if self._ri(2):
            x, y, v = x.flip(-1), y.flip(-1), v.flip(-1)
        if k:
            x, y, v = (torch.rot90(t, k, (-2, -1)) for t in (x, y, v))
        return x.contiguous(), y.contiguous(), v.bool().contiguous()

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        items = [self._one() for _ in range(self.batch_size)]
        return tuple(torch.stack([it[k] for it in items]) for k in range(3))  # type: ignore[return-value]


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean BCE over valid pixels + mean (over channels) soft Dice loss over the batch's valid pixels."""
    vm = valid.to(logits.dtype).expand_as(logits)
    bce = (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * vm).sum() / vm.sum().clamp_min(1)
    p = logits.sigmoid() * vm
    t = target * vm
    inter = (p * t).sum(dim=(0, 2, 3))
    den = p.sum(dim=(0, 2, 3)) + t.sum(dim=(0, 2, 3))
    dice = 1 - (2 * inter + 1.0) / (den + 1.0)
    return bce + dice.mean()


@torch.no_grad()
def evaluate_task_net(net, scenes, *, zoom: bool = False) -> dict[str, dict[str, float]]:
    """Dice of the hard predictions (p >= 0.5) against the automatic labels, per scene and task (valid
    pixels only). ``zoom=True``: the image is bicubic-upsampled x2 first, the prediction compared with the
    nearest-upsampled labels (the 5 m case)."""
    net.eval()
    out = {}
    for sid, x, y, v in scenes:
        xi = x[None]
        yi, vi = y, v
        if zoom:
            xi = F.interpolate(xi, scale_factor=2, mode="bicubic", align_corners=False).clamp_min(0)
            yi = y.repeat_interleave(2, -2).repeat_interleave(2, -1)
            vi = v.repeat_interleave(2, -2).repeat_interleave(2, -1)
        p = predict_probs(net, xi)[0] >= 0.5
        out[sid] = {t: float(dice(p[k], yi[k], mask=vi)) for k, t in enumerate(TASK_NAMES)}
    return out


def train_task_net(cfg: TaskTrainConfig, *, log: Callable[[str], None] | None = None,
                   export: str | Path | None = None) -> tuple[Any, dict]:
    """Train one task network; writes ``out_dir/task_net.pt`` (and ``export/task_net.pt`` if given);
    returns ``(net, report)`` with the validation Dice at 10 m and (zoomed) 5 m."""
    log = log or (lambda s: None)
    gen = seeded_generator(cfg.seed, cfg.threads)
    train = load_labelled_scenes(cfg.root, cfg.train)
    val = load_labelled_scenes(cfg.root, cfg.val)
    x_all = torch.cat([s[1][:, s[3]] for s in train], dim=1)
    mean = [float(v) for v in x_all.mean(dim=1)]
    std = [float(v) for v in x_all.std(dim=1)]
    net = build_task_net(cfg.arch, in_channels=4, num_classes=len(TASK_NAMES), mean=mean, std=std, **cfg.arch_kwargs)
    sampler = TaskSampler(train, patch=cfg.patch, batch_size=cfg.batch_size, zoom_prob=cfg.zoom_prob,
                          candidates=cfg.candidates, generator=gen)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    t0 = time.time()
    net.train()
    run = 0.0
    for step in range(cfg.steps):
        # cosine decay to 0.02 lr without warm-up; pi * step / steps (not loop.cosine_lr's pi * (step / steps)),
        # the rounding the shipped task networks were trained with
        lr = cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * step / cfg.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y, v = sampler.batch()
        loss = segmentation_loss(net(x), y, v)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run += float(loss.detach())
        if (step + 1) % 50 == 0:
            log(f"step {step + 1}/{cfg.steps} loss {run / 50:.4f} ({time.time() - t0:.0f} s)")
            run = 0.0
    net.eval()
    report = {
        "arch": cfg.arch,
        "arch_kwargs": cfg.arch_kwargs,
        "params": sum(p.numel() for p in net.parameters()),
        "train_time_s": round(time.time() - t0, 1),
        "steps": cfg.steps,
        "train_scenes": [s[0] for s in train],
        "val_dice_10m": evaluate_task_net(net, val),
        "val_dice_5m_zoom": evaluate_task_net(net, val, zoom=True),
        "config": dict(cfg.__dict__),
    }
    meta = {"tasks": list(TASK_NAMES), "input": "reflectance B02, B03, B04, B08 (10 m grid or x2 zoom)",
            "labels": "sr_core.tasks.labels.auto_labels (default thresholds)", **report}
    save_task_net(net, cfg.out_dir, tasks=TASK_NAMES, meta=meta)
    if export is not None:
        save_task_net(net, export, tasks=TASK_NAMES, meta=meta)
    return net, report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sr_core.training.tasks CONFIG [--export FOLDER]``."""
    p = argparse.ArgumentParser(description="train a task network on automatic labels")
    p.add_argument("config")
    p.add_argument("--export", default=None)
    p.add_argument("--steps", type=int, default=None)
    a = p.parse_args(argv)
    cfg = TaskTrainConfig.from_yaml(a.config)
    if a.steps is not None:
        cfg.steps = a.steps
    _, rep = train_task_net(cfg, log=lambda s: print(s, flush=True), export=a.export)
    Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
    (Path(cfg.out_dir) / "report.json").write_text(json.dumps(rep, indent=2, default=str))
    print(json.dumps({k: rep[k] for k in ("params", "train_time_s", "val_dice_10m", "val_dice_5m_zoom")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
