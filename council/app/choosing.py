"""Choosing who sits, from a panel name, ``auto`` (the question decides) or a duo protocol.

Nothing here calls a model: panels are matched to the question with the bundled embedder
(word overlap where it is not installed), duos by their cards' ``duo_keywords``. Each choice
comes with a sentence saying why, which the CLI prints with the seat map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from council.personas.card import PersonaCard
from council.personas.library import available_personas, find_persona
from council.personas.panels import (
    AUTO,
    Encode,
    available_panels,
    check_methods,
    choose_duo,
    choose_panel,
    domain_seat,
    find_panel,
)


@dataclass(frozen=True)
class Choice:
    personas: list[str]
    weights: dict[str, float] = field(default_factory=dict)  # seat -> vote weight, 1 if absent
    why: list[str] = field(default_factory=list)


def _encoder() -> Encode | None:
    from council.diversity.embedders import default_embedder, embedder_available

    if not embedder_available():
        return None
    try:
        return default_embedder().encode
    except Exception:  # a broken torch install: fall back to word overlap
        return None


def embedding_similarity() -> Callable[[str, str], float] | None:
    """Cosine similarity by the bundled embedder, loaded on first use (a run whose gates and
    votes never compare texts never loads it); None where it is not installed."""
    from council.diversity.embedders import embedder_available

    if not embedder_available():
        return None
    loaded: list[Encode] = []

    def similarity(a: str, b: str) -> float:
        if not loaded:
            encoder = _encoder()
            if encoder is None:
                from council.engine.gates import word_similarity

                return word_similarity(a, b)
            loaded.append(encoder)
        vectors = loaded[0]([a, b])
        return float(vectors[0] @ vectors[1])

    return similarity


def _all_cards() -> list[PersonaCard]:
    from council.errors import CardError
    from council.personas.card import load_card

    cards = []
    for path in available_personas().values():
        try:
            cards.append(load_card(path))
        except CardError:
            continue  # the linter reports it; a panel cannot seat it
    return cards


def choose(question: str, panel: str | None, *, duo: bool = False) -> Choice | None:
    """Who sits for ``panel`` (a name or ``auto``) or, for a duo with no panel, the best pair;
    None when neither applies (the caller's own personas sit)."""
    if panel is None and not duo:
        return None
    cards = _all_cards()
    why: list[str] = []
    if panel is None:
        names, reason = choose_duo(question, [c for c in cards if c.fields.duo_keywords] or cards)
        return Choice(names, why=[reason])
    panels = available_panels(cards)
    if panel == AUTO:
        chosen, reason = choose_panel(question, panels, _encoder())
        why.append(reason)
    else:
        chosen = find_panel(panel, panels)
        why.append(f"panel '{chosen.name}' from {chosen.source}")
    members = [find_persona(name) for name in chosen.members]
    check_methods(members)
    weighted, reason = domain_seat(question, members)
    why.append(f"domain seat: {reason}")
    return Choice(chosen.members, {weighted: 1.5} if weighted else {}, why)
