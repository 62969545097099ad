"""``s2sr evaluate``: the quality report of a model package (:mod:`sr_core.evaluation.run`).

:func:`add_arguments` also serves ``benchmarks/quality.py``.
"""

from __future__ import annotations

import argparse
import sys

from s2sr_cli.arguments import Handler, add_quiet
from sr_core.evaluation import DEFAULT_DEGRADATIONS, FAMILY, REPORT_SCENES

NAME = "evaluate"

# The defaults of sr_core.evaluation.run (not imported here: it imports torch; the tests check they agree).
DEFAULT_ROOT = "../shared/data/s2"
DEFAULT_CONFIG = "configs/s2sr-x2-10band.yaml"
DEFAULT_OUT = "benchmarks/results"


class _Default(list):
    """An option's default list, told apart from the same list given on the command line."""


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments of ``s2sr evaluate`` / ``benchmarks/quality.py`` on an argparse parser; returns it."""
    p.add_argument(
        "--model", default=None, help="shipped model name or package folder (default: the default model)"
    )
    p.add_argument("--root", default=DEFAULT_ROOT, help="folder holding the scene folders")
    p.add_argument(
        "--scenes",
        nargs="+",
        default=None,
        metavar="SCENE",
        help="scene ids or 'ID[y0:y1,x0:x1]' windows (10 m px); default: the model card's validation "
        "scenes, else data.val of --config",
    )
    p.add_argument(
        "--config", default=None, help=f"training config for the default scenes (default {DEFAULT_CONFIG})"
    )
    p.add_argument(
        "--sample", action="store_true", help="evaluate on the bundled sample scene only (no --root needed)"
    )
    p.add_argument(
        "--report-scenes",
        action="store_true",
        help="evaluate on the report scenes, never used to train or select a model: " + ", ".join(REPORT_SCENES),
    )
    p.add_argument("--out", default=DEFAULT_OUT, help="output folder (JSON, Markdown, figures/)")
    p.add_argument("--engine", choices=("onnx", "torch"), default="onnx")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: the engine's)")
    p.add_argument(
        "--degradations",
        nargs="+",
        default=_Default(DEFAULT_DEGRADATIONS),
        help=f"Wald degradation operators (default: {' '.join(DEFAULT_DEGRADATIONS)}; with --family / --peer: "
        f"{' '.join(FAMILY)})",
    )
    p.add_argument(
        "--family",
        action="store_true",
        help="score under the whole operator family, the 20 m bands under the physical and the block-mean scoring, "
        "with the worst case per band and scene; writes <out>/quality_<model>_family.json/.md",
    )
    p.add_argument(
        "--peer",
        default=None,
        metavar="ONNX",
        help="a peer x2 model (ONNX, the EVOLAND carn_light convention: DN, 20 m bands bicubic on the 10 m grid; "
        "<stem>.derived.yaml beside it may describe another) scored side by side in the same run (implies --family)",
    )
    p.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="MODEL",
        help="another of our models (name or folder; repeatable) scored side by side in the same run (implies "
        "--family); e.g. --model s2sr-10m-10band --compare s2sr-x2-10band: the 10 m product made directly and by "
        "the 5 m model",
    )
    p.add_argument(
        "--opensr-test",
        nargs="?",
        const="",
        default=None,
        metavar="PYTHON",
        help="with --family: add the opensr-test 1.3.3 metrics of the 10 m bands, computed here or by PYTHON (the "
        "interpreter of an environment that has opensr-test installed)",
    )
    p.add_argument(
        "--crop", type=int, default=None, help="central crop, 10 m px per side (default: whole scenes)"
    )
    p.add_argument("--border", type=int, default=8, help="10 m px left out at each edge (even)")
    p.add_argument("--tile", type=int, default=256, help="tile size of the tiled inference (input px)")
    p.add_argument("--no-figures", dest="figures", action="store_false", help="skip the PNG figures")
    p.add_argument(
        "--update-card",
        action="store_true",
        help="write the summary (and the per-scene, per-band gains) into the package's card.json / card.md",
    )
    p.add_argument(
        "--tasks",
        nargs="*",
        default=None,
        metavar="TASK_NET",
        help="task-based assessment instead of the image-quality one (sr_core.evaluation.tasks): task networks "
        "(folders / shipped names; default: the shipped task-unet and task-unetpp); writes "
        "<out>/tasks_<model>.json/.md",
    )
    p.add_argument(
        "--task-models",
        nargs="+",
        default=[],
        metavar="MODEL",
        help="with --tasks: further SR models to compare (package folders, shipped names or training "
        "checkpoints runs/<run>/best.pt)",
    )
    p.add_argument(
        "--misr",
        action="store_true",
        help="multi-image evaluation (sr_core.evaluation.misr): MISR vs SISR / bicubic / registered-mean baselines "
        "on simulated 8-frame stacks, cloud test, real-series Wald check; --model defaults to s2sr-misr-x2; "
        "writes <out>/quality_misr_<model>.json/.md",
    )
    p.add_argument("--sisr-model", default=None, help="with --misr: the single-image model to compare "
                   "(default: the default model)")
    p.add_argument("--stacks", type=int, default=6, help="with --misr: simulated stacks per validation scene")
    p.add_argument("--patch", type=int, default=128, help="with --misr: crop size of a stack, 10 m px")
    p.add_argument("--task-report", default=None, metavar="NAME",
                   help="with --tasks: report file name stem (default tasks_<model>)")
    add_quiet(p)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the evaluation :func:`add_arguments` describes; the summary on stdout, progress on stderr."""
    from sr_core.evaluation.run import run_family, run_misr, run_quality, run_tasks

    quiet = bool(getattr(args, "quiet", False))
    log = None if quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    family = args.family or args.peer is not None or bool(args.compare)
    if (family or args.opensr_test is not None) and (args.misr or args.tasks is not None):
        raise ValueError("--family, --peer and --opensr-test go with the image-quality report, not --misr or --tasks")
    if args.opensr_test is not None and not family:
        raise ValueError("--opensr-test needs --family (or --peer)")
    if args.report_scenes and (args.misr or args.tasks is not None):
        raise ValueError("--report-scenes goes with the image-quality report, not --misr or --tasks")
    if family:
        if args.update_card:
            raise ValueError("--update-card writes the two-operator report; run it without --family / --peer")
        done = run_family(
            args.model, args.scenes, peer=args.peer, compare=args.compare, report_scenes=args.report_scenes, sample=args.sample,
            root=args.root, config=args.config, out=args.out,
            degradations=list(FAMILY) if isinstance(args.degradations, _Default) else args.degradations,
            engine=args.engine, crop=args.crop,
            border=args.border, tile=args.tile, threads=args.threads, opensr_test=args.opensr_test is not None,
            opensr_python=args.opensr_test or None, log=log,
        )
    elif args.misr:
        done = run_misr(
            args.model, sisr_model=args.sisr_model, scenes=args.scenes, root=args.root, stacks=args.stacks,
            patch=args.patch, engine=args.engine, threads=args.threads, out=args.out, update_card=args.update_card,
            log=log,
        )
    elif args.tasks is not None:
        done = run_tasks(
            args.model, args.tasks, task_models=args.task_models, scenes=args.scenes, sample=args.sample,
            root=args.root, config=args.config, out=args.out, border=args.border, report_name=args.task_report,
            log=log,
        )
    else:
        done = run_quality(
            args.model, args.scenes, sample=args.sample, report_scenes=args.report_scenes, root=args.root,
            config=args.config, out=args.out, figures=args.figures,
            degradations=list(args.degradations), engine=args.engine, crop=args.crop,
            border=args.border, tile=args.tile, threads=args.threads, update_card=args.update_card, log=log,
        )
    if not quiet:
        for line in done.summary:
            print(line)
        print(f"wrote {done.json_path} and {done.markdown_path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> Handler:
    """Add ``s2sr evaluate [...]``; returns its handler."""
    s = subparsers.add_parser(
        NAME,
        help="quality report of a model: Wald protocol (2 degradations, or the operator family beside a peer with "
        "--family / --peer) + full-resolution checks, JSON/Markdown/PNG",
        description="Reduced-resolution (Wald) PSNR gain over bicubic, SSIM, SAM, ERGAS per band and scene, and "
        "full-resolution consistency, spectral consistency, spatial shift and power spectrum on the real inputs. "
        "Writes <out>/quality_<model>.json, .md and <out>/figures/*.png.",
    )
    add_arguments(s)
    return run
