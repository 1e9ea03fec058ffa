"""Choosing who sits, from a panel name, ``auto`` (the question decides) or a duo protocol, and
which seat's vote weighs 1.5 (the domain seat).

Nothing here calls a model: panels are matched to the question with the bundled embedder
(word overlap where it is not installed), duos by the duo tables of the panels files, the
domain seat by each card's domain. Each choice comes with a sentence saying why, which the
CLI prints with the seat map.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from council.personas.card import PersonaCard
from council.personas.domain import DomainSeat, domain_seat
from council.personas.duos import choose_duo
from council.personas.library import available_personas
from council.personas.matching import Encode
from council.personas.panels import AUTO, available_duos, available_panels, choose_panel, find_panel


@dataclass(frozen=True)
class Choice:
    personas: list[str]
    why: list[str] = field(default_factory=list)


def _encoder(*, light: bool = False) -> Encode | None:
    """The bundled embedder's encode; ``light``: the same model in numpy, for the few short
    texts of a seating choice, made before the first request (torch's import takes seconds)."""
    from council.meter.embedders import default_embedder, embedder_available

    if not embedder_available():
        return None
    if light:
        from council.meter.light import light_default_embedder

        model = light_default_embedder()
        if model is not None:
            return model.encode
    try:
        return default_embedder().encode
    except Exception:  # a broken torch install: fall back to word overlap
        return None


def _lazy_encoder() -> Encode | None:
    """The bundled embedder's encode, loaded only if called (a duo whose keywords match the
    question never needs it); None where it is not installed."""
    from council.meter.embedders import embedder_available

    if not embedder_available():
        return None
    loaded: list[Encode] = []

    def encode(texts: list[str]) -> Any:
        if not loaded:
            encoder = _encoder(light=True)
            if encoder is None:
                raise RuntimeError("the bundled embedder did not load")
            loaded.append(encoder)
        return loaded[0](texts)

    return encode


def embedding_similarity() -> Callable[[str, str], float] | None:
    """Cosine similarity by the bundled embedder, loaded on first use (a run whose gates and
    votes never compare texts never loads it); None where it is not installed."""
    from council.meter.embedders import embedder_available

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
    """Every installed card, in search order (a user's folders before the shipped library)."""
    from council.base.errors import CardError
    from council.personas.card import load_card

    cards = []
    for path in available_personas().values():
        try:
            cards.append(load_card(path))
        except CardError:
            continue  # the linter reports it; a panel cannot seat it
    return cards


def choose(question: str, panel: str | None, *, duo: bool = False) -> Choice | None:
    """Who sits for ``panel`` (a name or ``auto``) or, for a duo with no panel, the pair the
    duo tables give the question; None when neither applies (the caller's own personas sit)."""
    if panel is None and not duo:
        return None
    cards = _all_cards()
    if panel is None:
        names, reason = choose_duo(question, cards, available_duos(), _lazy_encoder())
        return Choice(names, [reason])
    panels = available_panels(cards)
    if panel == AUTO:
        chosen, reason = choose_panel(question, panels, _encoder(light=True))
    else:
        chosen = find_panel(panel, panels)
        reason = f"panel '{chosen.name}' from {chosen.source}"
    return Choice(chosen.members, [reason])


def seat_by_domain(
    question: str,
    cards: Sequence[PersonaCard],
    *,
    embedding: bool = True,
    encode: Encode | None = None,
) -> DomainSeat:
    """The domain seat for ``question``: by the bundled embedder run in numpy (``encode``,
    where the caller keeps one: ``KeptVectors``), or by shared words where it is not installed
    or ``embedding`` is off (a council comparing texts by words)."""
    if not embedding:
        return domain_seat(question, cards, None)
    return domain_seat(question, cards, encode or _encoder(light=True))


class KeptVectors:
    """An embedder's encode, keeping each text's vector (the ``size`` most recently used)."""

    def __init__(self, encode: Encode, size: int = 256) -> None:
        self._encode, self._size = encode, size
        self._kept: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()  # a council convened from two threads at once

    def __call__(self, texts: list[str]) -> Any:
        import numpy as np

        with self._lock:
            missing = list(dict.fromkeys(text for text in texts if text not in self._kept))
            if missing:
                self._kept.update(zip(missing, self._encode(missing), strict=True))
            for text in texts:
                self._kept.move_to_end(text)
            vectors = np.stack([self._kept[text] for text in texts])
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return vectors


@cache
def bundled_vectors() -> KeptVectors | None:
    """The bundled embedder's encode with its vectors kept, one for the process (as the
    embedder is): a persona's domain is embedded once, not at every run of every council (a
    web or MCP server makes a council per request), where it was most of a warm council's
    own time; a run embeds its question. None where the embedder is not installed."""
    encode = _encoder(light=True)
    return KeptVectors(encode) if encode is not None else None


def bundled_encoder() -> Encode | None:
    """The bundled embedder's encode, in numpy where it can be; None where not installed."""
    return _encoder(light=True)
