"""``council panels list|show``: the panels ``--panel NAME`` can seat, from the panels files
(``panels/*.yaml`` on the search path) and from the cards' triads and profiles, found exactly as
``convene --panel`` finds them."""

from __future__ import annotations

import argparse
import json
from typing import Any

from council.cli.output import print_rows


def _panels() -> tuple[dict[str, Any], dict[str, Any]]:
    """Every panel by name, and the cards they may name (invalid cards left out, as a panel
    cannot seat them)."""
    from council.personas.library import available_personas, load_cards
    from council.personas.panels import available_panels

    cards, _ = load_cards(available_personas().values(), skip_invalid=True)
    return available_panels(cards), {card.name: card for card in cards}


def _list(args: argparse.Namespace) -> int:
    panels, _ = _panels()
    rows = [
        {"name": p.name, "members": ", ".join(p.members), "source": p.source, "about": p.about}
        for p in sorted(panels.values(), key=lambda p: p.name)
    ]
    if args.json:
        rows = [row | {"members": panels[row["name"]].members} for row in rows]
    print_rows(rows, args.json, ["name", "members", "about"])
    return 0


def _show(args: argparse.Namespace) -> int:
    from council.personas.panels import find_panel

    panels, cards = _panels()
    panel = find_panel(args.name, panels)
    members: list[dict[str, str | None]] = [
        {"name": name, "description": cards[name].fields.description if name in cards else None}
        for name in panel.members
    ]
    if args.json:
        shown = {"name": panel.name, "source": panel.source, "about": panel.about}
        print(json.dumps(shown | {"members": members}, indent=2, ensure_ascii=False))
        return 0
    print(f"{panel.name}  ({panel.source})\n  {panel.about}")
    width = max(len(name) for name in panel.members)
    for member in members:  # a member without a card is said, not hidden: convene refuses it
        about = member["description"] or "(no card of this name: convene will refuse it)"
        print(f"  {member['name']:<{width}}  {about}")
    return 0


def register(commands: Any) -> None:
    group = commands.add_parser("panels", help="the named panels --panel can seat")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every panel, its members and what it is for")
    listing.add_argument("--json", action="store_true", help="a JSON list of objects")
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="a panel's members, each with its card's description")
    show.add_argument("name", metavar="NAME", help="a panel name ('council panels list')")
    show.add_argument("--json", action="store_true", help="the panel as one JSON object")
    show.set_defaults(handler=_show)
