"""Task-based assessment (s2sr evaluate --tasks): scores, channel views, the end-to-end report on the bundled sample."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
import torch

from sr_core.io import SAMPLE_ID, sample_scene_path
from sr_core.evaluation.tasks import (
    assess_tasks,
    render_tasks_markdown,
    segmentation_scores,
)
from sr_core.tasks.nets import build_task_net, save_task_net

ROOT = str(sample_scene_path().parent)


def test_segmentation_scores_closed_form():
    t = torch.zeros(6, 6, dtype=torch.bool)
    t[0:2, 0:2] = True  # object A (4 px)
    t[4:6, 4:6] = True  # object B (4 px)
    p = torch.zeros(6, 6, dtype=torch.bool)
    p[0:2, 0:3] = True  # covers A plus 2 px: IoU 4/6
    p[3, 0] = True  # a lone false positive
    v = torch.ones(6, 6, dtype=torch.bool)
    s = segmentation_scores(p, t, v, instances=True)
    tp, fp, fn = 4, 3, 4
    assert s["dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert s["iou"] == pytest.approx(tp / (tp + fp + fn))
    assert s["precision"] == pytest.approx(tp / (tp + fp)) and s["recall"] == pytest.approx(tp / (tp + fn))
    # objects: A matched (IoU 0.67 >= 0.25), B missed, the lone pixel is a false object -> F1 = 2/(2+1+1)
    assert s["instance_f1_iou0.25"] == pytest.approx(0.5)
    # invalid pixels do not count
    v2 = v.clone()
    v2[3, 0] = False
    assert segmentation_scores(p, t, v2)["precision"] == pytest.approx(4 / 6)


class _Bicubic:
    """Predictor-like SR 'model' that returns bicubic: its task scores must equal the bicubic row's."""

    scale, margin, receptive_field = 2, 4, 9
    bands = out_bands = ("B02", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12")

    def __call__(self, lr):
        from sr_core.archs._common import bicubic_upsample

        with torch.no_grad():
            return bicubic_upsample(torch.from_numpy(lr), 2).clamp_min(0).numpy()


def test_assessment_end_to_end_on_the_sample(tmp_path):
    torch.manual_seed(0)
    net = build_task_net("unet", num_features=4, depth=2, mean=[0.05, 0.07, 0.05, 0.25], std=[0.02, 0.02, 0.03, 0.1])
    save_task_net(net, tmp_path / "tn", tasks=("water", "vegetation", "builtup"))
    res = assess_tasks({"bic": _Bicubic()}, {"tn": str(tmp_path / "tn")}, [f"{SAMPLE_ID}[0:96,0:128]"],
                       root=ROOT, border=8)
    auto = res["summary"]["dice"]["auto"]["tn"]
    assert set(auto) == {"lr", "bicubic", "bic", "hr"}
    for task in ("water", "vegetation", "builtup"):
        a, b = auto["bicubic"][task], auto["bic"][task]
        assert (math.isnan(a) and math.isnan(b)) or a == b
    rows = [r for r in res["rows"] if r["input"] == "hr"]
    assert all(r["dice_vs_task_hr"] == 1.0 or math.isnan(r["dice_vs_task_hr"]) for r in rows)
    q = res["summary"]["quality"]
    assert q["bic"] == pytest.approx(q["bicubic"])
    assert 0 < q["bic"]["consistency_l1"] < 0.05 and q["bic"]["cpsnr"] > 20
    assert "builtup_instance_f1" in auto["hr"]
    md = render_tasks_markdown(res)
    assert "| bic |" in md and "Expected order" in md
    with pytest.raises(ValueError, match="at least one SR model"):
        assess_tasks({}, {"tn": str(tmp_path / "tn")}, [SAMPLE_ID], root=ROOT)
    with pytest.raises(ValueError, match="border"):
        assess_tasks({"bic": _Bicubic()}, {"tn": str(tmp_path / "tn")}, [SAMPLE_ID], root=ROOT, border=-1)


def test_evaluate_cli_has_tasks_option():
    from s2sr_cli.commands.evaluate import add_arguments

    p = add_arguments(argparse.ArgumentParser())
    a = p.parse_args(["--tasks", "--task-models", "runs/x/best.pt"])
    assert a.tasks == [] and a.task_models == ["runs/x/best.pt"]
    assert p.parse_args([]).tasks is None
    assert p.parse_args(["--tasks", "task-unet"]).tasks == ["task-unet"]
    np.testing.assert_equal(p.parse_args(["--tasks"]).task_models, [])


def test_summary_pools_pixels_over_scenes_and_checks_the_order():
    from sr_core.evaluation.tasks import summarize_tasks

    def row(scene, src, task, tp, fp, fn):
        return {"scene": scene, "task_net": "tn", "input": src, "task": task, "reference": "auto",
                "tp": tp, "fp": fp, "fn": fn, "instance_f1_iou0.25": 0.5}

    rows = []
    for src, (tp, fp, fn) in {"lr": (1, 3, 3), "bicubic": (2, 2, 2), "m": (3, 1, 2), "hr": (4, 1, 1)}.items():
        for task in ("water", "vegetation", "builtup"):
            rows.append(row("a", src, task, tp, fp, fn))
            rows.append(row("b", src, task, 0, 0, 0))  # class absent from scene b: must not count
    res = {"models": {"m": "x"}, "rows": rows,
           "quality": [{"model": "m", "cpsnr": 40.0, "cssim": 0.9, "consistency_l1": 1e-3},
                       {"model": "m", "cpsnr": 42.0, "cssim": 0.95, "consistency_l1": 3e-3}]}
    s = summarize_tasks(res)
    d = s["dice"]["auto"]["tn"]
    assert d["m"]["water"] == pytest.approx(6 / 9) and d["lr"]["builtup"] == pytest.approx(2 / 8)
    assert s["mean_task_dice"]["auto"]["tn"]["hr"] == pytest.approx(8 / 10)
    assert s["order"]["tn"]["m"]["water"] == {"lr<bicubic": True, "bicubic<=sr": True, "sr<=hr": True}
    assert s["quality"]["m"] == pytest.approx({"cpsnr": 41.0, "cssim": 0.925, "consistency_l1": 2e-3})
    from sr_core.evaluation.tasks import render_variants_table

    res["summary"] = s
    table = render_variants_table(res, baseline="m")
    assert table.splitlines()[0].startswith("| variant | cPSNR (dB)") and "| m | 41.00 |" in table
