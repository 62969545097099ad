"""The opensr-test metrics (ESA's super-resolution benchmark, ``opensr-test==1.3.3``) of evaluation triplets.

:func:`opensr_test_metrics` scores, per model and scene, an ``(lr, sr, hr)`` triplet of the 10 m bands (``B02,
B03, B04, B08``; RGB = bands 2, 1, 0) with ``opensr_test.Metrics(...).compute``: its offline metrics only
(reflectance L1, spectral angle, spatial alignment by phase correlation, synthesis L1, and the correctness
fractions improvement / omission / hallucination, distance ``nd``, threshold ``auto``); nothing it computes
downloads anything. Bicubic (the fourth array of each triplet) is scored as a reference.

opensr-test 1.3.3 requires a CUDA build of a newer torch, open-clip, lpips and timm, which this project's
environment does not install. So it runs either here (``python=None``: when ``opensr_test`` imports) or in another
Python that has it (``python=PATH``): this file is then run as a script there (it imports nothing of ``sr_core``),
reading the triplets from a ``.npz`` and writing the metrics as JSON. Without either, the result says why it was
skipped.

Script use (in the other environment): ``python opensr.py TRIPLETS.npz OUT.json``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["OPENSR_TEST_VERSION", "opensr_test_metrics", "score_triplets"]

#: The opensr-test release the metrics are defined by.
OPENSR_TEST_VERSION = "1.3.3"
_KEYS = ("reflectance", "spectral", "spatial", "synthesis", "im_metric", "om_metric", "ha_metric")
_SEP = "\x1f"


def _mean(values: list) -> float | None:
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else None


def score_triplets(triplets: dict[str, dict[str, tuple]]) -> dict:
    """opensr-test metrics of ``{model: {scene: (lr, sr, hr, bicubic)}}`` (numpy ``(C, h, w)`` / ``(C, 2h, 2w)``
    float32 reflectance) in this Python: ``{"version", "per_scene": {model: {scene: metrics}}, "mean": {model:
    metrics}}`` with bicubic under the model name ``"bicubic"``. ``ImportError`` when opensr_test is missing."""
    import opensr_test
    import torch

    version = getattr(opensr_test, "__version__", None)

    def run(lr: np.ndarray, sr: np.ndarray, hr: np.ndarray) -> dict:
        metrics = opensr_test.Metrics(params=opensr_test.Config(rgb_bands=[2, 1, 0], device="cpu"))
        out = metrics.compute(lr=torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32)),
                              sr=torch.from_numpy(np.ascontiguousarray(sr, dtype=np.float32)),
                              hr=torch.from_numpy(np.ascontiguousarray(hr, dtype=np.float32)))
        return {k: (float(out[k]) if out.get(k) is not None and math.isfinite(float(out[k])) else None)
                for k in _KEYS}

    per: dict[str, dict[str, dict]] = {}
    bicubic: dict[str, dict] = {}
    for model, scenes in triplets.items():
        per[model] = {}
        for scene, (lr, sr, hr, bic) in scenes.items():
            per[model][scene] = run(lr, sr, hr)
            if scene not in bicubic:
                bicubic[scene] = run(lr, bic, hr)
    per["bicubic"] = bicubic
    mean = {m: {k: _mean([v[k] for v in s.values()]) for k in _KEYS} for m, s in per.items()}
    return {"version": version, "per_scene": per, "mean": mean}


def _save(triplets: dict[str, dict[str, tuple]], path: Path) -> None:
    arrays = {}
    for model, scenes in triplets.items():
        for scene, quad in scenes.items():
            for name, a in zip(("lr", "sr", "hr", "bicubic"), quad):
                arrays[_SEP.join((model, scene, name))] = np.asarray(a, dtype=np.float32)
    np.savez(path, **arrays)


def _load(path: str | os.PathLike) -> dict[str, dict[str, tuple]]:
    parts: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    with np.load(path) as z:
        for key in z.files:
            model, scene, name = key.split(_SEP)
            parts.setdefault(model, {}).setdefault(scene, {})[name] = z[key]
    return {m: {s: (d["lr"], d["sr"], d["hr"], d["bicubic"]) for s, d in sc.items()} for m, sc in parts.items()}


def opensr_test_metrics(
    triplets: dict[str, dict[str, tuple]], *, python: str | os.PathLike | None = None, timeout: float = 1800.0
) -> dict:
    """:func:`score_triplets` in this Python (``python=None``) or in the Python at ``python`` (an environment with
    ``opensr-test==1.3.3``). Adds ``"environment"``; a failure gives ``{"skipped": reason}`` instead of metrics (the
    evaluation goes on), except a ``python`` that does not exist (``ValueError``)."""
    if python is None:
        try:
            res = score_triplets(triplets)
        except ImportError as e:
            return {"skipped": f"opensr_test is not importable here ({e}); install opensr-test=={OPENSR_TEST_VERSION} "
                    "in another environment and give its python"}
        return {**res, "environment": sys.executable}
    exe = Path(python)
    if not exe.is_file():
        raise ValueError(f"opensr-test python {exe} does not exist")
    with tempfile.TemporaryDirectory(prefix="s2sr-opensr-") as tmp:
        src, dst = Path(tmp) / "triplets.npz", Path(tmp) / "metrics.json"
        _save(triplets, src)
        try:
            done = subprocess.run([str(exe), str(Path(__file__).resolve()), str(src), str(dst)],
                                  capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            return {"skipped": f"running {exe} failed: {e}"}
        if done.returncode != 0 or not dst.is_file():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            return {"skipped": f"{exe} exited {done.returncode}: {tail[0]}"}
        res = json.loads(dst.read_text())
    return {**res, "environment": str(exe)}


def _main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: opensr.py TRIPLETS.npz OUT.json", file=sys.stderr)
        return 2
    res: Any = score_triplets(_load(argv[0]))
    Path(argv[1]).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
