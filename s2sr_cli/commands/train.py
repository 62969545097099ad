"""``s2sr train``: a model trained from a YAML config (:mod:`sr_core.training`), optionally exported as a package."""

from __future__ import annotations

import argparse
import json
import sys

from s2sr_cli.arguments import Handler, add_quiet

NAME = "train"


def run(args: argparse.Namespace) -> int:
    """Train (or resume) ``args.config``; ``--export`` writes the model package when training has finished."""
    from sr_core.training.config import TrainConfig
    from sr_core.training.misr import MISRTrainConfig, is_misr_config, train_misr
    from sr_core.training.sisr import train

    quiet = bool(getattr(args, "quiet", False))
    misr = is_misr_config(args.config)  # `kind: misr` configs train multi-image networks
    cfg = MISRTrainConfig.from_yaml(args.config) if misr else TrainConfig.from_yaml(args.config)
    if args.out_dir:
        cfg.out_dir = args.out_dir
    log = (lambda s: None) if quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    tr = (train_misr if misr else train)(cfg, resume=args.resume, progress=not quiet and sys.stderr.isatty(),
                                         log=log, max_steps=args.max_steps)
    if not tr.last_run["finished"]:
        if not quiet:
            print(f"stopped after {args.max_steps} steps at step {tr.global_step}; continue with --resume",
                  file=sys.stderr)
        return 0
    if args.export:
        card = tr.export(args.export, checkpoint=args.checkpoint)
        if not quiet:
            print(json.dumps({"exported": args.export, "sha256": card.sha256}, indent=2))
    return 0


def register(subparsers: argparse._SubParsersAction) -> Handler:
    """Add ``s2sr train CONFIG [...]``; returns its handler."""
    s = subparsers.add_parser(NAME, help="train a model from a YAML config (Wald protocol on real scenes)")
    s.add_argument("config", help="YAML training config (see configs/)")
    s.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.pt if present")
    s.add_argument("--max-steps", type=int, default=None,
                   help="stop after this many steps in this call (checkpointed; continue with --resume)")
    s.add_argument("--out-dir", help="override the config's out_dir")
    s.add_argument("--export", metavar="DIR", help="write a model package (weights + ONNX + card) when done")
    s.add_argument("--checkpoint", default="best.pt", help="checkpoint to export (best.pt or last.pt)")
    add_quiet(s)
    return run
