"""The domain-weight seat: the one member whose domain the question is most plainly about.

nyk's rule (SKILL.md v1.2.0, STEP 0; MIT, 0xNyk): the member whose domain most directly
matches the problem votes with weight 1.5, chosen when the panel is chosen, before any
position exists, so that it cannot be picked to suit the votes; "if two members are equally
on-domain, pick neither". Here the question is compared with each card's domain (its
``domain``, else its ``role``; its ``polarity`` and ``duo_keywords`` too) by the bundled
embedder, or, without one, by shared word stems. Two members closer than ``MARGIN`` are
equally on-domain; a best match under ``FLOOR`` is no match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from council.personas.card import PersonaCard
from council.personas.matching import Encode, stems

WEIGHT = 1.5
# Cosines of the bundled MiniLM between a question and a short domain phrase run from about
# -0.1 to 0.4; differences under MARGIN flip with a rewording of the question (measured on
# nyk's triads and the shipped panels), and a best match under FLOOR is about nothing.
MARGIN = 0.03
FLOOR = 0.05


@dataclass(frozen=True)
class DomainSeat:
    member: str | None  # None: no domain-weight seat
    note: str  # one line: the member, 1.5x and why; or "none - " and why


def domain_text(card: PersonaCard) -> str:
    fields = card.fields
    parts = [fields.domain or fields.role, fields.polarity or "", ", ".join(fields.duo_keywords)]
    return "; ".join(part for part in parts if part)


def domain_seat(
    question: str, cards: Sequence[PersonaCard], encode: Encode | None = None
) -> DomainSeat:
    """The member whose domain is closest to ``question``, or none when that is not clear."""
    if not question.strip():
        return DomainSeat(None, "none - no question to match the members' domains against")
    if len(cards) < 2:
        return DomainSeat(None, "none - a single seat has no one to outweigh")
    texts = [domain_text(card) for card in cards]
    if encode is not None:
        vectors = encode([question, *texts])
        scores = [float(vectors[0] @ vectors[i + 1]) for i in range(len(cards))]
        method, margin, floor = "embedding cosine", MARGIN, FLOOR
    else:
        asked = stems(question)
        scores = [float(len(asked & stems(text))) for text in texts]
        method, margin, floor = "shared words", 0.5, 0.5
    ranked = sorted(zip(scores, cards, strict=True), key=lambda pair: -pair[0])
    (best, card), (second, runner_up) = ranked[0], ranked[1]
    if best < floor:
        return DomainSeat(
            None,
            f"none - no member's domain matches the question ({method}: "
            f"best {card.name} {_score(best)})",
        )
    if best - second < margin:
        return DomainSeat(
            None,
            f"none - ambiguous match ({method}: {card.name} {_score(best)}, "
            f"{runner_up.name} {_score(second)})",
        )
    domain = card.fields.domain or card.fields.role
    return DomainSeat(
        card.name,
        f"{card.name} {WEIGHT}x - its domain '{domain}' is closest to the question ({method} "
        f"{_score(best)}; next {runner_up.name} {_score(second)})",
    )


def _score(value: float) -> str:
    return f"{value:.2f}" if value != int(value) else str(int(value))
