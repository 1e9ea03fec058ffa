"""The effective-votes estimator a council's run is given (issue 31): the meter's, fed the
panel's stored profile when the run has a runs folder (``council.store.panels``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from council.engine.independence import Independence, VoteEvidence
from council.engine.seating import seat_assignment
from council.records.panel import panel_key
from council.records.run import EffectiveVotes
from council.seats.seat import Seat
from council.store.panels import load_profile


def independence_estimator(runs_dir: Path | None, seats: Sequence[Seat]) -> Independence:
    """Across the panel's earlier runs where its profile holds enough, else within the run."""
    profile = None
    if runs_dir is not None:
        profile = load_profile(runs_dir, panel_key([seat_assignment(s) for s in seats]))
    earlier = [run.stances for run in profile.runs] if profile else []

    def estimate(evidence: VoteEvidence) -> EffectiveVotes | None:
        # The meter (and numpy) at the run's first tally, not on the way to its first call.
        from council.meter.independence import estimator

        return estimator(earlier)(evidence)

    return estimate
