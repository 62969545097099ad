"""``s2sr models``: the shipped model packages with their cards."""

from __future__ import annotations

import argparse
import json
import sys

from s2sr_cli.arguments import Handler

NAME = "models"


def run(args: argparse.Namespace) -> int:
    from sr_core.models import AUTO_MODELS, list_models, load_card, model_resolution, resolve_model

    names = list_models()
    if not names:
        print("no model packages shipped in this installation", file=sys.stderr)
        return 0
    for name in names:
        card = load_card(name, verify=args.verify)
        if args.json:
            print(json.dumps(card.to_dict(), indent=2))
        else:
            out_res = model_resolution(card)
            auto = f" (automatic choice at {out_res:g} m)" if name in AUTO_MODELS else ""
            print(f"{card.name} v{card.version}: {card.arch} x{card.scale}, {card.input_resolution_m:g} m -> "
                  f"{out_res:g} m{auto}, bands {','.join(card.bands)}, receptive field {card.receptive_field} px  "
                  f"[{resolve_model(name)}]")
            for line in report_lines(card.validation):
                print(f"  {line}")
    return 0


def report_lines(validation: dict) -> list[str]:
    """One line per band group and scoring of a card's report-scene family result (``validation["summary"]`` as
    written by ``s2sr evaluate --report-scenes --family``): dB over bicubic under the matched operator and the
    worst one, cases below bicubic, and each peer's numbers from the same run; none for other validations."""
    summary = (validation or {}).get("summary") or {}
    if not validation.get("report_scenes") or not all(isinstance(v, dict) and "worst_operator" in v
                                                       for v in summary.values()):
        return []
    peers = (validation.get("peer") or {}) if isinstance(validation.get("peer"), dict) else {}
    out = []
    for key, s in summary.items():
        line = (f"report scenes, {key}: {s['matched_mean_gain_db']:+.2f} dB matched, "
                f"{s['worst_operator_mean_gain_db']:+.2f} dB worst ({s['worst_operator']}), "
                f"{s['below_bicubic']}/{s['count']} below bicubic")
        for pname, ps in peers.items():
            p = ps.get(key) if isinstance(ps, dict) else None
            if isinstance(p, dict) and "worst_operator" in p:
                line += (f"; peer {pname}: {p['matched_mean_gain_db']:+.2f} / {p['worst_operator_mean_gain_db']:+.2f} "
                         f"dB, {p['below_bicubic']}/{p['count']} below")
        out.append(line)
    return out


def register(subparsers: argparse._SubParsersAction) -> Handler:
    """Add ``s2sr models [--json] [--no-verify]``; returns its handler. Each model on one line: name, version,
    architecture, scale, input -> output resolution (and whether it is an automatic choice), bands, receptive
    field, folder; then its report-scene results beside the peer, when its card holds them (:func:`report_lines`)."""
    s = subparsers.add_parser(NAME, help="list the shipped model packages with their cards")
    s.add_argument("--json", action="store_true", help="print the full JSON cards")
    s.add_argument("--no-verify", dest="verify", action="store_false", help="skip the sha256 check")
    return run
