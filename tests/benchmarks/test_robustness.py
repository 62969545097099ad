"""benchmarks/robustness.py: the pure functions on closed forms (bicubic ringing of a step edge, negative counts,
the flat-field tolerance) and a whole run with stand-in models on a synthetic scene (no ../shared, no shipped
model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmarks.robustness import (
    DN,
    FLAT_SPECTRA,
    bicubic_native,
    flat_field_row,
    flat_tolerance_dn,
    local_bounds,
    main,
    native_factor,
    negative_stats,
    overshoot,
    overshoot_stats,
    render_markdown,
    run_robustness,
    write_report,
)
from sr_core.bands import BANDS_10M, BANDS_20M, MODEL_BANDS_10
from sr_core.datasets.patches import SceneTensors

# Keys cubic (a = -0.75) at distances 1.25 and 1.75: the negative lobes a step edge rings with at x2.
W125 = -27 / 256
W175 = -9 / 256


def step(h: int = 8, w: int = 8, at: int = 4) -> np.ndarray:
    """0 left of column ``at``, 1 from it on."""
    a = np.zeros((h, w))
    a[:, at:] = 1.0
    return a


def test_native_factor():
    assert [native_factor(b) for b in MODEL_BANDS_10] == [1] * len(BANDS_10M) + [2] * len(BANDS_20M)
    with pytest.raises(ValueError, match="B01"):
        native_factor("B01")


def test_bicubic_x2_of_a_step_rings_by_the_cubic_lobes():
    y = bicubic_native(step(), 1, 2)
    assert y.shape == (16, 16)
    # output columns 2k + 0.5 +- 0.25 px of input column k; the edge lies between input columns 3 and 4
    np.testing.assert_allclose(y[:, 5], W175, atol=1e-12)  # input col 2 + 0.25: the lobe at 1.75 px
    np.testing.assert_allclose(y[:, 6], W125, atol=1e-12)  # input col 3 - 0.25: the lobe at 1.25 px
    np.testing.assert_allclose(y[:, 9], 1 - W125, atol=1e-12)
    np.testing.assert_allclose(y[:, 10], 1 - W175, atol=1e-12)


def test_overshoot_of_the_step_edge_is_the_ringing():
    lo, hi = local_bounds(step(), 1, 2)
    ov = overshoot(bicubic_native(step(), 1, 2), lo, hi)
    want = np.zeros(16)
    want[[5, 10]] = -W175
    want[[6, 9]] = -W125
    np.testing.assert_allclose(ov, np.broadcast_to(want, (16, 16)), atol=1e-12)
    s = overshoot_stats(ov)
    assert s["n_px"] == 256
    assert s["max_dn"] == pytest.approx(-W125 * DN)  # 1054.6875 DN
    assert s["p99_9_dn"] == pytest.approx(-W125 * DN)  # a quarter of the pixels ring
    assert s["mean_dn"] == pytest.approx(-2 * (W125 + W175) / 16 * DN)


def test_the_step_rings_below_zero_from_non_negative_input():
    lo, _ = local_bounds(step(), 1, 2)
    s = negative_stats(bicubic_native(step(), 1, 2), lo)
    assert s == {"n_px": 256, "n_eligible": 256, "n_negative": 32, "min_dn": pytest.approx(W125 * DN)}


def test_negative_output_counts_only_where_the_input_neighbourhood_is_non_negative():
    band = np.full((6, 6), 0.1)
    band[0, 0] = -0.01  # its 3 x 3 neighbourhood: input pixels (0..1, 0..1)
    lo, _ = local_bounds(band, 1, 2)
    y = np.full((12, 12), -0.002)
    s = negative_stats(y, lo)
    assert (s["n_eligible"], s["n_negative"], s["min_dn"]) == (144 - 16, 144 - 16, pytest.approx(-20.0))
    mask = np.zeros((12, 12), bool)
    mask[6:, 6:] = True
    assert negative_stats(y, lo, mask)["n_negative"] == 36
    assert negative_stats(np.zeros((12, 12)), lo)["n_negative"] == 0


def test_local_bounds_on_the_20m_grid():
    native = np.arange(16, dtype=float).reshape(4, 4)  # a 20 m band, 4 x 4 native px
    band = np.repeat(np.repeat(native, 2, 0), 2, 1)  # replicated onto the 10 m grid
    lo, hi = local_bounds(band, 2, 2)
    assert lo.shape == hi.shape == (16, 16)
    assert (lo[0, 0], hi[0, 0]) == (0, 5)  # native (0, 0): neighbours (0..1, 0..1)
    assert (lo[5, 5], hi[5, 5]) == (0, 10)  # native (1, 1): neighbours (0..2, 0..2)
    assert (lo[4:8, 4:8] == 0).all() and (hi[4:8, 4:8] == 10).all()
    band[0, 1] = -3.0  # a block that is not constant: its min and max both count
    lo, hi = local_bounds(band, 2, 1)
    assert lo[0, 0] == -3 and hi[0, 0] == 5
    with pytest.raises(ValueError, match="multiples of native=2"):
        local_bounds(np.zeros((5, 4)), 2, 2)
    with pytest.raises(ValueError, match="scale"):
        local_bounds(np.zeros((4, 4)), 1, 0)


def test_bicubic_native_of_a_20m_band_is_x4_from_its_blocks():
    native = np.random.default_rng(0).uniform(0, 1, (6, 6))
    band = np.repeat(np.repeat(native, 2, 0), 2, 1)
    want = torch.nn.functional.interpolate(torch.from_numpy(native)[None, None], scale_factor=4, mode="bicubic",
                                           align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(bicubic_native(band, 2, 2), want, atol=1e-12)
    np.testing.assert_array_equal(bicubic_native(native, 1, 1), native)


def test_overshoot_is_zero_inside_the_bounds():
    lo, hi = np.zeros((2, 2)), np.ones((2, 2))
    np.testing.assert_array_equal(overshoot(np.array([[0.0, 0.5], [1.0, 1.5]]), lo, hi), [[0, 0], [0, 0.5]])
    with pytest.raises(ValueError, match="one shape"):
        overshoot(np.zeros((2, 3)), lo, hi)
    with pytest.raises(ValueError, match="lo must not exceed hi"):
        overshoot(lo, hi, lo)


def test_flat_tolerance():
    assert flat_tolerance_dn(100) == 2.0  # the 2 DN floor
    assert flat_tolerance_dn(400) == 2.0
    assert flat_tolerance_dn(1000) == pytest.approx(5.0)  # 0.5 %
    assert flat_field_row(np.full((4, 4), 1005.0), 1000)["within"]
    r = flat_field_row(np.full((4, 4), 1005.01), 1000)
    assert not r["within"] and r["max_abs_err_dn"] == pytest.approx(5.01) and r["tolerance_dn"] == 5.0
    assert not flat_field_row(np.array([100.0, np.nan]), 100)["within"]
    with pytest.raises(ValueError, match="finite"):
        flat_tolerance_dn(float("nan"))


def test_flat_spectra_cover_the_10_bands():
    assert set(FLAT_SPECTRA) == {"water", "vegetation", "bare soil", "snow", "cloud"}
    assert all(len(v) == len(MODEL_BANDS_10) and min(v) > 0 for v in FLAT_SPECTRA.values())


class Nearest:
    """A stand-in x2 model: nearest upsampling (no overshoot, no negative, flat fields exact), minus ``offset``."""

    margin = 2
    bands = out_bands = MODEL_BANDS_10

    def __init__(self, scale: int = 2, offset: float = 0.0, name: str = "nearest") -> None:
        self.scale, self.offset, self.name = scale, offset, name

    def __call__(self, x):
        return np.repeat(np.repeat(x, self.scale, -2), self.scale, -1) - np.float32(self.offset)


def scene(h: int = 48) -> SceneTensors:
    rng = np.random.default_rng(1)
    return SceneTensors(
        "synthetic", "L2A",
        torch.from_numpy(rng.uniform(0.001, 0.4, (4, h, h)).astype(np.float32)),
        torch.from_numpy(rng.uniform(0.001, 0.4, (6, h // 2, h // 2)).astype(np.float32)),
    )


def test_a_run_with_stand_in_models(tmp_path):
    models = {"nearest": Nearest(), "sharpen": Nearest(scale=1, name="sharpen"),
              "biased": Nearest(offset=0.01, name="biased")}
    res = run_robustness(models, [scene()])
    assert set(res["baselines"]) == {"bicubic x1", "bicubic x2"}
    s = res["summary"]
    assert s["nearest"]["negative"] == {"n_negative": 0, "n_eligible": 10 * 96 * 96, "min_dn": pytest.approx(
        min(r["min_dn"] for r in res["negative"] if r["model"] == "nearest"))}
    assert s["nearest"]["overshoot"]["worst_p99_9_dn"] == 0 and s["nearest"]["overshoot"]["max_dn"] == 0
    assert s["nearest"]["flat"]["n_within"] == s["nearest"]["flat"]["n"] == 50
    assert s["sharpen"]["negative"]["n_eligible"] == 10 * 48 * 48
    # minus 100 DN: every pixel below 100 DN goes negative, every flat band misses by 100 DN
    neg = res["negative"]
    x_low = sum(r["n_negative"] for r in neg if r["model"] == "biased")
    assert x_low > 0 and s["biased"]["negative"]["min_dn"] == pytest.approx(s["nearest"]["negative"]["min_dn"] - 100,
                                                                            abs=1e-2)
    assert s["biased"]["flat"]["worst_err_dn"] == pytest.approx(100, abs=1e-2) and s["biased"]["flat"]["n_within"] < 50
    assert s["bicubic x2"]["overshoot"]["worst_p99_9_dn"] > 0 and "flat" not in s["bicubic x2"]
    md = render_markdown(res)
    assert "| nearest | 0 / 92160 |" in md and "**FAIL**" in md
    jp, mp = write_report(res, tmp_path / "out")
    assert json.loads(jp.read_text())["summary"]["nearest"]["flat"]["n"] == 50 and mp.read_text() == md


def test_a_run_leaves_the_border_out():
    res = run_robustness({"nearest": Nearest()}, [scene()], border=8)
    assert res["summary"]["nearest"]["negative"]["n_eligible"] == 10 * (2 * 32) ** 2


def test_wrong_arguments():
    with pytest.raises(ValueError, match="at least one model"):
        run_robustness({}, [scene()])
    with pytest.raises(ValueError, match="non-empty"):
        run_robustness({"nearest": Nearest()}, [])
    bad = Nearest()
    bad.out_bands = ("B01",)
    with pytest.raises(ValueError, match="B01"):
        run_robustness({"bad": bad}, [scene()])


def test_main_without_the_shared_data(tmp_path, capsys):
    assert main(["--root", str(tmp_path / "absent"), "--out", str(tmp_path / "out")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_consistency_row_is_zero_for_the_sensor_image_and_sees_a_bias():
    import torch

    from benchmarks.robustness import consistency_row
    from sr_core.degradation import degrade

    hr = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    native = degrade(hr, 2, bands=["B05"])[0, 0].numpy()
    r = consistency_row(hr[0, 0].numpy(), native, "B05", 2)
    assert r["consistency_l1"] < 1e-12 and r["shift_px"] < 1e-6
    r = consistency_row(hr[0, 0].numpy() + 0.01, native, "B05", 2)
    assert abs(r["consistency_l1"] - 0.01) < 1e-9
    with pytest.raises(ValueError, match="does not match its native grid"):
        consistency_row(hr[0, 0].numpy(), native, "B05", 4)
