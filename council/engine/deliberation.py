"""Running a protocol graph: stages in dependency order, the seats of a stage concurrently.

A stage starts as soon as every stage it depends on has finished, so independent branches run
side by side. Every turn is handed to the observers the moment it finishes (the run folder
fsyncs it) and before any later stage can read it. A failed call becomes a failed turn; the run
goes on unless a stage falls below its quorum (``min_turns``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from council.engine.context import Anonymizer, anonymous_labels, visible_context
from council.engine.observer import Observer
from council.errors import CouncilError, ModelCallError, ProtocolError, RunFailed
from council.personas.prompt import system_prompt
from council.protocols.graph import Protocol
from council.protocols.spec import ResponseStage, Stage, SynthesisStage
from council.seats.model import ModelRequest
from council.seats.seat import Seat
from council.secrets import redact
from council.templates import render_template
from council.transcript.records import RunHeader, RunResult, SeatAssignment, Turn, utc_now


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 0.7
    seed: int | None = None
    max_tokens: int | None = None  # caps every turn, below the protocol's own caps


def seat_assignment(seat: Seat, anonymous_label: str | None = None) -> SeatAssignment:
    return SeatAssignment(
        seat=seat.name,
        persona=seat.persona.name,
        role=seat.role,
        provider=seat.model.provider,
        model=seat.model.model,
        card_path=str(seat.persona.path),
        card_hash=seat.persona.content_hash,
        anonymous_label=anonymous_label,
    )


class Deliberation:
    """One run of one protocol with one seating, from question to synthesis."""

    def __init__(
        self,
        protocol: Protocol,
        panel: Sequence[Seat],
        chair: Seat,
        question: str,
        *,
        run_id: str,
        run_dir: str | None = None,
        observer: Observer | None = None,
        sampling: SamplingSettings | None = None,
    ) -> None:
        if not panel:
            raise CouncilError("a council needs at least one panel seat")
        self.protocol = protocol
        self.panel = list(panel)
        self.chair = chair
        self.question = question
        self.run_id = run_id
        self.run_dir = run_dir
        self.observer = observer or Observer()
        self.sampling = sampling or SamplingSettings()
        self.seats = {seat.name: seat for seat in [*self.panel, chair]}
        self.labels = anonymous_labels(self.panel, run_id)
        self.anonymizer = Anonymizer(self.panel, self.labels)
        self._turns: dict[str, list[Turn]] = {}
        # Render every system prompt and stage prompt before the first call: a template error
        # should cost nothing.
        self._system = {
            name: system_prompt(seat.persona, question) for name, seat in self.seats.items()
        }
        self._prompts = {
            (stage.id, seat.name): self._stage_prompt(stage, seat)
            for stage in protocol.order()
            for seat in self._seats_of(stage)
        }

    # -- what each stage is made of -------------------------------------------------------

    def _seats_of(self, stage: Stage) -> list[Seat]:
        return [self.chair] if stage.seats == "chair" else self.panel

    def _stage_prompt(self, stage: Stage, seat: Seat) -> str:
        variables = {
            "question": self.question,
            "seat": seat.name,
            "persona": seat.persona.name,
            "stage": stage.id,
            "members": len(self.panel),
        }
        return render_template(
            stage.prompt,
            variables,
            path=self.protocol.path,
            first_line=self.protocol.prompt_line(stage.id),
            error=ProtocolError,
            field=f"stage '{stage.id}'.prompt",
        )

    def _messages(self, stage: Stage, seat: Seat) -> list[dict[str, str]]:
        prompt = self._prompts[(stage.id, seat.name)]
        if isinstance(stage, ResponseStage | SynthesisStage):
            sections = [
                (self.protocol.stage(seen).label, self._turns.get(seen, [])) for seen in stage.sees
            ]
            anonymizer = self.anonymizer if stage.anonymize else None
            context = visible_context(seat, sections, self.seats, anonymizer)
            prompt = f"{context}\n\n---\n\n{prompt}"
        return [
            {"role": "system", "content": self._system[seat.name]},
            {"role": "user", "content": prompt},
        ]

    # -- running ----------------------------------------------------------------------------

    def header(self) -> RunHeader:
        return RunHeader(
            run_id=self.run_id,
            run_dir=self.run_dir,
            question=self.question,
            protocol=self.protocol.name,
            protocol_hash=self.protocol.content_hash,
            seats=[seat_assignment(s, self.labels.get(s.name)) for s in self.seats.values()],
            started_at=utc_now(),
        )

    async def run(self) -> RunResult:
        header = self.header()
        self.observer.run_started(header)
        error: str | None = None
        try:
            await self._run_graph()
        except* RunFailed as failures:
            error = "; ".join(str(e) for e in failures.exceptions)
        order = {stage.id: i for i, stage in enumerate(self.protocol.order())}
        turns = [
            t for stage in sorted(self._turns, key=order.__getitem__) for t in self._turns[stage]
        ]
        synthesis_turns = self._turns.get(self.protocol.synthesis.id, [])
        synthesis = next((t.content for t in synthesis_turns if t.ok), None)
        result = RunResult(
            **header.model_dump(),
            status="completed" if error is None and synthesis else "failed",
            error=error,
            turns=turns,
            synthesis=synthesis,
            finished_at=utc_now(),
        )
        self.observer.run_finished(result)
        return result

    async def _run_graph(self) -> None:
        async with asyncio.TaskGroup() as group:
            tasks: dict[str, asyncio.Task[None]] = {}
            for stage in self.protocol.order():
                upstream = [tasks[p] for p in self.protocol.graph.predecessors(stage.id)]
                tasks[stage.id] = group.create_task(self._run_stage(stage, upstream))

    async def _run_stage(self, stage: Stage, upstream: list[asyncio.Task[None]]) -> None:
        for task in upstream:
            await task
        seats = self._seats_of(stage)
        self.observer.stage_started(stage, [seat.name for seat in seats])
        self._turns[stage.id] = []
        turns = await asyncio.gather(*(self._take_turn(stage, seat) for seat in seats))
        # Turns were kept as they finished; now put them in seat order.
        self._turns[stage.id] = list(turns)
        self.observer.stage_finished(stage, list(turns))
        answered = sum(turn.ok for turn in turns)
        if answered < stage.min_turns:
            failed = "; ".join(f"{t.seat}: {t.error}" for t in turns if not t.ok)
            raise RunFailed(
                f"stage '{stage.id}': {answered} of {len(turns)} seats answered, "
                f"{stage.min_turns} needed ({failed})"
            )

    def _max_tokens(self, stage: Stage) -> int:
        cap = stage.max_tokens or self.protocol.spec.max_tokens
        return min(cap, self.sampling.max_tokens) if self.sampling.max_tokens else cap

    async def _take_turn(self, stage: Stage, seat: Seat) -> Turn:
        self.observer.turn_started(stage, seat.name)
        request = ModelRequest(
            stage=stage.id,
            messages=self._messages(stage, seat),
            max_tokens=self._max_tokens(stage),
            temperature=self.sampling.temperature,
            seed=self.sampling.seed,
            seat=seat.name,
        )
        started_at, start = utc_now(), time.perf_counter()
        content: str | None = None
        error: str | None = None
        usage: dict[str, object] = {}
        try:
            completion = await seat.model.complete(request)
            content = completion.content
            usage = {
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
                "cost_usd": completion.cost_usd,
                "attempts": completion.attempts,
            }
            if not content.strip():
                error = "empty reply"
        except ModelCallError as exc:
            error, usage = str(exc), {"attempts": exc.attempts}
        except Exception as exc:  # a seat model's own bug must not take the other turns down
            error = redact(f"{type(exc).__name__}: {exc}")
        turn = Turn(
            run_id=self.run_id,
            stage=stage.id,
            seat=seat.name,
            persona=seat.persona.name,
            provider=seat.model.provider,
            model=seat.model.model,
            content=content,
            error=error,
            latency_s=round(time.perf_counter() - start, 4),
            started_at=started_at,
            **usage,  # type: ignore[arg-type]
        )
        self._turns[stage.id].append(turn)  # kept even if the run fails before the stage ends
        self.observer.turn_finished(turn)
        return turn
