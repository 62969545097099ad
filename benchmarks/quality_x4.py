"""Wald-protocol check of an x4 RGBN package (10 m bands from 40 m): per scene and band, PSNR gain over bicubic,
under the training operator and the unseen one. Decides whether the package may ship (only if it beats bicubic on
every validation scene) and writes the result into its card (:func:`sr_core.evaluation.run.set_card_validation`).

    python benchmarks/quality_x4.py --model PATH [--root ../shared/data/s2] [--config configs/s2sr-x4-rgbn.yaml]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="x4 package folder")
    p.add_argument("--root", default="../shared/data/s2")
    p.add_argument("--config", default="configs/s2sr-x4-rgbn.yaml", help="training config (validation scenes)")
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--update-card", action="store_true")
    args = p.parse_args(argv)

    from sr_core.datasets.patches import load_scene_tensors
    from sr_core.evaluation.run import set_card_validation
    from sr_core.evaluation.wald import summarize, wald_evaluate
    from sr_core.models import load_torch_model
    from sr_core.training.config import TrainConfig

    model, card = load_torch_model(args.model)
    cfg = TrainConfig.from_yaml(args.config)
    scenes = [load_scene_tensors(args.root, r) for r in cfg.data.regions("val")]
    rows = wald_evaluate(model, scenes, degradations=("mtf_gaussian", "mtf_bicubic_aa"), margin=card.margin,
                         task="x4_rgbn")
    summ = summarize(rows)
    beats = {d: all(r["gain_db"] > 0 for r in rows if r["degradation"] == d) for d in ("mtf_gaussian", "mtf_bicubic_aa")}
    res = {"model": card.name, "scenes": [s.id for s in scenes], "summary": summ, "beats_bicubic_everywhere": beats,
           "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"quality_{card.name}.json").write_text(json.dumps(res, indent=2) + "\n")
    lines = [f"# Wald x4 check: `{card.name}`", "", "| degradation | scene | band | PSNR SR | PSNR bicubic | gain dB |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['degradation']} | {r['scene']} | {r['band']} | {r['psnr_sr']:.2f} | {r['psnr_bicubic']:.2f} | "
              f"{r['gain_db']:+.3f} |" for r in rows]
    lines += ["", "Summary: " + json.dumps(summ), "", "Beats bicubic on every scene and band: " + json.dumps(beats)]
    (out / f"quality_{card.name}.md").write_text("\n".join(lines) + "\n")
    if args.update_card:
        set_card_validation(args.model, {
            "protocol": "Wald x4 (10 m bands degraded by 4, originals as targets), PSNR gain over bicubic",
            "scenes": res["scenes"], "summary": summ, "beats_bicubic_everywhere": beats, "wald_per_band": rows,
        })
    print(json.dumps({"summary": summ, "beats_bicubic_everywhere": beats}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
