"""Loading model packages for inference (sr_core.models.predictor): one cached loader for both predictor kinds."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sr_core.models import MISRPredictor, Predictor, load_misr_predictor, load_predictor
from udf.testing import make_package


def test_the_inference_path_imports_neither_torch_nor_onnxruntime():
    code = ("import sys, sr_core.models, udf.contract; "
            "assert 'torch' not in sys.modules and 'onnxruntime' not in sys.modules, "
            "sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnxruntime'))")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_single_and_multi_image_predictors_are_cached_per_package_and_engine(tmp_path):
    make_package(tmp_path / "sisr", arch="edsr", seed=2)
    make_package(tmp_path / "misr", arch="highresnet", seed=3, frames=4)
    a = load_predictor(tmp_path / "sisr")
    assert isinstance(a, Predictor) and load_predictor(tmp_path / "sisr") is a
    t = load_predictor(tmp_path / "sisr", engine="torch")
    assert t is not a and t.engine == "torch" and load_predictor(tmp_path / "sisr", engine="torch") is t
    m = load_misr_predictor(tmp_path / "misr")
    assert isinstance(m, MISRPredictor) and load_misr_predictor(tmp_path / "misr") is m
    assert (m.frames, m.fixed) == (4, True)  # the ONNX file has a fixed number of revisits
    mt = load_misr_predictor(tmp_path / "misr", engine="torch")
    assert mt is not m and (mt.frames, mt.fixed) == (None, False)
    x = np.full((1, 3, len(m.bands), 16, 16), 0.1, np.float32)
    mask = np.ones((1, 3), bool)
    np.testing.assert_allclose(m(x, mask), mt(x, mask), rtol=0, atol=1e-4)  # 3 revisits padded to 4 == torch


def test_loaders_refuse_unknown_engines():
    with pytest.raises(ValueError, match="engine must be 'onnx' or 'torch'"):
        load_predictor(engine="tensorflow")
    with pytest.raises(ValueError, match="engine must be one of onnx, torch"):
        load_misr_predictor(engine="tensorflow")
