"""``council personas ...``: find, show, render, scaffold, lint, import and export cards.

Modules load inside each command, so ``council --help`` stays fast. User mistakes raise a
``CouncilError`` (one line, exit 2, printed by ``main``); ``lint`` exits 1 on errors only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from council.cli.output import print_rows

DEFAULT_TOPIC = "(the question before the council)"


def _write(path: Path, text: str) -> None:
    from council.base.errors import ConfigError

    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


def _skipped(errors: list[Any]) -> None:
    for error in errors:
        print(f"council: skipped invalid card: {error}", file=sys.stderr)


def _list(args: argparse.Namespace) -> int:
    from council.personas.library import available_personas, load_cards

    cards, skipped = load_cards(available_personas().values(), skip_invalid=args.skip_invalid)
    rows = [
        {"name": c.name, "path": str(c.path), "description": c.fields.description} for c in cards
    ]
    print_rows(rows, args.json, ["name", "description"])
    _skipped(skipped)
    return 0


def _show(args: argparse.Namespace) -> int:
    from council.personas.library import find_persona

    card = find_persona(args.name)
    fields = card.fields
    if args.json:
        print(
            json.dumps(
                {"path": str(card.path), **fields.model_dump(mode="json")},
                indent=2,
                ensure_ascii=False,
            )
        )
        return 0
    print(f"{card.name}  ({card.path})")
    for key, value in fields.model_dump(mode="json", exclude={"name"}).items():
        label = key.replace("_", " ")
        if isinstance(value, list) and value and key in ("framework", "asks", "blind_spots"):
            print(f"  {label}:")
            for item in value:
                print(f"    - {item}")
        elif isinstance(value, list):
            print(f"  {label}: {', '.join(map(str, value)) or '-'}")
        elif isinstance(value, dict) and key == "variables":
            pairs = [f"{k}={v!r}" for k, v in value.items()]
            print(f"  {label}: {', '.join(pairs) or '-'}")
        elif isinstance(value, dict):
            print(f"  {label}: {', '.join(value) or '-'}")
        else:
            print(f"  {label}: {value if value is not None else '-'}")
    return 0


def _render(args: argparse.Namespace) -> int:
    from council.personas.library import find_persona
    from council.personas.prompt import system_prompt

    print(system_prompt(find_persona(args.name), args.topic))
    return 0


def _new(args: argparse.Namespace) -> int:
    from council.personas.scaffold import write_scaffold

    path = write_scaffold(args.name, Path(args.dir), force=args.force)
    print(path)
    print(f"council: fill in the TODOs, then: council personas lint {path}", file=sys.stderr)
    return 0


def _lint_embedder() -> tuple[Any, str]:
    """The bundled embedder for similarity, or None and why the linter falls back to words."""
    from council.meter.embedders import default_embedder, embedder_available

    if not embedder_available():
        return None, "embedder not installed"
    try:
        return default_embedder(), ""
    except Exception as exc:  # a broken torch install must not stop the linter
        return None, f"embedder failed to load: {exc}"


def _lint(args: argparse.Namespace) -> int:
    from council.personas.library import persona_dirs
    from council.personas.lint import lint_paths

    embedder, note = (None, "") if args.lexical else _lint_embedder()
    report = lint_paths(args.paths or persona_dirs(), embedder=embedder, note=note)
    if args.json:
        print(json.dumps([f.to_json() for f in report.findings], indent=2, ensure_ascii=False))
    else:
        for finding in report.findings:
            print(finding)
        print(
            f"council: {report.cards} cards, {len(report.errors)} errors, "
            f"{len(report.warnings)} warnings (similarity: {report.similarity})",
            file=sys.stderr,
        )
    return report.exit_code


def _import(args: argparse.Namespace) -> int:
    from council.base.errors import CardError, ConfigError
    from council.personas.addenda import pair_write_ups
    from council.personas.formats import (
        foreign_files,
        read_foreign,
        resolve_pairs,
        write_imported,
    )

    cards, skipped = [], []
    files = foreign_files(args.paths)
    if not files:
        raise ConfigError(f"nothing to import in {', '.join(args.paths)}")
    for path in files:
        try:
            cards += read_foreign(path, args.format)
        except CardError as exc:
            if not args.skip_invalid:
                raise
            skipped.append(exc)
    cards = resolve_pairs(pair_write_ups(cards), keep_unknown=args.pairs_from_library)
    written = write_imported(cards, Path(args.to), force=args.force)
    for card, path in zip(cards, written, strict=True):
        print(f"{card.source} -> {path}")
        for note in card.notes:
            print(f"  note: {note}")
    _skipped(skipped)
    print(
        f"council: imported {len(written)} cards from {len(files)} files; "
        f"{len(skipped)} files skipped",
        file=sys.stderr,
    )
    return 0 if written else 1


def _export(args: argparse.Namespace) -> int:
    from council.personas.formats import export_chara_card_v2
    from council.personas.library import find_persona

    text = json.dumps(export_chara_card_v2(find_persona(args.name)), indent=2, ensure_ascii=False)
    if args.out:
        _write(Path(args.out), text + "\n")
        print(args.out)
    else:
        print(text)
    return 0


def register(commands: Any) -> None:
    group = commands.add_parser("personas", help="the persona cards council can find")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="list available personas")
    listing.add_argument("--json", action="store_true", help="a JSON list of objects")
    listing.add_argument(
        "--skip-invalid", action="store_true", help="leave out invalid cards (named on stderr)"
    )
    listing.set_defaults(handler=_list)

    show = actions.add_parser("show", help="a card's fields and file")
    show.add_argument("name", metavar="NAME|PATH", help="a persona name or a card file")
    show.add_argument("--json", action="store_true", help="the fields as one JSON object")
    show.set_defaults(handler=_show)

    render = actions.add_parser("render", help="print a card's rendered system prompt")
    render.add_argument("name", metavar="NAME|PATH", help="a persona name or a card file")
    render.add_argument("--topic", default=DEFAULT_TOPIC, help="the question to render with")
    render.set_defaults(handler=_render)

    new = actions.add_parser("new", help="write a card to fill in (TODOs show in lint)")
    new.add_argument("name", metavar="NAME", help="lowercase letters, digits, hyphens")
    new.add_argument("--dir", default="personas", help="folder to write to (default: personas)")
    new.add_argument("--force", action="store_true", help="overwrite an existing card")
    new.set_defaults(handler=_new)

    lint = actions.add_parser("lint", help="check cards; exits 1 on errors (not on warnings)")
    lint.add_argument("paths", nargs="*", metavar="PATH", help="cards or folders (default: all)")
    lint.add_argument("--json", action="store_true", help="the findings as a JSON list")
    lint.add_argument(
        "--lexical", action="store_true", help="lexical similarity even if the embedder is there"
    )
    lint.set_defaults(handler=_lint)

    imports = actions.add_parser(
        "import",
        help="convert Claude Code agents, Character Cards, CrewAI agents.yaml, Markdown write-ups",
    )
    imports.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    imports.add_argument("--to", required=True, metavar="DIR", help="folder for the new cards")
    imports.add_argument(
        "--format",
        default="auto",
        choices=["auto", "claude-code", "chara-card", "crewai", "council", "markdown"],
        help="the files' format; auto: read it from each file",
    )
    imports.add_argument("--force", action="store_true", help="overwrite existing cards")
    imports.add_argument(
        "--pairs-from-library",
        action="store_true",
        help="keep polarity pairs that name no imported card (they then pair with the library)",
    )
    imports.add_argument(
        "--skip-invalid", action="store_true", help="import the rest when a file is invalid"
    )
    imports.set_defaults(handler=_import)

    export = actions.add_parser("export", help="a card as Character Card V2 JSON")
    export.add_argument("name", metavar="NAME|PATH", help="a persona name or a card file")
    export.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    export.set_defaults(handler=_export)
