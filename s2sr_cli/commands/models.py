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
    return 0


def register(subparsers: argparse._SubParsersAction) -> Handler:
    """Add ``s2sr models [--json] [--no-verify]``; returns its handler. Each model on one line: name, version,
    architecture, scale, input -> output resolution (and whether it is an automatic choice), bands, receptive
    field, folder."""
    s = subparsers.add_parser(NAME, help="list the shipped model packages with their cards")
    s.add_argument("--json", action="store_true", help="print the full JSON cards")
    s.add_argument("--no-verify", dest="verify", action="store_false", help="skip the sha256 check")
    return run
