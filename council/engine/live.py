"""What a seat's call says while it runs, turned into the run's events.

The engine gives each call a ``TurnListener`` (it rides on the ``ModelRequest``); the seat's
model tells it each streamed piece of text, each retry and each fallback, and the listener
emits them as events of that turn: a ``TurnDelta`` (live, never stored) or a ``CallRetrying``
or ``CallFellBack`` (durable: why a turn took more than one attempt stays on record).
"""

from __future__ import annotations

from collections.abc import Callable

from council.base.secrets import redact
from council.records.events import CallFellBack, CallRetrying, Event, TurnDelta


class TurnListener:
    """Hears one seat's call in one stage and round (a ``CallListener``)."""

    def __init__(
        self,
        emit: Callable[[Event], None],
        run_id: str,
        stage: str,
        round_number: int,
        seat: str,
        wants_deltas: bool = True,
        redact: Callable[[str], str] = redact,
    ) -> None:
        self._emit = emit
        self.redact = redact  # the run's redactor: its secrets read once, not per piece
        self.run_id, self.stage, self.round, self.seat = run_id, stage, round_number, seat
        # False when no follower of the run shows replies as they come: the call is not
        # streamed (``council.seats.model.wants_deltas``).
        self.wants_deltas = wants_deltas

    def delta(self, text: str) -> None:
        # Each piece is redacted on its own; the whole reply is redacted again when it is kept.
        self._emit(
            TurnDelta(
                run_id=self.run_id,
                stage=self.stage,
                round=self.round,
                seat=self.seat,
                text=self.redact(text),
            )
        )

    def retrying(self, model: str, attempt: int, error: str, wait_s: float) -> None:
        self._emit(
            CallRetrying(
                run_id=self.run_id,
                stage=self.stage,
                round=self.round,
                seat=self.seat,
                model=model,
                attempt=attempt,
                error=self.redact(error),
                wait_s=round(wait_s, 3),
            )
        )

    def falling_back(self, failed: str, fallback: str, error: str) -> None:
        self._emit(
            CallFellBack(
                run_id=self.run_id,
                stage=self.stage,
                round=self.round,
                seat=self.seat,
                failed=failed,
                fallback=fallback,
                error=self.redact(error),
            )
        )
