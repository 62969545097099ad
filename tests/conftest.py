"""Shared fixtures. Tests run single-threaded per worker (pytest -n 2 on 2 cores)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_S2 = Path(os.environ.get("S2SR_SHARED", REPO.parent / "shared")) / "data" / "s2"


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.fixture
def shared_s2() -> Path:
    if not SHARED_S2.is_dir():
        pytest.skip(f"real Sentinel-2 scenes not available: {SHARED_S2} is absent (needs ../shared beside the repo)")
    return SHARED_S2
