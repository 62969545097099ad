"""``s2sr train`` and ``s2sr evaluate`` subcommands."""

from __future__ import annotations

import argparse
import json
import sys


def _train(args: argparse.Namespace) -> int:
    from .config import TrainConfig
    from .loop import train

    cfg = TrainConfig.from_yaml(args.config)
    if args.out_dir:
        cfg.out_dir = args.out_dir
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    tr = train(cfg, resume=args.resume, progress=not args.quiet and sys.stderr.isatty(), log=log)
    if args.export:
        card = tr.export(args.export, checkpoint=args.checkpoint)
        if not args.quiet:
            print(json.dumps({"exported": args.export, "sha256": card.sha256}, indent=2))
    return 0


def register_train(sub: argparse._SubParsersAction):
    s = sub.add_parser("train", help="train a model from a YAML config (Wald protocol on real scenes)")
    s.add_argument("config", help="YAML training config (see configs/)")
    s.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.pt if present")
    s.add_argument("--out-dir", help="override the config's out_dir")
    s.add_argument("--export", metavar="DIR", help="write a model package (weights + ONNX + card) when done")
    s.add_argument("--checkpoint", default="best.pt", help="checkpoint to export (best.pt or last.pt)")
    s.add_argument("--quiet", action="store_true")
    return _train
