#!/usr/bin/env python
r"""Quality benchmark of a model package (the same as ``s2sr evaluate``).

Reduced-resolution (Wald) protocol with two degradation operators and full-resolution checks on real scenes;
writes ``<out>/quality_<model>.json``, ``.md`` and ``<out>/figures/*.png`` (default ``benchmarks/results``).
The arguments and the run are those of ``s2sr evaluate`` (:mod:`s2sr_cli.commands.evaluate`, which calls
:mod:`sr_core.evaluation.run`).

    python benchmarks/quality.py --model s2sr-x2-10band            # the model card's validation scenes
    python benchmarks/quality.py --model path/to/package --sample  # the bundled sample only

The numbers for cards and README: the report scenes (never used to train or select), the whole operator family,
both scorings of the 20 m bands, the worst case, the EVOLAND peer beside ours and the opensr-test metrics (computed
by the Python of an environment with ``opensr-test==1.3.3``; this project's environment does not install it):

    python benchmarks/quality.py --model s2sr-x2-10band --report-scenes \
        --peer ../shared/peers/evoland_carn_light/carn_light.onnx --opensr-test /path/to/opensr-env/bin/python \
        --threads 1 --out benchmarks/results/quality       # -> quality_s2sr-x2-10band_family.json / .md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script from a source checkout: make sr_core importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from s2sr_cli.commands.evaluate import add_arguments, run
from s2sr_cli.main import BAD_INPUT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmarks/quality.py",
        description=(__doc__ or "").strip().splitlines()[0],
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except BAD_INPUT as e:
        print(f"quality.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
