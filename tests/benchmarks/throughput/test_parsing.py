"""benchmarks/throughput/parsing.py: the list options of the command line."""

from __future__ import annotations

import pytest

from benchmarks.throughput.parsing import parse_engines, parse_int_list, parse_threads


def test_parse_threads_and_lists():
    assert parse_threads("1..all", all_cpus=8) == [1, 2, 4, 8]
    assert parse_threads("1..all", all_cpus=6) == [1, 2, 4, 6]
    assert parse_threads("1..all", all_cpus=1) == [1]
    assert parse_threads("1-3,all", all_cpus=6) == [1, 2, 3, 6]
    assert parse_threads("all,1", all_cpus=4) == [4, 1]
    with pytest.raises(ValueError, match="more than the 4 CPUs"):
        parse_threads("8", all_cpus=4)
    assert parse_int_list("256, 128,256", "tiles") == [256, 128]
    with pytest.raises(ValueError, match="tiles"):
        parse_int_list("128,x", "tiles")
    with pytest.raises(ValueError, match=">= 1"):
        parse_int_list("0", "tiles")
    assert parse_engines("onnx,torch,onnx") == ["onnx", "torch"]
    with pytest.raises(ValueError, match="tensorrt"):
        parse_engines("torch,tensorrt")
