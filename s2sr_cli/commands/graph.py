"""``s2sr graph``: the openEO process graph (JSON) running the super-resolution UDF (:mod:`udf.process_graph`)."""

from __future__ import annotations

import argparse
import json
import sys

from s2sr_cli.arguments import Handler

NAME = "graph"


def run(args: argparse.Namespace) -> int:
    """Build the graph offline; write it to ``--output`` (default stdout) and the job options to ``--job-options``."""
    from udf.process_graph import build_process_graph, job_options, process_graph_json

    if args.no_extra_bands:
        extra_bands = []
    elif args.extra_band is None:
        extra_bands = ["SCL"]
    else:
        extra_bands = args.extra_band
    cube = build_process_graph(
        west=args.west, south=args.south, east=args.east, north=args.north, start=args.start, end=args.end,
        model=args.model, mode=args.mode, format=args.format, size=args.size, overlap=args.overlap,
        engine=args.engine, threads=args.threads, extra_bands=extra_bands,
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


def register(subparsers: argparse._SubParsersAction) -> Handler:
    """Add ``s2sr graph --west .. --south .. --east .. --north .. --start .. --end .. [...]``; returns its handler."""
    s = subparsers.add_parser(
        NAME,
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
    s.add_argument("--size", type=int, default=None,
                   help="apply_neighborhood size (px, multiple of 16; default: the model's recommended size)")
    s.add_argument("--overlap", type=int, default=None,
                   help="apply_neighborhood overlap (px, multiple of 16; default: the model's tiling margin rounded "
                   "up, the least the UDF accepts without seams)")
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
    return run
