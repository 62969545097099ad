"""Training configuration: a YAML file whose keys are constructor arguments.

Example (``configs/s2sr-x2-10band.yaml``)::

    seed: 0
    out_dir: runs/s2sr-x2-10band
    model:
      name: s2sr-x2-10band
      arch: carn                      # any name of `s2sr archs`
      arch_kwargs: {in_channels: 10, scale: 2, num_features: 32}
    data:
      root: ../shared/data/s2
      train: [S2A_MSIL1C_20170216_T33UUU, {scene: S2A_MSIL1C_20170527_T33UUB, y0: 0, y1: 344, x0: 0, x1: 600}]
      val: [s2sharp_coastalA]
      patch: 96
      batch_size: 16
      random_degradation: true
      degradation: {mtf_jitter: 0.2, max_phase: 0.5}
    stages:
      - {name: pretrain, steps: 4000, lr: 2.0e-3, losses: {l1: 1.0}}
      - {name: finetune, steps: 1000, lr: 2.0e-4, losses: {l1: 1.0, consistency: 0.1}}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sr_core.datasets.patches import Region, parse_scene_spec
from sr_core.evaluation.wald import DEGRADATIONS

__all__ = [
    "COARSE_OPS",
    "LOSS_TERMS",
    "TASKS",
    "TASK_KEYS",
    "DataConfig",
    "ModelConfig",
    "StageConfig",
    "TrainConfig",
    "parse_regions",
    "parse_sections",
    "read_yaml_mapping",
    "resolve_config_paths",
]

#: Loss terms a stage may weight (see sr_core.training.sisr):
LOSS_TERMS = (
    "l1",  # L1 on 10 m bands (output grid) + L1 on the MTF-degraded 20 m-band outputs (input grid)
    "ssim",  # 1 - SSIM on the same pairs
    "consistency",  # L1(degrade(sr), lr): radiometric consistency with the input
    "colour",  # colour-matching head objective (0.9 consistency + 0.1 L1 after the head)
    "gan",  # relativistic average GAN with a U-Net discriminator on high-pass inputs
    "dice",  # task-driven Dice(task(sr), task(hr)) through a frozen task network (stage.task.model)
    "task_feature",  # feature-space variant: L1 between the frozen task network's features of sr and hr
)

#: Operators of a stage's ``coarse_ops``: the 5 m output of the 20 m bands brought onto their 20 m truth.
COARSE_OPS = ("gaussian", "physical", "area")

#: Keys of a stage's ``task`` mapping (task-driven training, sr_core.tasks):
#: model: task network (folder / task_net.pt / shipped name, sr_core.tasks.nets.load_task_net);
#: tasks: names of the task channels used by "dice" and by the selection (default: all);
#: hard: Dice target = thresholded task(hr) instead of its probabilities; layers: feature layers of
#: "task_feature" (default enc0, enc1, enc2); select: task-aware patch selection, draw select x batch_size
#: patches and keep the batch_size with the densest task-mask boundaries (1 = off); pooled: one Dice per task over
#: the whole batch instead of one per patch (sr_core.losses.dice_loss).
TASK_KEYS = ("model", "tasks", "hard", "layers", "select", "pooled")


def parse_regions(items: list[Any], which: str) -> list[Region | str]:
    """Config entries of ``data.<which>``: scene ids or ``ID[y0:y1,x0:x1]`` windows (str), ``{scene, y0, y1, x0,
    x1}`` windows or :class:`Region` objects (:func:`~sr_core.datasets.patches.parse_scene_spec`)."""
    out: list[Region | str] = []
    for item in items:
        if not isinstance(item, (str, dict, Region)):
            raise ValueError(f"data.{which}: entries are scene ids or {{scene, y0, y1, x0, x1}}, got {item!r}")
        out.append(parse_scene_spec(item))
    return out


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A training config file: a YAML mapping (``ValueError`` otherwise)."""
    with open(path) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a training config is a YAML mapping")
    return data


def resolve_config_paths(cfg: Any, base_dir: Path | None) -> None:
    """Make ``cfg.data.root`` and ``cfg.out_dir`` absolute, relative paths taken from ``base_dir`` (None: as given)."""
    if base_dir is None:
        return
    if not Path(cfg.data.root).is_absolute():
        cfg.data.root = str((base_dir / cfg.data.root).resolve())
    if not Path(cfg.out_dir).is_absolute():
        cfg.out_dir = str((base_dir / cfg.out_dir).resolve())


def _check_keys(kind: str, data: dict[str, Any], cls: type) -> None:
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - valid)
    if unknown:
        raise ValueError(f"unknown {kind} config keys {unknown}; valid keys: {sorted(valid)}")


def parse_sections(cls: type, data: dict[str, Any], model_cls: type, data_cls: type, stage_cls: type) -> tuple[Any, Any, list[Any], dict[str, Any]]:
    """Check the keys of a training config mapping against the dataclasses of its sections and build them:
    ``(model, data, stages, rest)``, ``rest`` the other top-level keys (constructor arguments of ``cls``)."""
    data = dict(data)
    _check_keys("top-level", data, cls)
    m = data.pop("model")
    _check_keys("model", m, model_cls)
    d = data.pop("data", {})
    _check_keys("data", d, data_cls)
    stages = []
    for s in data.pop("stages"):
        _check_keys("stage", s, stage_cls)
        stages.append(stage_cls(**s))
    dcfg = data_cls(**d)
    return model_cls(**m), dcfg, stages, data


@dataclass
class ModelConfig:
    arch: str
    arch_kwargs: dict[str, Any]
    name: str = "s2sr-x2-10band"
    version: str = "1.0.0"
    bands: list[str] | None = None  # default: the bands of data.task
    # written into the exported card: post-processing of the Predictor (sr_core.models.ModelCard.postprocess)
    postprocess: dict[str, Any] = field(default_factory=dict)


#: Training tasks: the Wald protocol for each kind of model.
TASKS = {
    # 10 bands on the 10 m grid (20 m bands nearest-replicated) -> x2; input bands = output bands = MODEL_BANDS_10
    "x2_10band": {"scale": 2, "bands": ("B02", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12")},
    # the same input, the 20 m bands sharpened onto the 10 m grid (scale 1); the 10 m bands pass through
    "sharpen_20m": {"scale": 1, "bands": ("B02", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12")},
    # the 10 m bands only -> x2 (10 m -> 5 m)
    "x2_rgbn": {"scale": 2, "bands": ("B02", "B03", "B04", "B08")},
    # the 10 m bands only -> x4 (10 m -> 2.5 m)
    "x4_rgbn": {"scale": 4, "bands": ("B02", "B03", "B04", "B08")},
}


@dataclass
class DataConfig:
    root: str = "../shared/data/s2"
    task: str = "x2_10band"
    train: list[Any] = field(default_factory=list)
    val: list[Any] = field(default_factory=list)
    patch: int = 96
    batch_size: int = 16
    random_degradation: bool = True
    degradation: dict[str, Any] = field(default_factory=dict)
    min_structure: float = 2e-3
    flat_fraction: float = 0.0  # share of flat-field samples (sr_core.datasets.patches.PatchSampler)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"data.task must be one of {sorted(TASKS)}, got {self.task!r}")

    def regions(self, which: str) -> list[Region | str]:
        return parse_regions(getattr(self, which), which)


@dataclass
class StageConfig:
    name: str
    steps: int
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: int = 100
    losses: dict[str, float] = field(default_factory=lambda: {"l1": 1.0})
    batch_size: int | None = None
    patch: int | None = None
    gan: dict[str, Any] = field(default_factory=dict)  # discriminator kwargs, d_lr, highpass sigma
    dynamic_weighting: dict[str, float] | None = None  # proportions relative to l1, rescaled each "epoch"
    epoch_steps: int = 200
    task: dict[str, Any] = field(default_factory=dict)  # task-driven terms / selection, keys TASK_KEYS
    # fine-tune only the parameters whose names start with one of these prefixes (e.g. "net.tail"); None = all
    trainable: list[str] | None = None
    # output bands whose rows of the sub-pixel tail conv stay fixed (S2Fast-style `net.tail`; needs trainable)
    freeze_bands: list[str] | None = None
    # task x2_10band: the operators that bring the 5 m output of the 20 m bands onto their 20 m truth in the loss,
    # one drawn per step (COARSE_OPS): "gaussian" (the MTF Gaussian by 2), "physical" (the 10 -> 20 m system step),
    # "area" (the 2 x 2 block mean)
    coarse_ops: list[str] = field(default_factory=lambda: ["gaussian"])

    def __post_init__(self) -> None:
        unknown = sorted(set(self.losses) - set(LOSS_TERMS))
        if unknown:
            raise ValueError(f"stage {self.name!r}: unknown loss terms {unknown}; valid: {list(LOSS_TERMS)}")
        bad = sorted(set(self.task) - set(TASK_KEYS))
        if bad:
            raise ValueError(f"stage {self.name!r}: unknown task keys {bad}; valid: {list(TASK_KEYS)}")
        sel = self.task.get("select", 1)
        if isinstance(sel, bool) or not isinstance(sel, int) or sel < 1:
            raise ValueError(f"stage {self.name!r}: task.select must be an int >= 1, got {sel!r}")
        needs = any(self.losses.get(k, 0) for k in ("dice", "task_feature")) or sel > 1
        if needs and not self.task.get("model"):
            raise ValueError(f"stage {self.name!r}: the dice / task_feature terms and task.select need task.model")
        if self.steps < 0:
            raise ValueError(f"stage {self.name!r}: steps must be >= 0, got {self.steps}")
        if not self.coarse_ops or any(o not in COARSE_OPS for o in self.coarse_ops):
            raise ValueError(f"stage {self.name!r}: coarse_ops must be a non-empty list of {list(COARSE_OPS)}, "
                             f"got {self.coarse_ops!r}")


@dataclass
class TrainConfig:
    model: ModelConfig
    data: DataConfig
    stages: list[StageConfig]
    seed: int = 0
    out_dir: str = "runs/train"
    threads: int | None = None
    log_every: int = 25
    val_every: int = 500
    ckpt_every: int = 250
    val_crop: int | None = 256  # validate on at most this many 10 m px per side per scene (None = whole)
    # operators of the validation (sr_core.evaluation.wald.DEGRADATIONS); the checkpoint score is the worst of them
    val_degradations: list[str] = field(default_factory=lambda: ["mtf_gaussian"])
    # warm start: network weights (and normalisation) of a model package folder, a shipped model name or a
    # training checkpoint; the architecture may add parameter-free layers (e.g. the consistency projection)
    init_from: str | None = None

    def __post_init__(self) -> None:
        bad = [d for d in self.val_degradations if d not in DEGRADATIONS] if self.val_degradations else ["(none)"]
        if bad:
            raise ValueError(f"val_degradations {bad} are not evaluation operators {sorted(DEGRADATIONS)}")
        want = list(TASKS[self.data.task]["bands"])
        if list(self.model.bands) != want:
            raise ValueError(f"model.bands {self.model.bands} do not fit data.task {self.data.task!r}: expected {want}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: Path | None = None) -> TrainConfig:
        mcfg, dcfg, stages, rest = parse_sections(cls, data, ModelConfig, DataConfig, StageConfig)
        if mcfg.bands is None:
            mcfg.bands = list(TASKS[dcfg.task]["bands"])
        cfg = cls(model=mcfg, data=dcfg, stages=stages, **rest)
        resolve_config_paths(cfg, base_dir)
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        data = read_yaml_mapping(path)
        # relative paths in a config are relative to the current directory (like every CLI path)
        return cls.from_dict(data, base_dir=Path.cwd())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
