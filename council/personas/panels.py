"""Panels: named sets of personas to seat together, and how one is chosen for a question.

A panel comes from a panels file (``panels/*.yaml``: the shipped library's, or one on the
panels search path) or from the cards themselves: every card listing a triad or a profile
(nyk's ``triads: [architecture, ...]``, ``profiles: [classic, ...]``) sits on the panel of
that name. Choosing needs no model call: ``--panel auto`` compares the question with each
panel's description by embedding (or word overlap without an embedder), and a duo is the
polarity pair whose ``duo_keywords`` best match the question's words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from council.errors import CardError, ConfigError, UnknownNameError
from council.paths import search_path
from council.personas.card import PersonaCard
from council.sourcefile import load_yaml, read_text, validate

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

    panels: dict[str, _PanelEntry]


def panels_from_file(path: Path) -> list[Panel]:
    data, node = load_yaml(*read_text(path, CardError), CardError)
    spec = validate(_PanelsFile, data, node, path, CardError)
    return [Panel(name, e.members, str(path), e.about or name) for name, e in spec.panels.items()]


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
    for folder in search_path("panels", "COUNCIL_PANELS_PATH", list(folders)):
        for path in sorted(Path(folder).glob("*.yaml")) if Path(folder).is_dir() else []:
            for panel in panels_from_file(path):
                found.setdefault(panel.name, panel)
    for panel in panels_from_cards(cards):
        found.setdefault(panel.name, panel)
    return found


def find_panel(name: str, panels: Mapping[str, Panel]) -> Panel:
    if name not in panels:
        raise UnknownNameError("panel", name, panels)
    return panels[name]


Encode = Callable[[list[str]], Any]  # texts -> unit row vectors (an embedder's encode)


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


def choose_duo(question: str, cards: Sequence[PersonaCard]) -> tuple[list[str], str]:
    """The polarity pair whose duo keywords best match the question's words."""
    by_name = {card.name: card for card in cards}
    pairs = sorted(
        {tuple(sorted((card.name, other))) for card in cards
         for other in card.fields.polarity_pairs if other in by_name}
    )  # fmt: skip
    if not pairs:
        raise ConfigError("no polarity pair among the cards to seat as a duo")
    asked = _words(question)

    def hits(pair: tuple[str, ...]) -> int:
        keywords = {k.lower() for name in pair for k in by_name[name].fields.duo_keywords}
        return len(asked & keywords)

    best = max(pairs, key=lambda pair: (hits(pair), [-ord(c) for c in "".join(pair)]))
    return list(best), f"duo {best[0]} + {best[1]} ({hits(best)} of the question's words match)"


def domain_seat(question: str, cards: Sequence[PersonaCard]) -> tuple[str | None, str]:
    """The member whose domain the question names most clearly, or None when that is not
    clear (no match, or a tie): the seat whose vote weighs 1.5."""
    asked = _words(question)
    scored = sorted(
        ((len(asked & _words(card.fields.domain or "")), card.name) for card in cards),
        key=lambda pair: (-pair[0], pair[1]),
    )
    if not scored or scored[0][0] == 0 or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return None, "no member's domain stands out for this question"
    return scored[0][1], f"{scored[0][1]}'s domain matches {scored[0][0]} of the question's words"


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
