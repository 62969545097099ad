"""``s2sr graph``: the openEO process graph (JSON) running the super-resolution UDF (:mod:`udf.process_graph`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from s2sr_cli.arguments import RESOLUTIONS, Handler, add_quiet

NAME = "graph"


def run(args: argparse.Namespace) -> int:
    """Build the graph offline; write it to ``--output`` (default stdout) and the job options to ``--job-options``.

    Every option is checked, and the graph and the job options built, before anything is written."""
    from udf.process_graph import build_process_graph, default_extra_bands, graph_model, job_options, process_graph_json

    if args.no_extra_bands and args.extra_band is not None:
        raise ValueError("--extra-band and --no-extra-bands exclude each other")
    if args.archive and not args.job_options:
        raise ValueError("--archive goes into the job options: give --job-options FILE too")
    for name in ("output", "job_options"):
        path = getattr(args, name)
        if path and path != "-" and not Path(path).resolve().parent.is_dir():
            raise FileNotFoundError(f"--{name.replace('_', '-')} {path}: no such folder {Path(path).parent}")
    if args.output and args.output != "-" and args.job_options and Path(args.output).resolve() == Path(
            args.job_options).resolve():
        raise ValueError(f"--output and --job-options name the same file {args.output}")
    if args.no_extra_bands:
        extra_bands = []
    elif args.extra_band is None:
        extra_bands = list(default_extra_bands(args.collection))
    else:
        extra_bands = args.extra_band
    cube = build_process_graph(
        west=args.west, south=args.south, east=args.east, north=args.north, start=args.start, end=args.end,
        model=args.model, mode=args.mode, format=args.format, size=args.size, overlap=args.overlap,
        engine=args.engine, threads=args.threads, extra_bands=extra_bands,
        max_cloud_cover=args.max_cloud_cover, collection=args.collection, misr=args.misr, anchor=args.anchor,
        resolution=args.resolution,
    )
    text = process_graph_json(cube)
    options = json.dumps(job_options(archives=args.archive), indent=2) if args.job_options else None
    if args.output and args.output != "-":
        with open(args.output, "w") as f:
            f.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    if options is not None:
        with open(args.job_options, "w") as f:
            f.write(options + "\n")
    if args.model is None and not getattr(args, "quiet", False):
        res = 5 if args.resolution is None else args.resolution
        rgbn = "; --model s2sr-x2-rgbn loads B02, B03, B04, B08 alone" if res == 5 else ""
        why = "the multi-image default" if args.misr else f"the collection's bands at {res:g} m{rgbn}"
        chosen = graph_model(None, args.collection, misr=args.misr, resolution=args.resolution)
        print(f"s2sr {NAME}: model {chosen} ({why})", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> Handler:
    """Add ``s2sr graph --west .. --south .. --east .. --north .. --start .. --end .. [...]``; returns its handler."""
    s = subparsers.add_parser(
        NAME,
        help="print the openEO process graph (JSON) running the super-resolution UDF",
        description="Build the openEO process graph offline: load_collection, merge of the 20 m bands, "
        "resample_spatial (resampled mode, x2 models; --resolution 10 stays on the 10 m grid), apply_neighborhood "
        "with the UDF embedded in run_udf (its context names the model and the resolution), save_result.",
    )
    for k in ("west", "south", "east", "north"):
        s.add_argument(f"--{k}", type=float, required=True, help=f"{k} bound (degrees, EPSG:4326)")
    s.add_argument("--start", required=True,
                   help="first date YYYY-MM-DD (not before the collection's first data: 2017-03-28 for "
                   "SENTINEL2_L2A, 2015-06-23 for SENTINEL2_L1C)")
    s.add_argument("--end", required=True, help="end date YYYY-MM-DD (exclusive)")
    s.add_argument("--model", default=None,
                   help="shipped model name or package folder (default: the shipped model of --resolution whose bands "
                   "the collection holds, s2sr-x2-10band at 5 m and s2sr-10m-10band at 10 m for the Sentinel-2 "
                   "collections; s2sr-misr-x2 with --misr); "
                   "s2sr-x2-rgbn loads and super-resolves B02, B03, B04, B08 alone")
    s.add_argument("--resolution", type=int, choices=RESOLUTIONS, default=None,
                   help="output pixel size in metres, put into the UDF context: 5 = x2 super-resolution (resampled "
                   "mode: the cube resampled to 5 m), 10 = the 20 m bands sharpened onto the 10 m grid, the 10 m "
                   "bands unchanged (model s2sr-10m-10band, the graph stays on the 10 m grid); default: the "
                   "--model's own, 5 without --model. A --model of another output resolution is refused")
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
                   help="pass-through band of the collection loaded with the 20 m bands (repeatable; default SCL "
                   "where the collection has it)")
    s.add_argument("--no-extra-bands", action="store_true", help="load no pass-through band")
    s.add_argument("--max-cloud-cover", type=float, default=None, help="scene cloud cover filter (percent)")
    s.add_argument("--collection", default="SENTINEL2_L2A")
    s.add_argument("--misr", action="store_true",
                   help="multi-image graph: fuse all dates of --start..--end into one (udf/misr_udf.py, model "
                   "default s2sr-misr-x2, whole t dimension per chunk, no reduction before the UDF)")
    s.add_argument("--anchor", default=None,
                   help="with --misr: the output date: clearest (default), latest, first, a date index (0 = the "
                   "first date, -1 = the last) or a date YYYY-MM-DD within --start..--end")
    s.add_argument("-o", "--output", default=None, help="write the JSON here instead of stdout")
    s.add_argument("--job-options", default=None, help="also write the batch job options (JSON) to this file")
    s.add_argument("--archive", action="append", default=[],
                   help="udf-dependency-archives entry URL#folder for --job-options (repeatable)")
    add_quiet(s, help="do not print the model chosen when --model is absent")
    return run
