"""The stage loop every super-resolution trainer runs, and the pieces the task-network trainer shares with it.

:class:`StageTrainer` runs the stages of a config (pre-training, fine-tuning, ...): per step a learning rate
(:func:`cosine_lr`), one step of the variant (:meth:`StageTrainer._stage_step`), the running means of the loss
terms; every ``log_every`` steps a row of ``out_dir/log.csv`` (and TensorBoard when it is installed), every
``val_every`` steps and at the end of each stage a validation (best score -> ``out_dir/best.pt``), every
``ckpt_every`` steps ``out_dir/last.pt``. Checkpoints hold the constructor arguments of every module, the
normalisation, optimiser and RNG states and the position in the stage list, so :meth:`StageTrainer.fit` with
``resume=True`` continues a run exactly where it stopped; ``max_steps`` splits a long training over several
calls.

The variants (:class:`sr_core.training.sisr.Trainer` for single-image models on Wald batches,
:class:`sr_core.training.misr.MISRTrainer` for multi-image models on simulated stacks) build the model and say
what a stage trains (:meth:`~StageTrainer._parameters`), what one step does, how they validate and what their
log and model card hold.
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

from sr_core.datasets.patches import SceneTensors, load_scene_tensors
from sr_core.models import ModelCard

__all__ = ["StageTrainer", "cosine_lr", "format_row", "seeded_generator"]


def seeded_generator(seed: int, threads: int | None = None) -> torch.Generator:
    """Set torch's intra-op thread count (when given) and global seed; a generator seeded the same (data draws)."""
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def cosine_lr(lr: float, step: int, steps: int, warmup: int = 0) -> float:
    """Learning rate at ``step`` of ``steps``: linear warm-up over ``warmup`` steps, then a cosine decay from ``lr``
    to ``0.02 lr``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def format_row(row: dict[str, Any], digits: int = 4) -> str:
    """A log row as one JSON line, floats rounded to ``digits``."""
    return json.dumps({k: (round(v, digits) if isinstance(v, float) else v) for k, v in row.items()})


def _tensorboard(folder: Path) -> Any:
    """A TensorBoard writer into ``folder``, or None when TensorBoard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional

        return SummaryWriter(str(folder))
    except Exception:  # noqa: BLE001 - tensorboard not installed
        return None


def _progress_bar(enabled: bool, total: int, initial: int, desc: str) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, initial=initial, desc=desc)


class StageTrainer:
    """Runs the stages of a training config (``cfg.stages``, ``cfg.seed``, ``cfg.threads``, ``cfg.out_dir``,
    ``cfg.log_every``, ``cfg.val_every``, ``cfg.ckpt_every``, ``cfg.init_from``, ``cfg.model.arch`` /
    ``arch_kwargs``, ``cfg.data.root`` / ``regions``). ``progress=False`` silences the progress bar; ``log``
    receives the validated rows as JSON lines.

    A variant's ``__init__`` calls this one first (output folder, threads, seeds, counters), then builds
    ``self.model`` (an :class:`~sr_core.models.network.SRModel`), ``self.mean`` / ``self.std`` and the scenes
    (:meth:`_load_scenes`).
    """

    def __init__(self, cfg: Any, *, progress: bool = True, log: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.progress = progress
        self.log = log or (lambda s: None)
        self.gen = seeded_generator(cfg.seed, cfg.threads)
        self.model: nn.Module
        self.mean: list[float]
        self.std: list[float]
        self.train_scenes: list[SceneTensors] = []
        self.val_scenes: list[SceneTensors] = []
        self.extra: dict[str, nn.Module] = {}
        self.stage_idx = 0
        self.stage_step = 0
        self.global_step = 0
        self.best_score = -math.inf
        self.elapsed = 0.0
        self._opt: torch.optim.Optimizer | None = None
        self._d_opt: torch.optim.Optimizer | None = None
        self._resume_state: dict[str, Any] | None = None
        self._tb: Any = None

    def _load_scenes(self) -> None:
        root = self.cfg.data.root
        self.train_scenes = [load_scene_tensors(root, r) for r in self.cfg.data.regions("train")]
        self.val_scenes = [load_scene_tensors(root, r) for r in self.cfg.data.regions("val")]
        if not self.train_scenes:
            raise ValueError("data.train lists no scene")

    # ----------------------------------------------------------------- what a variant provides
    def _parameters(self, stage: Any) -> list[nn.Parameter]:
        """The parameters a stage trains (creating the modules of ``self.extra`` it needs)."""
        raise NotImplementedError

    def _discriminator_optimizer(self, stage: Any) -> torch.optim.Optimizer | None:
        """The optimiser of an adversarial stage's discriminator (None: no discriminator)."""
        return None

    def _stage_step(self, stage: Any) -> Callable[[], tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        """The training step of a stage: a function that draws a batch, computes the loss terms, optimises
        (:meth:`_optimise`) and returns ``(loss, terms)``."""
        raise NotImplementedError

    def validate(self) -> dict[str, float]:
        """Validation metrics (an empty dict without validation scenes)."""
        raise NotImplementedError

    def _val_score(self, summ: dict[str, float]) -> float:
        """The score (higher is better) that picks ``best.pt``."""
        raise NotImplementedError

    def _log_fields(self) -> list[str]:
        """The columns of ``log.csv``."""
        raise NotImplementedError

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
    def _make_optimizer(self, stage: Any) -> None:
        """AdamW over the stage's parameters (and the discriminator's optimiser); on resume inside this stage,
        the saved optimiser and extra-module states."""
        params = self._parameters(stage)
        self._opt = torch.optim.AdamW(params, lr=stage.lr, weight_decay=stage.weight_decay)
        self._d_opt = self._discriminator_optimizer(stage)
        st = self._resume_state
        if st is not None and st.get("opt") is not None and st["stage_idx"] == self.stage_idx:
            for k, sd in st.get("extra", {}).items():
                if k in self.extra:
                    self.extra[k].load_state_dict(sd)
            self._opt.load_state_dict(st["opt"])
            if self._d_opt is not None and st.get("d_opt") is not None:
                self._d_opt.load_state_dict(st["d_opt"])
        self._resume_state = None

    def _optimise(self, stage: Any, loss: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        """One optimiser step on ``loss`` (gradients clipped to norm 1); a non-finite loss stops the run."""
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite loss at step {self.global_step} (stage {stage.name!r}): {terms}; lower the "
                "stage's lr and resume from best.pt"
            )
        self._opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self._opt.step()

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

    def _validate_into(self, row: dict, *, start: bool = False) -> None:
        """Validate, add the metrics and ``val_score`` to ``row``, save ``best.pt`` on a new best score (``start``:
        the score of the warm start is the best so far whatever it is), print the row."""
        summ = self.validate()
        row.update(summ)
        row["val_score"] = score = self._val_score(summ)
        if start or score > self.best_score:
            self.best_score = score
            self.save("best.pt")
        self.log(format_row(row))

    def _summary(self, finished: bool) -> dict[str, Any]:
        return {"global_step": self.global_step, "best_score": self.best_score, "elapsed_s": self.elapsed,
                "finished": finished}

    # ----------------------------------------------------------------- run
    def run(self, max_steps: int | None = None) -> dict[str, Any]:
        """Run the remaining stages; with ``max_steps`` stop (after a checkpoint) once that many steps were done
        in this call. A warm start (``init_from``) is validated before the first step, so ``best.pt`` is never
        worse than the start."""
        self._tb = _tensorboard(self.out / "tb")
        self.model.train()
        done_here = 0
        if self.cfg.init_from and self.global_step == 0 and self.stage_step == 0 and self.stage_idx == 0 \
                and self.val_scenes:
            row = {"step": 0, "stage": "init", "lr": 0.0, "elapsed_s": 0.0}
            self._validate_into(row, start=True)
            self._log_row(row)
            self.model.train()
        while self.stage_idx < len(self.cfg.stages):
            stage = self.cfg.stages[self.stage_idx]
            self._make_optimizer(stage)
            step = self._stage_step(stage)
            bar = _progress_bar(self.progress, stage.steps, self.stage_step, stage.name)
            t_last = time.time()
            sums: dict[str, float] = {}
            n = 0
            while self.stage_step < stage.steps:
                if max_steps is not None and done_here >= max_steps:
                    self.save("last.pt")
                    if bar is not None:
                        bar.close()
                    return self._summary(finished=False)
                done_here += 1
                for g in self._opt.param_groups:
                    g["lr"] = cosine_lr(stage.lr, self.stage_step, stage.steps, stage.warmup)
                loss, terms = step()
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
                n += 1
                self.stage_step += 1
                self.global_step += 1
                now = time.time()
                self.elapsed += now - t_last
                t_last = now
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
                end = self.stage_step == stage.steps
                validate = self.stage_step % self.cfg.val_every == 0 or end
                if validate or self.stage_step % self.cfg.log_every == 0:
                    row = {"step": self.global_step, "stage": stage.name, "lr": self._opt.param_groups[0]["lr"],
                           "elapsed_s": round(self.elapsed, 1), **{k: v / n for k, v in sums.items()}}
                    sums, n = {}, 0
                    if validate:
                        self._validate_into(row)
                        t_last = time.time()  # validation time is not training time
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
        return self._summary(finished=True)

    def fit(self, *, resume: bool = False, max_steps: int | None = None) -> StageTrainer:
        """Resume from ``out_dir/last.pt`` if asked and present, run the stages (all of them, or ``max_steps``
        steps); :attr:`last_run` holds :meth:`run`'s summary. Returns the trainer."""
        last = self.out / "last.pt"
        if resume and last.is_file():
            self.load(last)
        self.last_run = self.run(max_steps=max_steps)
        return self

    # ----------------------------------------------------------------- export
    def _checkpoint_for_export(self, checkpoint: str) -> dict[str, Any]:
        """Load ``out_dir/<checkpoint>`` into the model (eval mode); the checkpoint's dict."""
        st = torch.load(self.out / checkpoint, map_location="cpu", weights_only=False)
        self.model.load_state_dict(st["model"])
        self.model.eval()
        return st

    def _card(self, st: dict[str, Any], *, bands: list[str], description: str, postprocess: dict[str, Any],
              training: dict[str, Any], validation: dict | None) -> ModelCard:
        """The model card of an exported checkpoint ``st`` (same input and output bands, 10 m input)."""
        net = self.model.net
        return ModelCard(
            name=self.cfg.model.name,
            version=self.cfg.model.version,
            arch=self.cfg.model.arch,
            arch_kwargs=self.cfg.model.arch_kwargs,
            bands=list(bands),
            out_bands=list(bands),
            scale=int(net.scale),
            input_resolution_m=10.0,
            receptive_field=int(net.receptive_field),
            mean=[float(v) for v in st["mean"]],
            std=[float(v) for v in st["std"]],
            description=description,
            postprocess=postprocess,
            training=training,
            validation=validation or {},
        )

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
