"""``python -m benchmarks.throughput`` (from a source checkout): the throughput benchmark (see benchmarks/README.md).

Bare forward pass per model x engine (torch eager, ONNX Runtime, torch.compile) x threads x tile size (and
CUDA x precision x batch when a GPU is present), the whole path (UDF + back-end emulator + GeoTIFF write)
against the bare forward pass, and peak RSS at two scene sizes. Writes
``<out>/throughput_<host>_<date>.json`` and ``<out>/throughput.md`` (default ``benchmarks/results``).

    python -m benchmarks.throughput                              # every shipped model, full benchmark
    python -m benchmarks.throughput --model path/to/package --quick
    python -m benchmarks.throughput --random-model --quick       # dry run of the benchmark itself
"""

import sys

from benchmarks.throughput.harness import main

sys.exit(main(prog="python -m benchmarks.throughput"))
