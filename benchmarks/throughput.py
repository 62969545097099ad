#!/usr/bin/env python
"""Throughput benchmark of the model packages (the same as ``s2sr bench``; see ``benchmarks/README.md``).

Bare forward pass per model x engine (torch eager, ONNX Runtime, torch.compile) x threads x tile size (and
CUDA x precision x batch when a GPU is present), the whole path (UDF + back-end emulator + GeoTIFF write)
against the bare forward pass, and peak RSS at two scene sizes. Writes
``<out>/throughput_<host>_<date>.json`` and ``<out>/throughput.md`` (default ``benchmarks/results``).

    python benchmarks/throughput.py                              # every shipped model, full benchmark
    python benchmarks/throughput.py --model path/to/package --quick
    python benchmarks/throughput.py --random-model --quick       # dry run of the benchmark itself
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script from a source checkout: make sr_core importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sr_core.bench_cli import main  # cheap: the heavy imports happen inside the benchmark

if __name__ == "__main__":
    sys.exit(main(prog="benchmarks/throughput.py"))
