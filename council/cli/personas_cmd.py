"""``council personas ...``: the cards council can find."""

from __future__ import annotations

import argparse
from typing import Any

from council.cli.output import print_rows


def _list(args: argparse.Namespace) -> int:
    from council.personas.card import load_card
    from council.personas.library import available_personas

    rows = []
    for path in available_personas().values():
        card = load_card(path)
        rows.append({"name": card.name, "path": str(path), "description": card.fields.description})
    print_rows(rows, args.json, ["name", "description"])
    return 0


def register(commands: Any) -> None:
    group = commands.add_parser("personas", help="the persona cards council can find")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list available personas")
    listing.add_argument("--json", action="store_true", help="a JSON list of objects")
    listing.set_defaults(handler=_list)
