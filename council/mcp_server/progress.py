"""A run's events as MCP progress notifications.

The engine hands each event to its sinks synchronously; a notification is sent
asynchronously. ``ProgressRelay`` is the sink in between: ``handle`` only queues the event
(safe from any thread), and ``pump`` sends one notification per event worth a line, numbered
so progress only ever increases, until the run is over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import singledispatch

from council.base.secrets import redact
from council.records.events import (
    Event,
    LoopRound,
    RunFinished,
    RunStarted,
    SeatAbsent,
    StageSkipped,
    StageStarted,
    TallyMade,
    TurnFinished,
)

Report = Callable[[float, float | None, str | None], Awaitable[None]]
_DONE = object()


@singledispatch
def progress_line(event: Event) -> str | None:
    """What a watching agent reads for one event; None for events not worth a line."""
    return None


@progress_line.register
def _(event: RunStarted) -> str:
    seats = ", ".join(f"{s.seat} on {s.model}" for s in event.header.seats)
    return f"run {event.run_id} started ({event.header.protocol}): {seats}"


@progress_line.register
def _(event: StageStarted) -> str:
    where = f" round {event.round}" if event.round else ""
    return f"{event.label}{where}: {len(event.seats)} seat(s) speaking"


@progress_line.register
def _(event: TurnFinished) -> str:
    turn = event.turn
    status = "ok" if turn.ok else f"failed: {turn.error}"
    where = f"{turn.stage} r{turn.round}" if turn.round else turn.stage
    return f"{where} · {turn.seat}: {status} ({turn.latency_s:.1f} s)"


@progress_line.register
def _(event: TallyMade) -> str:
    tally = event.tally
    if tally.winner is None:
        return f"{tally.stage}: no winner ({tally.rule})"
    share = f"{tally.agreement:.0%}" if tally.agreement is not None else "?"
    return f"{tally.stage}: {tally.winner} leads ({share}, {tally.rule})"


@progress_line.register
def _(event: StageSkipped) -> str:
    return f"{event.stage} skipped: {event.reason}"


@progress_line.register
def _(event: SeatAbsent) -> str:
    return f"{event.seat} is absent for the rest of the run: {event.reason}"


@progress_line.register
def _(event: LoopRound) -> str | None:
    return f"{event.loop} stopped after round {event.round}: {event.stop}" if event.stop else None


@progress_line.register
def _(event: RunFinished) -> str:
    return f"run {event.status}" + (f": {event.error}" if event.error else "")


class ProgressRelay:
    """An event sink that turns a run's events into progress notifications."""

    # A notification says what finished (``progress_line`` has no line for a reply's pieces),
    # so calls need not stream for it.
    wants_deltas = False

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self.sent = 0

    def handle(self, event: Event) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, _DONE)

    async def pump(self, report: Report) -> None:
        """Send a notification per event worth a line, until ``close``."""
        listening = True
        while (event := await self._queue.get()) is not _DONE:
            line = progress_line(event)  # type: ignore[arg-type]
            if line is None or not listening:
                continue
            self.sent += 1
            try:
                await report(self.sent, None, redact(line))
            except Exception:  # the client went away: the run goes on and is recorded
                listening = False
