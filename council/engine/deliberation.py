"""Running a protocol: stages in dependency order, the seats of a stage concurrently.

A top-level stage starts as soon as every stage it depends on has finished, so independent
branches run side by side; a loop runs its body round after round. Everything that happens is
an event (``council.records.events``) handed to the run's sink the moment it happens: a turn
is recorded before any later stage can read it. A failed call becomes a failed turn; the run
goes on unless a stage falls below its quorum. The result is the fold of the run's own events,
so it reads exactly as the ledger will read it back.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx

from council.base.errors import (
    CardError,
    CouncilError,
    ProtocolError,
    RunFailed,
    StorageError,
)
from council.base.secrets import Redactor
from council.engine import auditor_stage as auditor_stage  # registers the auditor kind
from council.engine import enforcement, gates, guards
from council.engine.budget import BudgetExceeded, BudgetTracker
from council.engine.context import Anonymizer, anonymous_labels
from council.engine.convergence import answers_stable, moderator_stops
from council.engine.grounding import Grounding
from council.engine.independence import NEEDS_ESTIMATE, Independence, VoteIndependence
from council.engine.prompts import StagePrompts
from council.engine.rules import RunRules
from council.engine.samples import AssistantSamples
from council.engine.seating import (
    check_panel_fits,
    questioner_seats,
    seat_assignment,
    select_seats,
)
from council.engine.stage_kinds import StageKind
from council.engine.summary import failure_summary, session_metadata
from council.engine.turns import TurnTaking
from council.personas.prompt import system_prompt
from council.protocols.graph import Protocol
from council.protocols.spec import LoopStage, SpeakingStage
from council.records.events import (
    Event,
    EventList,
    EventSink,
    GateChecked,
    LoopFinished,
    LoopRound,
    RunFinished,
    RunStarted,
    SeatAbsent,
    StageFinished,
    StageSkipped,
    StageStarted,
    TallyMade,
    VerdictAudited,
)
from council.records.fold import fold_events
from council.records.record import utc_now
from council.records.run import (
    FollowUp,
    GateNote,
    LoopOutcome,
    RunHeader,
    RunResult,
    RunStatus,
    SessionMetadata,
    Tally,
    Turn,
)
from council.records.settings import Budget, CallSettings, RunConfig, SamplingSettings
from council.records.verdicts import VerdictAudit, VerdictCheck
from council.seats.seat import Seat

__all__ = ["Deliberation", "SamplingSettings"]


def _check_estimate(protocol: Protocol, independence: Independence | None) -> None:
    """A rule that weighs seats by their independence cannot tally without an estimator."""
    for stage in protocol.speaking_stages():
        rule = getattr(stage, "rule", None)
        if rule in NEEDS_ESTIMATE and independence is None:
            raise ProtocolError(
                protocol.path,
                f"the {rule} rule needs an independence estimator (Council gives one; "
                "pass independence= to Deliberation)",
                field=f"stages.{stage.id}.rule",
            )


class _NoSink:
    def handle(self, event: Event) -> None:
        pass


class Deliberation(TurnTaking, StagePrompts, RunRules, AssistantSamples, VoteIndependence):
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
        sink: EventSink | None = None,
        sampling: SamplingSettings | None = None,
        budget: Budget | None = None,
        label_seed: str | None = None,
        config: RunConfig | None = None,
        resumed: bool = False,
        calls: CallSettings | None = None,
        similarity: gates.Similarity | None = None,
        probe: guards.DiversityProbe | None = None,
        switches: Mapping[str, bool] | None = None,
        choice_notes: Sequence[str] = (),
        absent: Mapping[str, str] | None = None,
        independence: Independence | None = None,
        grounding: Grounding | None = None,
        follow_up: FollowUp | None = None,
    ) -> None:
        if not panel:
            raise CouncilError("a council needs at least one panel seat")
        check_panel_fits(protocol, len(panel))
        self.protocol = protocol
        self.panel = list(panel)
        self.chair = chair
        self.question = question
        self.run_id = run_id
        self.run_dir = run_dir
        self.sink: EventSink = sink or _NoSink()
        self.sampling = sampling or SamplingSettings()
        self.config = config
        self.resumed = resumed
        self.choice_notes = list(choice_notes)
        self.grounding = grounding  # the context documents, what seats see of them, citations
        self.follow_up = follow_up  # the run this one follows, and each seat's digest of it
        # The environment's secrets, read once for the run: every text it records is redacted.
        self.redact = Redactor()
        self.seats = {seat.name: seat for seat in [*self.panel, chair]}
        # Replays keep the original run's labels, so identical prompts can be reused.
        self.label_seed = label_seed or run_id
        self.labels = anonymous_labels(self.panel, self.label_seed)
        self._budget = BudgetTracker(budget)
        self.calls = calls or CallSettings()
        self._in_flight = asyncio.Semaphore(self.calls.max_in_flight)
        self._per_provider: dict[str, asyncio.Semaphore] = {}
        self.anonymizer = Anonymizer(self.panel, self.labels)
        self._record = EventList()  # this run's events, folded into its result at the end
        self._latest: dict[str, list[Turn]] = {}  # stage -> its last finished round
        self._previous: dict[str, list[Turn]] = {}  # stage -> the round before that
        self.tallies: dict[str, Tally] = {}  # stage -> its latest tally
        self.reasked: dict[str, set[str]] = {}  # stage -> seats asked again for a missing line
        self.similarity = similarity or gates.word_similarity  # for the novelty gate
        self._given_similarity = similarity  # None: words (a restatement is measured apart)
        self.switches = protocol.switch_settings(switches)  # every switch, on or off
        self.questioners = questioner_seats(protocol, self.panel)
        self._partial: dict[str, list[Turn]] = {}  # a sequential stage's turns so far
        self.probe = probe  # the diversity meter, for guards that watch a stage
        self.independence = independence  # effective votes' estimator (the meter's), if any
        _check_estimate(protocol, independence)
        self.readings: dict[str, guards.GuardReading] = {}  # guard -> what it last measured
        self.baselines: dict[tuple[str, int, str, int], asyncio.Task[list[str]]] = {}
        self._absent: set[str] = set()  # seats that failed for good and sit out
        self._absent_from_start = dict(absent or {})  # seat -> why it never sits (pre-flight)
        self.enforcement: Counter[str] = Counter()  # rule tag -> extra calls it sent
        self.chair_failed = False  # the chair's own model failed; another wrote the verdict
        self.verdict_check: VerdictCheck | None = None  # council's check of the verdict
        # Render every template, every round, before the first call: a template that fails or
        # blows the render budget costs nothing then (renders are cached for the run itself).
        self._system = {name: system_prompt(s.persona, question) for name, s in self.seats.items()}
        for stage in protocol.speaking_stages():
            for seat in select_seats(stage.seats, self.panel, chair):
                for round_number in range(1, self._rounds_of(stage) + 1):
                    self._stage_prompt(stage, seat, round_number)

    def previous_turns(self, stage_id: str) -> list[Turn]:
        return self._latest.get(stage_id, [])

    def record_gate(self, note: GateNote) -> None:
        self._emit(GateChecked(run_id=self.run_id, note=note))

    def record_audit(self, audit: VerdictAudit) -> None:
        self._emit(VerdictAudited(run_id=self.run_id, audit=audit))

    def stage_of(self, stage_id: str) -> SpeakingStage:
        stage = self.protocol.stage(stage_id)
        assert isinstance(stage, SpeakingStage)
        return stage

    def _emit(self, event: Event) -> None:
        if event.durable:  # the run's result is the fold of its record, not of live events
            self._record.handle(event)
        self.sink.handle(event)

    # -- running ----------------------------------------------------------------------------

    def header(self) -> RunHeader:
        return RunHeader(
            run_id=self.run_id,
            run_dir=self.run_dir,
            question=self.question,
            protocol=self.protocol.name,
            protocol_hash=self.protocol.content_hash,
            seats=[seat_assignment(s, self.labels.get(s.name)) for s in self.seats.values()],
            stages=[stage.id for stage in self.protocol.speaking_stages()],
            started_at=utc_now(),
            choice_notes=self.choice_notes,
            documents=[
                d.info.model_copy(update={"path": self.redact(d.info.path)})
                for d in (self.grounding.documents.values() if self.grounding else ())
            ],
            **(self.follow_up.model_dump() if self.follow_up else {}),
        )

    async def run(self) -> RunResult:
        header = self.header()
        self._emit(
            RunStarted(run_id=self.run_id, header=header, config=self.config, resumed=self.resumed)
        )
        for seat, reason in self._absent_from_start.items():
            self._absent.add(seat)
            self._emit(SeatAbsent(run_id=self.run_id, seat=seat, reason=reason))
        self._budget.start()  # wall time counts from here, not from process start
        try:
            error, stopped = await self._run_to_end()
        except BaseException as exc:
            # Interrupted (Ctrl-C, a cancelled task) or a bug: the record still says how the
            # run ended, unless it is the record itself that failed.
            if not isinstance(exc, StorageError):
                why = f"interrupted: {type(exc).__name__} {exc}".strip()
                self._finish("failed", self.redact(why))
            raise
        synthesis = self._synthesis()
        status: RunStatus = (
            "stopped" if stopped else "completed" if error is None and synthesis else "failed"
        )
        self._finish(status, error)
        return fold_events(self._record.events)

    async def _run_to_end(self) -> tuple[str | None, bool]:
        """Run the graph; (why it did not complete, whether a budget stopped it)."""
        error: str | None = None
        stopped = False
        try:
            async with asyncio.timeout(self._budget.remaining_wall_s()):
                await self._run_graph()
        except* StorageError as failures:  # the record cannot be kept: no further call
            error = failure_summary(failures.exceptions)
        except* (ProtocolError, CardError) as failures:  # a prompt that failed mid-run
            error = failure_summary(failures.exceptions)
        except* RunFailed as failures:
            error = failure_summary(failures.exceptions)
            stopped = any(isinstance(e, BudgetExceeded) for e in failures.exceptions)
        except* TimeoutError:
            error = f"wall-time budget spent: {self._budget.budget.max_wall_s:g} s"
            stopped = True
        return error, stopped

    def _synthesis(self) -> str | None:
        turns = self._latest.get(self.protocol.synthesis.id, [])
        return next((t.content for t in turns if t.ok), None)

    def _finish(self, status: RunStatus, error: str | None) -> None:
        self._emit(
            RunFinished(
                run_id=self.run_id,
                status=status,
                error=error,
                synthesis=self._synthesis(),
                finished_at=utc_now(),
                metadata=self._metadata(),
                verdict_check=self.verdict_check,
            )
        )

    def _metadata(self) -> SessionMetadata:
        return session_metadata(
            self._record.events,
            self.protocol.name,
            self.seats,
            len(self.panel),
            reasks=sum(len(seats) for seats in self.reasked.values()),
            duration_s=time.monotonic() - self._budget.started,
            enforcement=self.enforcement,
            chair_failed=self.chair_failed,
        )

    async def _run_graph(self) -> None:
        async with asyncio.TaskGroup() as group:
            tasks: dict[str, asyncio.Task[None]] = {}
            for stage in self.protocol.order():
                upstream = [tasks[p] for p in self.protocol.graph.predecessors(stage.id)]
                tasks[stage.id] = group.create_task(self._after(upstream, stage))

    async def _after(self, upstream: list[asyncio.Task[None]], stage: Any) -> None:
        for task in upstream:
            await task
        if isinstance(stage, LoopStage):
            await self._run_loop(stage)
        else:
            await self._run_stage(stage, 0)

    async def _run_loop(self, loop: LoopStage) -> None:
        body = self.protocol.bodies[loop.id]
        generations = [
            [self.protocol.stage(sid) for sid in generation]
            for generation in nx.topological_generations(body)
        ]
        stop: str | None = None
        round_number = 0
        for round_number in range(1, loop.rounds + 1):
            for generation in generations:
                await asyncio.gather(*(self._run_stage(s, round_number) for s in generation))  # type: ignore[arg-type]
            stop = self._converged(loop, generations) if round_number < loop.rounds else None
            self._emit(LoopRound(run_id=self.run_id, loop=loop.id, round=round_number, stop=stop))
            if stop:
                break
        outcome = LoopOutcome(
            loop=loop.id, rounds=round_number, max_rounds=loop.rounds, stopped_early=stop
        )
        self._emit(LoopFinished(run_id=self.run_id, outcome=outcome))

    def _converged(self, loop: LoopStage, generations: list[list[Any]]) -> str | None:
        until = loop.until
        if until is None:
            return None
        if until.vote is not None and until.agreement is not None:
            tally = self.tallies.get(until.vote)
            if tally and tally.winner and (tally.agreement or 0) >= until.agreement:
                needed = f"{until.agreement:.0%}"
                return f"agreement {tally.agreement:.0%} on '{tally.winner}' (needed {needed})"
        if until.stable is not None:
            panel_stages = [s for g in generations for s in g if s.seats != "chair"]
            last = panel_stages[-1].id if panel_stages else None
            if last and last in self._previous:
                similarity = answers_stable(self._previous[last], self._latest[last], until.stable)
                if similarity is not None:
                    return f"answers stable (word overlap {similarity:.2f} >= {until.stable:.2f})"
        if until.moderator is not None and moderator_stops(self._latest.get(until.moderator, [])):
            return f"moderator '{until.moderator}' called DECISION: STOP"
        return None

    async def _run_stage(self, stage: SpeakingStage, round_number: int) -> None:
        kind = self._kind(stage)
        reason = await kind.skip_reason(self, stage, round_number)
        if reason is not None:
            self._emit(
                StageSkipped(run_id=self.run_id, stage=stage.id, round=round_number, reason=reason)
            )
            return
        # A seat whose model failed for good (retries and fallbacks spent) is absent from then
        # on; the stage's quorum decides whether the run can do without it.
        chosen = kind.seats(self, stage, select_seats(stage.seats, self.panel, self.chair))
        seats = [seat for seat in chosen if seat.name not in self._absent]
        self._emit(
            StageStarted(
                run_id=self.run_id,
                stage=stage.id,
                round=round_number,
                label=stage.label,
                seats=[seat.name for seat in seats],
            )
        )
        turns = await self._speak(stage, seats, round_number)
        turns = await self._enforce(kind, stage, turns, round_number)
        if stage.id in self._latest:
            self._previous[stage.id] = self._latest[stage.id]
        self._latest[stage.id] = turns
        tally = kind.tally(self, stage, turns, round_number)
        if tally is not None:
            self.tallies[stage.id] = tally
            self._emit(TallyMade(run_id=self.run_id, tally=tally))
        self._finish_stage(stage, turns, round_number)

    async def _speak(
        self, stage: SpeakingStage, seats: list[Seat], round_number: int
    ) -> list[Turn]:
        if stage.sequential_up_to is not None and len(seats) <= stage.sequential_up_to:
            results = await self._one_by_one(stage, seats, round_number)
        else:
            # Every seat's call runs to its end: one refused by the budget does not cancel the
            # others in flight, whose answers are paid for and kept.
            results = await asyncio.gather(
                *(self._take_turn(stage, seat, round_number) for seat in seats),
                return_exceptions=True,
            )
        refused = [r for r in results if isinstance(r, BaseException)]
        if refused:
            raise refused[0]
        return [r for r in results if isinstance(r, Turn)]

    async def _enforce(
        self, kind: StageKind, stage: SpeakingStage, turns: list[Turn], round_number: int
    ) -> list[Turn]:
        """The stage kind's own follow-up, then the gates the stage names (nyk's STEP 4 scan
        and the restate gate's flag), each extra call counted under its rule's tag."""
        turns = await kind.follow_up(self, stage, turns, round_number)
        tag = kind.enforcement_tag(self, stage)
        if tag is not None:
            self.enforced(tag, len(turns))
        if stage.novelty_against:
            turns = await gates.novelty(self, stage, turns, round_number, self.similarity)
        self._partial.pop(stage.id, None)
        if stage.evidence_labels:
            gates.evidence(self, stage, turns, round_number)
        if stage.diverges_below is not None:
            enforcement.restatement(
                self, stage, turns, round_number, self.question, self._given_similarity
            )
        return turns

    def _finish_stage(self, stage: SpeakingStage, turns: list[Turn], round_number: int) -> None:
        answered = sum(turn.ok for turn in turns)
        self._emit(
            StageFinished(
                run_id=self.run_id,
                stage=stage.id,
                round=round_number,
                answered=answered,
                seats=len(turns),
            )
        )
        if answered < stage.min_turns:
            failed = "; ".join(
                [f"{t.seat}: {t.error}" for t in turns if not t.ok]
                + [f"{seat} absent" for seat in self._absent if seat not in {t.seat for t in turns}]
            )
            raise RunFailed(
                f"stage '{stage.id}': {answered} of {len(turns)} seats answered, "
                f"{stage.min_turns} needed ({failed})"
            )
