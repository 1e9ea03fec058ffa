"""Finding persona cards by name on a search path."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from council.base.errors import CardError, ConfigError, UnknownNameError
from council.base.library_paths import search_path
from council.personas.card import PersonaCard, load_card
from council.records.spec import CHAIR_NAME

# The chair is a persona too, but sits outside the panel unless asked for.
CHAIR = CHAIR_NAME


def persona_dirs(extra: list[Path] | None = None) -> list[Path]:
    return search_path("personas", "COUNCIL_PERSONAS_PATH", extra)


def available_personas(extra: list[Path] | None = None) -> dict[str, Path]:
    """Card name -> file, for every card on the search path (earlier dirs shadow later ones).

    Cards may sit in subfolders (``personas/high-council/popper.md``); names stay unique."""
    found: dict[str, Path] = {}
    for directory in persona_dirs(extra):
        for path in sorted(directory.rglob("*.md"), key=lambda p: (p.stem, p)):
            found.setdefault(path.stem, path)
    return found


def find_persona(name_or_path: str, extra: list[Path] | None = None) -> PersonaCard:
    """Load a card by name, or by path when given one ending in ``.md``."""
    if name_or_path.endswith(".md") or os.sep in name_or_path:
        return load_card(Path(name_or_path))
    cards = available_personas(extra)
    if name_or_path not in cards:
        raise UnknownNameError("persona", name_or_path, cards)
    return load_card(cards[name_or_path])


def card_files(paths: Iterable[Path | str]) -> list[Path]:
    """The card files named by paths: files as given, folders searched recursively for ``.md``."""
    files: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            files += sorted(entry.rglob("*.md"))
        elif entry.is_file():
            files.append(entry)
        else:
            raise ConfigError(f"no such file or folder: {entry}")
    return list(dict.fromkeys(files))


def load_cards(
    paths: Iterable[Path], *, skip_invalid: bool = False
) -> tuple[list[PersonaCard], list[CardError]]:
    """Load cards; with ``skip_invalid`` a bad card is set aside and returned, not raised."""
    cards: list[PersonaCard] = []
    skipped: list[CardError] = []
    for path in paths:
        try:
            cards.append(load_card(path))
        except CardError as exc:
            if not skip_invalid:
                raise
            skipped.append(exc)
    return cards, skipped
