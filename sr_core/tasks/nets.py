"""Small task networks of our own (no pretrained weights): a U-Net and a UNet++ for per-pixel multi-label
segmentation of the 10 m bands.

Input: reflectance ``(N, 4, H, W)`` in the order B02, B03, B04, B08 (normalised inside the network with the
stored per-band ``mean``/``std`` buffers); output: logits ``(N, num_classes, H, W)``, one independent
(sigmoid) channel per task of :data:`sr_core.tasks.labels.TASK_NAMES`. ``H`` and ``W`` must be multiples of
``2 ** depth`` (pad first, e.g. with :func:`predict_probs`, which reflect-pads and crops back).

Batch-norm adaptation (for spectral / radiometric differences between the training images and the images
the network is applied to, e.g. super-resolved ones): every BN layer is an :class:`AdaptiveBatchNorm2d` with
a ``mode``:

- ``"running"`` (default): the running statistics of training (standard inference);
- ``"sample"``: sample-wise statistics -- each image is normalised by its own per-channel mean / variance
  over (H, W) at each BN layer (the learned affine is kept);
- ``"batch"``: the statistics of the current batch.

Dataset-wise adaptation: :func:`adapt_bn_statistics` re-estimates the running statistics on images of the
target domain (a cumulative average over the given batches), then ``"running"`` uses them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sr_core.checks import check_int

__all__ = [
    "BN_MODES",
    "TASK_ARCHS",
    "AdaptiveBatchNorm2d",
    "TaskChannels",
    "TaskFeatures",
    "TaskUNet",
    "TaskUNetPlusPlus",
    "adapt_bn_statistics",
    "build_task_net",
    "load_task_net",
    "predict_probs",
    "save_task_net",
    "set_bn_mode",
]

BN_MODES = ("running", "sample", "batch")




class AdaptiveBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose inference statistics are chosen by ``mode`` (see the module docstring).

    In training mode it is a plain ``BatchNorm2d`` (batch statistics, running averages updated)."""

    def __init__(self, num_features: int, *, mode: str = "running", **kwargs: Any) -> None:
        super().__init__(num_features, **kwargs)
        self.mode = mode

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in BN_MODES:
            raise ValueError(f"bn mode must be one of {BN_MODES}, got {value!r}")
        self._mode = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or self._mode == "running":
            return super().forward(x)
        if self._mode == "batch":
            dims: tuple[int, ...] = (0, 2, 3)
        else:  # sample
            dims = (2, 3)
        mean = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, unbiased=False, keepdim=True)
        y = (x - mean) / torch.sqrt(var + self.eps)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return y


def set_bn_mode(net: nn.Module, mode: str) -> nn.Module:
    """Set the ``mode`` of every :class:`AdaptiveBatchNorm2d` of ``net`` (in place); returns ``net``."""
    if mode not in BN_MODES:
        raise ValueError(f"mode must be one of {BN_MODES}, got {mode!r}")
    for m in net.modules():
        if isinstance(m, AdaptiveBatchNorm2d):
            m.mode = mode
    return net


@torch.no_grad()
def adapt_bn_statistics(net: nn.Module, images: Iterable[torch.Tensor]) -> nn.Module:
    """Dataset-wise BN adaptation: replace the running mean / variance of every BN layer by their cumulative
    average over ``images`` (reflectance batches ``(N, 4, H, W)`` of the target domain); weights unchanged.
    Leaves ``net`` in eval mode with BN ``mode="running"``; returns ``net``."""
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [(m.momentum, m.mode if isinstance(m, AdaptiveBatchNorm2d) else None) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    net.train()
    n = 0
    for x in images:
        net(x)
        n += 1
    if n == 0:
        raise ValueError("adapt_bn_statistics needs at least one batch of images")
    for m, (mom, mode) in zip(bns, saved):
        m.momentum = mom
        if mode is not None:
            m.mode = "running"
    net.eval()
    return net


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        AdaptiveBatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        AdaptiveBatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _encoder(in_channels: int, ch: Sequence[int]) -> nn.ModuleList:
    """The encoder levels: one conv block per level, ``ch[l]`` channels at level ``l``."""
    return nn.ModuleList([_block(in_channels, ch[0])] + [_block(ch[lv - 1], ch[lv]) for lv in range(1, len(ch))])


class _TaskNetBase(nn.Module):
    """Shared pieces: normalisation buffers, input checks, constructor bookkeeping."""

    arch_name = ""

    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        num_features: int,
        depth: int,
        mean: Sequence[float] | None,
        std: Sequence[float] | None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, 1)
        self.num_classes = check_int("num_classes", num_classes, 1)
        self.num_features = check_int("num_features", num_features, 1)
        self.depth = check_int("depth", depth, 1)
        mean = [0.0] * in_channels if mean is None else [float(v) for v in mean]
        std = [1.0] * in_channels if std is None else [float(v) for v in std]
        if len(mean) != in_channels or len(std) != in_channels or min(std) <= 0:
            raise ValueError(f"mean/std need {in_channels} values (std > 0), got {mean!r} / {std!r}")
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))
        self.multiple = 2**depth
        self.kwargs = {"in_channels": in_channels, "num_classes": num_classes, "num_features": num_features,
                       "depth": depth, "mean": mean, "std": std}

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"input must be (N, {self.in_channels}, H, W), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        h, w = x.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise ValueError(f"H and W must be multiples of {self.multiple} (2 ** depth), got {h}x{w}")
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)["logits"]

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


class TaskUNet(_TaskNetBase):
    """U-Net: ``depth`` down-sampling levels (max-pool), ``num_features * 2**l`` channels at level ``l``,
    bilinear up-sampling + concatenated skip + two 3x3 conv-BN-ReLU per decoder level, 1x1 head."""

    arch_name = "unet"

    def __init__(self, *, in_channels: int = 4, num_classes: int = 3, num_features: int = 16, depth: int = 3,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> None:
        super().__init__(in_channels=in_channels, num_classes=num_classes, num_features=num_features, depth=depth,
                         mean=mean, std=std)
        ch = [num_features * 2**lv for lv in range(depth + 1)]
        self.enc = _encoder(in_channels, ch)
        self.dec = nn.ModuleList([_block(ch[lv + 1] + ch[lv], ch[lv]) for lv in range(depth)])
        self.head = nn.Conv2d(ch[0], num_classes, 1)

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``enc0..enc{depth}`` (encoder outputs), ``dec0`` (last decoder output) and ``logits``."""
        h = self._check(x)
        feats: dict[str, torch.Tensor] = {}
        skips = []
        for lv, blk in enumerate(self.enc):
            h = blk(h if lv == 0 else F.max_pool2d(h, 2))
            feats[f"enc{lv}"] = h
            skips.append(h)
        for lv in reversed(range(self.depth)):
            up = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
            h = self.dec[lv](torch.cat([up, skips[lv]], dim=1))
        feats["dec0"] = h
        feats["logits"] = self.head(h)
        return feats


class TaskUNetPlusPlus(_TaskNetBase):
    """UNet++ (nested U-Net): nodes ``X[i][j]`` (level ``i``, ``j`` = number of up-steps) with dense skip
    connections ``X[i][j] = block(cat(X[i][0..j-1], up(X[i+1][j-1])))``; the head reads ``X[0][depth]``."""

    arch_name = "unetpp"

    def __init__(self, *, in_channels: int = 4, num_classes: int = 3, num_features: int = 16, depth: int = 3,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> None:
        super().__init__(in_channels=in_channels, num_classes=num_classes, num_features=num_features, depth=depth,
                         mean=mean, std=std)
        ch = [num_features * 2**lv for lv in range(depth + 1)]
        self.enc = _encoder(in_channels, ch)
        self.nodes = nn.ModuleDict()
        for j in range(1, depth + 1):
            for i in range(depth + 1 - j):
                self.nodes[f"{i}_{j}"] = _block(ch[i] * j + ch[i + 1], ch[i])
        self.head = nn.Conv2d(ch[0], num_classes, 1)

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``enc0..enc{depth}`` (the ``X[i][0]`` nodes), ``dec0`` (``X[0][depth]``) and ``logits``."""
        h = self._check(x)
        X: dict[tuple[int, int], torch.Tensor] = {}
        feats: dict[str, torch.Tensor] = {}
        for i, blk in enumerate(self.enc):
            h = blk(h if i == 0 else F.max_pool2d(h, 2))
            X[(i, 0)] = h
            feats[f"enc{i}"] = h
        for j in range(1, self.depth + 1):
            for i in range(self.depth + 1 - j):
                up = F.interpolate(X[(i + 1, j - 1)], scale_factor=2, mode="bilinear", align_corners=False)
                X[(i, j)] = self.nodes[f"{i}_{j}"](torch.cat([X[(i, k)] for k in range(j)] + [up], dim=1))
        feats["dec0"] = X[(0, self.depth)]
        feats["logits"] = self.head(feats["dec0"])
        return feats


TASK_ARCHS: dict[str, type[_TaskNetBase]] = {"unet": TaskUNet, "unetpp": TaskUNetPlusPlus}


def build_task_net(arch: str, **kwargs: Any) -> _TaskNetBase:
    """A task network by name (``"unet"`` or ``"unetpp"``) and constructor keyword arguments."""
    if arch not in TASK_ARCHS:
        raise ValueError(f"arch must be one of {sorted(TASK_ARCHS)}, got {arch!r}")
    return TASK_ARCHS[arch](**kwargs)


class TaskFeatures(nn.Module):
    """Feature extractor view of a task network for :func:`sr_core.losses.task_feature_loss`: returns the
    dict of :meth:`forward_features` restricted to ``layers``."""

    def __init__(self, net: _TaskNetBase, layers: Sequence[str] = ("enc0", "enc1", "enc2")) -> None:
        super().__init__()
        self.net = net
        self.layers = tuple(layers)
        if not self.layers:
            raise ValueError("layers must name at least one feature layer")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.net.forward_features(x)
        missing = [k for k in self.layers if k not in f]
        if missing:
            raise ValueError(f"unknown feature layers {missing}; available: {sorted(f)}")
        return {k: f[k] for k in self.layers}


def _padded_logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``net`` on ``x`` of any size: reflect-padded up to a multiple of ``net.multiple`` at the bottom/right,
    the logits cropped back to ``x``'s size."""
    h, w = x.shape[-2:]
    m = net.multiple
    ph, pw = (-h) % m, (-w) % m
    xp = F.pad(x, (0, pw, 0, ph), mode="reflect") if (ph or pw) else x
    return net(xp)[..., :h, :w]


class TaskChannels(nn.Module):
    """A task network restricted to some output channels, on inputs of any size (reflect-padded to a multiple
    of ``2 ** depth`` at the bottom/right and cropped back): ``(N, 4, H, W) -> logits (N, len(index), H, W)``."""

    def __init__(self, net: nn.Module, index: Sequence[int]) -> None:
        super().__init__()
        self.net = net
        idx = [int(i) for i in index]
        if not idx or min(idx) < 0 or max(idx) >= net.num_classes:
            raise ValueError(f"index must list output channels in [0, {net.num_classes}), got {list(index)!r}")
        self.index = idx

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _padded_logits(self.net, x)[:, self.index]


def predict_probs(net: _TaskNetBase, x: torch.Tensor) -> torch.Tensor:
    """Sigmoid probabilities ``(N, C, H, W)`` of ``net`` on reflectance ``x`` of any size (reflect-padded up to a
    multiple of ``2 ** depth`` at the bottom/right, cropped back). Gradients flow; call under ``no_grad`` to
    infer."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must be (N, C, H, W), got {getattr(x, 'shape', type(x).__name__)}")
    return _padded_logits(net, x).sigmoid()


def save_task_net(net: _TaskNetBase, folder: str | Path, *, tasks: Sequence[str], meta: dict | None = None) -> Path:
    """Write ``folder/task_net.pt`` (arch, kwargs, tasks, state dict, ``meta``) and a readable
    ``folder/task_card.json`` (everything but the weights; not named card.json, which marks SR model packages);
    returns the path of ``task_net.pt``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if len(tasks) != net.num_classes:
        raise ValueError(f"tasks {list(tasks)} must name the {net.num_classes} output channels")
    path = folder / "task_net.pt"
    torch.save({"arch": net.arch_name, "kwargs": net.kwargs, "tasks": list(tasks),
                "state_dict": net.state_dict(), "meta": meta or {}}, path)
    card = {"arch": net.arch_name, "kwargs": net.kwargs, "tasks": list(tasks),
            "params": sum(p.numel() for p in net.parameters()), "meta": meta or {}}
    (folder / "task_card.json").write_text(json.dumps(card, indent=1, default=str))
    return path


def load_task_net(path: str | Path) -> tuple[_TaskNetBase, list[str]]:
    """Load a task network saved by :func:`save_task_net` (a folder, its ``task_net.pt``, or the name of a
    shipped one under ``sr_core/weights``); returns ``(net in eval mode, task names)``."""
    p = Path(path)
    if not p.exists():
        shipped = Path(__file__).resolve().parent.parent / "weights" / str(path)
        if shipped.exists():
            p = shipped
        else:
            raise FileNotFoundError(f"no task network at {path} (nor shipped as {shipped})")
    if p.is_dir():
        p = p / "task_net.pt"
    st = torch.load(p, map_location="cpu", weights_only=False)
    net = build_task_net(st["arch"], **st["kwargs"])
    net.load_state_dict(st["state_dict"])
    net.eval()
    return net, list(st["tasks"])
