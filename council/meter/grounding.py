"""Grounding per seat in a run with context documents: the share of its citations council
found supported, and the share of its turns with at least one supported citation."""

from __future__ import annotations

from council.meter.run_report import SeatGrounding
from council.records.run import RunResult


def seat_grounding(run: RunResult) -> list[SeatGrounding]:
    """One row per seat that answered, in seating order; none for a run without documents."""
    if not run.documents:
        return []
    rows = []
    for seat in run.seats:
        turns = [t for t in run.turns if t.seat == seat.seat and t.ok]
        if not turns:
            continue
        cited = [c for t in turns for c in t.citations]
        valid = sum(c.valid for c in cited)
        grounded = sum(any(c.valid for c in t.citations) for t in turns)
        rows.append(
            SeatGrounding(
                seat=seat.seat,
                turns=len(turns),
                citations=len(cited),
                valid=valid,
                valid_share=round(valid / len(cited), 4) if cited else None,
                grounded_turn_share=round(grounded / len(turns), 4),
            )
        )
    return rows
