"""Convening a council for an MCP client: check the request, seat the council, run it with
progress notifications, and answer with the verdict, the tally, absent seats and the run ID.

At most ``max_concurrent`` councils convene at once; a request past that is refused at once
with a busy error rather than queued, so an agent knows to wait and ask again.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from council.errors import ConfigError, CouncilError
from council.mcp_server.progress import ProgressRelay, Report
from council.mcp_server.requests import (
    ServerSettings,
    check_count,
    check_endpoints,
    check_name,
    check_numbers,
    check_question,
    library_entry,
    seat_model,
)
from council.records.describe import describe_tally
from council.records.run import RunResult, Tally
from council.seats.model import ChatModel


class ServerBusy(CouncilError):
    """Every convening slot is taken."""


@dataclass
class ConveneRequest:
    """A convene tool call's arguments, as the client sent them."""

    question: str
    personas: Sequence[str] | None = None
    panel: str | None = None
    protocol: str | None = None
    model: str | None = None
    seats: Mapping[str, str] | None = None
    models: Sequence[str] | None = None
    endpoints: Mapping[str, str] | None = None
    max_tokens: int | None = None  # replaces every turn's token cap (council.engine.lengths)
    temperature: float | None = None
    seed: int | None = None


@dataclass
class Convener:
    """Runs convene requests for one server, at most ``settings.max_concurrent`` at once.

    ``test_models`` maps model names to seat doubles (``council.testing``): given only by the
    Python code that builds the server, never by a client, which can only name them."""

    settings: ServerSettings
    test_models: Mapping[str, ChatModel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(self.settings.max_concurrent)

    def council_kwargs(self, request: ConveneRequest) -> dict[str, Any]:
        """The ``Council`` arguments for a request, every field checked against the limits.
        Call inside ``paths.library_only``: personas and protocols become library files."""
        from council.personas.library import available_personas
        from council.protocols.library import available_protocols
        from council.records.settings import Budget, SamplingSettings

        limits, doubles = self.settings.limits, self.test_models
        check_question(request.question, limits)
        check_numbers(request.max_tokens, request.temperature, request.seed, limits)
        kwargs: dict[str, Any] = {
            "model": seat_model(request.model or self.settings.default_model, "model", limits,
                                doubles),
            "runs_dir": self.settings.runs_dir,
            "endpoints": check_endpoints(request.endpoints or {}, self.settings),
            "budget": Budget(None, None, limits.run_seconds),
            "sampling": SamplingSettings(
                temperature=0.7 if request.temperature is None else request.temperature,
                seed=request.seed, max_tokens=request.max_tokens,
            ),
        }  # fmt: skip
        if request.personas is not None:
            check_count(request.personas, "personas", limits.personas)
            library = available_personas()
            kwargs["personas"] = [library_entry(p, "persona", library, limits)
                                  for p in request.personas]  # fmt: skip
        if request.panel is not None:
            if request.personas is not None:
                raise ConfigError("give personas or a panel, not both")
            kwargs["panel"] = check_name(request.panel, "panel", limits)
        if request.protocol is not None:
            found = library_entry(request.protocol, "protocol", available_protocols(), limits)
            kwargs["protocol"] = str(found)
        if request.seats:
            check_count(request.seats, "seats", limits.personas + 1)
            kwargs["seats"] = {
                check_name(seat, "seat", limits): seat_model(model, f"seats[{seat}]", limits,
                                                             doubles)
                for seat, model in request.seats.items()
            }  # fmt: skip
        if request.models:
            check_count(request.models, "models", limits.models)
            kwargs["models"] = [seat_model(m, "models", limits, {}) for m in request.models]
        return kwargs

    def seat(self, request: ConveneRequest, relay: ProgressRelay) -> Any:
        """The council for a request, its names resolved in the library alone (blocking: cards,
        the protocol and, for ``panel="auto"``, an embedder are loaded)."""
        from council.app.council import Council
        from council.paths import library_only

        with library_only():
            kwargs = self.council_kwargs(request)
            return Council.for_question(request.question, sinks=[relay], **kwargs)

    async def convene(self, request: ConveneRequest, report: Report) -> dict[str, Any]:
        """Run one council; ``report`` receives its progress. Refused when every slot is busy."""
        if not self._slots.acquire(blocking=False):
            cap = self.settings.max_concurrent
            raise ServerBusy(
                f"busy: {cap} council(s) already convening, the most this server runs at once; "
                "ask again when one has finished"
            )
        try:
            return await self._convene(request, report)
        finally:
            self._slots.release()

    async def _convene(self, request: ConveneRequest, report: Report) -> dict[str, Any]:
        relay = ProgressRelay()
        council = await asyncio.to_thread(self.seat, request, relay)
        pump = asyncio.create_task(relay.pump(report))
        try:
            result = await council.aconvene(request.question)
        except BaseException:  # a failed run, or the client gave up: no one reads more progress
            pump.cancel()
            raise
        relay.close()
        await pump  # every line sent before the answer
        return run_summary(result) | {"choice_notes": list(council.choice_notes)}


def tally_summary(tally: Tally) -> dict[str, Any]:
    return {
        "stage": tally.stage, "round": tally.round, "kind": tally.kind, "rule": tally.rule,
        "winner": tally.winner, "agreement": tally.agreement, "consensus": tally.consensus,
        "split": tally.split, "scores": tally.scores, "dissenters": tally.dissenters,
        "abstained": tally.abstained, "invalid": tally.invalid,
        "summary": describe_tally(tally, {}),
    }  # fmt: skip


def run_summary(run: RunResult) -> dict[str, Any]:
    """What an agent needs from a run: the verdict, how the votes fell, who was missing."""
    tallies = [tally_summary(t) for t in run.tallies]
    return {
        "run_id": run.run_id,
        "status": run.status,
        "error": run.error,
        "question": run.question,
        "protocol": run.protocol,
        "verdict": run.synthesis,
        # council's check of the verdict: unchecked, with what it lacks; None when not made.
        "verdict_check": run.verdict_check.to_json() if run.verdict_check else None,
        "tally": tallies[-1] if tallies else None,
        "tallies": tallies,
        "absent": run.absent,
        "seats": [
            {"seat": s.seat, "persona": s.persona, "role": s.role, "model": s.model}
            for s in run.seats
        ],
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat(),
        "turns": len(run.turns),
    }
