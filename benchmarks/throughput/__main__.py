"""``python -m benchmarks.throughput`` (from a source checkout): the throughput benchmark (see benchmarks/README.md).

    python -m benchmarks.throughput                              # every shipped model, full benchmark
    python -m benchmarks.throughput --model path/to/package --quick
    python -m benchmarks.throughput --random-model --quick       # dry run of the benchmark itself
"""

import sys

from benchmarks.throughput.cli import main

sys.exit(main())
