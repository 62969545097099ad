"""sr_core.evaluation.opensr: the opensr-test metrics here or in another Python (a stand-in opensr_test package
checks the plumbing; the real package is not installed in this environment)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from sr_core.evaluation.opensr import opensr_test_metrics

FAKE = '''
__version__ = "0.0-fake"
class Config:
    def __init__(self, **kw):
        self.kw = kw
class Metrics:
    def __init__(self, params=None):
        self.params = params
    def compute(self, lr, sr, hr):
        d = float((sr - hr).abs().mean())
        return {"reflectance": float(lr.mean()), "spectral": 1.0, "spatial": 0.0, "synthesis": d,
                "im_metric": 0.5, "om_metric": 0.25, "ha_metric": d}
'''


def _triplets():
    g = np.random.default_rng(0)
    hr = g.random((4, 16, 16), dtype=np.float32)
    lr = hr.reshape(4, 8, 2, 8, 2).mean((2, 4))
    return {"m": {"s1": (lr, hr + 0.1, hr, hr + 0.2), "s2": (lr, hr + 0.3, hr, hr)}}


@pytest.mark.skipif(importlib.util.find_spec("opensr_test") is not None, reason="opensr_test is installed here")
def test_skipped_with_a_reason_when_not_installed():
    res = opensr_test_metrics(_triplets())
    assert set(res) == {"skipped"} and "opensr_test is not importable" in res["skipped"]


def test_runs_in_another_python(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "opensr_test"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(FAKE)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    res = opensr_test_metrics(_triplets(), python=sys.executable)
    assert res["version"] == "0.0-fake" and res["environment"] == sys.executable
    assert set(res["per_scene"]) == {"m", "bicubic"}
    assert res["per_scene"]["m"]["s1"]["ha_metric"] == pytest.approx(0.1, abs=1e-6)
    assert res["per_scene"]["bicubic"]["s1"]["ha_metric"] == pytest.approx(0.2, abs=1e-6)
    assert res["mean"]["m"]["synthesis"] == pytest.approx(0.2, abs=1e-6)  # (0.1 + 0.3) / 2
    assert res["mean"]["bicubic"]["im_metric"] == 0.5


def test_bad_python(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        opensr_test_metrics(_triplets(), python=tmp_path / "nope")
    fails = tmp_path / "fails.sh"
    fails.write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    fails.chmod(0o755)
    res = opensr_test_metrics(_triplets(), python=fails)
    assert res == {"skipped": f"{fails} exited 3: broken"}
    assert Path(fails).is_file()
