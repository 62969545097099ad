"""The ``s2sr`` command line: one entry point, one subcommand per job (``s2sr SUBCOMMAND --help``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

__all__ = ["build_parser", "main"]


def _cmd_archs(args: argparse.Namespace) -> int:
    from sr_core.archs import arch_class, list_archs

    for name in list_archs():
        doc = (arch_class(name).__doc__ or "").strip().splitlines()
        print(f"{name:12s} {doc[0] if doc else ''}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from sr_core.models import list_models, load_card, resolve_model

    names = list_models()
    if not names:
        print("no model packages shipped in this installation", file=sys.stderr)
        return 0
    for name in names:
        card = load_card(name, verify=args.verify)
        if args.json:
            print(json.dumps(card.to_dict(), indent=2))
        else:
            print(f"{card.name} v{card.version}: {card.arch} x{card.scale}, bands {','.join(card.bands)}, "
                  f"receptive field {card.receptive_field} px  [{resolve_model(name)}]")
    return 0


def _cmd_export_onnx(args: argparse.Namespace) -> int:
    import torch

    from sr_core.archs import get_arch
    from sr_core.models.export import check_onnx_parity, export_onnx
    from sr_core.models import load_torch_model

    if args.model is not None:
        model, card = load_torch_model(args.model)
        channels = len(card.bands)
    else:
        kwargs = json.loads(args.arch_kwargs)
        model = get_arch(args.arch, **kwargs).eval()
        channels = kwargs.get("in_channels", 10)
    example = torch.rand(1, channels, args.size, args.size, generator=torch.Generator().manual_seed(0))
    export_onnx(model, args.output, example, opset_version=args.opset)
    diff = check_onnx_parity(model, args.output, torch.rand(1, channels, args.size + 5, args.size + 3))
    if not args.quiet:
        print(f"wrote {args.output} (opset {args.opset}); ONNX Runtime vs eager max abs diff {diff:.2e}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="s2sr",
        description="Sentinel-2 super-resolution (10 bands to 5 m) as an openEO UDF plugin.",
    )
    p.add_argument("--quiet", action="store_true", help="print only errors")
    sub = p.add_subparsers(dest="command", metavar="SUBCOMMAND")
    sub.required = True
    commands: dict[str, Callable[[argparse.Namespace], int]] = {}

    s = sub.add_parser("archs", help="list the registered network architectures")
    commands["archs"] = _cmd_archs

    s = sub.add_parser("models", help="list the shipped model packages with their cards")
    s.add_argument("--json", action="store_true", help="print the full JSON cards")
    s.add_argument("--no-verify", dest="verify", action="store_false", help="skip the sha256 check")
    commands["models"] = _cmd_models

    s = sub.add_parser("export-onnx", help="export a model package or an architecture to ONNX and check parity")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--model", help="shipped model name or package folder")
    g.add_argument("--arch", help="architecture name (see `s2sr archs`)")
    s.add_argument("--arch-kwargs", default="{}", help="JSON constructor arguments for --arch")
    s.add_argument("--opset", type=int, default=17)
    s.add_argument("--size", type=int, default=32, help="example spatial size for tracing")
    s.add_argument("output", help="output .onnx path")
    commands["export-onnx"] = _cmd_export_onnx

    for name, mod, func in _EXTERNAL_COMMANDS:
        module = __import__(mod, fromlist=[func])  # cheap imports only; heavy ones inside handlers
        commands[name] = getattr(module, func)(sub)

    p.set_defaults(_commands=commands)
    return p


# Subcommands defined next to the code they drive: (name, module, function(subparsers) -> handler).
_EXTERNAL_COMMANDS: list[tuple[str, str, str]] = [
    ("demo", "s2sr_cli.app", "register_demo"),
    ("superres", "s2sr_cli.app", "register_superres"),
    ("train", "s2sr_cli.train", "register_train"),
    ("evaluate", "s2sr_cli.train", "register_evaluate"),
    ("graph", "s2sr_cli.openeo", "register"),
    ("udf-archive", "s2sr_cli.openeo", "register"),
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # subcommand-level --quiet may be absent
    args.quiet = getattr(args, "quiet", False)
    handler = args._commands[args.command]
    try:
        return int(handler(args) or 0)
    except (ValueError, FileNotFoundError) as e:
        print(f"s2sr {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
