"""Running a protocol: stages in dependency order, the seats of a stage concurrently.

A top-level stage starts as soon as every stage it depends on has finished, so independent
branches run side by side; a loop runs its body round after round. Every turn is handed to the
observers the moment it finishes (the run folder fsyncs it) and before any later stage can read
it. A failed call becomes a failed turn; the run goes on unless a stage falls below its quorum.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from council.engine.budget import Budget, BudgetExceeded, BudgetTracker
from council.engine.context import Anonymizer, Section, anonymous_labels, visible_context
from council.engine.convergence import MODERATOR_INSTRUCTION, answers_stable, moderator_stops
from council.engine.observer import Observer
from council.engine.rankings import parse_ranking, ranking_instruction, tally_rankings
from council.engine.votes import parse_ballot, tally_votes, vote_instruction
from council.errors import ConfigError, CouncilError, ModelCallError, ProtocolError, RunFailed
from council.personas.prompt import system_prompt
from council.protocols.graph import Protocol
from council.protocols.spec import GuardStage, LoopStage, RankingStage, SpeakingStage, VoteStage
from council.seats.model import ModelRequest, request_hash, split_model_string
from council.seats.seat import Seat
from council.secrets import redact
from council.templates import render_template
from council.transcript.records import (
    LoopOutcome,
    RunHeader,
    RunResult,
    SeatAssignment,
    Tally,
    Turn,
    utc_now,
)


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
        reason=seat.reason or None,
    )


def select_seats(selector: Any, panel: Sequence[Seat], chair: Seat) -> list[Seat]:
    """Who speaks in a stage: the panel, the chair, half the panel, or panel positions."""
    half = (len(panel) + 1) // 2
    if selector == "chair":
        return [chair]
    if selector == "first_half":
        return list(panel[:half])
    if selector == "second_half":
        return list(panel[half:])
    if isinstance(selector, list):
        return [panel[position - 1] for position in selector]
    return list(panel)


def check_panel_fits(protocol: Protocol, panel_size: int) -> None:
    """Refuse a panel the protocol cannot seat, before anything runs."""
    bounds = protocol.spec.panel
    if panel_size < bounds.min or (bounds.max is not None and panel_size > bounds.max):
        wanted = (
            f"{bounds.min}"
            if bounds.max == bounds.min
            else f"{bounds.min} to {bounds.max or 'any'}"
        )
        raise ConfigError(f"protocol '{protocol.name}' seats {wanted} personas; {panel_size} given")
    for stage in protocol.speaking_stages():
        if isinstance(stage.seats, list) and max(stage.seats) > panel_size:
            raise ConfigError(
                f"protocol '{protocol.name}' stage '{stage.id}' seats panel position "
                f"{max(stage.seats)}, but the panel has {panel_size} personas"
            )
        if stage.seats == "second_half" and panel_size < 2:
            raise ConfigError(f"protocol '{protocol.name}' needs two halves; 1 persona given")


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
        budget: Budget | None = None,
        label_seed: str | None = None,
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
        self.observer = observer or Observer()
        self.sampling = sampling or SamplingSettings()
        self.seats = {seat.name: seat for seat in [*self.panel, chair]}
        # Replays keep the original run's labels, so identical prompts can be reused.
        self.label_seed = label_seed or run_id
        self.labels = anonymous_labels(self.panel, self.label_seed)
        self._budget = BudgetTracker(budget)
        self.anonymizer = Anonymizer(self.panel, self.labels)
        self._latest: dict[str, list[Turn]] = {}  # stage -> its last finished round
        self._previous: dict[str, list[Turn]] = {}  # stage -> the round before that
        self._tallies: dict[str, Tally] = {}
        self._finished: list[Turn] = []  # every turn, in the order it finished
        self._all_tallies: list[Tally] = []
        self._loops: list[LoopOutcome] = []
        self._skipped: list[str] = []
        self._absent: dict[str, str] = {}  # seat -> why: it failed for good and sits out
        # Render every template once before the first call: a template error costs nothing.
        self._system = {name: system_prompt(s.persona, question) for name, s in self.seats.items()}
        for stage in protocol.speaking_stages():
            for seat in select_seats(stage.seats, self.panel, chair):
                self._stage_prompt(stage, seat, round_number=1)

    # -- prompts --------------------------------------------------------------------------

    def _stage_prompt(self, stage: SpeakingStage, seat: Seat, round_number: int) -> str:
        variables: dict[str, object] = {
            "question": self.question,
            "seat": seat.name,
            "persona": seat.persona.name,
            "stage": stage.id,
            "members": len(self.panel),
            "round": round_number,
            "rounds": self._rounds_of(stage),
        }
        if isinstance(stage, GuardStage):
            tally = self._tallies.get(stage.checks)
            variables["agreement"] = f"{(tally.agreement or 0) if tally else 0:.0%}"
            variables["leading"] = (tally.winner if tally else None) or "none"
            variables["dissenters"] = len(tally.dissenters) if tally else 0
        return render_template(
            stage.prompt, variables, path=self.protocol.path,
            first_line=self.protocol.prompt_line(stage.id), error=ProtocolError,
            field=f"stage '{stage.id}'.prompt",
        )  # fmt: skip

    def _loop_of(self, stage: SpeakingStage) -> LoopStage | None:
        loop_id = self.protocol.loop_of.get(stage.id)
        loop = self.protocol.stage(loop_id) if loop_id else None
        return loop if isinstance(loop, LoopStage) else None

    def _rounds_of(self, stage: SpeakingStage) -> int:
        loop = self._loop_of(stage)
        return loop.rounds if loop else 1

    def _sections(self, stage: SpeakingStage) -> list[Section]:
        sections = []
        for seen in stage.sees:
            # A stage that sees itself (inside a loop) reads its previous round: this round's
            # turns are stored only once the stage has finished.
            turns = self._latest.get(seen, [])
            if turns:
                title = self.protocol.stage(seen).label
                sections.append(Section(title, turns, self._tallies.get(seen)))
        return sections

    def _messages(
        self, stage: SpeakingStage, seat: Seat, round_number: int, instruction: str | None
    ) -> list[dict[str, str]]:
        prompt = self._stage_prompt(stage, seat, round_number)
        if instruction:
            prompt = f"{prompt}\n\n{instruction}"
        sections = self._sections(stage)
        if sections:
            anonymizer = self.anonymizer if stage.anonymize else None
            ranking = isinstance(stage, RankingStage)
            context = visible_context(
                seat, sections, self.seats, anonymizer,
                ballot_style=ranking, revealer=None if anonymizer else self.anonymizer,
            )  # fmt: skip
            prompt = f"{context}\n\n---\n\n{prompt}"
        return [
            {"role": "system", "content": self._system[seat.name]},
            {"role": "user", "content": prompt},
        ]

    def _ballot(self, stage: RankingStage, seat: Seat) -> dict[str, str]:
        """Labels ("Response B") -> seats this seat ranks: every other seat that answered."""
        ranked = self._latest.get(stage.sees[0], [])
        return {
            self.labels[t.seat].replace("Member", "Response"): t.seat
            for t in sorted(ranked, key=lambda t: self.labels.get(t.seat, ""))
            if t.ok and t.seat != seat.name and t.seat in self.labels
        }

    def _instruction(
        self, stage: SpeakingStage, seat: Seat
    ) -> tuple[str | None, str, tuple[str, ...]]:
        """The format instruction the engine adds so replies parse, what it will parse, and the
        choices a well-formed reply picks from."""
        if isinstance(stage, VoteStage):
            expects = "number" if stage.numeric else "vote"
            return vote_instruction(stage), expects, tuple(stage.options or ())
        if isinstance(stage, RankingStage):
            labels = list(self._ballot(stage, seat))
            return (
                (ranking_instruction(labels), "ranking", tuple(labels))
                if labels
                else (None, "text", ())
            )
        if self._is_moderator(stage):
            return MODERATOR_INSTRUCTION, "decision", ("STOP", "CONTINUE")
        return None, "text", ()

    def _is_moderator(self, stage: SpeakingStage) -> bool:
        loop = self._loop_of(stage)
        return loop is not None and loop.until is not None and loop.until.moderator == stage.id

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
        stopped = False
        try:
            async with asyncio.timeout(self._budget.remaining_wall_s()):
                await self._run_graph()
        except* RunFailed as failures:
            error = "; ".join(str(e) for e in failures.exceptions)
            stopped = any(isinstance(e, BudgetExceeded) for e in failures.exceptions)
        except* TimeoutError:
            error = f"wall-time budget spent: {self._budget.budget.max_wall_s:g} s"
            stopped = True
        order = {s.id: i for i, s in enumerate(self.protocol.speaking_stages())}
        position = {name: i for i, name in enumerate(self.seats)}
        turns = sorted(self._finished, key=lambda t: (order[t.stage], t.round, position[t.seat]))
        synthesis = next(
            (t.content for t in self._latest.get(self.protocol.synthesis.id, []) if t.ok), None
        )
        result = RunResult(
            **header.model_dump(),
            status="stopped"
            if stopped
            else "completed"
            if error is None and synthesis
            else "failed",
            error=error,
            turns=turns,
            tallies=self._all_tallies,
            loops=self._loops,
            skipped=self._skipped,
            absent=[f"{seat}: {why}" for seat, why in self._absent.items()],
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
            self.observer.loop_round_finished(loop, round_number, stop)
            if stop:
                break
        self._loops.append(
            LoopOutcome(
                loop=loop.id, rounds=round_number, max_rounds=loop.rounds, stopped_early=stop
            )
        )

    def _converged(self, loop: LoopStage, generations: list[list[Any]]) -> str | None:
        until = loop.until
        if until is None:
            return None
        if until.vote is not None and until.agreement is not None:
            tally = self._tallies.get(until.vote)
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

    def _guard_reason(self, stage: GuardStage) -> str | None:
        """Why the guard does NOT fire, or None when it does."""
        tally = self._tallies.get(stage.checks)
        if tally is None:
            return f"no tally from '{stage.checks}' to check"
        if tally.winner is None:
            return f"'{stage.checks}' has no leading stance: the council is split"
        agreement = tally.agreement or 0
        if stage.agreement_above is not None and agreement > stage.agreement_above:
            return None
        if stage.dissenters_below is not None and len(tally.dissenters) < stage.dissenters_below:
            return None
        return f"agreement {agreement:.0%} and {len(tally.dissenters)} dissenters: guard not needed"

    async def _run_stage(self, stage: SpeakingStage, round_number: int) -> None:
        if isinstance(stage, GuardStage):
            reason = self._guard_reason(stage)
            if reason is not None:
                self._skipped.append(f"{stage.id}: {reason}")
                self.observer.stage_skipped(stage, reason)
                return
        # A seat whose model failed for good (retries and fallbacks spent) is absent from then
        # on; the stage's quorum decides whether the run can do without it.
        seats = [
            seat
            for seat in select_seats(stage.seats, self.panel, self.chair)
            if seat.name not in self._absent
        ]
        self.observer.stage_started(stage, [seat.name for seat in seats])
        turns = list(
            await asyncio.gather(*(self._take_turn(stage, seat, round_number) for seat in seats))
        )
        if stage.id in self._latest:
            self._previous[stage.id] = self._latest[stage.id]
        self._latest[stage.id] = turns
        tally = self._tally(stage, turns, round_number)
        if tally is not None:
            self._tallies[stage.id] = tally
            self._all_tallies.append(tally)
            self.observer.tally_made(tally)
        self.observer.stage_finished(stage, turns)
        answered = sum(turn.ok for turn in turns)
        if answered < stage.min_turns:
            failed = "; ".join(
                [f"{t.seat}: {t.error}" for t in turns if not t.ok]
                + [f"{seat} absent" for seat in self._absent if seat not in {t.seat for t in turns}]
            )
            raise RunFailed(
                f"stage '{stage.id}': {answered} of {len(turns)} seats answered, "
                f"{stage.min_turns} needed ({failed})"
            )

    def _tally(self, stage: SpeakingStage, turns: list[Turn], round_number: int) -> Tally | None:
        if isinstance(stage, VoteStage):
            ballots = [parse_ballot(t.seat, t.content if t.ok else None, stage) for t in turns]
            return tally_votes(stage, ballots, round_number)
        if isinstance(stage, RankingStage):
            rankings = [
                parse_ranking(
                    t.seat, t.content if t.ok else None, self._ballot(stage, self.seats[t.seat]),
                    own=self.labels.get(t.seat, "").replace("Member", "Response") or None,
                )
                for t in turns
            ]  # fmt: skip
            return tally_rankings(stage, rankings, round_number)
        return None

    def _max_tokens(self, stage: SpeakingStage) -> int:
        cap = stage.max_tokens or self.protocol.spec.max_tokens
        return min(cap, self.sampling.max_tokens) if self.sampling.max_tokens else cap

    async def _take_turn(self, stage: SpeakingStage, seat: Seat, round_number: int) -> Turn:
        self._budget.check()  # no new call once a budget is spent
        self.observer.turn_started(stage, seat.name)
        instruction, expects, choices = self._instruction(stage, seat)
        request = ModelRequest(
            stage=stage.id,
            messages=self._messages(stage, seat, round_number, instruction),
            max_tokens=self._max_tokens(stage),
            temperature=self.sampling.temperature,
            seed=self.sampling.seed,
            seat=seat.name,
            kind=stage.kind,
            round=round_number,
            expects=expects,
            choices=choices,
        )
        started_at, start = utc_now(), time.perf_counter()
        answered_by = seat.model.model
        content: str | None = None
        error: str | None = None
        usage: dict[str, Any] = {}
        try:
            completion = await seat.model.complete(request)
            content = completion.content
            usage = {
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
                "cost_usd": completion.cost_usd,
                "attempts": completion.attempts,
                "reused": completion.reused,
            }
            answered_by = completion.model or answered_by
            if not content.strip():
                error = "empty reply"
        except ModelCallError as exc:
            error, usage = str(exc), {"attempts": exc.attempts}
            self._absent[seat.name] = f"failed for good in '{stage.id}'"
        except Exception as exc:  # a seat model's own bug must not take the other turns down
            error = redact(f"{type(exc).__name__}: {exc}")
        turn = Turn(
            run_id=self.run_id,
            stage=stage.id,
            round=round_number,
            seat=seat.name,
            persona=seat.persona.name,
            provider=split_model_string(answered_by)[0],
            model=answered_by,
            content=content,
            error=error,
            request_hash=request_hash(seat.model.model, request),
            latency_s=round(time.perf_counter() - start, 4),
            started_at=started_at,
            **usage,
        )
        self._finished.append(turn)  # kept even if the run fails before the stage ends
        self._budget.add(turn)
        self.observer.turn_finished(turn)
        return turn
