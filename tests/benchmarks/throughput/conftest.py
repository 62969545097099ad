"""The tiny random model package the throughput tests run on."""

from __future__ import annotations

import pytest

from udf.testing import make_package


@pytest.fixture(scope="session")
def pkg(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench") / "tiny-s2fast"
    make_package(folder, arch="s2fast", arch_kwargs={"num_features": 8, "num_blocks": 1})
    return folder
