"""Duos: which polarity pair sits for a question, from duo tables (data, not card fields).

A duo table is the ``duos:`` list of a panels file: rows of a pair, its keywords (and
``also`` words, the same domain in other words), the tension it stands for, and one
``default`` row for a question that matches nothing. nyk's table (``panels/nyk.yaml``) is
written in nyk's member names; a name matches the card of that name or the one card ending
in ``-<name>`` (``council-lao-tzu``), so it applies when nyk's cards are installed.

A pair is chosen per pair, not per card: a row's words are compared with the question's
word stems (a keyword of two words counts two), so "release" seats nyk's Torvalds vs
Musashi, never whichever two cards happen to pool the most words. Where no row's words are
in the question, the bundled embedder (when the caller has one) compares the question with
each row's words and tension, and a clear best above ``FLOOR`` sits; else the default row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from council.base.errors import ConfigError
from council.personas.card import PersonaCard
from council.personas.matching import Encode, phrase_stems, stems

# Cosine of the bundled MiniLM between a question and a row's words: a best row under FLOOR,
# or within MARGIN of the next, is no match (measured on questions of every row's domain
# and on unrelated ones; see tests/test_duos.py).
FLOOR = 0.30
MARGIN = 0.03


class DuoEntry(BaseModel):
    """One row of a duo table, as written in a panels file."""

    model_config = ConfigDict(extra="forbid")

    pair: list[str] = Field(min_length=2, max_length=2)
    keywords: list[str] = Field(default_factory=list)
    also: list[str] = Field(default_factory=list)
    tension: str = ""
    default: bool = False

    @model_validator(mode="after")
    def _usable(self) -> DuoEntry:
        if self.pair[0] == self.pair[1]:
            raise ValueError("a duo pairs two different members")
        if not self.keywords and not self.default:
            raise ValueError("a duo needs keywords, or 'default: true'")
        return self


@dataclass(frozen=True)
class DuoRow:
    entry: DuoEntry
    source: str  # the panels file

    def text(self) -> str:
        return ", ".join([*self.entry.keywords, *self.entry.also]) + f". {self.entry.tension}"


@dataclass(frozen=True)
class _Seated:
    row: DuoRow
    members: tuple[str, str]
    rank: int  # the later member's place in the cards' search order: earlier folders first


def _candidates(name: str, cards: Sequence[PersonaCard]) -> list[int]:
    return [i for i, c in enumerate(cards) if c.name == name or c.name.endswith(f"-{name}")]


def _resolve(row: DuoRow, cards: Sequence[PersonaCard]) -> _Seated | None:
    """The two cards a row names: each other's polarity pair where such a choice exists (so
    nyk's row never seats a shipped card beside an imported one), then the earliest found."""
    first, second = (_candidates(name, cards) for name in row.entry.pair)
    combos = [(a, b) for a, b in product(first, second) if a != b]
    if not combos:
        return None

    def linked(a: int, b: int) -> bool:
        return (
            cards[b].name in cards[a].fields.polarity_pairs
            or cards[a].name in cards[b].fields.polarity_pairs
        )

    a, b = min(combos, key=lambda ab: (not linked(*ab), max(ab), ab))
    return _Seated(row, (cards[a].name, cards[b].name), max(a, b))


def choose_duo(
    question: str,
    cards: Sequence[PersonaCard],
    rows: Sequence[DuoRow],
    encode: Encode | None = None,
) -> tuple[list[str], str]:
    """The pair for ``question`` and a line saying why. ``cards`` are every installed card
    in search order (a user's folders before the shipped library: their table wins ties)."""
    seated = [s for s in (_resolve(row, cards) for row in rows) if s is not None]
    if not seated:
        raise ConfigError(
            "no duo table names two installed cards: add a 'duos:' table to a panels file, "
            "or name the pair with --personas"
        )
    asked = stems(question)
    scored = [(_matched(asked, s.row), s) for s in seated]
    best_hits = max(len(words) for words, _ in scored)
    if best_hits > 0:
        tied = [s for words, s in scored if len(words) == best_hits]
        chosen, tie = _first(tied, seated), ""
        if len(tied) > 1 and encode is not None:  # the words cannot tell: the meaning can
            cosine, index = _ranked(question, tied, encode)[0]
            chosen = tied[index]
            tie = f"; of {len(tied)} rows as many, closest by cosine {cosine:.2f}"
        words = dict.fromkeys(scored[seated.index(chosen)][0].values())
        return _said(chosen, f"the question's words: {', '.join(words)}{tie}")
    if encode is not None:
        found = _by_embedding(question, [s for s in seated if s.row.entry.keywords], encode)
        if found is not None:
            return _said(*found)
    defaults = [s for s in seated if s.row.entry.default]
    if not defaults:
        raise ConfigError(
            "no duo's keywords match the question and no duo table row is "
            "'default: true': name the pair with --personas"
        )
    return _said(_first(defaults, seated), "no row's keywords match: the default pair")


def _matched(asked: set[str], row: DuoRow) -> dict[str, str]:
    """The question's stems the row's words match, each with the first word matching it."""
    found: dict[str, str] = {}
    for word in [*row.entry.keywords, *row.entry.also]:
        for part in sorted(phrase_stems(asked, word)):
            found.setdefault(part, word)
    return found


def _first(candidates: list[_Seated], seated: list[_Seated]) -> _Seated:
    """Ties go to the cards found first (a user's folders), then to the earlier row."""
    return min(candidates, key=lambda s: (s.rank, seated.index(s)))


def _ranked(question: str, seated: list[_Seated], encode: Encode) -> list[tuple[float, int]]:
    """(cosine of the question with a row's words and tension, its index), best first."""
    vectors = encode([question, *(s.row.text() for s in seated)])
    scores = [(float(vectors[0] @ vectors[i + 1]), i) for i in range(len(seated))]
    return sorted(scores, key=lambda pair: (-pair[0], pair[1]))


def _by_embedding(
    question: str, seated: list[_Seated], encode: Encode
) -> tuple[_Seated, str] | None:
    if not seated:
        return None
    ranked = _ranked(question, seated, encode)
    best, index = ranked[0]
    second = ranked[1][0] if len(ranked) > 1 else -1.0
    if best < FLOOR or best - second < MARGIN:
        return None
    return seated[index], f"no keyword in the question; closest by embedding cosine {best:.2f}"


def _said(seated: _Seated, why: str) -> tuple[list[str], str]:
    a, b = seated.members
    tension = f" - {seated.row.entry.tension}" if seated.row.entry.tension else ""
    return [a, b], f"duo {a} vs {b}{tension} ({why}; {Path(seated.row.source).name})"
