"""Argument types and option groups shared by the ``s2sr`` subcommands (argparse only: ``s2sr --help`` stays fast)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["RESOLUTIONS", "Handler", "add_model_args", "add_quiet", "nonneg_int", "positive_int"]

#: What a command module's ``register(subparsers)`` returns: runs the parsed command, returns the exit status.
Handler = Callable[[argparse.Namespace], int]

#: The ``--resolution`` choices (metres): the output resolutions of the shipped automatic models
#: (``sr_core.models.auto_resolutions()``, not imported here so that ``--help`` stays fast; a test keeps them equal).
RESOLUTIONS = (5, 10)


def _int_at_least(text: str, minimum: int) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < minimum:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {v}")
    return v


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1)


def nonneg_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0)


def add_quiet(p: argparse.ArgumentParser, help: str = "print only errors") -> None:
    """``--quiet`` on a subcommand. Its default is SUPPRESS so that the global ``s2sr --quiet COMMAND`` is not
    reset by the subparser; read it with ``getattr(args, "quiet", False)``."""
    p.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help=help)


def add_model_args(p: argparse.ArgumentParser, *, device: bool = True, auto_model: bool = False) -> None:
    """``--model``, ``--engine``, ``--device`` (when ``device``) and ``--threads``; ``auto_model``: without
    ``--model`` the shipped model is chosen by the input's bands and the output resolution asked
    (:func:`sr_core.models.pick_model`)."""
    default = ("the shipped model of the --resolution asked whose bands the input holds: at 5 m s2sr-x2-10band for "
               "the 10 bands, s2sr-x2-rgbn for B02, B03, B04, B08 alone; at 10 m s2sr-10m-10band for the 10 bands"
               if auto_model else "s2sr-x2-10band")
    p.add_argument("--model", default=None, help=f"shipped model name or package folder (default: {default})")
    p.add_argument(
        "--engine", choices=("onnx", "torch"), default="onnx", help="inference engine (default onnx)"
    )
    if device:
        p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="device (default cpu)")
    p.add_argument("--threads", type=positive_int, default=None, help="engine threads (default: all cores)")
