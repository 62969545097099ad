"""Arguments and driver of ``s2sr evaluate`` and ``benchmarks/quality.py`` (importing this module is cheap)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from sr_core.evaluation import DEFAULT_DEGRADATIONS

__all__ = ["add_evaluate_arguments", "default_val_scenes", "run_from_args", "update_card_validation"]


def update_card_validation(model: Any, result: dict, *, scenes: list[str]) -> None:
    """Put an evaluation's summary and its per-scene, per-band Wald gains into a package's card.json and card.md.

    Only ``validation`` changes: the sha256 of the weights and the ONNX file still hold.
    """
    from sr_core.models import ModelCard, render_card_markdown, resolve_model

    folder = resolve_model(model)
    card = ModelCard.from_json(folder / "card.json")
    per_band = [
        {k: r.get(k) for k in ("scene", "degradation", "band", "psnr_sr", "psnr_bicubic_native", "gain_db_native",
                               "gain_db", "ssim_sr", "ssim_bicubic")}
        for r in result.get("wald", [])
    ]
    card.validation = {
        "protocol": "Wald (reduced resolution, x2: 10 m bands from 20 m, 20 m bands from 40 m) on held-out scenes, "
        "gains in dB over bicubic; gain_db_native = over bicubic of the native coarse grid (the stronger "
        "baseline for the 20 m bands); full-resolution checks on the real inputs (s2sr evaluate)",
        "scenes": scenes,
        "summary": result["summary"],
        "wald_per_band": per_band,
        "metadata": result.get("metadata", {}),
    }
    card.write_json(folder / "card.json")
    (folder / "card.md").write_text(render_card_markdown(card))

_DEFAULT_CONFIG = Path("configs") / "s2sr-x2-10band.yaml"


def default_val_scenes(model: Any = None, config: str | Path | None = None) -> list:
    """The validation scenes of a model: its card's ``training.config.data.val`` (or ``training.val_regions``),
    else ``data.val`` of the YAML ``config`` (default ``configs/s2sr-x2-10band.yaml``)."""
    card = getattr(model, "card", None)
    if card is None and isinstance(model, (str, os.PathLike)):
        from sr_core.models import load_card

        card = load_card(model, verify=False)
    training = getattr(card, "training", None) or {}
    val = (training.get("config") or {}).get("data", {}).get("val") or training.get("val_regions")
    if val:
        from sr_core.evaluation.core import parse_scene_spec

        return [parse_scene_spec(v) for v in val]
    path = Path(config) if config is not None else _DEFAULT_CONFIG
    if not path.is_file():
        raise ValueError(
            f"no --scenes given, the model card lists no validation scenes and {path} does not exist"
        )
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    val = (data.get("data") or {}).get("val") or []
    if not val:
        raise ValueError(f"{path} has no data.val list: give --scenes")
    from sr_core.evaluation.core import parse_scene_spec

    return [parse_scene_spec(v) for v in val]


def add_evaluate_arguments(p: Any) -> Any:
    """Arguments of ``s2sr evaluate`` / ``benchmarks/quality.py`` on an argparse parser."""
    p.add_argument(
        "--model", default=None, help="shipped model name or package folder (default: the default model)"
    )
    p.add_argument("--root", default="../shared/data/s2", help="folder holding the scene folders")
    p.add_argument(
        "--scenes",
        nargs="+",
        default=None,
        metavar="SCENE",
        help="scene ids or 'ID[y0:y1,x0:x1]' windows (10 m px); default: the model card's validation "
        "scenes, else data.val of --config",
    )
    p.add_argument(
        "--config", default=None, help=f"training config for the default scenes (default {_DEFAULT_CONFIG})"
    )
    p.add_argument(
        "--sample", action="store_true", help="evaluate on the bundled sample scene only (no --root needed)"
    )
    p.add_argument("--out", default="benchmarks/results", help="output folder (JSON, Markdown, figures/)")
    p.add_argument("--engine", choices=("onnx", "torch"), default="onnx")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: the engine's)")
    p.add_argument(
        "--degradations",
        nargs="+",
        default=list(DEFAULT_DEGRADATIONS),
        help="Wald degradation operators (default: %(default)s)",
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
    p.add_argument("--quiet", action="store_true", help="print only errors")
    return p


def _run_misr(args: Any, log: Any) -> int:
    from sr_core.inference.cube import DEFAULT_MISR_MODEL
    from sr_core.evaluation.misr import run_misr_evaluation, write_report
    from sr_core.models import DEFAULT_MODEL

    res = run_misr_evaluation(
        args.model or DEFAULT_MISR_MODEL, sisr_model=args.sisr_model or DEFAULT_MODEL, root=args.root,
        scenes=args.scenes or None, stacks=args.stacks, patch=args.patch, engine=args.engine, threads=args.threads,
        log=log,
    )
    jp, mp = write_report(res, args.out)
    if getattr(args, "update_card", False):
        from sr_core.evaluation.misr import update_card_validation as _update

        _update(args.model or DEFAULT_MISR_MODEL, res)
    if not getattr(args, "quiet", False):
        for k, v in res["targets"].items():
            print(f"{k}: {v['value']:+.3f} (target {v['target']}: {'met' if v['met'] else 'NOT met'})")
        print(f"wrote {jp} and {mp}")
    return 0


def _run_tasks(args: Any, model: Any, scenes: list, root: str, log: Any) -> int:
    from sr_core.evaluation.tasks import run_task_assessment

    nets = list(args.tasks) or ["task-unet", "task-unetpp"]
    models = {Path(str(model)).name: model}
    for m in getattr(args, "task_models", []) or []:
        p = Path(m)
        key = p.parent.name if p.suffix == ".pt" else p.name
        models[key] = m
    res, jp, mp = run_task_assessment(
        models, {Path(n).name: n for n in nets}, scenes, args.out, name=getattr(args, "task_report", None) or f"tasks_{Path(str(model)).name}",
        root=root, border=args.border, progress=log,
    )
    if not getattr(args, "quiet", False):
        for ref, by_tn in res["summary"]["mean_task_dice"].items():
            for tn, by_src in by_tn.items():
                print(f"{ref:14s} {tn:12s} mean Dice " + "  ".join(f"{k} {v:.3f}" for k, v in by_src.items()))
        print(f"wrote {jp} and {mp}")
    return 0


def run_from_args(args: Any) -> int:
    """Run an evaluation from parsed :func:`add_evaluate_arguments` arguments; prints the report paths."""
    from sr_core.models import DEFAULT_MODEL
    from sr_core.evaluation.core import parse_scene_spec, run_evaluation

    if getattr(args, "misr", False):
        quiet = bool(getattr(args, "quiet", False))
        return _run_misr(args, (lambda s: None) if quiet else (lambda s: print(s, file=sys.stderr, flush=True)))
    model = args.model if args.model is not None else DEFAULT_MODEL
    root = args.root
    if args.sample:
        from sr_core.io import SAMPLE_ID, sample_scene_path

        if args.scenes:
            raise ValueError("give either --sample or --scenes")
        scenes, root = [SAMPLE_ID], str(sample_scene_path().parent)
    elif args.scenes:
        scenes = [parse_scene_spec(s) for s in args.scenes]
    else:
        scenes = default_val_scenes(model, args.config)
    quiet = bool(getattr(args, "quiet", False))
    log = (lambda s: None) if quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    if getattr(args, "tasks", None) is not None:
        return _run_tasks(args, model, scenes, root, log)
    res, jp, mp = run_evaluation(
        model,
        scenes,
        args.out,
        figures=args.figures,
        root=root,
        degradations=args.degradations,
        engine=args.engine,
        crop=args.crop,
        border=args.border,
        tile=args.tile,
        threads=args.threads,
        progress=log,
    )
    if getattr(args, "update_card", False):
        update_card_validation(model, res, scenes=[str(s) for s in scenes])
    if not quiet:
        for dname, groups in res["summary"]["wald"].items():
            for g, s in groups.items():
                print(
                    f"{dname:16s} {g}: mean gain {s['mean_gain_db']:+.3f} dB (native {s['mean_gain_db_native']:+.3f}),"
                    f" min {s['min_gain_db']:+.3f} dB"
                )
        print(f"wrote {jp} and {mp}")
    return 0
