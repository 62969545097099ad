"""``s2sr demo``: the bundled Sentinel-2 sample super-resolved through the openEO UDF (:mod:`udf.demo`)."""

from __future__ import annotations

import argparse

from s2sr_cli.arguments import Handler, add_model_args, add_quiet

NAME = "demo"

_EPILOG = """\
Writes OUT/sr_5m.tif, OUT/comparison.png (input 10 m / bicubic / super-resolved, with zoomed crops) and
OUT/metrics.json (reflectance consistency per band, spectral consistency, sharpness gain, model name,
version and sha256). The bundled sample is a crop of a real Sentinel-2 L1C scene (CC BY 4.0, contains modified
Copernicus Sentinel data 2017); it runs through udf/sr_udf.py and the local openEO back-end emulator
(apply_neighborhood, mode "upscale"), which gives the same result as `s2sr superres` on the same scene.
"""


def run(args: argparse.Namespace) -> int:
    """Run :func:`udf.demo.run_demo` into ``args.out`` and print its summary."""
    from udf.demo import render_text, run_demo

    report = run_demo(args.out, model=args.model, engine=args.engine, threads=args.threads)
    if not getattr(args, "quiet", False):
        print(render_text(report))
        print(f"outputs in {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> Handler:
    """Add ``s2sr demo [--out DIR]``; returns its handler."""
    p = subparsers.add_parser(
        NAME,
        help="super-resolve the bundled real Sentinel-2 sample through the openEO UDF: GeoTIFF, PNG, metrics",
        description="Super-resolve the bundled Sentinel-2 sample (256 x 256 px, 10 bands) with the default model "
        "through udf/sr_udf.py and the local openEO back-end emulator.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="s2sr-demo", metavar="DIR", help="output folder (default ./s2sr-demo)")
    add_model_args(p, device=False)
    add_quiet(p, help="no progress bar, print only errors")
    return run
