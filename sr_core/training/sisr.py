"""Single-image training: stages of pre-training / fine-tuning / GAN fine-tuning on Wald-protocol batches.

The stage loop, checkpoints, resume and logs are those of :class:`sr_core.training.loop.StageTrainer`; this module
adds the sample (:class:`sr_core.datasets.patches.PatchSampler` batches of the config's ``data.task``), the loss
terms of :data:`sr_core.training.config.LOSS_TERMS` (with the discriminator of a GAN stage, the colour-matching
head, dynamic loss weighting and the task-driven terms and patch selection of a stage's ``task`` mapping), the
Wald validation (:func:`sr_core.evaluation.wald.wald_evaluate`; score = the worst over the config's
``val_degradations`` of mean 10 m gain + 0.25 x mean 20 m gain in dB over bicubic) and the export of a model package.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sr_core.archs import get_arch
from sr_core.bands import BANDS_10M, BANDS_20M, normalize_band_name
from sr_core.datasets.patches import PatchSampler, WaldBatch, band_statistics
from sr_core.degradation import area_downsample, degrade, physical_step
from sr_core.evaluation.wald import summarize, wald_evaluate
from sr_core.losses import (
    ColourMatchingHead,
    DynamicLossWeighting,
    UNetDiscriminator,
    colour_matched_loss,
    l1_loss,
    ragan_discriminator_loss,
    ragan_generator_loss,
    ssim_loss,
    task_dice_loss,
    task_feature_loss,
)
from sr_core.losses._utils import freeze
from sr_core.models import ModelCard, load_card, resolve_model
from sr_core.models.export import save_model_package
from sr_core.models.network import SRModel
from sr_core.tasks.nets import TaskChannels, TaskFeatures, load_task_net
from sr_core.tasks.scores import task_patch_scores
from sr_core.training.config import LOSS_TERMS, TASKS, StageConfig, TrainConfig
from sr_core.training.loop import StageTrainer

__all__ = ["Trainer", "train"]


def _to_coarse_truth(sr20: torch.Tensor, op: str) -> torch.Tensor:
    """The 5 m output of the 20 m bands brought onto the grid of their truth by the operator ``op`` (COARSE_OPS)."""
    if op == "gaussian":
        return degrade(sr20, 2, bands=list(BANDS_20M))
    if op == "physical":
        return physical_step(sr20, 2, bands=list(BANDS_20M))
    return area_downsample(sr20, 2)


def _wald_losses(sr: torch.Tensor, batch: WaldBatch, weights: dict[str, float], extra: dict[str, Any],
                 coarse_op: str = "gaussian") -> dict[str, torch.Tensor]:
    if batch.hr20 is not None and sr.shape[-1] == batch.hr20.shape[-1]:  # task sharpen_20m: the 20 m truth grid
        out1: dict[str, torch.Tensor] = {}
        sr20 = sr[:, 4:]
        if weights.get("l1", 0):
            out1["l1"] = l1_loss(sr20, batch.hr20)
        if weights.get("ssim", 0):
            out1["ssim"] = ssim_loss(sr20, batch.hr20, data_range=1.0)
        if weights.get("consistency", 0):
            out1["consistency"] = l1_loss(degrade(sr20, 2, bands=list(BANDS_20M)), batch.lr40)
        return out1
    if batch.hr20 is None:  # tasks x2_rgbn / x4_rgbn: the 10 m bands only
        r = batch.hr10.shape[-1] // batch.lr10.shape[-1]
        out4: dict[str, torch.Tensor] = {}
        if weights.get("l1", 0):
            out4["l1"] = l1_loss(sr, batch.hr10)
        if weights.get("ssim", 0):
            out4["ssim"] = ssim_loss(sr, batch.hr10, data_range=1.0)
        if weights.get("consistency", 0):
            out4["consistency"] = l1_loss(degrade(sr, r, bands=list(BANDS_10M)), batch.lr10)
        if weights.get("colour", 0):
            out4["colour"] = colour_matched_loss(sr, batch.hr10, batch.lr10, extra["colour_head"], r,
                                                 bands=list(BANDS_10M))
        return out4
    sr10, sr20 = sr[:, :4], sr[:, 4:]
    sr20_in = _to_coarse_truth(sr20, coarse_op)  # onto the input grid, where hr20 lives
    out: dict[str, torch.Tensor] = {}
    if weights.get("l1", 0):
        out["l1"] = l1_loss(sr10, batch.hr10) + l1_loss(sr20_in, batch.hr20)
    if weights.get("ssim", 0):
        out["ssim"] = ssim_loss(sr10, batch.hr10, data_range=1.0) + ssim_loss(sr20_in, batch.hr20, data_range=1.0)
    if weights.get("consistency", 0):
        out["consistency"] = l1_loss(degrade(sr10, 2, bands=list(BANDS_10M)), batch.lr10) + l1_loss(
            degrade(sr20, 4, bands=list(BANDS_20M)), batch.lr40
        )
    if weights.get("colour", 0):
        out["colour"] = colour_matched_loss(sr10, batch.hr10, batch.lr10, extra["colour_head"], 2, bands=list(BANDS_10M))
    return out


def _task_losses(sr: torch.Tensor, batch: WaldBatch, weights: dict[str, float], tn: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Task-driven terms on the 10 m bands (output grid): "dice" = soft Dice(task(sr), task(hr)) over the
    selected task channels (sigmoid), "task_feature" = L1 between the task network's features."""
    out: dict[str, torch.Tensor] = {}
    sr10 = sr[:, :4]
    if weights.get("dice", 0):
        out["dice"] = task_dice_loss(sr10, batch.hr10, tn["channels"], activation="sigmoid", hard=tn["hard"],
                                     pooled=tn.get("pooled", False))
    if weights.get("task_feature", 0):
        out["task_feature"] = task_feature_loss(sr10, batch.hr10, tn["features"])
    return out


def _cat_batches(batches: list[WaldBatch]) -> WaldBatch:
    def cat(name: str) -> torch.Tensor | None:
        v = [getattr(b, name) for b in batches]
        return None if v[0] is None else torch.cat(v)

    return WaldBatch(cat("lr"), cat("hr10"), cat("hr20"), cat("lr10"), cat("lr40"))


def _select_batch(batch: WaldBatch, keep: int, tn: dict[str, Any]) -> WaldBatch:
    """Task-aware patch selection: keep the ``keep`` patches with the highest task scores (densest
    boundaries of the task network's masks on hr, :func:`sr_core.tasks.scores.task_patch_scores`)."""
    scores = task_patch_scores(tn["channels"], batch.hr10)
    idx = torch.argsort(scores, descending=True, stable=True)[:keep]

    def take(v: torch.Tensor | None) -> torch.Tensor | None:
        return None if v is None else v[idx]

    return WaldBatch(take(batch.lr), take(batch.hr10), take(batch.hr20), take(batch.lr10), take(batch.lr40))


def _init_weights(source: str, task: str) -> tuple[list[float], list[float], dict[str, torch.Tensor]]:
    """Normalisation and network state dict of a warm start: package folder / shipped name / checkpoint file."""
    path = Path(source)
    if path.is_file():  # a training checkpoint (last.pt / best.pt)
        st = torch.load(path, map_location="cpu", weights_only=False)
        if "model" not in st or "mean" not in st:
            raise ValueError(f"init_from {source}: not a training checkpoint (no 'model'/'mean' entries)")
        state = {k[len("net."):]: v for k, v in st["model"].items() if k.startswith("net.")}
        return list(st["mean"]), list(st["std"]), state
    folder = resolve_model(source)
    card = load_card(folder)
    if list(card.bands) != list(TASKS[task]["bands"]):
        raise ValueError(f"init_from {source}: model bands {card.bands} do not fit data.task {task!r}")
    ckpt = torch.load(folder / card.files.get("weights", "model.pt"), map_location="cpu", weights_only=True)
    state = {k[len("net."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    return list(card.mean), list(card.std), state


def _task_net(stage: StageConfig) -> dict[str, Any]:
    """The frozen task network of a stage and its views (channel subset, feature extractor)."""
    net, names = load_task_net(stage.task["model"])
    freeze(net)
    tasks = list(stage.task.get("tasks") or names)
    unknown = [t for t in tasks if t not in names]
    if unknown:
        raise ValueError(f"stage {stage.name!r}: task.tasks {unknown} not among the task network's {names}")
    layers = stage.task.get("layers") or ("enc0", "enc1", "enc2")
    return {"net": net, "channels": TaskChannels(net, [names.index(t) for t in tasks]),
            "features": TaskFeatures(net, layers), "hard": bool(stage.task.get("hard", False)),
            "pooled": bool(stage.task.get("pooled", False)),
            "select": int(stage.task.get("select", 1))}


class Trainer(StageTrainer):
    """Runs the stages of a :class:`TrainConfig`. ``progress=False`` silences the progress bar."""

    def __init__(self, cfg: TrainConfig, *, progress: bool = True, log: Callable[[str], None] | None = None) -> None:
        super().__init__(cfg, progress=progress, log=log)
        self._load_scenes()
        self.task = cfg.data.task
        spec = TASKS[self.task]
        self.mean, self.std = band_statistics(self.train_scenes, self.task)
        net = get_arch(cfg.model.arch, **cfg.model.arch_kwargs)
        nb = len(spec["bands"])
        if getattr(net, "scale", None) != spec["scale"] or getattr(net, "in_channels", None) != nb:
            raise ValueError(f"data.task {self.task!r} trains {nb}-band x{spec['scale']} models: arch_kwargs need "
                             f"in_channels={nb}, scale={spec['scale']}")
        if cfg.init_from:
            self.mean, self.std, init_state = _init_weights(cfg.init_from, self.task)
            inner = getattr(net, "sisr", None)  # a wrapper (sisr_step) warm-started from its x2 network's weights
            if inner is not None and not any(k.startswith("sisr.") for k in init_state):
                inner.load_state_dict(init_state)
            else:
                net.load_state_dict(init_state)
        self.model = SRModel(net, self.mean, self.std, list(range(nb)))
        self._hooks: list[Any] = []

    # ----------------------------------------------------------------- pieces
    def _trainable_params(self, stage: StageConfig) -> list[nn.Parameter]:
        """Parameters the stage trains (``stage.trainable`` prefixes); rows of frozen bands masked by a grad hook."""
        named = dict(self.model.named_parameters())
        if stage.trainable is None:
            if stage.freeze_bands:
                raise ValueError(f"stage {stage.name!r}: freeze_bands needs trainable (e.g. ['net.tail'])")
            return list(named.values())
        bad = [p for p in stage.trainable if not any(n.startswith(p) for n in named)]
        if bad:
            raise ValueError(f"stage {stage.name!r}: trainable prefixes {bad} match no parameter of the model")
        keep = [p for n, p in named.items() if any(n.startswith(t) for t in stage.trainable)]
        for n, p in named.items():
            p.requires_grad_(any(n.startswith(t) for t in stage.trainable))
        if stage.freeze_bands:
            net = self.model.net
            tail = getattr(net, "tail", None)
            bands = [normalize_band_name(b) for b in self.cfg.model.bands]
            s = int(net.scale)
            if not isinstance(tail, nn.Conv2d) or tail.out_channels != len(bands) * s * s:
                raise ValueError(f"stage {stage.name!r}: freeze_bands needs a sub-pixel tail conv `net.tail` with "
                                 f"{len(bands)} x {s * s} output rows (S2Fast); {self.cfg.model.arch} has none")
            unknown = [b for b in stage.freeze_bands if normalize_band_name(b) not in bands]
            if unknown:
                raise ValueError(f"stage {stage.name!r}: freeze_bands {unknown} are not output bands {bands}")
            rows = torch.zeros(tail.out_channels, dtype=torch.bool)
            for b in stage.freeze_bands:
                k = bands.index(normalize_band_name(b))
                rows[k * s * s : (k + 1) * s * s] = True  # pixel-shuffle layout: band k owns rows k*s^2 ...
            for p in (tail.weight, tail.bias):
                if p is not None and p.requires_grad:
                    self._hooks.append(p.register_hook(
                        lambda g, m=rows: g.masked_fill(m.view(-1, *([1] * (g.dim() - 1))), 0.0)))
        return keep

    def _parameters(self, stage: StageConfig) -> list[nn.Parameter]:
        for h in self._hooks:
            h.remove()
        self._hooks = []
        for p in self.model.parameters():
            p.requires_grad_(True)
        params = self._trainable_params(stage)
        if "colour" in stage.losses:
            self.extra.setdefault("colour_head", ColourMatchingHead(4))
            params += list(self.extra["colour_head"].parameters())
        return params

    def _discriminator_optimizer(self, stage: StageConfig) -> torch.optim.Optimizer | None:
        if not stage.losses.get("gan", 0):
            return None
        dkw = {k: v for k, v in stage.gan.items() if k not in ("d_lr",)}
        self.extra.setdefault("disc", UNetDiscriminator(in_channels=4, **dkw))
        return torch.optim.AdamW(self.extra["disc"].parameters(), lr=stage.gan.get("d_lr", stage.lr), betas=(0.9, 0.99))

    def _stage_step(self, stage: StageConfig) -> Callable[[], tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        sampler = PatchSampler(
            self.train_scenes,
            patch=stage.patch or self.cfg.data.patch,
            batch_size=stage.batch_size or self.cfg.data.batch_size,
            generator=self.gen,
            random_degradation=self.cfg.data.random_degradation,
            degradation_kwargs=self.cfg.data.degradation,
            min_structure=self.cfg.data.min_structure,
            task=self.task,
            flat_fraction=self.cfg.data.flat_fraction,
        )
        ops = list(stage.coarse_ops)
        weights = dict(stage.losses)
        tn = _task_net(stage) if stage.task else None
        dyn = None
        if stage.dynamic_weighting:
            dyn = DynamicLossWeighting(reference="l1", proportions=dict(stage.dynamic_weighting))

        def step() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            batch = sampler.batch()
            if tn is not None and tn["select"] > 1:
                pool = _cat_batches([batch] + [sampler.batch() for _ in range(tn["select"] - 1)])
                batch = _select_batch(pool, batch.hr10.shape[0], tn)
            sr = self.model(batch.lr)
            op = ops[int(torch.randint(len(ops), (1,), generator=self.gen))] if len(ops) > 1 else ops[0]
            terms = _wald_losses(sr, batch, weights, self.extra, op)
            if tn is not None:
                terms.update(_task_losses(sr, batch, weights, tn))
            if weights.get("gan", 0):
                disc = self.extra["disc"]
                real = disc(batch.hr10)  # the discriminator high-pass filters its inputs itself
                fake = disc(sr[:, :4])
                terms["gan"] = ragan_generator_loss(real, fake)
            if dyn is not None:
                dyn.update({k: v.detach() for k, v in terms.items()})
                wts = {k: weights[k] * dyn.weights.get(k, 1.0) for k in terms}
            else:
                wts = weights
            loss = sum(wts[k] * v for k, v in terms.items())
            self._optimise(stage, loss, terms)
            if self._d_opt is not None:
                disc = self.extra["disc"]
                real = disc(batch.hr10)
                fake = disc(sr[:, :4].detach())
                d_loss = ragan_discriminator_loss(real, fake)
                self._d_opt.zero_grad(set_to_none=True)
                d_loss.backward()
                self._d_opt.step()
                terms["d_loss"] = d_loss.detach()
            if dyn is not None and (self.stage_step + 1) % stage.epoch_steps == 0:  # this step ends an epoch
                dyn.epoch_end()
            return loss, terms

        return step

    def validate(self) -> dict[str, float]:
        if not self.val_scenes:
            return {}
        self.model.eval()
        margin = self.model.receptive_field // 2
        rows = wald_evaluate(self.model, self.val_scenes, margin=margin, crop=self.cfg.val_crop, task=self.task,
                             degradations=self.cfg.val_degradations)
        self.model.train()
        return summarize(rows)

    def _val_score(self, summ: dict[str, float]) -> float:
        """The worst over ``val_degradations`` of: mean 10 m gain + 0.25 x mean 20 m gain (dB over bicubic)."""
        return min(summ.get(f"{d}/10m/mean_gain_db", 0.0) + 0.25 * summ.get(f"{d}/20m/mean_gain_db", 0.0)
                   for d in self.cfg.val_degradations)

    def _log_fields(self) -> list[str]:
        terms = [t for t in LOSS_TERMS if t != "task_feature" or any("task_feature" in s.losses for s in self.cfg.stages)]
        fields = ["step", "stage", "lr", "elapsed_s", *terms, "d_loss"]
        for dname in self.cfg.val_degradations:
            for group in ("10m", "20m"):
                fields += [f"{dname}/{group}/mean_gain_db", f"{dname}/{group}/min_gain_db"]
        return fields + ["val_score"]

    # ----------------------------------------------------------------- export
    def export(self, out_dir: str | Path, *, checkpoint: str = "best.pt", description: str = "",
               validation: dict | None = None, training_extra: dict | None = None) -> ModelCard:
        """Write a model package (weights + ONNX + card) from a checkpoint of this run."""
        st = self._checkpoint_for_export(checkpoint)
        card = self._card(st, bands=list(self.cfg.model.bands), description=description,
                          postprocess=dict(self.cfg.model.postprocess or {}),
                          training={**self._training_record(st, checkpoint), **(training_extra or {})},
                          validation=validation)
        return save_model_package(self.model, card, out_dir)


def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True,
          log: Callable[[str], None] | None = print, max_steps: int | None = None) -> Trainer:
    """Build a :class:`Trainer`, resume from ``out_dir/last.pt`` if asked and present, and run the stages
    (all of them, or ``max_steps`` steps)."""
    return Trainer(cfg, progress=progress, log=log).fit(resume=resume, max_steps=max_steps)
