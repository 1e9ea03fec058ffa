"""Taking a turn: a seat's call made within the run's budget and concurrency limits, its
reply (and the context tools it used) recorded as a ``Turn``, on disk before any later stage
reads it. A mixin of ``Deliberation``, which holds the run's state."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from council.base.errors import ModelCallError
from council.base.secrets import Redactor
from council.engine import lengths
from council.engine.budget import BudgetTracker, worst_case_tokens
from council.engine.context_tools import (
    MAX_TOOL_ROUNDS,
    ContextTools,
    complete_with_tools,
    offered,
)
from council.engine.grounding import Grounding
from council.engine.live import TurnListener
from council.protocols.spec import SpeakingStage
from council.records.events import (
    Event,
    EventSink,
    SeatAbsent,
    TurnFinished,
    TurnStarted,
    wants_deltas,
)
from council.records.record import utc_now
from council.records.run import CallRequest, Turn
from council.records.settings import CallSettings
from council.seats.model import Completion, ModelRequest, request_hash, split_model_string
from council.seats.seat import Seat


class TurnTaking:
    run_id: str
    sink: EventSink
    calls: CallSettings
    grounding: Grounding | None
    redact: Redactor
    _budget: BudgetTracker
    _in_flight: asyncio.Semaphore
    _per_provider: dict[str, asyncio.Semaphore]
    _absent: set[str]
    _emit: Callable[[Event], None]

    if TYPE_CHECKING:  # provided by the engine's other parts (``StagePrompts``, ``RunRules``);
        # declared for the type checker only, so no stub can shadow them

        def _request(self, stage: SpeakingStage, seat: Seat, round_number: int) -> ModelRequest: ...

        def fall_back_for_good(self, seat: str, model: str) -> None: ...

    async def _take_turn(
        self,
        stage: SpeakingStage,
        seat: Seat,
        round_number: int,
        request: ModelRequest | None = None,
        record_as: str | None = None,
    ) -> Turn:
        request = request or self._request(stage, seat, round_number)
        # No call starts that the budget could not cover at its worst.
        # A seat offered the context tools may make a call per tool round, and one more.
        calls = MAX_TOOL_ROUNDS + 1 if offered(self.grounding, seat.model) else 1
        worst = worst_case_tokens(request.messages, request.max_tokens) * calls
        reservation = self._budget.reserve(worst)
        provider_slots = self._slots(seat)
        waiting = time.perf_counter()
        async with self._in_flight, provider_slots:
            queued = time.perf_counter() - waiting  # for a slot: queue time, not the model's
            turn = await self._call(
                stage, seat, round_number, request, record_as or stage.id, queued
            )
        self._budget.settle(reservation, turn)
        turn = await lengths.finished(
            turn,
            request,
            stage,
            self.calls.continue_truncated,
            lambda more, stage_id: self._take_turn(stage, seat, round_number, more, stage_id),
        )
        self._emit(TurnFinished(run_id=self.run_id, turn=turn))  # recorded before it is read
        await self._on_disk()
        return turn

    async def _on_disk(self) -> None:
        # A sink that syncs to disk off the event loop (the run recorder) says when what it
        # was given is on disk: a turn counts as done, and a later stage reads it, only then.
        synced = getattr(self.sink, "synced", None)
        if synced is not None:
            await synced()

    def _grounded(self, seat: str, stage: str, content: str | None) -> dict[str, Any]:
        """A turn's context fields: the passages the seat was shown, its citations checked."""
        if self.grounding is None:
            return {}
        shown = self.grounding.shown(seat, stage)
        return {"shown": shown, "citations": self.grounding.checked(seat, content)}

    def _tools(self, offered: tuple[dict[str, Any], ...]) -> ContextTools | None:
        if not offered or self.grounding is None:
            return None
        return ContextTools(self.grounding, self.redact)

    def _slots(self, seat: Seat) -> asyncio.Semaphore:
        provider = seat.model.provider
        if provider not in self._per_provider:
            self._per_provider[provider] = asyncio.Semaphore(self.calls.max_in_flight_per_provider)
        return self._per_provider[provider]

    async def _call(
        self,
        stage: SpeakingStage,
        seat: Seat,
        round_number: int,
        request: ModelRequest,
        stage_id: str,
        queued_s: float = 0.0,
    ) -> Turn:
        structured = request.response_schema is not None and seat.model.structured_output
        self._emit(
            TurnStarted(
                run_id=self.run_id,
                stage=stage_id,
                round=round_number,
                seat=seat.name,
                structured=structured,
            )
        )
        started_at, start = utc_now(), time.perf_counter()
        shown = wants_deltas(self.sink)  # a follower shows replies as they come: calls stream
        listener = TurnListener(
            self._emit, self.run_id, stage_id, round_number, seat.name, shown, self.redact
        )
        # A seat whose model takes tools may search and read the documents in its turn.
        tools = offered(self.grounding, seat.model)
        request = dataclasses.replace(request, listener=listener, tools=tools)
        answered_by = seat.model.model
        content: str | None = None
        error: str | None = None
        usage: dict[str, Any] = {}
        waits = (0.0, 0.0)  # (queue, start) the model waited before it worked on the call
        try:
            completion, called = await complete_with_tools(seat.model, request, self._tools(tools))
            waits = (completion.queue_s, completion.start_s)
            content = self.redact(completion.content)  # a key a provider echoes goes no further
            usage = _usage(completion, called, self.redact)
            answered_by = completion.model or answered_by
            if answered_by != seat.model.model:
                self.fall_back_for_good(seat.name, answered_by)
            error = completion.problem  # empty (or starved), refused, a tool call
        except ModelCallError as exc:
            error, usage = str(exc), {"attempts": exc.attempts}
            waits = (exc.queue_s, exc.start_s)
            self._absent.add(seat.name)
            why = f"failed for good in '{stage.id}'"
            self._emit(SeatAbsent(run_id=self.run_id, seat=seat.name, reason=why))
        except Exception as exc:  # a seat model's own bug must not take the other turns down
            error = self.redact(f"{type(exc).__name__}: {exc}")
        turn = Turn(
            run_id=self.run_id,
            stage=stage_id,
            round=round_number,
            seat=seat.name,
            persona=seat.persona.name,
            provider=split_model_string(answered_by)[0],
            model=answered_by,
            content=content,
            error=error,
            request_hash=request_hash(seat.model.model, request),
            # The model's time: what the call took, less what it waited for before it left.
            latency_s=round(max(0.0, time.perf_counter() - start - sum(waits)), 4),
            queue_s=round(queued_s + waits[0], 4),
            start_s=round(waits[1], 4),
            started_at=started_at,
            request=_call_request(seat, request, self.redact),
            **usage,
        )
        # Citations are read from the reply as seats read it: a JSON ballot's prose.
        return turn.model_copy(update=self._grounded(seat.name, stage.id, turn.text))


def _usage(completion: Completion, called: Any, redact: Callable[[str], str]) -> dict[str, Any]:
    """A completed call's turn fields beside its content: tokens, cost, how it was read."""
    return {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "cost_usd": completion.cost_usd,
        "attempts": completion.attempts,
        "reused": completion.reused,
        "activations": completion.activations,
        "truncated": completion.truncated,
        # Kept apart from the answer: no other seat, and no meter, reads it.
        "reasoning": redact(completion.reasoning) if completion.reasoning else None,
        "reasoning_tokens": completion.reasoning_tokens,
        "reasoning_cost_usd": completion.reasoning_cost_usd,
        "starved": completion.starved,
        "structured": completion.structured,
        "tool_calls": called,
    }


def _call_request(seat: Seat, request: ModelRequest, redact: Callable[[str], str]) -> CallRequest:
    """The request as the record keeps it: its messages redacted."""
    return CallRequest(
        model=seat.model.model,
        messages=_redacted(request.messages, redact),
        max_tokens=request.max_tokens,
        temperature=request.temperature,
        seed=request.seed,
        expects=request.expects,
        choices=list(request.choices),
        response_schema=request.response_schema,
        reasoning_effort=request.reasoning_effort,
    )


def _redacted(messages: list[dict[str, Any]], redact: Callable[[str], str]) -> list[dict[str, Any]]:
    return [{**m, "content": redact(m.get("content", ""))} for m in messages]
