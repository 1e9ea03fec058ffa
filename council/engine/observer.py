"""Observers follow a run as it happens: the run folder, the progress display, tests."""

from __future__ import annotations

from council.protocols.spec import LoopStage, SpeakingStage
from council.transcript.records import RunHeader, RunResult, Tally, Turn


class Observer:
    """Base class with no-op hooks; override what you need. Hooks must not block for long."""

    def run_started(self, header: RunHeader) -> None: ...

    def stage_started(self, stage: SpeakingStage, seats: list[str]) -> None: ...

    def turn_started(self, stage: SpeakingStage, seat: str) -> None: ...

    def turn_finished(self, turn: Turn) -> None: ...

    def stage_finished(self, stage: SpeakingStage, turns: list[Turn]) -> None: ...

    def stage_skipped(self, stage: SpeakingStage, reason: str) -> None: ...

    def tally_made(self, tally: Tally) -> None: ...

    def loop_round_finished(self, loop: LoopStage, round: int, stop: str | None) -> None: ...

    def run_finished(self, result: RunResult) -> None: ...


class Observers(Observer):
    """Fans each hook out to several observers, in order."""

    def __init__(self, observers: list[Observer]) -> None:
        self.observers = observers

    def run_started(self, header: RunHeader) -> None:
        for o in self.observers:
            o.run_started(header)

    def stage_started(self, stage: SpeakingStage, seats: list[str]) -> None:
        for o in self.observers:
            o.stage_started(stage, seats)

    def turn_started(self, stage: SpeakingStage, seat: str) -> None:
        for o in self.observers:
            o.turn_started(stage, seat)

    def turn_finished(self, turn: Turn) -> None:
        for o in self.observers:
            o.turn_finished(turn)

    def stage_finished(self, stage: SpeakingStage, turns: list[Turn]) -> None:
        for o in self.observers:
            o.stage_finished(stage, turns)

    def stage_skipped(self, stage: SpeakingStage, reason: str) -> None:
        for o in self.observers:
            o.stage_skipped(stage, reason)

    def tally_made(self, tally: Tally) -> None:
        for o in self.observers:
            o.tally_made(tally)

    def loop_round_finished(self, loop: LoopStage, round: int, stop: str | None) -> None:
        for o in self.observers:
            o.loop_round_finished(loop, round, stop)

    def run_finished(self, result: RunResult) -> None:
        for o in self.observers:
            o.run_finished(result)
