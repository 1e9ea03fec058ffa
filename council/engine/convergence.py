"""When a loop may stop early: settled votes, answers that stopped changing, a moderator's call."""

from __future__ import annotations

import re

from council.records.run import Turn

_WORD = re.compile(r"[a-z0-9']+")
_DECISION = re.compile(r"DECISION\s*:\s*\**\s*(STOP|CONTINUE)", re.IGNORECASE)
MODERATOR_INSTRUCTION = (
    "End your reply with one line: 'DECISION: STOP' if the debate has settled or is going in "
    "circles, or 'DECISION: CONTINUE' if another round would change something."
)


def word_overlap(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' word sets: 1.0 for the same words, 0 for none shared.

    Lexical on purpose: cheap, dependency-free, and enough to see a seat repeating itself.
    """
    left, right = set(_WORD.findall(a.lower())), set(_WORD.findall(b.lower()))
    if not left and not right:
        return 1.0
    return len(left & right) / len(left | right)


def answers_stable(previous: list[Turn], current: list[Turn], threshold: float) -> float | None:
    """The lowest similarity of any seat's answer to its previous one, if all reach threshold."""
    before = {t.seat: t.text for t in previous if t.ok and t.text}
    scores = [
        word_overlap(before[t.seat], t.text)
        for t in current
        if t.ok and t.text and t.seat in before
    ]
    if not scores or min(scores) < threshold:
        return None
    return min(scores)


def moderator_stops(turns: list[Turn]) -> bool:
    """True when the moderator's last DECISION line says STOP."""
    for turn in turns:
        decisions = _DECISION.findall(turn.text or "")
        if decisions and decisions[-1].upper() == "STOP":
            return True
    return False
