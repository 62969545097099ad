"""The training loop: stages of pre-training / fine-tuning / GAN fine-tuning on Wald-protocol batches.

Checkpoints (``out_dir/last.pt``, ``out_dir/best.pt``) hold the constructor arguments of every module, the
normalisation, optimiser and RNG states and the position in the stage list, so ``resume=True`` continues a run
exactly where it stopped. Metrics go to ``out_dir/log.csv`` (and TensorBoard when it is installed).
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sr_core.archs import get_arch
from sr_core.bands import BANDS_10M, BANDS_20M
from sr_core.models import ModelCard, SRModel, save_model_package
from sr_core.training.config import LOSS_TERMS, TASKS, StageConfig, TrainConfig
from sr_core.datasets.patches import PatchSampler, SceneTensors, WaldBatch, load_scene_tensors
from sr_core.evaluation.wald import summarize, wald_evaluate

__all__ = ["Trainer", "band_statistics", "train"]


def band_statistics(scenes: list[SceneTensors], task: str = "x2_10band") -> tuple[list[float], list[float]]:
    """Per-band mean and std of reflectance over the training scenes (model band order of ``task``)."""
    means, stds = [], []
    for k in range(4):
        v = torch.cat([s.hr10[k].reshape(-1) for s in scenes])
        means.append(float(v.mean()))
        stds.append(float(v.std()))
    for k in range(6 if task == "x2_10band" else 0):
        v = torch.cat([s.hr20[k].reshape(-1) for s in scenes])
        means.append(float(v.mean()))
        stds.append(float(v.std()))
    return means, stds


def _wald_losses(sr: torch.Tensor, batch: WaldBatch, weights: dict[str, float], extra: dict[str, Any]) -> dict[str, torch.Tensor]:
    from sr_core.degradation import degrade
    from sr_core.losses import l1_loss, ssim_loss

    if batch.hr20 is None:  # task x4_rgbn: the 10 m bands only, x4
        out4: dict[str, torch.Tensor] = {}
        if weights.get("l1", 0):
            out4["l1"] = l1_loss(sr, batch.hr10)
        if weights.get("ssim", 0):
            out4["ssim"] = ssim_loss(sr, batch.hr10, data_range=1.0)
        if weights.get("consistency", 0):
            out4["consistency"] = l1_loss(degrade(sr, 4, bands=list(BANDS_10M)), batch.lr10)
        if weights.get("colour", 0):
            from sr_core.losses import colour_matched_loss

            out4["colour"] = colour_matched_loss(sr, batch.hr10, batch.lr10, extra["colour_head"], 4,
                                                 bands=list(BANDS_10M))
        return out4
    sr10, sr20 = sr[:, :4], sr[:, 4:]
    sr20_in = degrade(sr20, 2, bands=list(BANDS_20M))  # onto the input grid, where hr20 lives
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
        from sr_core.losses import colour_matched_loss

        out["colour"] = colour_matched_loss(sr10, batch.hr10, batch.lr10, extra["colour_head"], 2, bands=list(BANDS_10M))
    return out


def _task_losses(sr: torch.Tensor, batch: WaldBatch, weights: dict[str, float], tn: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Task-driven terms on the 10 m bands (output grid): "dice" = soft Dice(task(sr), task(hr)) over the
    selected task channels (sigmoid), "task_feature" = L1 between the task network's features."""
    from sr_core.losses import task_dice_loss, task_feature_loss

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
    boundaries of the task network's masks on hr, :func:`sr_core.evaluation.tasks.task_patch_scores`)."""
    from sr_core.evaluation.tasks import task_patch_scores

    scores = task_patch_scores(tn["channels"], batch.hr10)
    idx = torch.argsort(scores, descending=True, stable=True)[:keep]

    def take(v: torch.Tensor | None) -> torch.Tensor | None:
        return None if v is None else v[idx]

    return WaldBatch(take(batch.lr), take(batch.hr10), take(batch.hr20), take(batch.lr10), take(batch.lr40))


def _init_weights(source: str, task: str) -> tuple[list[float], list[float], dict[str, torch.Tensor]]:
    """Normalisation and network state dict of a warm start: package folder / shipped name / checkpoint file."""
    from sr_core.models import load_card, resolve_model

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


class Trainer:
    """Runs the stages of a :class:`TrainConfig`. ``progress=False`` silences the progress bar."""

    def __init__(self, cfg: TrainConfig, *, progress: bool = True, log: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.progress = progress
        self.log = log or (lambda s: None)
        if cfg.threads:
            torch.set_num_threads(int(cfg.threads))
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        root = cfg.data.root
        self.train_scenes = [load_scene_tensors(root, r) for r in cfg.data.regions("train")]
        self.val_scenes = [load_scene_tensors(root, r) for r in cfg.data.regions("val")]
        if not self.train_scenes:
            raise ValueError("data.train lists no scene")
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
            net.load_state_dict(init_state)
        self.model = SRModel(net, self.mean, self.std, list(range(nb)))
        self.extra: dict[str, nn.Module] = {}
        self.stage_idx = 0
        self.stage_step = 0
        self.global_step = 0
        self.best_score = -math.inf
        self.elapsed = 0.0
        self.history: list[dict] = []
        self._opt: torch.optim.Optimizer | None = None
        self._d_opt: torch.optim.Optimizer | None = None

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(),
            "arch": self.cfg.model.arch,
            "arch_kwargs": self.cfg.model.arch_kwargs,
            "mean": self.mean,
            "std": self.std,
            "model": self.model.state_dict(),
            "extra": {k: m.state_dict() for k, m in self.extra.items()},
            "opt": self._opt.state_dict() if self._opt else None,
            "d_opt": self._d_opt.state_dict() if self._d_opt else None,
            "stage_idx": self.stage_idx,
            "stage_step": self.stage_step,
            "global_step": self.global_step,
            "best_score": self.best_score,
            "elapsed": self.elapsed,
            "gen_state": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(),
        }

    def save(self, name: str = "last.pt") -> Path:
        path = self.out / name
        tmp = path.with_suffix(".tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)
        return path

    def load(self, path: str | Path) -> None:
        st = torch.load(path, map_location="cpu", weights_only=False)
        if st["arch"] != self.cfg.model.arch or st["arch_kwargs"] != self.cfg.model.arch_kwargs:
            raise ValueError(f"checkpoint {path} is for {st['arch']} {st['arch_kwargs']}, config says "
                             f"{self.cfg.model.arch} {self.cfg.model.arch_kwargs}")
        self.mean, self.std = st["mean"], st["std"]
        self.model.load_state_dict(st["model"])
        self.stage_idx, self.stage_step = st["stage_idx"], st["stage_step"]
        self.global_step, self.best_score = st["global_step"], st["best_score"]
        self.elapsed = st.get("elapsed", 0.0)
        self.gen.set_state(st["gen_state"])
        torch.set_rng_state(st["torch_rng"])
        self._resume_state = st

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
            from sr_core.bands import normalize_band_name

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

    def _make_optimizer(self, stage: StageConfig) -> None:
        for h in getattr(self, "_hooks", []):
            h.remove()
        self._hooks: list[Any] = []
        for p in self.model.parameters():
            p.requires_grad_(True)
        params = self._trainable_params(stage)
        if "colour" in stage.losses:
            from sr_core.losses import ColourMatchingHead

            self.extra.setdefault("colour_head", ColourMatchingHead(4))
            params += list(self.extra["colour_head"].parameters())
        self._opt = torch.optim.AdamW(params, lr=stage.lr, weight_decay=stage.weight_decay)
        self._d_opt = None
        if stage.losses.get("gan", 0):
            from sr_core.losses import UNetDiscriminator

            dkw = {k: v for k, v in stage.gan.items() if k not in ("d_lr",)}
            self.extra.setdefault("disc", UNetDiscriminator(in_channels=4, **dkw))
            self._d_opt = torch.optim.AdamW(self.extra["disc"].parameters(), lr=stage.gan.get("d_lr", stage.lr),
                                            betas=(0.9, 0.99))
        st = getattr(self, "_resume_state", None)
        if st is not None and st.get("opt") is not None and st["stage_idx"] == self.stage_idx:
            for k, sd in st.get("extra", {}).items():
                if k in self.extra:
                    self.extra[k].load_state_dict(sd)
            self._opt.load_state_dict(st["opt"])
            if self._d_opt is not None and st.get("d_opt") is not None:
                self._d_opt.load_state_dict(st["d_opt"])
        self._resume_state = None

    def _lr_at(self, stage: StageConfig, step: int) -> float:
        if step < stage.warmup:
            return stage.lr * (step + 1) / stage.warmup
        t = (step - stage.warmup) / max(1, stage.steps - stage.warmup)
        return stage.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))

    def validate(self) -> dict[str, float]:
        if not self.val_scenes:
            return {}
        self.model.eval()
        margin = self.model.receptive_field // 2
        rows = wald_evaluate(self.model, self.val_scenes, margin=margin, crop=self.cfg.val_crop, task=self.task)
        self.model.train()
        return summarize(rows)

    def _val_score(self, summ: dict[str, float]) -> float:
        return summ.get("mtf_gaussian/10m/mean_gain_db", 0.0) + 0.25 * summ.get("mtf_gaussian/20m/mean_gain_db", 0.0)

    def _task_net(self, stage: StageConfig) -> dict[str, Any]:
        """The frozen task network of a stage and its views (channel subset, feature extractor)."""
        from sr_core.losses._utils import freeze
        from sr_core.evaluation.tasks import TaskChannels
        from sr_core.tasks.nets import TaskFeatures, load_task_net

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

    def _log_fields(self) -> list[str]:
        terms = [t for t in LOSS_TERMS if t != "task_feature" or any("task_feature" in s.losses for s in self.cfg.stages)]
        fields = ["step", "stage", "lr", "elapsed_s", *terms, "d_loss"]
        for dname in ("mtf_gaussian",):
            for group in ("10m", "20m"):
                fields += [f"{dname}/{group}/mean_gain_db", f"{dname}/{group}/min_gain_db"]
        return fields + ["val_score"]

    def _log_row(self, row: dict) -> None:
        path = self.out / "log.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self._log_fields(), restval="", extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
        if self._tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k != "step":
                    self._tb.add_scalar(k, v, row["step"])

    # ----------------------------------------------------------------- run
    def run(self, max_steps: int | None = None) -> dict[str, Any]:
        """Run the remaining stages; with ``max_steps`` stop (after a checkpoint) once that many steps were done
        in this call, so a long training can be split over several sessions (resume with ``--resume``)."""
        try:
            from torch.utils.tensorboard import SummaryWriter  # optional

            self._tb = SummaryWriter(str(self.out / "tb"))
        except Exception:  # noqa: BLE001 - tensorboard not installed
            self._tb = None
        from sr_core.losses import DynamicLossWeighting, ragan_discriminator_loss, ragan_generator_loss

        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover
            tqdm = None
        self.model.train()
        done_here = 0
        if self.cfg.init_from and self.global_step == 0 and self.stage_step == 0 and self.stage_idx == 0:
            # a warm start is a candidate too: validate it first, so best.pt is never worse than the start
            summ = self.validate()
            if summ:
                row = {"step": 0, "stage": "init", "lr": 0.0, "elapsed_s": 0.0, **summ}
                row["val_score"] = self.best_score = self._val_score(summ)
                self.save("best.pt")
                self.log(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}))
                self._log_row(row)
            self.model.train()
        while self.stage_idx < len(self.cfg.stages):
            stage = self.cfg.stages[self.stage_idx]
            self._make_optimizer(stage)
            sampler = PatchSampler(
                self.train_scenes,
                patch=stage.patch or self.cfg.data.patch,
                batch_size=stage.batch_size or self.cfg.data.batch_size,
                generator=self.gen,
                random_degradation=self.cfg.data.random_degradation,
                degradation_kwargs=self.cfg.data.degradation,
                min_structure=self.cfg.data.min_structure,
                task=self.task,
            )
            weights = dict(stage.losses)
            tn = self._task_net(stage) if stage.task else None
            dyn = None
            if stage.dynamic_weighting:
                dyn = DynamicLossWeighting(reference="l1", proportions=dict(stage.dynamic_weighting))
            bar = tqdm(total=stage.steps, initial=self.stage_step, desc=stage.name, disable=not self.progress) if tqdm else None
            t_last = time.time()
            run_l = {}
            while self.stage_step < stage.steps:
                if max_steps is not None and done_here >= max_steps:
                    self.save("last.pt")
                    if bar is not None:
                        bar.close()
                    return {"global_step": self.global_step, "best_score": self.best_score,
                            "elapsed_s": self.elapsed, "finished": False}
                done_here += 1
                for g in self._opt.param_groups:
                    g["lr"] = self._lr_at(stage, self.stage_step)
                batch = sampler.batch()
                if tn is not None and tn["select"] > 1:
                    pool = _cat_batches([batch] + [sampler.batch() for _ in range(tn["select"] - 1)])
                    batch = _select_batch(pool, batch.hr10.shape[0], tn)
                sr = self.model(batch.lr)
                terms = _wald_losses(sr, batch, weights, self.extra)
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
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"non-finite loss at step {self.global_step} (stage {stage.name!r}): {terms}; lower the "
                        "stage's lr and resume from best.pt"
                    )
                self._opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                self._opt.step()
                if self._d_opt is not None:
                    disc = self.extra["disc"]
                    real = disc(batch.hr10)
                    fake = disc(sr[:, :4].detach())
                    d_loss = ragan_discriminator_loss(real, fake)
                    self._d_opt.zero_grad(set_to_none=True)
                    d_loss.backward()
                    self._d_opt.step()
                    terms["d_loss"] = d_loss.detach()
                for k, v in terms.items():
                    run_l[k] = run_l.get(k, 0.0) + float(v.detach())
                run_l["_n"] = run_l.get("_n", 0) + 1
                self.stage_step += 1
                self.global_step += 1
                now = time.time()
                self.elapsed += now - t_last
                t_last = now
                if dyn is not None and self.stage_step % stage.epoch_steps == 0:
                    dyn.epoch_end()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
                if self.stage_step % self.cfg.log_every == 0 or self.stage_step == stage.steps:
                    n = run_l.pop("_n")
                    row = {"step": self.global_step, "stage": stage.name, "lr": self._opt.param_groups[0]["lr"],
                           "elapsed_s": round(self.elapsed, 1)}
                    row.update({k: v / n for k, v in run_l.items()})
                    run_l = {}
                    do_val = self.stage_step % self.cfg.val_every == 0 or self.stage_step == stage.steps
                    if do_val:
                        summ = self.validate()
                        row.update(summ)
                        score = self._val_score(summ)
                        row["val_score"] = score
                        if score > self.best_score:
                            self.best_score = score
                            self.save("best.pt")
                        self.log(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}))
                    self._log_row(row)
                if self.stage_step % self.cfg.ckpt_every == 0:
                    self.save("last.pt")
            if bar is not None:
                bar.close()
            self.stage_idx += 1
            self.stage_step = 0
            self.save("last.pt")
        if self._tb is not None:
            self._tb.close()
        return {"global_step": self.global_step, "best_score": self.best_score, "elapsed_s": self.elapsed,
                "finished": True}

    def export(self, out_dir: str | Path, *, checkpoint: str = "best.pt", description: str = "",
               validation: dict | None = None, training_extra: dict | None = None) -> ModelCard:
        """Write a model package (weights + ONNX + card) from a checkpoint of this run."""
        st = torch.load(self.out / checkpoint, map_location="cpu", weights_only=False)
        self.model.load_state_dict(st["model"])
        self.model.eval()
        net = self.model.net
        card = ModelCard(
            name=self.cfg.model.name,
            version=self.cfg.model.version,
            arch=self.cfg.model.arch,
            arch_kwargs=self.cfg.model.arch_kwargs,
            bands=list(self.cfg.model.bands),
            out_bands=list(self.cfg.model.bands),
            scale=int(net.scale),
            input_resolution_m=10.0,
            receptive_field=int(net.receptive_field),
            mean=[float(v) for v in st["mean"]],
            std=[float(v) for v in st["std"]],
            description=description,
            postprocess=dict(self.cfg.model.postprocess or {}),
            training={**self._training_record(st, checkpoint), **(training_extra or {})},
            validation=validation or {},
        )
        return save_model_package(self.model, card, out_dir)

    def _training_record(self, st: dict[str, Any], checkpoint: str) -> dict[str, Any]:
        """The model card's ``training`` entries every exported run has: config, checkpoint, steps, time, machine,
        train and validation regions."""
        return {
            "config": self.cfg.to_dict(),
            "checkpoint": checkpoint,
            "steps": st["global_step"],
            "train_time_s": round(st.get("elapsed", 0.0), 1),
            "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                        "python": platform.python_version(), "torch": torch.__version__},
            "train_regions": [s.id for s in self.train_scenes],
            "val_regions": [s.id for s in self.val_scenes],
        }


def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True,
          log: Callable[[str], None] | None = print, max_steps: int | None = None) -> Trainer:
    """Build a :class:`Trainer`, resume from ``out_dir/last.pt`` if asked and present, and run the stages
    (all of them, or ``max_steps`` steps)."""
    tr = Trainer(cfg, progress=progress, log=log)
    last = Path(cfg.out_dir) / "last.pt"
    if resume and last.is_file():
        tr.load(last)
    tr.last_run = tr.run(max_steps=max_steps)
    return tr
