"""Evaluation runs of a model package, as ``s2sr evaluate`` and ``benchmarks/quality.py`` start them.

Each function picks the scenes, runs one assessment, writes its JSON and Markdown report under ``out`` and
returns an :class:`EvaluationRun` (the result, the report paths and a few summary lines to print):

* :func:`run_quality`: the image-quality report (:func:`sr_core.evaluation.core.run_evaluation`: Wald protocol
  per degradation operator + full-resolution checks), ``<out>/quality_<model>.json/.md`` and figures;
* :func:`run_tasks`: the task-based assessment (:func:`sr_core.evaluation.tasks.run_task_assessment`),
  ``<out>/tasks_<model>.json/.md``;
* :func:`run_misr`: the multi-image comparison (:func:`sr_core.evaluation.misr.run_misr_evaluation`),
  ``<out>/quality_misr_<model>.json/.md``;
* :func:`run_family`: the Wald protocol under the whole operator family, both scorings of the 20 m bands, the
  worst case, optionally a peer model and the opensr-test metrics (:func:`sr_core.evaluation.family.evaluate_family`),
  ``<out>/quality_<model>_family.json/.md``.

Scenes (:func:`resolve_scenes`): the given ids or ``"ID[y0:y1,x0:x1]"`` windows under ``root``, the bundled
sample (``sample=True``), the report scenes (``report_scenes=True``: :data:`sr_core.evaluation.REPORT_SCENES`,
refused when the model's card lists one of them among its training or selection scenes), or by default the
model's validation (selection) scenes (:func:`default_val_scenes`). :func:`scene_provenance` names the training
and selection scenes of a model and which evaluated scenes are among them.
``update_card=True`` writes the summary into the package's ``card.json`` / ``card.md`` (the weights and their
sha256 are untouched).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sr_core.evaluation import DEFAULT_DEGRADATIONS, FAMILY, REPORT_SCENES, REPORT_SCENES_NOTE
from sr_core.evaluation import misr as misr_evaluation
from sr_core.datasets.patches import parse_scene_spec
from sr_core.evaluation.core import run_evaluation
from sr_core.evaluation.tasks import run_task_assessment
from sr_core.io import SAMPLE_ID, sample_scene_path
from sr_core.models import (
    DEFAULT_MISR_MODEL,
    DEFAULT_MODEL,
    ModelCard,
    load_card,
    render_card_markdown,
    resolve_model,
)

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_OUT",
    "DEFAULT_ROOT",
    "DEFAULT_TASK_NETS",
    "EvaluationRun",
    "default_val_scenes",
    "resolve_scenes",
    "run_family",
    "run_misr",
    "run_quality",
    "run_tasks",
    "scene_provenance",
    "set_card_validation",
    "update_card_validation",
]

#: Folder holding the scene folders (the shared data layout of the training configs).
DEFAULT_ROOT = "../shared/data/s2"
#: Training config whose ``data.val`` lists the validation scenes when the model card has none.
DEFAULT_CONFIG = Path("configs") / "s2sr-x2-10band.yaml"
#: Where the reports go.
DEFAULT_OUT = "benchmarks/results"
#: The shipped task networks of the task-based assessment.
DEFAULT_TASK_NETS = ("task-unet", "task-unetpp")

Log = Callable[[str], None]


def _silent(message: str) -> None:
    pass


@dataclass
class EvaluationRun:
    """What a run wrote: its ``result`` dict, the JSON and Markdown report paths and its summary lines."""

    result: dict
    json_path: Path
    markdown_path: Path
    summary: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ scenes


def default_val_scenes(model: Any = None, config: str | os.PathLike | None = None) -> list:
    """The validation scenes of a model: its card's ``training.config.data.val`` (or ``training.val_regions``),
    else ``data.val`` of the YAML ``config`` (default :data:`DEFAULT_CONFIG`)."""
    card = getattr(model, "card", None)
    if card is None and isinstance(model, (str, os.PathLike)):
        card = load_card(model, verify=False)
    training = getattr(card, "training", None) or {}
    val = (training.get("config") or {}).get("data", {}).get("val") or training.get("val_regions")
    if val:
        return [parse_scene_spec(v) for v in val]
    path = Path(config) if config is not None else DEFAULT_CONFIG
    if not path.is_file():
        raise ValueError(
            f"no --scenes given, the model card lists no validation scenes and {path} does not exist"
        )
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    val = (data.get("data") or {}).get("val") or []
    if not val:
        raise ValueError(f"{path} has no data.val list: give --scenes")
    return [parse_scene_spec(v) for v in val]


def _card_of(model: Any) -> Any:
    card = getattr(model, "card", None)
    if card is None and isinstance(model, (str, os.PathLike)):
        card = load_card(model, verify=False)
    return card


def _scene_name(spec: Any) -> str:
    """The canonical text of a scene spec: ``"ID"`` or ``"ID[y0:y1,x0:x1]"``."""
    s = parse_scene_spec(spec)
    return s if isinstance(s, str) else f"{s.scene}[{s.y0}:{s.y1},{s.x0}:{s.x1}]"


def _scene_id(spec: Any) -> str:
    s = parse_scene_spec(spec)
    return s if isinstance(s, str) else s.scene


def scene_provenance(model: Any, scenes: Sequence[Any] = ()) -> dict:
    """The ``training`` and ``selection`` scenes of a model (its card's ``training.config.data.train`` / ``.val``,
    or ``train_regions`` / ``val_regions``) and ``used``: those of ``scenes`` whose scene id is among them (a
    different window of a scene counts: same site, same date)."""
    training = (getattr(_card_of(model), "training", None) or {})
    data = (training.get("config") or {}).get("data") or {}
    train = data.get("train") or training.get("train_regions") or []
    val = data.get("val") or training.get("val_regions") or []
    seen = {_scene_id(s) for s in [*train, *val]}
    return {
        "training": [_scene_name(s) for s in train],
        "selection": [_scene_name(s) for s in val],
        "used": [_scene_name(s) for s in scenes if _scene_id(s) in seen],
    }


def resolve_scenes(
    model: Any,
    scenes: Sequence[Any] | None = None,
    *,
    sample: bool = False,
    report_scenes: bool = False,
    root: str | os.PathLike = DEFAULT_ROOT,
    config: str | os.PathLike | None = None,
) -> tuple[list, str]:
    """``(scenes, root)`` of a run: the bundled sample (``sample``; its folder becomes the root), the report scenes
    (``report_scenes``: :data:`~sr_core.evaluation.REPORT_SCENES`; ``ValueError`` when the model's card used one for
    training or selection), the given ``scenes`` (ids, ``"ID[y0:y1,x0:x1]"`` windows, dicts or Regions), else
    :func:`default_val_scenes`."""
    if report_scenes:
        if sample or scenes:
            raise ValueError("give --report-scenes alone, without --sample or --scenes")
        used = scene_provenance(model, REPORT_SCENES)["used"]
        if used:
            raise ValueError(
                f"report scenes {used} were used to train or select this model: they cannot report on it"
            )
        return [parse_scene_spec(s) for s in REPORT_SCENES], root
    if sample:
        if scenes:
            raise ValueError("give either --sample or --scenes")
        return [SAMPLE_ID], str(sample_scene_path().parent)
    if scenes:
        return [parse_scene_spec(s) for s in scenes], root
    return default_val_scenes(model, config), root


# ------------------------------------------------------------------------------------------------ card


def set_card_validation(model: Any, validation: dict) -> Path:
    """Replace the ``validation`` of a package's card.json and rewrite its card.md; returns the package folder.

    Only ``validation`` changes: the sha256 of the weights and the ONNX file still hold.
    """
    folder = resolve_model(model)
    card = ModelCard.from_json(folder / "card.json")
    card.validation = validation
    card.write_json(folder / "card.json")
    (folder / "card.md").write_text(render_card_markdown(card))
    return folder


def update_card_validation(model: Any, result: dict, *, scenes: list[str]) -> None:
    """Put an evaluation's summary and its per-scene, per-band Wald gains into a package's card.json and card.md
    (:func:`set_card_validation`)."""
    per_band = [
        {k: r.get(k) for k in ("scene", "degradation", "band", "psnr_sr", "psnr_bicubic_native", "gain_db_native",
                               "gain_db", "ssim_sr", "ssim_bicubic")}
        for r in result.get("wald", [])
    ]
    set_card_validation(model, {
        "protocol": "Wald (reduced resolution, x2: 10 m bands from 20 m, 20 m bands from 40 m) on held-out scenes, "
        "gains in dB over bicubic; gain_db_native = over bicubic of the native coarse grid (the stronger "
        "baseline for the 20 m bands); full-resolution checks on the real inputs (s2sr evaluate)",
        "scenes": scenes,
        "summary": result["summary"],
        "wald_per_band": per_band,
        "metadata": result.get("metadata", {}),
    })


# ------------------------------------------------------------------------------------------------ runs


def run_quality(
    model: Any = None,
    scenes: Sequence[Any] | None = None,
    *,
    sample: bool = False,
    report_scenes: bool = False,
    root: str | os.PathLike = DEFAULT_ROOT,
    config: str | os.PathLike | None = None,
    out: str | os.PathLike = DEFAULT_OUT,
    figures: bool = True,
    degradations: Sequence[str] = DEFAULT_DEGRADATIONS,
    engine: str = "onnx",
    crop: int | None = None,
    border: int = 8,
    tile: int = 256,
    threads: int | None = None,
    update_card: bool = False,
    log: Log | None = None,
) -> EvaluationRun:
    """The image-quality report of ``model`` (default :data:`sr_core.models.DEFAULT_MODEL`); scenes as in
    :func:`resolve_scenes`, the other arguments those of :func:`sr_core.evaluation.core.evaluate_model`.
    ``log(message)`` gets one line per scene step. Summary: one line per degradation and band group."""
    model = model if model is not None else DEFAULT_MODEL
    scenes, root = resolve_scenes(model, scenes, sample=sample, report_scenes=report_scenes, root=root,
                                  config=config)
    res, jp, mp = run_evaluation(
        model,
        scenes,
        out,
        figures=figures,
        root=root,
        degradations=degradations,
        engine=engine,
        crop=crop,
        border=border,
        tile=tile,
        threads=threads,
        progress=log or _silent,
    )
    if update_card:
        update_card_validation(model, res, scenes=[str(s) for s in scenes])
    lines = [
        f"{dname:16s} {g}: mean gain {s['mean_gain_db']:+.3f} dB (native {s['mean_gain_db_native']:+.3f}),"
        f" min {s['min_gain_db']:+.3f} dB"
        for dname, groups in res["summary"]["wald"].items()
        for g, s in groups.items()
    ]
    return EvaluationRun(res, jp, mp, lines)


def run_tasks(
    model: Any = None,
    task_nets: Sequence[str | os.PathLike] = (),
    *,
    task_models: Sequence[str | os.PathLike] = (),
    scenes: Sequence[Any] | None = None,
    sample: bool = False,
    root: str | os.PathLike = DEFAULT_ROOT,
    config: str | os.PathLike | None = None,
    out: str | os.PathLike = DEFAULT_OUT,
    border: int = 8,
    report_name: str | None = None,
    log: Log | None = None,
) -> EvaluationRun:
    """The task-based assessment of ``model`` (default :data:`sr_core.models.DEFAULT_MODEL`) and the further SR
    models ``task_models`` (package folders, shipped names or training checkpoints ``runs/<run>/best.pt``,
    named by their run folder) with the task networks ``task_nets`` (default :data:`DEFAULT_TASK_NETS`); scenes
    as in :func:`resolve_scenes`. Report ``<out>/<report_name>.json/.md`` (default ``tasks_<model>``).
    Summary: the mean Dice per reference, task network and input."""
    model = model if model is not None else DEFAULT_MODEL
    scenes, root = resolve_scenes(model, scenes, sample=sample, root=root, config=config)
    nets = list(task_nets) or list(DEFAULT_TASK_NETS)
    models = {Path(str(model)).name: model}
    for m in task_models:
        p = Path(m)
        models[p.parent.name if p.suffix == ".pt" else p.name] = m
    res, jp, mp = run_task_assessment(
        models, {Path(n).name: n for n in nets}, scenes, out, name=report_name or f"tasks_{Path(str(model)).name}",
        root=root, border=border, progress=log or _silent,
    )
    lines = [
        f"{ref:14s} {tn:12s} mean Dice " + "  ".join(f"{k} {v:.3f}" for k, v in by_src.items())
        for ref, by_tn in res["summary"]["mean_task_dice"].items()
        for tn, by_src in by_tn.items()
    ]
    return EvaluationRun(res, jp, mp, lines)


def run_misr(
    model: Any = None,
    *,
    sisr_model: Any = None,
    scenes: Sequence[str] | None = None,
    root: str | os.PathLike = DEFAULT_ROOT,
    stacks: int = 6,
    patch: int = 128,
    engine: str = "onnx",
    threads: int | None = None,
    out: str | os.PathLike = DEFAULT_OUT,
    update_card: bool = False,
    log: Log | None = None,
) -> EvaluationRun:
    """The multi-image comparison of ``model`` (default :data:`sr_core.models.DEFAULT_MISR_MODEL`) against the
    single-image ``sisr_model`` (default :data:`sr_core.models.DEFAULT_MODEL`), bicubic and the registered mean
    on ``stacks`` simulated stacks of ``patch`` px per validation scene (``scenes``: ids, default the model's).
    Summary: one line per target, met or not."""
    model = model or DEFAULT_MISR_MODEL
    res = misr_evaluation.run_misr_evaluation(
        model, sisr_model=sisr_model or DEFAULT_MODEL, root=root, scenes=scenes or None, stacks=stacks,
        patch=patch, engine=engine, threads=threads, log=log or _silent,
    )
    jp, mp = misr_evaluation.write_report(res, out)
    if update_card:
        misr_evaluation.update_card_validation(model, res)
    lines = [
        f"{k}: {v['value']:+.3f} (target {v['target']}: {'met' if v['met'] else 'NOT met'})"
        for k, v in res["targets"].items()
    ]
    return EvaluationRun(res, jp, mp, lines)


def run_family(
    model: Any = None,
    scenes: Sequence[Any] | None = None,
    *,
    peer: str | os.PathLike | None = None,
    compare: Sequence[str | os.PathLike] = (),
    report_scenes: bool = False,
    sample: bool = False,
    root: str | os.PathLike = DEFAULT_ROOT,
    config: str | os.PathLike | None = None,
    out: str | os.PathLike = DEFAULT_OUT,
    degradations: Sequence[str] = FAMILY,
    engine: str = "onnx",
    crop: int | None = None,
    border: int = 8,
    tile: int = 256,
    threads: int | None = None,
    opensr_test: bool = False,
    opensr_python: str | os.PathLike | None = None,
    log: Log | None = None,
) -> EvaluationRun:
    """The operator-family report of ``model`` (default :data:`sr_core.models.DEFAULT_MODEL`), with the ONNX
    ``peer`` model (:class:`sr_core.evaluation.peer.OnnxPeer`) and our models of ``compare`` scored side by side
    when given; scenes as in
    :func:`resolve_scenes`; the report names the scored, training and selection scenes. ``opensr_test``: add the
    opensr-test metrics of the 10 m bands (:func:`sr_core.evaluation.opensr.opensr_test_metrics`, in the Python
    ``opensr_python`` when given). Writes ``<out>/quality_<model>_family.json/.md``. Summary: per band group and
    scoring, each model's matched mean, worst-operator mean and lowest single gain."""
    from sr_core.evaluation.family import evaluate_family
    from sr_core.evaluation.report import write_family_report

    model = model if model is not None else DEFAULT_MODEL
    scenes, root = resolve_scenes(model, scenes, sample=sample, report_scenes=report_scenes, root=root,
                                  config=config)
    prov = scene_provenance(model, scenes)
    sets = {("report" if report_scenes else "evaluated"): [_scene_name(s) for s in scenes],
            "selection": prov["selection"], "training": prov["training"]}
    if prov["used"]:
        sets["evaluated but used to train or select"] = prov["used"]
    peer_model = None
    if peer is not None:
        from sr_core.evaluation.peer import load_peer

        peer_model = load_peer(peer, threads=threads, tile=tile)
    osr = None
    if opensr_test or opensr_python is not None:
        from sr_core.evaluation.opensr import opensr_test_metrics

        def osr(triplets: dict) -> dict:
            return opensr_test_metrics(triplets, python=opensr_python)

    res = evaluate_family(
        model, scenes, peer=peer_model, compare=compare, root=root, degradations=degradations, engine=engine, crop=crop,
        border=border, tile=tile, threads=threads, scene_sets=sets, opensr_test=osr, progress=log or _silent,
        notes=[REPORT_SCENES_NOTE] if report_scenes else [],
    )
    jp, mp = write_family_report(res, out)
    lines = []
    for name, groups in res["summary"].items():
        for key, s in groups.items():
            lines.append(
                f"{name:16s} {key:12s} matched {s['matched_mean_gain_db']:+.2f} dB, worst operator "
                f"{s['worst_operator']} {s['worst_operator_mean_gain_db']:+.2f} dB, lowest {s['min_gain_db']:+.2f} dB,"
                f" below bicubic {s['below_bicubic']}/{s['count']}"
            )
    return EvaluationRun(res, jp, mp, lines)
