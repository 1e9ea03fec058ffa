"""Parsing peer rankings of anonymized answers ("Response A", "Response B", ...) and
aggregating them.

A seat ranks the other seats' answers; its own answer is not on its ballot. Replies often add
commentary, repeat labels, invent labels, rank themselves or leave some out: the parser reads the
labels in order after the last ``FINAL RANKING`` marker (or in the whole reply when there is
none), keeps each label once, and notes every problem.
"""

from __future__ import annotations

import re
from collections import defaultdict

from council.protocols.spec import RankingStage
from council.records.run import RankingBallot, Tally

_MARKER = re.compile(r"final\s+ranking\s*:?", re.IGNORECASE)
_LABEL = re.compile(r"\bResponse\s+([A-Z]{1,2}\d*)\b")


def ranking_instruction(labels: list[str]) -> str:
    return (
        "Evaluate each response, then end your reply with the line FINAL RANKING: followed by "
        "one line per response, best first, like '1. "
        + labels[0]
        + "'. Rank every one of: "
        + ", ".join(labels)
        + "."
    )


def parse_ranking(
    seat: str, text: str | None, ballot: dict[str, str], own: str | None
) -> RankingBallot:
    """``ballot`` maps labels ("Response B") to the seats on this seat's ballot."""
    if not text or not text.strip():
        return RankingBallot(seat=seat, order=[], problems=["no reply"])
    markers = list(_MARKER.finditer(text))
    tail = text[markers[-1].end() :] if markers else text
    problems = [] if markers else ["no FINAL RANKING marker; read labels from the whole reply"]
    order: list[str] = []
    for match in _LABEL.finditer(tail):
        label = f"Response {match.group(1)}"
        if label == own:
            problems.append(f"ranked itself ({label}); ignored")
        elif label not in ballot:
            problems.append(f"unknown label {label}; ignored")
        elif ballot[label] not in order:
            order.append(ballot[label])
    missing = [label for label, s in ballot.items() if s not in order]
    if order and missing:
        problems.append("left out " + ", ".join(missing))
    if not order:
        problems.append("no valid label ranked")
    return RankingBallot(seat=seat, order=order, problems=list(dict.fromkeys(problems)))


def tally_rankings(
    stage: RankingStage, ballots: list[RankingBallot], round_number: int = 0
) -> Tally:
    """Average place (lower is better) per ranked seat, and Borda points as a tie-breaker."""
    places: dict[str, list[int]] = defaultdict(list)
    borda: dict[str, float] = defaultdict(float)
    for ballot in ballots:
        for place, seat in enumerate(ballot.order, start=1):
            places[seat].append(place)
            borda[seat] += len(ballot.order) - place
    average = {seat: sum(p) / len(p) for seat, p in places.items()}
    ordered = sorted(average, key=lambda s: (average[s], -borda[s]))
    valid = [b for b in ballots if b.valid]
    winner = ordered[0] if ordered else None
    firsts = sum(1 for b in valid if b.order and b.order[0] == winner)
    return Tally(
        stage=stage.id,
        round=round_number,
        kind="ranking",
        rule="average_place",
        rankings=ballots,
        winner=winner,
        agreement=round(firsts / len(valid), 4) if valid else None,
        scores={seat: round(average[seat], 4) for seat in ordered},
        invalid=[b.seat for b in ballots if not b.valid],
    )
