"""``s2sr udp``: the openEO user-defined process ``s2sr_superresolution`` (JSON) and its APEx benchmark scenario
(:mod:`udf.udp`)."""

from __future__ import annotations

import argparse
import json
import sys

from s2sr_cli.arguments import Handler

NAME = "udp"

#: A small area (about 1.4 x 1.1 km) and dates for the benchmark scenario when none are given.
SCENARIO_AREA = {"west": 14.50, "south": 53.40, "east": 14.52, "north": 53.41}
SCENARIO_DATES = ("2023-06-01", "2023-06-11")


def _write(text: str, path: str | None) -> None:
    if path and path != "-":
        with open(path, "w") as f:
            f.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")


def run(args: argparse.Namespace) -> int:
    """Build the UDP (stdout or ``--output``) and, with ``--scenario``, the benchmark scenario."""
    from udf.udp import benchmark_scenario, build_udp

    if args.no_extra_bands and args.extra_band is not None:
        raise ValueError("--extra-band and --no-extra-bands exclude each other")
    given = [f"--{k}" for k in (*SCENARIO_AREA, "start", "end") if getattr(args, k) is not None]
    if given and not args.scenario:
        raise ValueError(f"{', '.join(given)}: options of the benchmark scenario: give --scenario FILE too")
    if args.no_extra_bands:
        extra_bands: list[str] = []
    elif args.extra_band is None:
        extra_bands = ["SCL"]
    else:
        extra_bands = args.extra_band
    scenario = None
    if args.scenario:  # validated before anything is written
        if not args.namespace:
            raise ValueError("--scenario needs --namespace URL: where the UDP JSON is published")
        area = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in SCENARIO_AREA.items()}
        scenario = benchmark_scenario(
            namespace=args.namespace, **area, start=args.start or SCENARIO_DATES[0],
            end=args.end or SCENARIO_DATES[1], model=args.model, archives=args.archive,
        )
    udp = build_udp(
        model=args.model, mode=args.mode, engine=args.engine, size=args.size, overlap=args.overlap,
        extra_bands=extra_bands, archives=args.archive,
    )
    _write(json.dumps(udp, indent=2), args.output)
    if scenario is not None:
        _write(json.dumps(scenario, indent=2), args.scenario)
    return 0


def register(subparsers: argparse._SubParsersAction) -> Handler:
    """Add ``s2sr udp [--model M] [--mode MODE] [-o FILE] [--scenario FILE --namespace URL]``; returns its handler."""
    s = subparsers.add_parser(
        NAME,
        help="print the openEO user-defined process s2sr_superresolution (JSON), callable by name with parameters",
        description="Build the user-defined process s2sr_superresolution offline: parameters spatial_extent, "
        "temporal_extent, collection, model; the process graph of `s2sr graph` without save_result. Publish the "
        "JSON at a URL (or keep it as a file) and run it with connection.datacube_from_process("
        "'s2sr_superresolution', namespace=URL_OR_FILE, spatial_extent=..., temporal_extent=...).",
    )
    s.add_argument("--model", default=None, help="shipped model name or package folder (default model if absent)")
    s.add_argument("--mode", choices=("resampled", "upscale"), default="resampled")
    s.add_argument("--engine", choices=("onnx", "torch"), default="onnx")
    s.add_argument("--size", type=int, default=None,
                   help="apply_neighborhood size (px, multiple of 16; default: the model's recommended size)")
    s.add_argument("--overlap", type=int, default=None,
                   help="apply_neighborhood overlap (px, multiple of 16; default: the least the model needs)")
    s.add_argument("--extra-band", action="append", default=None,
                   help="pass-through band loaded with the 20 m bands (repeatable; default SCL)")
    s.add_argument("--no-extra-bands", action="store_true", help="load no pass-through band")
    s.add_argument("--archive", action="append", default=[],
                   help="udf-dependency-archives entry URL#folder (repeatable; as printed by `s2sr udf-archive`): "
                   "stored as the UDP's default job options")
    s.add_argument("-o", "--output", default=None, help="write the UDP JSON here instead of stdout")
    g = s.add_argument_group("benchmark scenario (the APEx algorithm catalogue's format)")
    g.add_argument("--scenario", default=None, help="also write a benchmark scenario calling the UDP to this file")
    g.add_argument("--namespace", default=None, help="the http(s) URL the UDP JSON is published at")
    for k, v in SCENARIO_AREA.items():
        g.add_argument(f"--{k}", type=float, default=None, help=f"scenario area {k} bound (degrees; default {v})")
    g.add_argument("--start", default=None, help=f"scenario first date (default {SCENARIO_DATES[0]})")
    g.add_argument("--end", default=None, help=f"scenario end date, exclusive (default {SCENARIO_DATES[1]})")
    return run
