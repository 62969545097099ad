"""The ``s2sr`` command line: global options, one subcommand per module of :mod:`s2sr_cli.commands`, errors.

Errors are one line on stderr, ``s2sr COMMAND: error: MESSAGE``, with exit status 2 for bad input (bad
arguments, values the library refuses, missing or unreadable files) and 1 for an unexpected error;
``s2sr --debug COMMAND ...`` also prints the traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from s2sr_cli.commands import archs, demo, evaluate, export_onnx, graph, models, superres, train, udf_archive, udp

__all__ = ["BAD_INPUT", "COMMANDS", "build_parser", "main"]

#: The subcommand modules, in the order ``s2sr --help`` lists them.
COMMANDS = (archs, models, export_onnx, demo, superres, train, evaluate, graph, udp, udf_archive)

#: Exceptions that mean bad input (exit status 2); so does rasterio's RasterioIOError (a file GDAL cannot open).
BAD_INPUT = (ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, ``PROG: error: MESSAGE``, exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``s2sr`` parser; each subparser's ``handler`` default is its command's ``run``."""
    p = _Parser(
        prog="s2sr",
        description="Sentinel-2 super-resolution (10 bands to 5 m) as an openEO UDF plugin.",
    )
    p.add_argument("--quiet", action="store_true", help="print only errors")
    p.add_argument("--debug", action="store_true", help="print the traceback of an error")
    sub = p.add_subparsers(dest="command", metavar="SUBCOMMAND")
    sub.required = True
    for command in COMMANDS:
        handler = command.register(sub)
        sub.choices[command.NAME].set_defaults(handler=handler)
    return p


def _is_bad_input(exc: BaseException) -> bool:
    if isinstance(exc, BAD_INPUT):
        return True
    errors = sys.modules.get("rasterio.errors")  # loaded whenever rasterio raised; never imported here
    return errors is not None and isinstance(exc, errors.RasterioIOError)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``s2sr`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    args.quiet = bool(getattr(args, "quiet", False))
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc()
        print(f"s2sr {args.command}: interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT, the shell's status for a command stopped by Ctrl-C
    except Exception as e:  # noqa: BLE001 - every error becomes one line and an exit status
        if args.debug:
            traceback.print_exc()
        message = _one_line(str(e)) or type(e).__name__
        if _is_bad_input(e):
            print(f"s2sr {args.command}: error: {message}", file=sys.stderr)
            return 2
        hint = "" if args.debug else "; `s2sr --debug ...` prints the traceback"
        print(f"s2sr {args.command}: error: unexpected {type(e).__name__}: {message}{hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
