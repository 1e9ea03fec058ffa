"""Folding a run's events into a ``RunResult``: the one way a run is read back.

The engine returns the fold of the events it emitted, and every reader (``runs show``,
``diversity``, resume, replay, experiments) folds the events the ledger stored or an
``events.jsonl`` export holds, so a run reads the same wherever it is read from.

A resumed run appends a second ``RunStarted`` to the same stream. Turns and tallies are keyed
by where they happened, the later answer winning; what describes one attempt (absent seats,
the outcome) starts again at each ``RunStarted``. A stream with no ``RunFinished`` after its
last start is a run that did not finish: it reads as failed.
"""

from __future__ import annotations

from collections.abc import Iterable

from council.records.events import (
    Event,
    GateChecked,
    LoopFinished,
    RunFinished,
    RunStarted,
    SeatAbsent,
    StageSkipped,
    TallyMade,
    TurnFinished,
    VerdictAudited,
)
from council.records.run import GateNote, LoopOutcome, RunHeader, RunResult, Tally, Turn
from council.records.settings import RunConfig
from council.records.verdicts import VerdictAudit

NOT_FINISHED = "the run did not finish"


class EmptyRun(ValueError):
    """The events hold no ``RunStarted``: there is no run to read."""


def fold_events(events: Iterable[Event]) -> RunResult:
    header: RunHeader | None = None
    config: RunConfig | None = None
    turns: dict[tuple[str, int, str], Turn] = {}
    tallies: dict[tuple[str, int], Tally] = {}
    loops: dict[str, LoopOutcome] = {}
    skipped: dict[str, str] = {}
    absent: dict[str, str] = {}
    finished: RunFinished | None = None
    gates: dict[tuple[str, int, str], GateNote] = {}
    audits: dict[str, VerdictAudit] = {}  # auditor model -> its latest audit
    for event in events:
        if isinstance(event, RunStarted):
            header = header or event.header  # the first start is when the run started
            config = config or event.config  # a resume convenes the texts the first recorded
            absent, finished = {}, None
        elif isinstance(event, TurnFinished):
            turn = event.turn
            turns[(turn.stage, turn.round, turn.seat)] = turn
        elif isinstance(event, TallyMade):
            tallies[(event.tally.stage, event.tally.round)] = event.tally
        elif isinstance(event, LoopFinished):
            loops[event.outcome.loop] = event.outcome
        elif isinstance(event, StageSkipped):
            skipped[event.stage] = event.reason
        elif isinstance(event, SeatAbsent):
            absent[event.seat] = event.reason
        elif isinstance(event, GateChecked):
            note = event.note
            gates[(note.stage, note.round, note.gate)] = note
        elif isinstance(event, RunFinished):
            finished = event
        elif isinstance(event, VerdictAudited):
            audits[event.audit.auditor_model] = event.audit.model_copy(update={"at": event.at})
    if header is None:
        raise EmptyRun("no run_started event")
    stage_order = {stage: i for i, stage in enumerate(header.stages)}
    seat_order = {seat.seat: i for i, seat in enumerate(header.seats)}
    ordered = sorted(
        turns.values(),
        key=lambda t: (stage_order.get(t.stage, len(stage_order)), t.round, seat_order[t.seat]),
    )
    return RunResult(
        **dict(header),
        status=finished.status if finished else "failed",
        error=finished.error if finished else NOT_FINISHED,
        turns=ordered,
        tallies=list(tallies.values()),
        loops=list(loops.values()),
        skipped=[f"{stage}: {reason}" for stage, reason in skipped.items()],
        absent=[f"{seat}: {reason}" for seat, reason in absent.items()],
        gates=list(gates.values()),
        synthesis=finished.synthesis if finished else None,
        finished_at=finished.finished_at if finished else header.started_at,
        metadata=finished.metadata if finished else None,
        verdict_check=finished.verdict_check if finished else None,
        audits=list(audits.values()),
        config=config,
    )
