"""Panels: named sets of personas to seat together, and how one is chosen for a question.

A panel comes from a panels file (``panels/*.yaml``: the shipped library's, or one on the
panels search path) or from the cards themselves: every card listing a triad or a profile
(nyk's ``triads: [architecture, ...]``, ``profiles: [classic, ...]``) sits on the panel of
that name. Choosing needs no model call: ``--panel auto`` compares the question with each
panel's description by embedding (or word overlap without an embedder). A panels file may
also hold a duo table (``duos:``, see ``council.personas.duos``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from council.base.errors import CardError, ConfigError, UnknownNameError
from council.base.library_paths import search_path
from council.personas.card import PersonaCard
from council.personas.duos import DuoEntry, DuoRow
from council.personas.matching import Encode
from council.text.sourcefile import load_yaml, read_text, validate

AUTO = "auto"


@dataclass(frozen=True)
class Panel:
    name: str
    members: list[str]  # persona names, in seating order
    source: str  # the panels file, or "cards" when the cards' triads or profiles define it
    about: str  # what it is for: compared with the question by --panel auto


class _PanelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    members: list[str] = Field(min_length=1)
    about: str = ""


class _PanelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    panels: dict[str, _PanelEntry] = Field(default_factory=dict)
    duos: list[DuoEntry] = Field(default_factory=list)


def _read(path: Path) -> _PanelsFile:
    data, node = load_yaml(*read_text(path, CardError), CardError)
    return validate(_PanelsFile, data, node, path, CardError)


def panels_from_file(path: Path) -> list[Panel]:
    spec = _read(path)
    return [Panel(name, e.members, str(path), e.about or name) for name, e in spec.panels.items()]


def _panel_files(folders: Sequence[Path]) -> list[Path]:
    """Panels files in ``$COUNCIL_PANELS_PATH``, ``./panels`` and the shipped ``panels/``."""
    found = []
    for folder in search_path("panels", "COUNCIL_PANELS_PATH", list(folders)):
        found += sorted(Path(folder).glob("*.yaml")) if Path(folder).is_dir() else []
    return found


def panels_from_cards(cards: Iterable[PersonaCard]) -> list[Panel]:
    groups: dict[str, list[PersonaCard]] = {}
    for card in cards:
        for group in [*card.fields.triads, *card.fields.profiles]:
            groups.setdefault(group, []).append(card)
    panels = []
    for name, members in groups.items():
        domains = "; ".join(c.fields.domain or c.fields.role for c in members)
        keywords = ", ".join(dict.fromkeys(k for c in members for k in c.fields.duo_keywords))
        about = f"{name}: {domains}" + (f" ({keywords})" if keywords else "")
        panels.append(Panel(name, [c.name for c in members], "cards", about))
    return panels


def available_panels(
    cards: Iterable[PersonaCard], folders: Sequence[Path] = ()
) -> dict[str, Panel]:
    """Every panel, by name: panels files (first found wins) before panels the cards define.
    Files are found in ``$COUNCIL_PANELS_PATH``, ``./panels`` and the shipped ``panels/``."""
    found: dict[str, Panel] = {}
    for path in _panel_files(folders):
        for panel in panels_from_file(path):
            found.setdefault(panel.name, panel)
    for panel in panels_from_cards(cards):
        found.setdefault(panel.name, panel)
    return found


def available_duos(folders: Sequence[Path] = ()) -> list[DuoRow]:
    """Every duo table's rows, files in search order (a user's tables before the shipped)."""
    files = _panel_files(folders)
    return [DuoRow(entry, str(path)) for path in files for entry in _read(path).duos]


def find_panel(name: str, panels: Mapping[str, Panel]) -> Panel:
    if name not in panels:
        raise UnknownNameError("panel", name, panels)
    return panels[name]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z][a-z-]+", text.lower()))


def choose_panel(
    question: str, panels: Mapping[str, Panel], encode: Encode | None = None
) -> tuple[Panel, str]:
    """The panel whose description is closest to the question, and a sentence saying why."""
    if not panels:
        raise ConfigError("no panels to choose from: add a panels file or cards with triads")
    names = sorted(panels)
    if encode is not None:
        vectors = encode([question, *(panels[n].about for n in names)])
        scores = [float(vectors[0] @ vectors[i + 1]) for i in range(len(names))]
        method = "embedding cosine"
    else:
        asked = _words(question)
        scores = [len(asked & _words(panels[n].about)) / (len(asked) or 1) for n in names]
        method = "word overlap"
    ranked = sorted(zip(scores, names, strict=True), key=lambda pair: (-pair[0], pair[1]))
    best_score, best = ranked[0]
    why = f"panel '{best}' ({method} {best_score:.2f} with \"{panels[best].about}\")"
    if len(ranked) > 1:
        why += f"; next '{ranked[1][1]}' at {ranked[1][0]:.2f}"
    return panels[best], why


def check_methods(cards: Sequence[PersonaCard]) -> None:
    """No two seats share a reasoning method: a panel of one method is one voice, twice."""
    seen: dict[str, str] = {}
    for card in cards:
        method = (card.fields.reasoning_method or "").strip().lower()
        if not method:
            continue
        if method in seen:
            raise ConfigError(
                f"{seen[method]} and {card.name} share the reasoning method '{method}': seat one "
                "of them, or another persona"
            )
        seen[method] = card.name
