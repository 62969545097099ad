"""The shared stage loop (sr_core.training.loop): learning-rate schedule, seeding, log lines, the loop's contract
with a variant (validation schedule, best.pt, warm start, max_steps), on a tiny synthetic variant."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from sr_core.training.loop import StageTrainer, cosine_lr, format_row, seeded_generator


def test_cosine_lr_warmup_then_decay_to_two_percent():
    assert cosine_lr(1.0, 0, 10, warmup=2) == pytest.approx(0.5)
    assert cosine_lr(1.0, 1, 10, warmup=2) == pytest.approx(1.0)
    assert cosine_lr(1.0, 2, 10, warmup=2) == pytest.approx(1.0)
    assert cosine_lr(1.0, 6, 10, warmup=2) == pytest.approx(0.02 + 0.98 * 0.5)  # halfway through the decay
    assert cosine_lr(2.0, 10, 10) == pytest.approx(0.04)
    assert cosine_lr(2.0, 50, 10) == pytest.approx(0.04)  # past the end: stays at the floor


def test_seeded_generator_seeds_torch_and_the_generator():
    g = seeded_generator(7)
    a = torch.rand(3), torch.rand(3, generator=g)
    g = seeded_generator(7)
    b = torch.rand(3), torch.rand(3, generator=g)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_format_row_rounds_floats_only():
    assert json.loads(format_row({"step": 3, "stage": "a", "loss": 0.123456789}, 4)) == {
        "step": 3, "stage": "a", "loss": 0.1235}


@dataclass
class _Stage:
    name: str
    steps: int
    lr: float = 0.1
    weight_decay: float = 0.0
    warmup: int = 0


@dataclass
class _Model:
    arch: str = "toy"
    arch_kwargs: dict = field(default_factory=dict)


@dataclass
class _Config:
    out_dir: str
    stages: list
    seed: int = 0
    threads: int | None = None
    log_every: int = 2
    val_every: int = 3
    ckpt_every: int = 2
    init_from: str | None = None
    model: _Model = field(default_factory=_Model)

    def to_dict(self) -> dict:
        return {"out_dir": self.out_dir}


class _Toy(StageTrainer):
    """Fits a scalar to 1; validation score = minus the distance (higher is better)."""

    def __init__(self, cfg, **kw):
        super().__init__(cfg, progress=False, **kw)
        self.model = nn.Linear(1, 1, bias=False)
        self.mean, self.std = [0.0], [1.0]
        self.val_scenes = ["toy"]
        self.validated_at: list[int] = []

    def _parameters(self, stage):
        return list(self.model.parameters())

    def _stage_step(self, stage):
        def step():
            loss = (self.model.weight.sum() - 1) ** 2 + 0 * torch.rand(1, generator=self.gen).sum()
            self._optimise(stage, loss, {"l1": loss.detach()})
            return loss, {"l1": loss.detach()}

        return step

    def validate(self):
        self.validated_at.append(self.global_step)
        return {"dist": float((self.model.weight.detach().sum() - 1).abs())}

    def _val_score(self, summ):
        return -summ["dist"]

    def _log_fields(self):
        return ["step", "stage", "lr", "elapsed_s", "l1", "dist", "val_score"]


def test_loop_schedule_checkpoints_and_resume(tmp_path):
    cfg = _Config(str(tmp_path / "a"), [_Stage("s1", 4), _Stage("s2", 3)])
    lines: list[str] = []
    tr = _Toy(cfg, log=lines.append).fit()
    # steps count per stage: validation every val_every steps and at the end of each stage (printed), a log row
    # every log_every steps as well
    assert tr.validated_at == [3, 4, 7] and len(lines) == 3
    rows = (tmp_path / "a" / "log.csv").read_text().splitlines()
    assert rows[0] == "step,stage,lr,elapsed_s,l1,dist,val_score"
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "3", "4", "6", "7"]
    assert (tmp_path / "a" / "best.pt").is_file() and tr.last_run["finished"] and tr.global_step == 7
    # stopped after 3 steps and resumed == uninterrupted
    cfg_b = _Config(str(tmp_path / "b"), [_Stage("s1", 4), _Stage("s2", 3)])
    part = _Toy(cfg_b).fit(max_steps=3)
    assert not part.last_run["finished"] and part.global_step == 3
    rest = _Toy(cfg_b).fit(resume=True)
    assert rest.global_step == 7
    torch.testing.assert_close(rest.model.weight, tr.model.weight, rtol=0, atol=0)


def test_warm_start_is_validated_first_and_non_finite_loss_stops(tmp_path):
    cfg = _Config(str(tmp_path / "w"), [_Stage("s1", 1)], init_from="somewhere")
    tr = _Toy(cfg).fit()
    assert tr.validated_at[0] == 0
    assert (tmp_path / "w" / "log.csv").read_text().splitlines()[1].startswith("0,init,0.0,")
    bad = _Toy(_Config(str(tmp_path / "n"), [_Stage("s1", 1, lr=math.inf)]))
    bad.model.weight.data.fill_(math.nan)
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        bad.fit()
