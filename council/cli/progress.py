"""The live progress display on stderr: one row per stage and loop round, one cell per seat.

On a terminal it is a rich Live table, rebuilt at every refresh, so its clocks tick and its
token counts grow as replies stream in, between events as well as at them. A cell shows its
seat's state, the tokens it has streamed so far, a retry or a fallback the moment it happens,
and a turn reused from the ledger (resume, replay). Elsewhere (CI, pipes) it prints one line
per finished turn, with the same facts, so logs stay readable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import singledispatchmethod
from typing import Any

from council.records.events import (
    CallFellBack,
    CallRetrying,
    Event,
    GateChecked,
    LoopRound,
    RunFinished,
    RunStarted,
    SeatAbsent,
    StageFinished,
    StageSkipped,
    StageStarted,
    TallyMade,
    TurnDelta,
    TurnFinished,
    TurnStarted,
)
from council.records.run import FLAGGED_TO_USER, Turn

_SYMBOL = {"waiting": "·", "running": "…", "ok": "✓", "failed": "✗", "reused": "↺"}
_LEGEND = "… speaking  ✓ done  ↺ reused  ✗ failed"
_TAIL = 72  # characters of the latest streamed reply shown under the table


@dataclass
class _Cell:
    state: str = "waiting"
    tokens: int = 0  # streamed pieces while it speaks; the reply's usage once it has
    attempt: int = 1
    model: str | None = None  # the fallback now answering, if any
    lengths: tuple[str, ...] = ()  # a finished reply over its word limit or cut off

    def text(self, seat: str) -> str:
        notes = [f"{self.tokens} tok"] if self.tokens and self.state == "running" else []
        notes += self.lengths
        if self.attempt > 1:
            notes.append(
                f"try {self.attempt}" if self.state == "running" else f"{self.attempt} tries"
            )
        if self.model:
            notes.append(f"via {self.model}")
        return f"{_SYMBOL[self.state]} {seat}" + (f" ({', '.join(notes)})" if notes else "")


@dataclass
class _Row:
    title: str
    cells: dict[str, _Cell]
    started: float
    finished: float | None = None


def _count(tokens: int) -> str:
    return f"{tokens} token" + ("" if tokens == 1 else "s")


def _brief(error: str) -> str:
    """An error's kind and its last words: litellm nests one message in another several
    times over (the record keeps it whole)."""
    kind, _, rest = error.partition(": ")
    return f"{kind}: {rest.rsplit(': ', 1)[-1]}" if rest else error


def _where(stage: str, round_number: int) -> str:
    return stage + (f" (round {round_number})" if round_number else "")


class ProgressDisplay:
    """An event sink. ``console`` and ``clock`` are for tests (a recording console, a clock
    that moves when told); by default it writes to stderr and reads the wall clock."""

    def __init__(self, console: Any = None, clock: Callable[[], float] = time.perf_counter):
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.clock = clock
        self.live: Any = None
        self.title = "council"
        self.rows: dict[tuple[str, int], _Row] = {}
        self.tokens = 0  # of finished turns; streaming ones are counted in their cells
        self.latest: tuple[str, str] = ("", "")  # the seat that streamed last, its last words
        self.started_at = clock()
        self._lock = threading.Lock()  # the live display renders from its own thread

    @property
    def wants_deltas(self) -> bool:
        """On a terminal the live table shows replies as they stream; piped, it prints only
        finished turns, so calls need not stream for it."""
        return bool(self.console.is_terminal)

    # -- rendering ------------------------------------------------------------------------

    def view(self) -> Any:
        """The display as it stands now (the live view renders this at every refresh): the
        table, then one line each for the totals, the latest words streamed and a legend."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            now = self.clock()
            table = Table(title=self.title, expand=False, show_lines=False)
            table.add_column("stage")
            table.add_column("seats")
            table.add_column("tokens", justify="right")
            table.add_column("time", justify="right")
            for row in self.rows.values():
                cells = "  ".join(cell.text(seat) for seat, cell in row.cells.items())
                tokens = sum(cell.tokens for cell in row.cells.values())
                seconds = (row.finished or now) - row.started
                table.add_row(row.title, cells, str(tokens), f"{seconds:.1f} s")
            streaming = sum(
                cell.tokens
                for row in self.rows.values()
                for cell in row.cells.values()
                if cell.state == "running"
            )
            lines = [f" {_count(self.tokens + streaming)} · {now - self.started_at:.1f} s"]
            seat, said = self.latest
            if seat:
                lines.append(f" {seat} ▸ {said}")
            lines.append(f" {_LEGEND}")
        status = [Text(line, no_wrap=True, overflow="ellipsis") for line in lines]
        return Group(table, *status)

    def _cell(self, stage: str, round_number: int, seat: str) -> _Cell:
        """A seat's cell; a turn outside any started stage (a seat asked again) gets a row."""
        row = self.rows.get((stage, round_number))
        if row is None:
            row = _Row(_where(stage, round_number), {}, self.clock())
            self.rows[(stage, round_number)] = row
        return row.cells.setdefault(seat, _Cell())

    # -- events ---------------------------------------------------------------------------

    @singledispatchmethod
    def handle(self, event: Event) -> None:
        """Events the display does not show (a loop's outcome, a gate's note)."""

    @handle.register
    def _(self, event: RunStarted) -> None:
        header = event.header
        self.title = f"council · {header.protocol}" + (" (resumed)" if event.resumed else "")
        self.console.print(f"[bold]{header.question}[/bold]  ({header.protocol})", highlight=False)
        for seat in header.seats:
            self.console.print(f"  {seat.seat:<14} {seat.model}", highlight=False)
        self.started_at = self.clock()
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(console=self.console, refresh_per_second=8, get_renderable=self.view)
            self.live.start()

    @handle.register
    def _(self, event: StageStarted) -> None:
        with self._lock:
            title = _where(event.label, event.round)
            cells = {seat: _Cell() for seat in event.seats}
            self.rows[(event.stage, event.round)] = _Row(title, cells, self.clock())

    @handle.register
    def _(self, event: TurnStarted) -> None:
        with self._lock:
            self._cell(event.stage, event.round, event.seat).state = "running"

    @handle.register
    def _(self, event: TurnDelta) -> None:
        with self._lock:
            self._cell(event.stage, event.round, event.seat).tokens += 1
            seat, said = self.latest
            said = said if seat == event.seat else ""
            said = (said + event.text).replace("\n", " ")
            self.latest = (event.seat, said if len(said) <= _TAIL else "…" + said[1 - _TAIL :])

    @handle.register
    def _(self, event: CallRetrying) -> None:
        with self._lock:
            cell = self._cell(event.stage, event.round, event.seat)
            cell.attempt, cell.tokens = event.attempt + 1, 0  # what it streamed is void
        where = _where(event.stage, event.round)
        self._live_note(
            f"  {where} · {event.seat}: attempt {event.attempt} failed ({_brief(event.error)}); "
            f"retrying in {event.wait_s:.1f} s"
        )

    @handle.register
    def _(self, event: CallFellBack) -> None:
        with self._lock:
            cell = self._cell(event.stage, event.round, event.seat)
            cell.model, cell.attempt, cell.tokens = event.fallback, 1, 0
        where = _where(event.stage, event.round)
        self._live_note(
            f"  {where} · {event.seat}: {event.failed} failed, falling back to "
            f"{event.fallback} ({_brief(event.error)})"
        )

    @handle.register
    def _(self, event: TurnFinished) -> None:
        turn = event.turn
        with self._lock:
            cell = self._cell(turn.stage, turn.round, turn.seat)
            cell.state = "reused" if turn.reused else "ok" if turn.ok else "failed"
            cell.tokens = turn.completion_tokens or 0
            cell.attempt = max(turn.attempts, 1)  # a fallback's attempts include its models'
            cell.lengths = length_flags(turn)
            self.tokens += cell.tokens
        if self.live is None:
            self.console.print(_turn_line(turn), highlight=False)

    @handle.register
    def _(self, event: StageFinished) -> None:
        with self._lock:
            row = self.rows.get((event.stage, event.round))
            if row is not None:
                row.finished = self.clock()

    @handle.register
    def _(self, event: StageSkipped) -> None:
        self._note(f"  {_where(event.stage, event.round)} skipped: {event.reason}")

    @handle.register
    def _(self, event: GateChecked) -> None:
        note = event.note
        if note.fired and note.gate in FLAGGED_TO_USER:
            self._note(f"  {_where(note.stage, note.round)} flag: {note.reason}")

    @handle.register
    def _(self, event: SeatAbsent) -> None:
        self._note(f"  {event.seat} sits out the rest of the run: {event.reason}")

    @handle.register
    def _(self, event: TallyMade) -> None:
        tally = event.tally
        if tally.winner is not None:
            share = f"{tally.agreement:.0%}" if tally.agreement is not None else "?"
            self._note(f"  {tally.stage}: {tally.winner} leads ({share}, {tally.rule})")

    @handle.register
    def _(self, event: LoopRound) -> None:
        if event.stop:
            self._note(f"  {event.loop} stopped after round {event.round}: {event.stop}")

    @handle.register
    def _(self, event: RunFinished) -> None:
        if self.live is not None:
            self.live.refresh()
            self.live.stop()
            self.live = None
        wall = self.clock() - self.started_at
        self.console.print(
            f"{event.status} in {wall:.1f} s, {_count(self.tokens)} generated", highlight=False
        )
        check = event.verdict_check
        if check is not None and check.status == "unchecked":
            self.console.print(
                "verdict unchecked (asked once more): " + "; ".join(check.reasons), highlight=False
            )

    def _note(self, text: str) -> None:
        """A line above the live table (or in the log): something that happened once."""
        console = self.live.console if self.live is not None else self.console
        console.print(text, highlight=False)

    def _live_note(self, text: str) -> None:
        """A line above the live table only: a log says it in the turn's own line."""
        if self.live is not None:
            self.live.console.print(text, highlight=False)


def length_flags(turn: Turn) -> tuple[str, ...]:
    """A reply over its word limit, cut off at its token cap, or continued, in a few words."""
    flags = []
    if turn.over_limit:
        flags.append(f"{turn.words}/{turn.word_limit} words")
    if turn.continued:
        flags.append("continued")
    if turn.truncated:
        flags.append("cut off")
    return tuple(flags)


def _turn_line(turn: Turn) -> str:
    """A finished turn in one line, for logs: what happened, how long, how many tokens."""
    status = "reused" if turn.reused else "ok" if turn.ok else f"failed: {turn.error}"
    facts = [f"{turn.latency_s:.1f} s", _count(turn.completion_tokens or 0)]
    if turn.attempts > 1:
        facts.append(f"{turn.attempts} attempts")
    if turn.request is not None and turn.model != turn.request.model:
        facts.append(f"via {turn.model}")  # a fallback answered
    facts += length_flags(turn)
    return f"  {_where(turn.stage, turn.round)} · {turn.seat}: {status} ({', '.join(facts)})"
