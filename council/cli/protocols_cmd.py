"""``council protocols ...``: list, show, validate and scaffold protocols."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
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
                "origin": protocol.spec.origin,
                "stages": [stage.id for stage in protocol.speaking_stages()],
            }
        )
    print_rows(rows, args.json, ["name", "description"])
    return 0


def _show(args: argparse.Namespace) -> int:
    from council.protocols.diagram import describe, mermaid
    from council.protocols.library import find_protocol

    protocol = find_protocol(args.name)
    print(describe(protocol))
    print("\n```mermaid\n" + mermaid(protocol) + "\n```")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from council.base.errors import CouncilError
    from council.protocols.graph import load_protocol_file
    from council.protocols.rehearse import rehearse

    results = []
    for path in args.paths:
        try:
            protocol = load_protocol_file(path)
            rehearse(protocol)  # every prompt, every round: what would fail at run time
            results.append({"path": path, "valid": True, "name": protocol.name, "error": None})
        except CouncilError as exc:
            results.append({"path": path, "valid": False, "name": None, "error": str(exc)})
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            if result["valid"]:
                print(f"{result['path']}: ok ({result['name']})")
            else:
                print(result["error"], file=sys.stderr)
    return 0 if all(r["valid"] for r in results) else 2


def _new(args: argparse.Namespace) -> int:
    from council.protocols.scaffold import write_scaffold

    path = write_scaffold(args.name, Path(args.dir), force=args.force)
    print(path)
    print(f"council: change its prompts, then: council protocols validate {path}", file=sys.stderr)
    return 0


def register(commands: Any) -> None:
    group = commands.add_parser("protocols", help="the protocols council can find")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list available protocols")
    listing.add_argument("--json", action="store_true", help="a JSON list of objects")
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="a protocol's stages and a Mermaid flowchart")
    show.add_argument("name", help="protocol name or file")
    show.set_defaults(handler=_show)
    validate = actions.add_parser("validate", help="check protocol files; exit 2 on errors")
    validate.add_argument("paths", nargs="+", metavar="PATH", help="protocol files")
    validate.add_argument("--json", action="store_true", help="a JSON list, one object a file")
    validate.set_defaults(handler=_validate)
    new = actions.add_parser(
        "new",
        help="write a working protocol to change (it validates and convenes as written)",
        description="Write DIR/NAME.yaml: a three-stage protocol (blind answers, replies, the "
        "chair's verdict) whose comments list the variables each prompt may use. Every field "
        "is explained in examples/protocol.yaml.",
    )
    new.add_argument("name", metavar="NAME", help="lowercase letters, digits, hyphens")
    new.add_argument(
        "--dir",
        default="protocols",
        help="folder to write to (default: protocols, where --protocol NAME finds it)",
    )
    new.add_argument("--force", action="store_true", help="overwrite an existing file")
    new.set_defaults(handler=_new)
