"""Loading model packages for inference (sr_core.models.predictor): one cached loader for both predictor kinds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


@pytest.mark.parametrize("threads", [0, -1, 1025, 10**12, 2.0, True])
def test_loaders_refuse_absurd_thread_counts(threads):
    from sr_core.models import load_misr_predictor, load_predictor

    for load in (load_predictor, load_misr_predictor):
        with pytest.raises(ValueError, match=r"threads must be an integer from 1 to 1024 or None"):
            load("s2sr-x2-10band", threads=threads)


# ------------------------------------------------------------------------------------------------ first use

_FIRST_USE = r"""
import hashlib, sys, threading, warnings
warnings.simplefilter("ignore")
import numpy as np
from udf.contract import udf_apply
from udf.testing import nearest_resample, random_s2_cube

pkg = sys.argv[1]
cube = nearest_resample(random_s2_cube(12, 12, seed=3), 2)
ctx = [{"model": pkg, "engine": "torch" if i % 2 else "onnx"} for i in range(8)]
got = [None] * 8
start = threading.Barrier(8)


def first_call(i):
    start.wait()
    try:
        got[i] = hashlib.sha256(np.ascontiguousarray(udf_apply(cube, ctx[i]).values).tobytes()).hexdigest()
    except BaseException as e:  # noqa: BLE001 - reported to the test
        got[i] = f"{type(e).__name__}: {e}"


threads = [threading.Thread(target=first_call, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
alone = {e: hashlib.sha256(np.ascontiguousarray(udf_apply(cube, {"model": pkg, "engine": e}).values).tobytes())
         .hexdigest() for e in ("onnx", "torch")}
want = [alone[c["engine"]] for c in ctx]
assert got == want, [g if g != w else "ok" for g, w in zip(got, want)]
print("ok")
"""


def test_eight_threads_making_their_first_udf_call_at_once(tmp_path):
    """Cold caches (fresh processes, nothing imported), eight threads' first UDF calls released together, ONNX and
    torch engines mixed: every thread gets what a single-threaded call gets. Four processes at once, so that
    the engine imports and the first inferences overlap in many ways."""
    make_package(tmp_path / "sisr", arch="edsr", seed=4)
    repo = Path(__file__).resolve().parents[3]
    procs = [subprocess.Popen([sys.executable, "-c", _FIRST_USE, str(tmp_path / "sisr")], cwd=repo,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0 and out.strip().endswith("ok"), out[-3000:]


def test_a_torch_import_in_progress_does_not_break_other_threads_inference(tmp_path, monkeypatch):
    """While one thread imports torch, ``sys.modules['torch']`` is a module without its attributes yet: the
    numpy inference path of the other threads must not take it for torch."""
    import types

    from udf.contract import udf_apply
    from udf.testing import nearest_resample, random_s2_cube

    make_package(tmp_path / "sisr", arch="edsr", seed=4)
    cube = nearest_resample(random_s2_cube(12, 12, seed=3), 2)
    want = udf_apply(cube, {"model": str(tmp_path / "sisr")}).values
    monkeypatch.setitem(sys.modules, "torch", types.ModuleType("torch"))  # partially initialised
    np.testing.assert_array_equal(udf_apply(cube, {"model": str(tmp_path / "sisr")}).values, want)
