"""``s2sr udf-archive``: the ``udf-dependency-archives`` zip(s) for an openEO back-end (:mod:`udf.archive`)."""

from __future__ import annotations

import argparse
import json
import sys

from s2sr_cli.arguments import RESOLUTIONS, Handler

NAME = "udf-archive"


def run(args: argparse.Namespace) -> int:
    """Build the archives into ``--out``; the job options on stdout, what was written on stderr."""
    from sr_core.io.safe_output import cleanup_on_signals
    from udf.archive import archive_job_options, build_udf_archives

    model = args.model
    if args.resolution is not None:
        from sr_core.bands import MODEL_BANDS_10
        from sr_core.models import choose_model

        model = choose_model(model, MODEL_BANDS_10, resolution=float(args.resolution), name="--resolution")
    with cleanup_on_signals():  # SIGTERM / SIGINT: the temporary zip is removed, an existing zip stays
        download = args.wheel_dir is None and not args.no_download
        if download and not getattr(args, "quiet", False):
            print(f"downloading onnxruntime{'==' + args.onnxruntime if args.onnxruntime else ''} wheels for "
                  f"CPython {args.python} on linux {args.arch} with pip ...", file=sys.stderr)
        result = build_udf_archives(
            args.out, model=model, wheel_dir=args.wheel_dir, python=args.python, arch=args.arch,
            include_weights=args.include_weights, download=download, onnxruntime=args.onnxruntime,
        )
    if not getattr(args, "quiet", False):  # s2sr --quiet udf-archive ...: only the job options
        print(f"wrote {result.code}", file=sys.stderr)
        if result.deps is not None:
            source = "downloaded" if download else "from"
            print(f"wrote {result.deps} ({source} {', '.join(w.name for w in result.wheels)})", file=sys.stderr)
        else:
            print("--no-download: no ONNX Runtime archive; the back-end must provide onnxruntime", file=sys.stderr)
        print(f"upload the zip(s) to {args.url_prefix} and pass these job options:", file=sys.stderr)
    print(json.dumps(archive_job_options(result, args.url_prefix), indent=2))
    return 0


def register(subparsers: argparse._SubParsersAction) -> Handler:
    """Add ``s2sr udf-archive --out DIR [...]``; returns its handler."""
    s = subparsers.add_parser(
        NAME,
        help="build the udf-dependency-archives zip(s) for an openEO back-end and print the job options",
        description="Zip sr_core + udf + the model package, and ONNX Runtime for the back-end's Python (wheels "
        "fetched with `pip download --only-binary=:all:` for --python/--arch, or taken from --wheel-dir).",
    )
    s.add_argument("--out", required=True,
                   help="output folder for the zip files (created if missing; an existing zip is replaced only "
                   "when the new one is complete)")
    s.add_argument("--model", default=None, help="shipped model name or package folder (default: the shipped 10-band "
                   "model of --resolution)")
    s.add_argument("--resolution", type=int, choices=RESOLUTIONS, default=None,
                   help="output resolution in metres the archive's model makes: 5 (x2, the default model) or 10 (the "
                   "20 m bands sharpened onto the 10 m grid, s2sr-10m-10band), for graphs made with s2sr graph "
                   "--resolution")
    s.add_argument("--wheel-dir", default=None,
                   help="folder with onnxruntime (+ dependency) wheels for the back-end; nothing is downloaded")
    s.add_argument("--no-download", action="store_true",
                   help="without --wheel-dir: build the code archive only (the back-end must provide onnxruntime)")
    s.add_argument("--onnxruntime", default=None,
                   help="ONNX Runtime version to download (default: the one installed here)")
    s.add_argument("--python", default="3.11", help="back-end Python version (default 3.11)")
    s.add_argument("--arch", default="x86_64", help="back-end CPU architecture (default x86_64)")
    s.add_argument("--include-weights", action="store_true", help="also ship model.pt (engine torch)")
    s.add_argument("--url-prefix", default="https://example.org/s2sr",
                   help="URL the zips will be uploaded to (used in the printed job options)")
    return run
