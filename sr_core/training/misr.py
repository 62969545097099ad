"""MISR training: HighRes-net / RAMS on simulated revisit stacks of real Sentinel-2 crops.

A YAML config (``configs/s2sr-misr-x2.yaml``) with ``kind: misr``; ``s2sr train CONFIG`` dispatches here. The
stage loop, checkpoints (``last.pt``/``best.pt`` with optimiser and RNG state), ``--resume``, ``--max-steps``,
``log.csv`` and the warm-up + cosine learning rate are those of :class:`sr_core.training.loop.StageTrainer`; the
crops are those of :class:`sr_core.datasets.patches.PatchSampler` (structured, nodata-free, flips/rotations); this
module adds the sample (a stack from :func:`sr_core.datasets.stacks.simulate_stack`), the losses and the validation.

Sample: an HR crop of ``patch`` 10 m pixels of the model bands; per stack the band MTFs are jittered by
``mtf_jitter`` (relative, one draw per stack: same sensor for all frames); ``frames`` revisits with the stack
parameters of ``data.stack``; anchor first (:func:`anchor_first`); cloudy pixels filled with the temporal median
(:func:`fill_invalid`); then up to ``drop_frames`` non-anchor frames per stack are marked unusable (whole-frame
clouds). The network sees ``(filled - mean) / std`` and the frame mask; ``sr = net(...) * std + mean``.

Loss terms (stage ``losses``): ``l1`` (L1 to the HR target), ``cl1`` / ``cmse`` (brightness-bias corrected, shift
search ``loss_kwargs``: ``border``, ``max_shift``), ``consistency`` (L1 between ``degrade(sr)`` and the anchor frame
on its clear pixels: radiometric consistency to the anchor), ``shiftnet`` (cL1 after a jointly trained ShiftNet
registration of ``sr`` onto ``hr``, :func:`sr_core.archs.shiftnet.shift_corrected_loss`). Pixels clear in no frame
are left out of every term.

Validation: fixed simulated stacks (seed ``val_seed``) of the validation scenes; score = mean over stacks and
bands of cPSNR(MISR) - cPSNR(bicubic of the anchor) in dB.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from sr_core.archs import get_arch
from sr_core.archs._common import bicubic_upsample
from sr_core.archs.shiftnet import ShiftNet, shift_corrected_loss
from sr_core.bands import BANDS_10M, BANDS_20M
from sr_core.bands import mtf as band_mtf
from sr_core.bands import normalize_band_names
from sr_core.datasets.patches import PatchSampler, Region, band_statistics
from sr_core.datasets.stacks import anchor_first, fill_invalid, simulate_stack, stack_input_10band
from sr_core.degradation import degrade
from sr_core.losses import cl1_loss, cmse_loss, consistency_loss, l1_loss
from sr_core.metrics import cpsnr
from sr_core.models import ModelCard, load_torch_model
from sr_core.models.export import add_onnx_file, export_onnx, save_model_package
from sr_core.models.network import SRModel
from sr_core.training.config import parse_regions, parse_sections, read_yaml_mapping, resolve_config_paths
from sr_core.training.loop import StageTrainer

__all__ = [
    "MISR_LOSS_TERMS",
    "MISRDataConfig",
    "MISRStageConfig",
    "MISRTrainConfig",
    "MISRTrainer",
    "is_misr_config",
    "make_batch",
    "misr_forward",
    "train_misr",
]

MISR_LOSS_TERMS = ("l1", "cl1", "cmse", "consistency", "shiftnet")


@dataclass
class MISRModelConfig:
    arch: str
    arch_kwargs: dict[str, Any]
    name: str = "s2sr-misr-x2"
    version: str = "1.0.0"
    bands: list[str] = field(default_factory=lambda: list(BANDS_10M))
    # misr_sisr: the single-image package whose weights fill ``net.sisr`` (frozen) and whose band statistics,
    # input/output bands and post-processing the MISR package takes over
    sisr_from: str | None = None


@dataclass
class MISRDataConfig:
    root: str = "../shared/data/s2"
    train: list[Any] = field(default_factory=list)
    val: list[Any] = field(default_factory=list)
    patch: int = 64  # HR (10 m) pixels; the frames are patch / scale
    batch_size: int = 8
    frames: int = 8
    mtf_jitter: float = 0.1
    drop_frames: int = 3  # at most this many non-anchor frames per stack marked unusable
    stack: dict[str, Any] = field(default_factory=dict)  # keyword arguments of simulate_stack
    min_structure: float = 2e-3
    val_patch: int = 96
    val_stacks: int = 4  # per validation scene
    val_seed: int = 1234

    def regions(self, which: str) -> list[Region | str]:
        return parse_regions(getattr(self, which), which)


@dataclass
class MISRStageConfig:
    name: str
    steps: int
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: int = 50
    losses: dict[str, float] = field(default_factory=lambda: {"l1": 1.0})
    loss_kwargs: dict[str, Any] = field(default_factory=lambda: {"border": 2, "max_shift": 0})
    batch_size: int | None = None
    patch: int | None = None
    gan: dict[str, Any] = field(default_factory=dict)  # accepted as in single-image stages; no discriminator here

    def __post_init__(self) -> None:
        unknown = sorted(set(self.losses) - set(MISR_LOSS_TERMS))
        if unknown:
            raise ValueError(f"stage {self.name!r}: unknown MISR loss terms {unknown}; valid: {list(MISR_LOSS_TERMS)}")
        if self.steps < 0:
            raise ValueError(f"stage {self.name!r}: steps must be >= 0, got {self.steps}")


@dataclass
class MISRTrainConfig:
    model: MISRModelConfig
    data: MISRDataConfig
    stages: list[MISRStageConfig]
    kind: str = "misr"
    seed: int = 0
    out_dir: str = "runs/misr"
    threads: int | None = None
    log_every: int = 25
    val_every: int = 200
    ckpt_every: int = 100
    init_from: str | None = None  # a training checkpoint (last.pt / best.pt) to warm-start the network

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: Path | None = None) -> MISRTrainConfig:
        mcfg, dcfg, stages, rest = parse_sections(cls, data, MISRModelConfig, MISRDataConfig, MISRStageConfig)
        if rest.get("kind", "misr") != "misr":
            raise ValueError(f"kind must be 'misr' for a MISR config, got {rest.get('kind')!r}")
        mcfg.bands = list(normalize_band_names(mcfg.bands))
        cfg = cls(model=mcfg, data=dcfg, stages=stages, **rest)
        resolve_config_paths(cfg, base_dir)
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path) -> MISRTrainConfig:
        return cls.from_dict(read_yaml_mapping(path), base_dir=Path.cwd())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def is_misr_config(path: str | Path) -> bool:
    """True when the YAML file at ``path`` says ``kind: misr``."""
    with open(path) as f:
        data = yaml.safe_load(f)
    return isinstance(data, dict) and data.get("kind") == "misr"


# ------------------------------------------------------------------------------------------------ samples


def make_batch(
    hr: torch.Tensor,
    *,
    generator: torch.Generator,
    bands: list[str],
    frames: int,
    scale: int,
    stack: dict[str, Any],
    mtf_jitter: float = 0.0,
    drop_frames: int = 0,
    hr20: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Simulated stacks of the HR crops ``hr`` ``(N, C, H, W)``, anchor first, ready for the network.

    Returns ``lr`` ``(N, K, C, h, w)`` (cloudy pixels filled), ``frame_mask`` ``(N, K)`` bool, ``pixel_mask``
    ``(N, K, h, w)`` (clear pixels), ``any_valid`` ``(N, h, w)``, ``anchor`` ``(N, C, h, w)`` (NaN where cloudy),
    ``hr``. Draw order per sample: MTF jitter, the stack (:func:`simulate_stack`), then the dropped frames.

    ``hr20`` ``(N, 6, H/2, W/2)`` (the crops' 20 m bands, ``BANDS_20M`` order): the stack gets the 10-band model
    input layout (:func:`sr_core.degradation.model_input_10band`): every frame's channels ``C..C+5`` hold the
    anchor's 20 m bands, degraded by ``scale`` (the Wald input of the single-image model, with the anchor's noise
    level, drawn after the dropped frames) and nearest-replicated onto the frame grid. The single-image part of a
    ``misr_sisr`` network reads them on the anchor only; ``anchor`` keeps the ``C`` fused bands.
    """
    base = torch.tensor([band_mtf(b) for b in bands], dtype=torch.float64)
    lrs, masks, anchors, noise = [], [], [], []
    for i in range(hr.shape[0]):
        u = (torch.rand(len(bands), generator=generator, dtype=torch.float64) * 2 - 1) * mtf_jitter
        m = (base * (1 + u)).clamp(0.02, 0.98)
        st = simulate_stack(hr[i], generator=generator, frames=frames, ratio=scale, mtf=m.tolist(), **stack)
        lrs.append(st.lr)
        masks.append(st.mask)
        anchors.append(st.anchor)
        noise.append(float(st.noise_std[st.anchor]))
    lr, pmask = anchor_first(torch.stack(lrs), torch.stack(masks), torch.tensor(anchors))
    anchor = lr[:, 0].clone()
    filled, fmask, any_valid = fill_invalid(lr, pmask)
    if drop_frames and frames > 1:
        for i in range(hr.shape[0]):
            nd = int(torch.randint(min(drop_frames, frames - 1) + 1, (1,), generator=generator))
            if nd:
                perm = torch.randperm(frames - 1, generator=generator)[:nd] + 1
                fmask[i, perm] = False
        # pixels clear only in dropped frames: fill again from the remaining frames
        pm = pmask & fmask[:, :, None, None]
        pm[:, 0] = pmask[:, 0]
        filled, _, any_valid = fill_invalid(torch.where(pm[:, :, None], lr, torch.nan), pm)
    if hr20 is not None:
        if hr20.ndim != 4 or hr20.shape[0] != hr.shape[0] or hr20.shape[1] != len(BANDS_20M) or \
                tuple(hr20.shape[-2:]) != (hr.shape[-2] // 2, hr.shape[-1] // 2):
            raise ValueError(f"hr20 must be (N, 6, H/2, W/2) = {(hr.shape[0], 6, hr.shape[-2] // 2, hr.shape[-1] // 2)}"
                             f", got {tuple(hr20.shape)}")
        lr40 = torch.cat([degrade(hr20[i : i + 1].to(hr.dtype), scale, bands=list(BANDS_20M), noise_std=noise[i],
                                  generator=generator) for i in range(hr.shape[0])])
        filled = stack_input_10band(filled, lr40)  # 40 m -> the 20 m frame grid, in every frame
    return {"lr": filled, "frame_mask": fmask, "pixel_mask": pmask, "any_valid": any_valid, "anchor": anchor,
            "hr": hr}


def misr_forward(model: SRModel, lr: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """``net((lr - mean) / std, frame_mask) * std + mean`` for a wrapped multi-image network."""
    return model.net((lr - model.mean) / model.std, frame_mask) * model.out_std + model.out_mean


def _hr_mask(any_valid: torch.Tensor, scale: int) -> torch.Tensor:
    return any_valid.repeat_interleave(scale, -2).repeat_interleave(scale, -1)[:, None]


def misr_losses(
    sr: torch.Tensor, batch: dict[str, torch.Tensor], weights: dict[str, float], *, scale: int,
    bands: list[str], loss_kwargs: dict[str, Any], shiftnet: nn.Module | None = None,
) -> dict[str, torch.Tensor]:
    """The weighted terms of a stage (see the module docstring); zero-weight terms are not computed."""
    hr = batch["hr"]
    m = _hr_mask(batch["any_valid"], scale).expand_as(hr)
    out: dict[str, torch.Tensor] = {}
    if weights.get("l1", 0):
        out["l1"] = l1_loss(sr, hr, mask=m)
    if weights.get("cl1", 0):
        out["cl1"] = cl1_loss(sr, hr, mask=m, **loss_kwargs)
    if weights.get("cmse", 0):
        out["cmse"] = cmse_loss(sr, hr, mask=m, **loss_kwargs)
    if weights.get("consistency", 0):
        a = batch["anchor"]
        am = batch["pixel_mask"][:, 0:1].expand_as(a)
        out["consistency"] = consistency_loss(sr, torch.nan_to_num(a), scale, bands=bands, mask=am)
    if weights.get("shiftnet", 0):
        if shiftnet is None:
            raise ValueError("loss 'shiftnet' needs the ShiftNet module")
        kw = {"border": int(loss_kwargs.get("border", 2)), "max_shift": 0}
        out["shiftnet"] = shift_corrected_loss(sr, hr, shiftnet, lambda a, b, mask=None: cl1_loss(a, b, mask=mask, **kw),
                                               mask=m[:, :1], border=int(loss_kwargs.get("border", 2)))
    return out


# ------------------------------------------------------------------------------------------------ trainer


class MISRTrainer(StageTrainer):
    """:class:`sr_core.training.loop.StageTrainer` for multi-image networks on simulated stacks."""

    def __init__(self, cfg: MISRTrainConfig, *, progress: bool = True, log: Callable[[str], None] | None = None):
        super().__init__(cfg, progress=progress, log=log)
        bands = list(cfg.model.bands)
        if bands not in (list(BANDS_10M), list(BANDS_10M + BANDS_20M)):
            raise ValueError(f"model.bands: MISR training takes the 10 m bands {list(BANDS_10M)} or the 10-band "
                             f"model input {list(BANDS_10M + BANDS_20M)}, got {bands}")
        self.bands = bands
        self.fused = list(BANDS_10M)  # the bands simulated as revisits and scored
        self.ten_band = len(bands) == 10
        self._load_scenes()
        self.task = "misr"
        self.mean, self.std = band_statistics(self.train_scenes, "x2_10band" if self.ten_band else "x4_rgbn")
        net = get_arch(cfg.model.arch, **cfg.model.arch_kwargs)
        if getattr(net, "in_channels", None) != len(bands):
            raise ValueError(f"arch_kwargs need in_channels={len(bands)} (model.bands), got {net.in_channels}")
        if self.ten_band and cfg.model.arch != "misr_sisr":
            raise ValueError(f"model.bands: 10 bands need arch 'misr_sisr' (the revisits' 20 m bands are not "
                             f"simulated), got {cfg.model.arch!r}")
        self.sisr_card = None
        if cfg.model.sisr_from:
            self.mean, self.std = self._load_sisr(net, cfg.model.sisr_from)
        self.scale = int(net.scale)
        self.model = SRModel(net, self.mean, self.std, list(range(len(bands))))
        if cfg.init_from:
            st = torch.load(cfg.init_from, map_location="cpu", weights_only=False)
            self.mean, self.std = list(st["mean"]), list(st["std"])
            self.model.load_state_dict(st["model"])
        self._val_batches: list[dict[str, torch.Tensor]] | None = None

    def _load_sisr(self, net: nn.Module, name: str) -> tuple[list[float], list[float]]:
        """Fill ``net.sisr`` with a single-image package's weights and freeze it; its band statistics."""
        if self.cfg.model.arch != "misr_sisr":
            raise ValueError(f"model.sisr_from needs arch 'misr_sisr', got {self.cfg.model.arch!r}")
        sm, card = load_torch_model(name)
        kw = self.cfg.model.arch_kwargs
        want = dict(kw.get("sisr_kwargs") or {})
        if card.arch != kw.get("sisr_arch", "s2fast") or card.arch_kwargs != want:
            raise ValueError(f"model.sisr_from {name!r} is {card.arch} {card.arch_kwargs}; arch_kwargs say "
                             f"sisr_arch={kw.get('sisr_arch', 's2fast')!r} sisr_kwargs={want}")
        if list(card.bands) != self.bands or list(card.out_bands) != self.bands:
            raise ValueError(f"model.sisr_from {name!r} has bands {card.bands} -> {card.out_bands}, "
                             f"model.bands is {self.bands}")
        net.sisr.load_state_dict(sm.net.state_dict())
        net.sisr.requires_grad_(False)
        self.sisr_card = card
        return [float(v) for v in card.mean], [float(v) for v in card.std]

    def _make_batch(self, hr: torch.Tensor, hr20: torch.Tensor, generator: torch.Generator, *, mtf_jitter: float,
                    drop_frames: int) -> dict[str, torch.Tensor]:
        d = self.cfg.data
        return make_batch(hr, generator=generator, bands=self.fused, frames=d.frames, scale=self.scale,
                          stack=d.stack, mtf_jitter=mtf_jitter, drop_frames=drop_frames,
                          hr20=hr20 if self.ten_band else None)

    def _batch(self, sampler: PatchSampler, generator: torch.Generator, n: int) -> dict[str, torch.Tensor]:
        pairs = [sampler.draw_crop() for _ in range(n)]
        hr, hr20 = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
        d = self.cfg.data
        return self._make_batch(hr, hr20, generator, mtf_jitter=d.mtf_jitter, drop_frames=d.drop_frames)

    def validation_batches(self) -> list[dict[str, torch.Tensor]]:
        """Fixed validation stacks (``val_stacks`` per scene, seed ``val_seed``, no dropped frames)."""
        if self._val_batches is None:
            g = torch.Generator().manual_seed(self.cfg.data.val_seed)
            out = []
            for sc in self.val_scenes:
                sampler = PatchSampler([sc], patch=self.cfg.data.val_patch, batch_size=1, generator=g,
                                       random_degradation=False, min_structure=self.cfg.data.min_structure,
                                       task="x4_rgbn")
                pairs = [sampler.draw_crop() for _ in range(self.cfg.data.val_stacks)]
                hr, hr20 = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
                out.append(self._make_batch(hr, hr20, g, mtf_jitter=0.0, drop_frames=0))
            self._val_batches = out
        return self._val_batches

    def validate(self) -> dict[str, float]:
        if not self.val_scenes:
            return {}
        self.model.eval()
        gains, psnrs = [], []
        with torch.no_grad():
            for b in self.validation_batches():
                sr = misr_forward(self.model, b["lr"], b["frame_mask"])[:, : len(self.fused)]
                bic = bicubic_upsample(b["lr"][:, 0, : len(self.fused)], self.scale)
                m = _hr_mask(b["any_valid"], self.scale).expand_as(b["hr"])
                p_sr = cpsnr(sr, b["hr"], data_range=1.0, mask=m, border=4, max_shift=1)
                p_bi = cpsnr(bic, b["hr"], data_range=1.0, mask=m, border=4, max_shift=1)
                gains.append((p_sr - p_bi).mean(dim=1))
                psnrs.append(p_sr.mean(dim=1))
        self.model.train()
        g = torch.cat(gains)
        return {"val/cpsnr_db": float(torch.cat(psnrs).mean()), "val/gain_db": float(g.mean()),
                "val/min_gain_db": float(g.min())}

    def _val_score(self, summ: dict[str, float]) -> float:
        return summ.get("val/gain_db", 0.0)

    def _log_fields(self) -> list[str]:
        return ["step", "stage", "lr", "elapsed_s", *MISR_LOSS_TERMS, "val/cpsnr_db", "val/gain_db",
                "val/min_gain_db", "val_score"]

    def _parameters(self, stage: MISRStageConfig) -> list[nn.Parameter]:
        params = list(self.model.parameters())
        if stage.losses.get("shiftnet", 0):
            self.extra.setdefault("shiftnet", ShiftNet(in_channels=len(self.fused)))
            params += list(self.extra["shiftnet"].parameters())
        return params

    def _stage_step(self, stage: MISRStageConfig) -> Callable[[], tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        sampler = PatchSampler(self.train_scenes, patch=stage.patch or self.cfg.data.patch, batch_size=1,
                               generator=self.gen, random_degradation=False,
                               min_structure=self.cfg.data.min_structure, task="x4_rgbn")
        bs = stage.batch_size or self.cfg.data.batch_size

        def step() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            batch = self._batch(sampler, self.gen, bs)
            sr = misr_forward(self.model, batch["lr"], batch["frame_mask"])[:, : len(self.fused)]
            terms = misr_losses(sr, batch, stage.losses, scale=self.scale, bands=self.fused,
                                loss_kwargs=stage.loss_kwargs, shiftnet=self.extra.get("shiftnet"))
            loss = sum(stage.losses[k] * v for k, v in terms.items())
            self._optimise(stage, loss, terms)
            return loss, terms

        return step

    def export(self, out_dir: str | Path, *, checkpoint: str = "best.pt", description: str = "",
               validation: dict | None = None, training_extra: dict | None = None) -> ModelCard:
        """Model package: ``model.pt``, ``model.onnx`` (inputs ``lr`` (N, K, C, H, W), ``mask`` (N, K) float 0/1,
        ``K = data.frames`` fixed), ``card.json``/``card.md``."""
        st = self._checkpoint_for_export(checkpoint)
        d = self.cfg.data
        sisr = self.sisr_card
        training = {
            "kind": "misr",
            "frames": d.frames,
            "anchor": "frame 0 (the clearest revisit unless chosen)",
            **({"sisr_from": {"name": sisr.name, "version": sisr.version, "sha256": dict(sisr.sha256)}}
               if sisr is not None else {}),
            **self._training_record(st, checkpoint),
            **(training_extra or {}),
        }
        card = self._card(st, bands=self.bands, description=description or self._default_description(d.frames),
                          postprocess=dict(sisr.postprocess) if sisr is not None else {}, training=training,
                          validation=validation)
        card = save_model_package(self.model, card, out_dir, export_onnx_file=False)
        export_misr_onnx(self.model, Path(out_dir) / "model.onnx", frames=d.frames)
        return add_onnx_file(card, out_dir)

    def _default_description(self, frames: int) -> str:
        scale = self.model.net.scale
        if self.ten_band:
            sis = (f"the single-image model {self.sisr_card.name} {self.sisr_card.version}" if self.sisr_card
                   else "a single-image network")
            return (f"Multi-image x{scale} super-resolution of the 10 bands (10 m and 20 m) from up to {frames} "
                    f"revisits (frame 0 = anchor: output on its grid and in its radiometry): {sis} on the anchor, "
                    f"plus a residual fused from the revisits' 10 m bands (B02, B03, B04, B08) outside the anchor's "
                    f"passband ({self.cfg.model.arch}); the 20 m bands are the single-image output. Fusion trained "
                    f"on simulated revisit stacks of real Sentinel-2 crops.")
        return (f"Multi-image x{scale} super-resolution of the 10 m bands (B02, B03, B04, B08) from up to "
                f"{frames} revisits (frame 0 = anchor: output on its grid and in its radiometry), "
                f"{self.cfg.model.arch}, trained on simulated revisit stacks of real Sentinel-2 crops.")


class _MISRGraph(nn.Module):
    def __init__(self, m: SRModel) -> None:
        super().__init__()
        self.m = m

    def forward(self, lr: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return misr_forward(self.m, lr, mask)


def export_misr_onnx(model: SRModel, path: str | Path, *, frames: int, size: int = 24) -> Path:
    """ONNX file of a wrapped multi-image network: inputs ``lr`` ``(N, frames, C, H, W)`` reflectance and
    ``mask`` ``(N, frames)`` float 0/1; output ``sr``; batch and spatial sizes dynamic, ``frames`` fixed."""
    c = int(model.mean.shape[1])
    example = (torch.zeros(1, frames, c, size, size), torch.ones(1, frames))
    export_onnx(_MISRGraph(model.eval()), path, example, input_names=("lr", "mask"), output_names=("sr",),
                dynamic_dims={"lr": {0: "batch", 3: "lr_height", 4: "lr_width"}, "mask": {0: "batch"},
                              "sr": {0: "batch", 2: "sr_height", 3: "sr_width"}})
    return Path(path)


def train_misr(cfg: MISRTrainConfig, *, resume: bool = False, progress: bool = True,
               log: Callable[[str], None] | None = print, max_steps: int | None = None) -> MISRTrainer:
    """Build a :class:`MISRTrainer`, resume from ``out_dir/last.pt`` if asked and present, run the stages."""
    return MISRTrainer(cfg, progress=progress, log=log).fit(resume=resume, max_steps=max_steps)
