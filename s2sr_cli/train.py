"""``s2sr train`` and ``s2sr evaluate`` subcommands."""

from __future__ import annotations

import argparse
import json
import sys


def _train(args: argparse.Namespace) -> int:
    from sr_core.training.misr import MISRTrainConfig, is_misr_config, train_misr
    from sr_core.training.config import TrainConfig
    from sr_core.training.loop import train

    misr = is_misr_config(args.config)  # `kind: misr` configs train multi-image networks (sr_core.misr)
    cfg = MISRTrainConfig.from_yaml(args.config) if misr else TrainConfig.from_yaml(args.config)
    if args.out_dir:
        cfg.out_dir = args.out_dir
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    tr = (train_misr if misr else train)(cfg, resume=args.resume, progress=not args.quiet and sys.stderr.isatty(),
                                         log=log, max_steps=args.max_steps)
    if not tr.last_run["finished"]:
        if not args.quiet:
            print(f"stopped after {args.max_steps} steps at step {tr.global_step}; continue with --resume",
                  file=sys.stderr)
        return 0
    if args.export:
        card = tr.export(args.export, checkpoint=args.checkpoint)
        if not args.quiet:
            print(json.dumps({"exported": args.export, "sha256": card.sha256}, indent=2))
    return 0


def register_train(sub: argparse._SubParsersAction):
    s = sub.add_parser("train", help="train a model from a YAML config (Wald protocol on real scenes)")
    s.add_argument("config", help="YAML training config (see configs/)")
    s.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.pt if present")
    s.add_argument("--max-steps", type=int, default=None,
                   help="stop after this many steps in this call (checkpointed; continue with --resume)")
    s.add_argument("--out-dir", help="override the config's out_dir")
    s.add_argument("--export", metavar="DIR", help="write a model package (weights + ONNX + card) when done")
    s.add_argument("--checkpoint", default="best.pt", help="checkpoint to export (best.pt or last.pt)")
    s.add_argument("--quiet", action="store_true")
    return _train


def _evaluate(args: argparse.Namespace) -> int:
    from s2sr_cli.evaluate import run_from_args

    return run_from_args(args)


def register_evaluate(sub: argparse._SubParsersAction):
    from s2sr_cli.evaluate import add_evaluate_arguments

    s = sub.add_parser(
        "evaluate",
        help="quality report of a model: Wald protocol (2 degradations) + full-resolution checks, JSON/Markdown/PNG",
        description="Reduced-resolution (Wald) PSNR gain over bicubic, SSIM, SAM, ERGAS per band and scene, and "
        "full-resolution consistency, spectral consistency, spatial shift and power spectrum on the real inputs. "
        "Writes <out>/quality_<model>.json, .md and <out>/figures/*.png.",
    )
    add_evaluate_arguments(s)
    return _evaluate
