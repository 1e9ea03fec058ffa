"""``council protocols ...``: the protocols council can find."""

from __future__ import annotations

import argparse
from typing import Any

from council.cli.output import print_rows


def _list(args: argparse.Namespace) -> int:
    from council.protocols.graph import load_protocol_file
    from council.protocols.library import available_protocols

    rows = []
    for path in available_protocols().values():
        protocol = load_protocol_file(path)
        rows.append(
            {
                "name": protocol.name,
                "path": str(path),
                "description": protocol.spec.description,
                "stages": [stage.id for stage in protocol.order()],
            }
        )
    print_rows(rows, args.json, ["name", "description"])
    return 0


def register(commands: Any) -> None:
    group = commands.add_parser("protocols", help="the protocols council can find")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list available protocols")
    listing.add_argument("--json", action="store_true", help="a JSON list of objects")
    listing.set_defaults(handler=_list)
