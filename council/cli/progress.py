"""The live progress display on stderr: one row per stage, one cell per seat.

On a terminal it is a rich Live table; elsewhere (CI, pipes) it prints one line per finished
turn and stage, so logs stay readable.
"""

from __future__ import annotations

import time
from typing import Any

from council.engine.observer import Observer
from council.protocols.spec import LoopStage, SpeakingStage
from council.transcript.records import RunHeader, RunResult, Tally, Turn

_SYMBOL = {"waiting": "·", "running": "…", "ok": "✓", "failed": "✗"}


class ProgressDisplay(Observer):
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

    # -- observer hooks -------------------------------------------------------------------

    def run_started(self, header: RunHeader) -> None:
        self.console.print(f"[bold]{header.question}[/bold]  ({header.protocol})", highlight=False)
        for seat in header.seats:
            self.console.print(f"  {seat.seat:<14} {seat.model}", highlight=False)
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(self._table(), console=self.console, refresh_per_second=8)
            self.live.start()

    def stage_started(self, stage: SpeakingStage, seats: list[str]) -> None:
        round_number = self.rounds.get(stage.id, 0) + 1
        self.rounds[stage.id] = round_number
        self.titles[stage.id] = stage.label + (
            f" (round {round_number})" if round_number > 1 else ""
        )
        self.stages[stage.id] = dict.fromkeys(seats, "waiting")
        self.started[stage.id] = time.perf_counter()
        self._refresh()

    def turn_started(self, stage: SpeakingStage, seat: str) -> None:
        self.stages[stage.id][seat] = "running"
        self._refresh()

    def turn_finished(self, turn: Turn) -> None:
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

    def stage_finished(self, stage: SpeakingStage, turns: list[Turn]) -> None:
        self.elapsed[stage.id] = time.perf_counter()
        self._refresh()

    def stage_skipped(self, stage: SpeakingStage, reason: str) -> None:
        self._note(f"  {stage.id} skipped: {reason}")

    def tally_made(self, tally: Tally) -> None:
        if tally.winner is not None:
            share = f"{tally.agreement:.0%}" if tally.agreement is not None else "?"
            self._note(f"  {tally.stage}: {tally.winner} leads ({share}, {tally.rule})")

    def loop_round_finished(self, loop: LoopStage, round: int, stop: str | None) -> None:
        if stop:
            self._note(f"  {loop.id} stopped after round {round}: {stop}")

    def _note(self, text: str) -> None:
        if self.live is not None:
            self.live.console.print(text, highlight=False)
        else:
            self.console.print(text, highlight=False)

    def run_finished(self, result: RunResult) -> None:
        if self.live is not None:
            self.live.update(self._table())
            self.live.stop()
        self.console.print(
            f"{result.status} in {result.wall_s:.1f} s, "
            f"{result.completion_tokens} tokens generated",
            highlight=False,
        )
