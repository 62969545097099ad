"""``s2sr archs``: the registered network architectures, one line each."""

from __future__ import annotations

import argparse

from s2sr_cli.arguments import Handler

NAME = "archs"


def run(args: argparse.Namespace) -> int:
    from sr_core.archs import arch_class, list_archs

    for name in list_archs():
        doc = (arch_class(name).__doc__ or "").strip().splitlines()
        print(f"{name:12s} {doc[0] if doc else ''}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> Handler:
    """Add ``s2sr archs``; returns its handler."""
    subparsers.add_parser(NAME, help="list the registered network architectures")
    return run
