"""``s2sr graph`` and ``s2sr udf-archive``: the openEO subcommands of the ``s2sr`` command line.

``s2sr_cli.main`` lists this module twice in ``_EXTERNAL_COMMANDS`` (``("graph", "s2sr_cli.openeo")`` and
``("udf-archive", "s2sr_cli.openeo")``) and calls :func:`register` once per entry; each call adds the next of
:data:`COMMANDS` not yet registered. Only cheap imports happen here; the openeo client and torch are imported
by the handlers.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

__all__ = ["register", "COMMANDS"]

COMMANDS = ("graph", "udf-archive")


def _cmd_graph(args: argparse.Namespace) -> int:
    from udf.process_graph import build_process_graph, job_options, process_graph_json

    cube = build_process_graph(
        west=args.west, south=args.south, east=args.east, north=args.north, start=args.start, end=args.end,
        model=args.model, mode=args.mode, format=args.format, size=args.size, overlap=args.overlap,
        engine=args.engine, threads=args.threads, extra_bands=args.extra_band,
        max_cloud_cover=args.max_cloud_cover, collection=args.collection, misr=args.misr, anchor=args.anchor,
    )
    text = process_graph_json(cube)
    if args.output and args.output != "-":
        with open(args.output, "w") as f:
            f.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    if args.job_options:
        with open(args.job_options, "w") as f:
            json.dump(job_options(archives=args.archive), f, indent=2)
            f.write("\n")
    return 0


def _cmd_udf_archive(args: argparse.Namespace) -> int:
    from udf.archive import archive_job_options, build_udf_archives

    result = build_udf_archives(
        args.out, model=args.model, wheel_dir=args.wheel_dir, python=args.python, arch=args.arch,
        include_weights=args.include_weights,
    )
    if not getattr(args, "quiet", False):  # s2sr --quiet udf-archive ...: only the job options
        print(f"wrote {result.code}", file=sys.stderr)
        if result.deps is not None:
            print(f"wrote {result.deps} from {', '.join(w.name for w in result.wheels)}", file=sys.stderr)
        else:
            print("no --wheel-dir: no ONNX Runtime archive; the back-end must provide onnxruntime", file=sys.stderr)
        print(f"upload the zip(s) to {args.url_prefix} and pass these job options:", file=sys.stderr)
    print(json.dumps(archive_job_options(result, args.url_prefix), indent=2))
    return 0


def _add_graph(sub: Any) -> Callable[[argparse.Namespace], int]:
    s = sub.add_parser(
        "graph",
        help="print the openEO process graph (JSON) running the super-resolution UDF",
        description="Build the openEO process graph offline: load_collection, merge of the 20 m bands, "
        "resample_spatial (resampled mode), apply_neighborhood with the UDF embedded in run_udf, save_result.",
    )
    for k in ("west", "south", "east", "north"):
        s.add_argument(f"--{k}", type=float, required=True, help=f"{k} bound (degrees, EPSG:4326)")
    s.add_argument("--start", required=True, help="first date YYYY-MM-DD")
    s.add_argument("--end", required=True, help="end date YYYY-MM-DD (exclusive)")
    s.add_argument("--model", default=None, help="shipped model name or package folder (default model if absent)")
    s.add_argument("--mode", choices=("resampled", "upscale"), default="resampled")
    s.add_argument("--format", choices=("GTiff", "netCDF"), default="GTiff")
    s.add_argument("--engine", choices=("onnx", "torch"), default="onnx")
    s.add_argument("--threads", type=int, default=None, help="engine threads in the UDF (default: engine default)")
    s.add_argument("--size", type=int, default=None, help="apply_neighborhood size (px, multiple of 16)")
    s.add_argument("--overlap", type=int, default=None, help="apply_neighborhood overlap (px, multiple of 16)")
    s.add_argument("--extra-band", action="append", default=None,
                   help="pass-through band loaded with the 20 m bands (repeatable; default SCL)")
    s.add_argument("--no-extra-bands", action="store_true", help="load no pass-through band")
    s.add_argument("--max-cloud-cover", type=float, default=None, help="scene cloud cover filter (percent)")
    s.add_argument("--collection", default="SENTINEL2_L2A")
    s.add_argument("--misr", action="store_true",
                   help="multi-image graph: fuse all dates of --start..--end into one (udf/misr_udf.py, model "
                   "default s2sr-misr-x2, whole t dimension per chunk, no reduction before the UDF)")
    s.add_argument("--anchor", default=None,
                   help="with --misr: the output date: clearest (default), latest, first, or a date YYYY-MM-DD")
    s.add_argument("-o", "--output", default=None, help="write the JSON here instead of stdout")
    s.add_argument("--job-options", default=None, help="also write the batch job options (JSON) to this file")
    s.add_argument("--archive", action="append", default=[],
                   help="udf-dependency-archives entry URL#folder for --job-options (repeatable)")

    def handler(args: argparse.Namespace) -> int:
        if args.no_extra_bands:
            args.extra_band = []
        elif args.extra_band is None:
            args.extra_band = ["SCL"]
        return _cmd_graph(args)

    return handler


def _add_archive(sub: Any) -> Callable[[argparse.Namespace], int]:
    s = sub.add_parser(
        "udf-archive",
        help="build the udf-dependency-archives zip(s) for an openEO back-end and print the job options",
        description="Zip sr_core + udf + the model package (and ONNX Runtime from local wheels) for a back-end.",
    )
    s.add_argument("--out", required=True, help="output folder for the zip files")
    s.add_argument("--model", default=None, help="shipped model name or package folder (default model if absent)")
    s.add_argument("--wheel-dir", default=None,
                   help="folder with onnxruntime (+ dependency) wheels for the back-end; nothing is downloaded")
    s.add_argument("--python", default="3.11", help="back-end Python version (default 3.11)")
    s.add_argument("--arch", default="x86_64", help="back-end CPU architecture (default x86_64)")
    s.add_argument("--include-weights", action="store_true", help="also ship model.pt (engine torch)")
    s.add_argument("--url-prefix", default="https://example.org/s2sr",
                   help="URL the zips will be uploaded to (used in the printed job options)")
    return _cmd_udf_archive


def register(subparsers: Any) -> Callable[[argparse.Namespace], int]:
    """Add the next command of :data:`COMMANDS` not yet in ``subparsers`` and return its handler."""
    existing = set(getattr(subparsers, "choices", {}) or {})
    for name, add in (("graph", _add_graph), ("udf-archive", _add_archive)):
        if name not in existing:
            return add(subparsers)
    raise ValueError(f"s2sr_cli.openeo: all of {', '.join(COMMANDS)} are registered already")
