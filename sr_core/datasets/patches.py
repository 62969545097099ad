"""Wald-protocol training data from real Sentinel-2 scenes.

A training sample is built from a real scene crop (10 m bands ``hr10`` (4, P, P), 20 m bands ``hr20``
(6, P/2, P/2), reflectance):

- input ``lr`` (10, P/2, P/2): the 10 m bands degraded by 2 (to 20 m) and the 20 m bands degraded by 2 (to
  40 m) then nearest-replicated onto the 20 m grid (the model input contract, docs/decisions);
- targets: ``hr10`` on the output grid (x2 of the input grid) and ``hr20`` on the input grid (the network's
  20 m-band outputs are compared after the fixed MTF degradation by 2).

Splits are by scene (or by disjoint region of one scene, for the held-out part of the lossless L1C scene),
never by patch. Patch selection skips nodata and flat patches and favours structured ones; augmentations are
flips and 90-degree rotations (they keep radiometry).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sr_core.bands import BANDS_10M, BANDS_20M
from sr_core.degradation import degrade, model_input_10band, random_degrade
from sr_core.io import read_scene

__all__ = [
    "PatchSampler",
    "Region",
    "SceneTensors",
    "WaldBatch",
    "band_statistics",
    "crop_window",
    "load_scene_tensors",
    "make_wald_input",
    "rgbn_scale",
    "parse_scene_spec",
    "wald_scene_input",
]


@dataclass(frozen=True)
class Region:
    """A scene crop in 10 m pixels ``[y0:y1, x0:x1]`` (all multiples of 4 so the 20 m and 40 m grids nest)."""

    scene: str
    y0: int
    y1: int
    x0: int
    x1: int

    def __post_init__(self) -> None:
        for k in ("y0", "y1", "x0", "x1"):
            if getattr(self, k) % 4:
                raise ValueError(f"region {self.scene}: {k}={getattr(self, k)} must be a multiple of 4")
        if self.y1 <= self.y0 or self.x1 <= self.x0:
            raise ValueError(f"region {self.scene}: empty window {self}")


@dataclass
class SceneTensors:
    """Reflectance tensors of one scene region: ``hr10`` (4, H, W) and ``hr20`` (6, H/2, W/2), float32."""

    id: str
    level: str
    hr10: torch.Tensor
    hr20: torch.Tensor

    @property
    def shape10(self) -> tuple[int, int]:
        return int(self.hr10.shape[-2]), int(self.hr10.shape[-1])


_SPEC_RE = re.compile(r"^(?P<scene>.+)\[(?P<y0>\d+):(?P<y1>\d+),\s*(?P<x0>\d+):(?P<x1>\d+)\]$")


def parse_scene_spec(spec: Any) -> Region | str:
    """A scene given as ``"ID"``, ``"ID[y0:y1,x0:x1]"`` (10 m pixels, the id format of
    :func:`load_scene_tensors`), a ``{scene, y0, y1, x0, x1}`` dict or a :class:`Region`: returns a scene id (str)
    or a :class:`Region`."""
    if isinstance(spec, Region):
        return spec
    if isinstance(spec, dict):
        try:
            return Region(**spec)
        except TypeError as e:
            raise ValueError(f"scene entry {spec!r} must have exactly the keys scene, y0, y1, x0, x1") from e
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a scene is an id, 'ID[y0:y1,x0:x1]', a dict or a Region, got {spec!r}")
    m = _SPEC_RE.match(spec.strip())
    if m:
        return Region(m["scene"], int(m["y0"]), int(m["y1"]), int(m["x0"]), int(m["x1"]))
    if "[" in spec or "]" in spec:
        raise ValueError(f"scene {spec!r}: a window is written 'ID[y0:y1,x0:x1]' (10 m pixels)")
    return spec.strip()


#: The tasks on the four 10 m bands alone and their scale factor (input: the 10 m bands degraded by the scale).
RGBN_TASKS = {"x2_rgbn": 2, "x4_rgbn": 4}
#: ``"x2_10band"``: 10 bands -> x2; ``"sharpen_20m"``: the same Wald pairs, the 20 m bands sharpened onto the grid of
#: the 10 m bands (scale 1); then the tasks on the four 10 m bands alone.
TASK_NAMES = ("x2_10band", "sharpen_20m", *RGBN_TASKS)


def rgbn_scale(task: str) -> int | None:
    """The scale factor of a task on the four 10 m bands alone, None for the 10-band tasks; ValueError otherwise."""
    if task not in TASK_NAMES:
        raise ValueError(f"task must be one of {list(TASK_NAMES)}, got {task!r}")
    return RGBN_TASKS.get(task)


def crop_window(h: int, w: int, crop: int | None) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)``: the central window of at most ``crop`` 10 m pixels per side of an ``h x w`` scene (None:
    the whole scene from its top-left corner), sizes and offsets multiples of 4 (the 20 m and 40 m grids nest)."""
    if crop is None:
        return 0, h // 4 * 4, 0, w // 4 * 4
    ch, cw = min(h, crop) // 4 * 4, min(w, crop) // 4 * 4
    y0, x0 = (h - ch) // 8 * 4, (w - cw) // 8 * 4
    return y0, y0 + ch, x0, x0 + cw


def band_statistics(scenes: Sequence[SceneTensors], task: str = "x2_10band") -> tuple[list[float], list[float]]:
    """Per-band mean and std of reflectance over ``scenes``: the 10 m bands, then (task ``"x2_10band"``) the 20 m
    bands, the model band order of the task."""
    means, stds = [], []
    for k in range(4):
        v = torch.cat([s.hr10[k].reshape(-1) for s in scenes])
        means.append(float(v.mean()))
        stds.append(float(v.std()))
    for k in range(0 if rgbn_scale(task) else 6):
        v = torch.cat([s.hr20[k].reshape(-1) for s in scenes])
        means.append(float(v.mean()))
        stds.append(float(v.std()))
    return means, stds


def load_scene_tensors(root: str | Path, region: Region | str) -> SceneTensors:
    """Read a scene in the shared layout (``root/<scene>``) and crop it to ``region`` (whole scene if a str).

    Sizes are cropped down to multiples of 4 (10 m pixels) so that the Wald 40 m grid nests.
    """
    if isinstance(region, str):
        scene = read_scene(Path(root) / region)
        h, w = scene.bands10.shape[-2:]
        region = Region(region, 0, h - h % 4, 0, w - w % 4)
    else:
        scene = read_scene(Path(root) / region.scene)
    b10 = np.asarray(scene.bands10, dtype=np.float32)[:, region.y0 : region.y1, region.x0 : region.x1]
    b20 = np.asarray(scene.bands20, dtype=np.float32)[
        :, region.y0 // 2 : region.y1 // 2, region.x0 // 2 : region.x1 // 2
    ]
    if b10.shape[0] != 4 or b20.shape[0] != 6:
        raise ValueError(f"scene {region.scene}: needs all 10 bands (4 at 10 m, 6 at 20 m)")
    rid = region.scene if (region.y0, region.x0) == (0, 0) and b10.shape[-2:] == scene.bands10.shape[-2:] else (
        f"{region.scene}[{region.y0}:{region.y1},{region.x0}:{region.x1}]"
    )
    return SceneTensors(rid, str(scene.product_level), torch.from_numpy(b10.copy()), torch.from_numpy(b20.copy()))


def make_wald_input(lr10: torch.Tensor, lr40: torch.Tensor) -> torch.Tensor:
    """Model input on the grid of ``lr10``: ``cat(lr10, nearest x2 of lr40)`` (10 bands, model order)."""
    return model_input_10band(lr10, lr40)


@dataclass
class WaldBatch:
    """One Wald batch. Task x2_10band: ``lr`` (N, 10, P/2, P/2), ``hr10`` (N, 4, P, P), ``hr20`` (N, 6, P/2, P/2),
    ``lr10`` the degraded 10 m bands (N, 4, P/2, P/2), ``lr40`` the degraded 20 m bands (N, 6, P/4, P/4).
    Tasks x2_rgbn / x4_rgbn (scale r): ``lr`` = ``lr10`` (N, 4, P/r, P/r), ``hr10`` (N, 4, P, P), ``hr20``/``lr40``
    None."""

    lr: torch.Tensor
    hr10: torch.Tensor
    hr20: torch.Tensor | None
    lr10: torch.Tensor
    lr40: torch.Tensor | None


def _structure_score(hr10: torch.Tensor) -> float:
    g = hr10.mean(0)
    dy = (g[1:, :] - g[:-1, :]).abs().mean()
    dx = (g[:, 1:] - g[:, :-1]).abs().mean()
    return float(dx + dy)


class PatchSampler:
    """Random Wald-protocol batches from scene regions.

    Each draw: pick a region (probability proportional to area), a random crop of ``patch`` 10 m pixels at an
    offset that is a multiple of 4, reject it when it holds nodata (non-finite or all-zero pixels) or is flat
    (mean absolute gradient below ``min_structure``), keep the most structured of ``candidates`` accepted crops
    with probability proportional to ``structure ** structure_power`` (favours edges, fields, towns over water),
    augment by a random flip / 90-degree rotation, then degrade with ``degrade_fn`` (randomised by default).

    ``flat_fraction``: the share of samples replaced by a flat field (every band constant) with the spectrum of
    one 20 m pixel of the crop (its 20 m values and the mean of its 2 x 2 10 m pixels): a flat scene must come out
    flat. ``degradation_kwargs`` are those of :func:`~sr_core.degradation.random_degrade` plus ``max_phase_20m``,
    the sub-pixel phase range of the 20 m group alone (default ``max_phase``): drawn independently of the 10 m
    group's, it misregisters the two groups by up to the sum of both ranges.
    """

    def __init__(
        self,
        scenes: Sequence[SceneTensors],
        *,
        patch: int = 96,
        batch_size: int = 16,
        generator: torch.Generator,
        random_degradation: bool = True,
        degradation_kwargs: dict | None = None,
        min_structure: float = 2e-3,
        candidates: int = 4,
        structure_power: float = 0.5,
        task: str = "x2_10band",
        flat_fraction: float = 0.0,
    ) -> None:
        self.rgbn_scale = rgbn_scale(task)
        if isinstance(flat_fraction, bool) or not isinstance(flat_fraction, (int, float)) or not 0 <= flat_fraction < 1:
            raise ValueError(f"flat_fraction must be a number in [0, 1), got {flat_fraction!r}")
        self.flat_fraction = float(flat_fraction)
        self.task = task
        if patch % 4 or patch < 8:
            raise ValueError(f"patch must be a multiple of 4 and >= 8, got {patch}")
        usable = [s for s in scenes if min(s.shape10) >= patch]
        if not usable:
            raise ValueError(f"no scene region is at least {patch} px: {[s.id for s in scenes]}")
        self.scenes = usable
        self.patch = patch
        self.batch_size = batch_size
        self.gen = generator
        self.random_degradation = random_degradation
        kw = dict(degradation_kwargs or {})
        phase_20m = kw.pop("max_phase_20m", None)
        self.degradation_kwargs = kw
        self.degradation_kwargs_20m = kw if phase_20m is None else {**kw, "max_phase": phase_20m}
        self.min_structure = min_structure
        self.candidates = candidates
        self.structure_power = structure_power
        areas = torch.tensor([float(s.shape10[0] * s.shape10[1]) for s in usable])
        self._p = areas / areas.sum()

    def _randint(self, n: int) -> int:
        return int(torch.randint(n, (1,), generator=self.gen))

    def _crop(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        s = self.scenes[int(torch.multinomial(self._p, 1, generator=self.gen))]
        h, w = s.shape10
        p = self.patch
        y = 4 * self._randint((h - p) // 4 + 1)
        x = 4 * self._randint((w - p) // 4 + 1)
        hr10 = s.hr10[:, y : y + p, x : x + p]
        hr20 = s.hr20[:, y // 2 : (y + p) // 2, x // 2 : (x + p) // 2]
        if not (torch.isfinite(hr10).all() and torch.isfinite(hr20).all()):
            return None
        if (hr10.abs().sum(0) == 0).any() or (hr20.abs().sum(0) == 0).any():
            return None
        return hr10, hr20

    def draw_crop(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One accepted, augmented crop ``(hr10 (4, P, P), hr20 (6, P/2, P/2))``, not degraded."""
        accepted: list[tuple[float, torch.Tensor, torch.Tensor]] = []
        for _ in range(50 * self.candidates):
            c = self._crop()
            if c is None:
                continue
            score = _structure_score(c[0])
            if score < self.min_structure:
                continue
            accepted.append((score, *c))
            if len(accepted) == self.candidates:
                break
        if not accepted:
            raise RuntimeError("could not find a non-flat, nodata-free patch in 200 draws; lower min_structure")
        w = torch.tensor([a[0] ** self.structure_power for a in accepted])
        k = int(torch.multinomial(w / w.sum(), 1, generator=self.gen))
        _, hr10, hr20 = accepted[k]
        # augmentation: flips and rotations by 90 degrees, applied identically to both grids
        rot = self._randint(4)
        flip = self._randint(2)
        if flip:
            hr10, hr20 = hr10.flip(-1), hr20.flip(-1)
        if rot:
            hr10, hr20 = torch.rot90(hr10, rot, (-2, -1)), torch.rot90(hr20, rot, (-2, -1))
        return hr10.contiguous(), hr20.contiguous()

    def degrade_pair(self, hr10: torch.Tensor, hr20: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.random_degradation:
            lr10, _ = random_degrade(hr10, 2, generator=self.gen, bands=BANDS_10M, **self.degradation_kwargs)
            lr40, _ = random_degrade(hr20, 2, generator=self.gen, bands=BANDS_20M, **self.degradation_kwargs_20m)
        else:
            lr10 = degrade(hr10, 2, bands=BANDS_10M)
            lr40 = degrade(hr20, 2, bands=BANDS_20M)
        return lr10, lr40

    def _flat(self, hr10: torch.Tensor, hr20: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A flat field with the spectrum of one random 20 m pixel of the crop."""
        i, j = self._randint(hr20.shape[-2]), self._randint(hr20.shape[-1])
        s10 = hr10[:, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].mean((-2, -1))
        return s10[:, None, None].expand_as(hr10).clone(), hr20[:, i, j][:, None, None].expand_as(hr20).clone()

    def batch(self) -> WaldBatch:
        pairs = [self.draw_crop() for _ in range(self.batch_size)]
        if self.flat_fraction:
            u = torch.rand(len(pairs), generator=self.gen)
            pairs = [self._flat(*p) if float(v) < self.flat_fraction else p for p, v in zip(pairs, u)]
        hr10 = torch.stack([p[0] for p in pairs])
        if self.rgbn_scale:
            r = self.rgbn_scale
            if self.random_degradation:
                lr, _ = random_degrade(hr10, r, generator=self.gen, bands=BANDS_10M, **self.degradation_kwargs)
            else:
                lr = degrade(hr10, r, bands=BANDS_10M)
            return WaldBatch(lr, hr10, None, lr, None)
        hr20 = torch.stack([p[1] for p in pairs])
        lr10, lr40 = self.degrade_pair(hr10, hr20)
        return WaldBatch(make_wald_input(lr10, lr40), hr10, hr20, lr10, lr40)

    def __iter__(self) -> Iterator[WaldBatch]:
        while True:
            yield self.batch()


def wald_scene_input(scene: SceneTensors, degrade_fn=None, task: str = "x2_10band") -> WaldBatch:
    """Deterministic whole-scene Wald pair (fixed MTF degradation unless ``degrade_fn(hr, ratio, bands)`` is given)."""
    fn = degrade_fn or (lambda hr, ratio, bands: degrade(hr, ratio, bands=bands))
    hr10 = scene.hr10[None]
    r = rgbn_scale(task)
    if r:
        lr = fn(hr10, r, BANDS_10M)
        return WaldBatch(lr, hr10, None, lr, None)
    hr20 = scene.hr20[None]
    lr10 = fn(hr10, 2, BANDS_10M)
    lr40 = fn(hr20, 2, BANDS_20M)
    return WaldBatch(make_wald_input(lr10, lr40), hr10, hr20, lr10, lr40)
