"""A panel's profile: the stances its seats took, run after run (issue 31).

A panel is its seats' cards and models (``panel_key``): the same cards on other models are
another panel, since the models are much of what makes seats vote alike. Each finished run
that voted adds one ``PanelRun`` (its last vote's counted stances); the meter reads the
stances' agreement across runs as the seats' correlation (``council.meter.independence``).
The store keeps one file per panel (``council.store.panels``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from pydantic import Field

from council.records.record import Record
from council.records.run import SeatAssignment

PROFILE_RUNS = 500  # the newest runs a profile keeps: enough for any interval, a bounded file


class PanelRun(Record):
    run_id: str
    stage: str  # the vote whose stances these are (the run's last)
    stances: dict[str, str]  # seat -> its counted stance (abstentions and unread left out)
    recorded_at: datetime


class PanelProfile(Record):
    key: str
    seats: dict[str, str]  # seat -> "card hash @ model": what makes this panel this panel
    runs: list[PanelRun] = Field(default_factory=list)

    def with_run(self, run: PanelRun) -> PanelProfile:
        """The profile with ``run`` added (or replacing an earlier record of the same run, as
        a resumed run records again), the newest ``PROFILE_RUNS`` kept."""
        kept = [r for r in self.runs if r.run_id != run.run_id] + [run]
        return self.model_copy(update={"runs": kept[-PROFILE_RUNS:]})


def panel_seats(seats: Sequence[SeatAssignment]) -> dict[str, str]:
    return {s.seat: f"{s.card_hash} @ {s.model}" for s in seats if s.role == "panel"}


def panel_key(seats: Sequence[SeatAssignment]) -> str:
    """The same cards (by content) on the same models, seat for seat, give the same key."""
    identity = "\n".join(f"{seat}={what}" for seat, what in sorted(panel_seats(seats).items()))
    return hashlib.sha256(identity.encode()).hexdigest()[:16]
