"""Convening a council for an MCP client: check the request, seat the council, run it with
progress notifications, and answer with the verdict, the tally, absent seats and the run ID.

At most ``max_concurrent`` councils convene at once; a request past that is refused at once
with a busy error rather than queued, so an agent knows to wait and ask again.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from council.base.errors import ConfigError, CouncilError
from council.mcp_server.progress import ProgressRelay, Report
from council.mcp_server.requests import (
    Limits,
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
from council.records.options import options, with_options
from council.records.run import RunResult, Tally
from council.records.settings import RunConfig
from council.records.spec import MCP, Budget, CouncilSpec
from council.seats.model import ChatModel
from council.text.documents import confined


class ServerBusy(CouncilError):
    """Every convening slot is taken."""


@dataclass
class ConveneRequest:
    """A convene tool call's arguments, as the client sent them: the question, and council
    options by their ``CouncilSpec`` keys (those the spec marks for MCP; None: not given)."""

    question: str
    options: Mapping[str, Any] = field(default_factory=dict)


def _models(value: Any, what: str, limits: Limits, doubles: Mapping[str, Any]) -> str:
    """A model string, or the name of a test double the server was built with."""
    return value if value in doubles else str(seat_model(value, what, limits, {}))


@dataclass
class Convener:
    """Runs convene requests for one server, at most ``settings.max_concurrent`` at once.

    ``test_models`` maps model names to seat doubles (``council.testing``): given only by the
    Python code that builds the server, never by a client, which can only name them."""

    settings: ServerSettings
    test_models: Mapping[str, ChatModel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(self.settings.max_concurrent)

    def spec(self, request: ConveneRequest) -> CouncilSpec:
        """The council a request asks for: its options, each held to the server's limits, over
        the server's defaults; an option these checks do not name is held to the spec's own
        bounds. Call inside ``paths.library_only``: names resolve to library files only."""
        limits = self.settings.limits
        check_question(request.question, limits)
        given = {key: value for key, value in request.options.items() if value is not None}
        for key in set(given) - {option.key for option in options(MCP)}:
            raise ConfigError(f"{key}: not an option this server takes")
        if "personas" in given and "panel" in given:
            raise ConfigError("give personas or a panel, not both")
        check_numbers(given.get("max_tokens"), given.get("temperature"), given.get("seed"), limits)
        checked = {
            key: NARROW[key](self, value) if key in NARROW else value
            for key, value in given.items()
        }
        base = CouncilSpec(
            model=self.settings.default_model, budget=Budget(max_wall_s=limits.run_seconds)
        )
        return with_options(checked, base)

    def seat(self, request: ConveneRequest, relay: ProgressRelay) -> Any:
        """The council for a request, its names resolved in the library alone (blocking: cards,
        the protocol and, for ``panel="auto"``, an embedder are loaded)."""
        from council.app.council import Council
        from council.base.library_paths import library_only

        with library_only():
            spec = self.spec(request)
            return Council.from_spec(
                spec,
                question=request.question,
                runs_dir=self.settings.runs_dir,
                sinks=[relay],
                doubles=self.test_models,
            )

    async def convene(self, request: ConveneRequest, report: Report) -> dict[str, Any]:
        """Run one council; ``report`` receives its progress. Refused when every slot is busy."""
        with self._slot():
            return await self._convene(request, report)

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        if not self._slots.acquire(blocking=False):
            cap = self.settings.max_concurrent
            raise ServerBusy(
                f"busy: {cap} council(s) already convening, the most this server runs at once; "
                "ask again when one has finished"
            )
        try:
            yield
        finally:
            self._slots.release()

    async def follow_up(
        self, run: str, question: str, report: Report, *, allow_unfinished: bool = False
    ) -> dict[str, Any]:
        """Ask a finished run's seats a new question (``council.app.follow_up``): the seats,
        models and settings its record holds, so a client names only the run. Counts as a
        convene against the server's slots."""
        from council.app.follow_up import afollow_up

        check_name(run, "run", self.settings.limits)
        check_question(question, self.settings.limits)
        with self._slot():
            relay = ProgressRelay()
            pump = asyncio.create_task(relay.pump(report))
            try:
                result = await afollow_up(
                    run,
                    question,
                    self.settings.runs_dir,
                    sinks=[relay],
                    allow_unfinished=allow_unfinished,
                    within=self._bounded,
                )
            except BaseException:
                pump.cancel()
                raise
            relay.close()
            await pump
        return run_summary(result)

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

    def _bounded(self, config: RunConfig) -> RunConfig:
        """A recorded council as this server convenes it again: no URL unless the server
        allows endpoints, each turn's tokens and the run's time within its limits."""
        spec, limits = config.spec, self.settings.limits
        check_endpoints(spec.endpoints, self.settings)
        tokens = spec.sampling.max_tokens
        held = {
            "max_tokens": min(tokens, limits.max_tokens) if tokens else None,
            "budget_seconds": min(spec.budget.max_wall_s or limits.run_seconds, limits.run_seconds),
        }
        given = {key: value for key, value in held.items() if value is not None}
        return config.model_copy(update={"spec": with_options(given, spec)})


def _personas(convener: Convener, names: list[str]) -> list[str]:
    from council.personas.library import available_personas

    limits = convener.settings.limits
    check_count(names, "personas", limits.personas)
    library = available_personas()
    return [str(library_entry(name, "persona", library, limits)) for name in names]


def _protocol(convener: Convener, name: str) -> str:
    from council.protocols.library import available_protocols

    limits = convener.settings.limits
    return str(library_entry(name, "protocol", available_protocols(), limits))


def _seats(convener: Convener, seats: Mapping[str, str]) -> dict[str, str]:
    limits = convener.settings.limits
    check_count(seats, "seats", limits.personas + 1)
    return {
        check_name(seat, "seat", limits): _models(
            model, f"seats[{seat}]", limits, convener.test_models
        )
        for seat, model in seats.items()
    }


def _pool(convener: Convener, models: list[str]) -> list[str]:
    limits = convener.settings.limits
    check_count(models, "models", limits.models)
    return [_models(model, "models", limits, {}) for model in models]


# How the server holds each option a client may give to its limits (names from the library
# only, models by string, URLs only where allowed); a number's range is ``check_numbers``.
NARROW: dict[str, Callable[[Convener, Any], Any]] = {
    "personas": _personas,
    "panel": lambda convener, name: check_name(name, "panel", convener.settings.limits),
    "protocol": _protocol,
    "model": lambda convener, model: _models(
        model, "model", convener.settings.limits, convener.test_models
    ),
    "seats": _seats,
    "models": _pool,
    "endpoints": lambda convener, urls: check_endpoints(urls, convener.settings),
    "context": lambda convener, paths: confined(paths, convener.settings.context_dir),
}


def tally_summary(tally: Tally) -> dict[str, Any]:
    return {
        "stage": tally.stage,
        "round": tally.round,
        "kind": tally.kind,
        "rule": tally.rule,
        "winner": tally.winner,
        "agreement": tally.agreement,
        "consensus": tally.consensus,
        "split": tally.split,
        "scores": tally.scores,
        "dissenters": tally.dissenters,
        "abstained": tally.abstained,
        "invalid": tally.invalid,
        "effective_votes": tally.effective_votes.to_json() if tally.effective_votes else None,
        "summary": describe_tally(tally, {}),
    }


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
        # Audits of the verdict (``council audit``, an auditor stage): typed findings each.
        "audits": [audit.to_json() for audit in run.audits],
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
        # A follow-up: the run it follows and every run before it (root first); else None, [].
        "parent_run": run.parent_run,
        "thread": run.thread,
    }
