"""``s2sr evaluate --misr`` (sr_core.evaluation.misr): metrics, baselines, report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sr_core.archs._common import bicubic_upsample
from sr_core.degradation import degrade
from sr_core.evaluation.misr import evaluate_stack, score, write_report
from sr_core.datasets.stacks import anchor_first, simulate_stack

B4 = ["B02", "B03", "B04", "B08"]


def test_score_closed_forms(gen):
    hr = torch.rand(1, 4, 32, 32, generator=gen, dtype=torch.float64)
    m = torch.ones(1, 1, 32, 32, dtype=torch.bool)
    anchor = degrade(hr, 2, bands=B4)
    s = score(hr + 0.01, hr, m, anchor=anchor)
    assert (s["cpsnr"] > 150).all() and np.allclose(s["cssim"], 1.0, atol=1e-6)  # bias corrected
    assert abs(float(s["consistency"][0]) - 0.01) < 1e-9 and float(s["sam"][0]) > 0
    noisy = hr + 0.01 * torch.randn(hr.shape, generator=gen, dtype=torch.float64)
    p = score(noisy, hr, m)["cpsnr"]
    assert np.allclose(p, 40.0, atol=0.5)  # 10 log10(1 / 1e-4)


def _stack(gen, frames=4):
    hr10 = torch.rand(4, 32, 32, generator=gen, dtype=torch.float64)
    hr20 = torch.rand(6, 16, 16, generator=gen, dtype=torch.float64)
    st = simulate_stack(hr10, generator=gen, frames=frames, bands=B4, cloud_prob=0.5)
    lr, pm = anchor_first(st.lr[None], st.mask[None], st.anchor)
    return hr10, hr20, lr[0].float(), pm[0]


def test_methods_on_one_stack(gen):
    hr10, hr20, lr, pm = _stack(gen)

    def misr(x, mask):  # a "MISR" that returns the bicubic interpolation of the anchor
        return bicubic_upsample(torch.from_numpy(x[:, 0]), 2).numpy()

    def sisr(x):  # 10-band input -> 10-band output: bicubic as well
        assert x.shape[1] == 10
        return bicubic_upsample(torch.from_numpy(x), 2).numpy()

    r = evaluate_stack(hr10, hr20, lr, pm, 0.0, misr=misr, sisr=sisr, misr_margin=3, sisr_margin=2)
    assert set(r) == {"misr", "misr_best4", "sisr", "bicubic", "mean_registered_bicubic"}
    for meth in ("misr", "misr_best4", "sisr"):
        np.testing.assert_allclose(r[meth]["cpsnr"], r["bicubic"]["cpsnr"], atol=1e-3)
    # registered mean of identical-but-for-shift frames stays close to the bicubic baseline
    assert abs(float(np.mean(r["mean_registered_bicubic"]["cpsnr"]) - np.mean(r["bicubic"]["cpsnr"]))) < 3.0
    with pytest.raises(ValueError, match="anchor"):
        evaluate_stack(hr10, hr20, lr, pm, 0.0, misr=misr, sisr=None, misr_margin=0, sisr_margin=0, drop=[0])
    seen = []

    def spy(x, mask):
        seen.append(mask.copy())
        return misr(x, mask)

    evaluate_stack(hr10, hr20, lr, pm, 0.0, misr=spy, sisr=None, misr_margin=0, sisr_margin=0, drop=[1, 3],
                   methods=("misr",))
    assert seen[-1].tolist() == [[True, False, True, False]]


def test_ten_band_misr_gets_the_single_image_input_of_the_anchor_in_every_frame(gen):
    hr10, hr20, lr, pm = _stack(gen)
    got = {}

    class TenBand:  # a 10-band MISR model (misr_sisr): the single-image model on frame 0
        bands = tuple(B4 + ["B05", "B06", "B07", "B8A", "B11", "B12"])

        def __call__(self, x, mask):
            got["misr"] = x.copy()
            return bicubic_upsample(torch.from_numpy(x[:, 0]), 2).numpy()

    def sisr(x):
        got["sisr"] = x.copy()
        return bicubic_upsample(torch.from_numpy(x), 2).numpy()

    r = evaluate_stack(hr10, hr20, lr, pm, 0.001, misr=TenBand(), sisr=sisr, misr_margin=0, sisr_margin=0,
                       methods=("misr", "sisr"))
    x = got["misr"]
    assert x.shape == (1, lr.shape[0], 10, 16, 16)
    np.testing.assert_array_equal(x[:, 0], got["sisr"])  # frame 0 = exactly the single-image input
    for k in range(1, lr.shape[0]):  # every frame carries the anchor's 20 m bands
        np.testing.assert_array_equal(x[:, k, 4:], x[:, 0, 4:])
    np.testing.assert_allclose(r["misr"]["cpsnr"], r["sisr"]["cpsnr"], rtol=0, atol=1e-9)  # 10 m bands scored


def test_report_files(tmp_path):
    res = {"model": "m", "model_version": "1", "engine": "onnx", "scenes": ["a"],
           "protocol": {"frames": 8, "stacks_per_scene": 1, "patch_10m_px": 64, "seed": 0, "metrics": "x",
                        "cloud_test": "2 of 8"},
           "summary": {"misr": {"cpsnr": 40.0, "cssim": 0.9, "sam": 1.0, "consistency": 0.001},
                       "sisr": {"cpsnr": 39.0, "cssim": 0.9, "sam": 1.0, "consistency": 0.001}},
           "per_scene": {"a": {"misr": {"cpsnr": 40.0}, "sisr": {"cpsnr": 39.0}}},
           "cloud_test": {"misr_cpsnr": 39.9, "cost_db": 0.1},
           "targets": {"misr_minus_sisr_db": {"value": 1.0, "target": ">= 1.0", "met": True}}, "runtime_s": 1.0}
    jp, mp = write_report(res, tmp_path)
    assert json.loads(jp.read_text())["targets"]["misr_minus_sisr_db"]["met"] is True
    text = mp.read_text()
    assert "| misr | 40.00 |" in text and "| misr_minus_sisr_db | +1.000 | >= 1.0 | yes |" in text


def test_stack_overrides_give_the_same_stacks_whatever_the_training_options():
    # a model trained with texture changes and co-registered stacks is scored on the very stacks of a model
    # trained without them: STACK_OVERRIDES switches those options off, and options at 0 draw nothing
    import torch

    from sr_core.evaluation.misr import STACK_OVERRIDES
    from sr_core.datasets.stacks import simulate_stack

    hr = torch.rand(4, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    base = {"max_shift": 0.5, "noise_std_range": (0.0, 0.003), "cloud_prob": 0.3, "change_prob": 0.5, "ratio": 2,
            "bands": ["B02", "B03", "B04", "B08"]}
    trained = dict(base, change_texture_prob=0.5, zero_shift_prob=0.3)
    a = simulate_stack(hr, generator=torch.Generator().manual_seed(7), frames=6, **dict(base, **STACK_OVERRIDES))
    b = simulate_stack(hr, generator=torch.Generator().manual_seed(7), frames=6, **dict(trained, **STACK_OVERRIDES))
    torch.testing.assert_close(a.lr, b.lr, equal_nan=True, rtol=0, atol=0)
    assert torch.equal(a.shifts, b.shifts) and bool((a.shifts != 0).any())
    c = simulate_stack(hr, generator=torch.Generator().manual_seed(7), frames=6, **trained)
    assert not torch.equal(torch.nan_to_num(c.lr), torch.nan_to_num(a.lr))  # the options do change the draw
