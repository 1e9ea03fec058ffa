"""The live progress display on stderr: one row per stage, one cell per seat.

On a terminal it is a rich Live table; elsewhere (CI, pipes) it prints one line per finished
turn and stage, so logs stay readable.
"""

from __future__ import annotations

import time
from functools import singledispatchmethod
from typing import Any

from council.records.events import (
    Event,
    LoopRound,
    RunFinished,
    RunStarted,
    StageFinished,
    StageSkipped,
    StageStarted,
    TallyMade,
    TurnFinished,
    TurnStarted,
)

_SYMBOL = {"waiting": "·", "running": "…", "ok": "✓", "failed": "✗"}


class ProgressDisplay:
    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.live: Any = None
        self.stages: dict[str, dict[str, str]] = {}
        self.titles: dict[str, str] = {}
        self.started: dict[str, float] = {}
        self.elapsed: dict[str, float] = {}
        self.tokens = 0
        self.rounds: dict[str, int] = {}
        self.started_at = time.perf_counter()

    # -- rendering ------------------------------------------------------------------------

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title="council", expand=False, show_lines=False)
        table.add_column("stage")
        table.add_column("seats")
        table.add_column("time", justify="right")
        for stage_id, seats in self.stages.items():
            cells = "  ".join(f"{_SYMBOL[state]} {seat}" for seat, state in seats.items())
            end = self.elapsed.get(stage_id, time.perf_counter())
            seconds = end - self.started.get(stage_id, end)
            table.add_row(self.titles[stage_id], cells, f"{seconds:.1f} s")
        table.caption = f"{self.tokens} tokens generated"
        return table

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._table())

    # -- events ---------------------------------------------------------------------------

    @singledispatchmethod
    def handle(self, event: Event) -> None:
        """Events the display does not show (a tally's details, a loop's outcome)."""

    @handle.register
    def _(self, event: RunStarted) -> None:
        header = event.header
        self.console.print(f"[bold]{header.question}[/bold]  ({header.protocol})", highlight=False)
        for seat in header.seats:
            self.console.print(f"  {seat.seat:<14} {seat.model}", highlight=False)
        self.started_at = time.perf_counter()
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(self._table(), console=self.console, refresh_per_second=8)
            self.live.start()

    @handle.register
    def _(self, event: StageStarted) -> None:
        round_number = self.rounds.get(event.stage, 0) + 1
        self.rounds[event.stage] = round_number
        self.titles[event.stage] = event.label + (
            f" (round {round_number})" if round_number > 1 else ""
        )
        self.stages[event.stage] = dict.fromkeys(event.seats, "waiting")
        self.started[event.stage] = time.perf_counter()
        self._refresh()

    @handle.register
    def _(self, event: TurnStarted) -> None:
        self.stages[event.stage][event.seat] = "running"
        self._refresh()

    @handle.register
    def _(self, event: TurnFinished) -> None:
        turn = event.turn
        self.stages[turn.stage][turn.seat] = "ok" if turn.ok else "failed"
        self.tokens += turn.completion_tokens or 0
        if self.live is None:
            status = "ok" if turn.ok else f"failed: {turn.error}"
            self.console.print(
                f"  {turn.stage} · {turn.seat}: {status} ({turn.latency_s:.1f} s, "
                f"{turn.completion_tokens or 0} tokens)",
                highlight=False,
            )
        self._refresh()

    @handle.register
    def _(self, event: StageFinished) -> None:
        self.elapsed[event.stage] = time.perf_counter()
        self._refresh()

    @handle.register
    def _(self, event: StageSkipped) -> None:
        self._note(f"  {event.stage} skipped: {event.reason}")

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
            self.live.update(self._table())
            self.live.stop()
        wall = time.perf_counter() - self.started_at
        self.console.print(
            f"{event.status} in {wall:.1f} s, {self.tokens} tokens generated", highlight=False
        )

    def _note(self, text: str) -> None:
        if self.live is not None:
            self.live.console.print(text, highlight=False)
        else:
            self.console.print(text, highlight=False)
