"""``s2sr export-onnx``: a model package or an architecture exported to ONNX, with the parity check."""

from __future__ import annotations

import argparse
import json

from s2sr_cli.arguments import Handler

NAME = "export-onnx"


def run(args: argparse.Namespace) -> int:
    import torch

    from sr_core.archs import get_arch
    from sr_core.models import load_torch_model
    from sr_core.models.export import check_onnx_parity, export_onnx

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
    if not getattr(args, "quiet", False):
        print(f"wrote {args.output} (opset {args.opset}); ONNX Runtime vs eager max abs diff {diff:.2e}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> Handler:
    """Add ``s2sr export-onnx (--model M | --arch A) OUTPUT``; returns its handler."""
    s = subparsers.add_parser(NAME, help="export a model package or an architecture to ONNX and check parity")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--model", help="shipped model name or package folder")
    g.add_argument("--arch", help="architecture name (see `s2sr archs`)")
    s.add_argument("--arch-kwargs", default="{}", help="JSON constructor arguments for --arch")
    s.add_argument("--opset", type=int, default=17)
    s.add_argument("--size", type=int, default=32, help="example spatial size for tracing")
    s.add_argument("output", help="output .onnx path")
    return run
