"""MISR training (sr_core.training.misr): batches, losses, config, and a tiny real run with resume + export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sr_core.training.misr import MISRTrainConfig, is_misr_config, make_batch, misr_losses

B4 = ["B02", "B03", "B04", "B08"]
REPO = Path(__file__).resolve().parents[3]


def test_make_batch_anchor_first_drops_and_masks(gen):
    hr = torch.rand(3, 4, 16, 16, generator=gen)
    b = make_batch(hr, generator=torch.Generator().manual_seed(1), bands=B4, frames=5, scale=2, drop_frames=3,
                   stack={"cloud_prob": 0.6, "max_shift": 0.5})
    assert b["lr"].shape == (3, 5, 4, 8, 8) and torch.isfinite(b["lr"]).all()
    assert b["frame_mask"][:, 0].all() and (b["frame_mask"].sum(1) >= 2).all()
    clear = b["pixel_mask"].reshape(3, 5, -1).sum(-1)
    assert (clear[:, 0] == clear.max(dim=1).values).all()  # the anchor (frame 0) is the clearest
    # the anchor keeps NaN where cloudy, the network input does not
    assert torch.isnan(b["anchor"]).any(1).eq(~b["pixel_mask"][:, 0]).all()
    again = make_batch(hr, generator=torch.Generator().manual_seed(1), bands=B4, frames=5, scale=2, drop_frames=3,
                       stack={"cloud_prob": 0.6, "max_shift": 0.5})
    torch.testing.assert_close(again["lr"], b["lr"], rtol=0, atol=0)


def test_losses_closed_forms(gen):
    hr = torch.rand(2, 4, 16, 16, generator=gen, dtype=torch.float64)
    b = make_batch(hr, generator=gen, bands=B4, frames=3, scale=2, stack={"max_shift": 0.0})
    w = {"l1": 1.0, "cl1": 1.0, "consistency": 1.0}
    kw = {"border": 2, "max_shift": 0}
    t = misr_losses(hr, b, w, scale=2, bands=B4, loss_kwargs=kw)
    assert float(t["l1"]) == 0 and float(t["cl1"]) == 0
    assert float(t["consistency"]) < 1e-12  # anchor = degrade(hr) exactly without noise
    off = misr_losses(hr + 0.05, b, w, scale=2, bands=B4, loss_kwargs=kw)
    assert abs(float(off["l1"]) - 0.05) < 1e-9 and float(off["cl1"]) < 1e-9  # bias corrected
    assert abs(float(off["consistency"]) - 0.05) < 1e-9  # ... but not by the consistency to the anchor
    # pixels clear in no frame are left out
    b2 = dict(b)
    b2["any_valid"] = torch.zeros_like(b["any_valid"])
    b2["any_valid"][:, :4] = True
    bad = hr.clone()
    bad[..., 8:, :] += 1.0
    assert float(misr_losses(bad, b2, {"l1": 1.0}, scale=2, bands=B4, loss_kwargs=kw)["l1"]) == 0


def test_config_and_dispatch(tmp_path):
    cfg_path = REPO / "configs" / "s2sr-misr-x2.yaml"
    assert is_misr_config(cfg_path)
    assert not is_misr_config(REPO / "configs" / "s2sr-x2-10band-base.yaml")
    cfg = MISRTrainConfig.from_yaml(cfg_path)
    assert cfg.model.arch == "misr_sisr" and cfg.model.bands == B4 + ["B05", "B06", "B07", "B8A", "B11", "B12"]
    assert cfg.model.sisr_from == "s2sr-x2-10band" and cfg.data.frames == 8
    with pytest.raises(ValueError, match="unknown data config keys"):
        MISRTrainConfig.from_dict({"model": {"arch": "highresnet", "arch_kwargs": {}}, "data": {"bogus": 1},
                                   "stages": []})
    with pytest.raises(ValueError, match="unknown MISR loss terms"):
        MISRTrainConfig.from_dict({"model": {"arch": "highresnet", "arch_kwargs": {}},
                                   "stages": [{"name": "a", "steps": 1, "losses": {"gan": 1.0}}]})


@pytest.mark.parametrize("arch", ["highresnet", "rams"])
def test_tiny_run_resume_and_export(shared_s2, tmp_path, arch):
    from sr_core.models import load_misr_predictor
    from sr_core.training.misr import train_misr

    kw = {"in_channels": 4, "scale": 2, "num_features": 6, "num_blocks": 1}
    if arch == "rams":
        kw.update(num_frames=3, reduction=2)
    scene = {"scene": "S2A_MSIL1C_20170527_T33UUB", "y0": 344, "y1": 408, "x0": 344, "x1": 408}
    data = {"model": {"name": f"tiny-misr-{arch}", "arch": arch, "arch_kwargs": kw},
            "data": {"root": str(shared_s2), "train": [{**scene, "y0": 0, "y1": 64, "x0": 0, "x1": 64}],
                     "val": [scene], "patch": 16, "batch_size": 2, "frames": 3, "val_patch": 32, "val_stacks": 1,
                     "stack": {"cloud_prob": 0.5, "noise_std_range": [0.0, 0.002]}, "min_structure": 0.0},
            "stages": [{"name": "a", "steps": 3, "warmup": 1, "losses": {"cl1": 1.0, "consistency": 0.1}}],
            "out_dir": str(tmp_path / "run"), "log_every": 1, "val_every": 3, "ckpt_every": 1}
    cfg = MISRTrainConfig.from_dict(data)
    tr = train_misr(cfg, progress=False, log=None, max_steps=2)
    assert not tr.last_run["finished"] and tr.global_step == 2
    tr2 = train_misr(MISRTrainConfig.from_dict(data), resume=True, progress=False, log=None)
    assert tr2.last_run["finished"] and tr2.global_step == 3
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,stage") and len(rows) == 4 and "val" in rows[0]
    card = tr2.export(tmp_path / "pkg")
    assert card.files == {"weights": "model.pt", "onnx": "model.onnx"} and card.training["frames"] == 3
    a = load_misr_predictor(tmp_path / "pkg", engine="torch")
    b = load_misr_predictor(tmp_path / "pkg", engine="onnx")
    x = np.random.default_rng(0).uniform(0.02, 0.3, size=(1, 3, 4, 12, 12)).astype(np.float32)
    m = np.array([[True, True, False]])
    ya, yb = a(x, m), b(x, m)
    assert ya.shape == (1, 4, 24, 24) and np.abs(ya - yb).max() < 1e-5
