"""What the engine does differently for each kind of stage, registered in one place.

A stage kind may skip itself (a guard that is not needed: ``council.engine.guards``), narrow
who speaks, add a format instruction so replies parse (votes, rankings), and make a tally of
its turns. A plain speaking stage does none of
these. A new kind is a ``StageKind`` subclass and one ``register_stage_kind`` call; the engine
itself never asks which kind a stage is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from typing import Protocol

from council.engine.rankings import parse_ranking, ranking_instruction, tally_rankings
from council.engine.structured import (
    missing_json_instruction,
    structured_vote_instruction,
    vote_schema,
)
from council.engine.votes import (
    missing_line_instruction,
    parse_ballot,
    tally_votes,
    vote_instruction,
)
from council.protocols.spec import RankingStage, SpeakingStage, VoteStage
from council.records.run import Ballot, EffectiveVotes, Tally, Turn
from council.seats.seat import Seat


class RunState(Protocol):
    """What a stage kind may read of the run in progress (the engine's ``Deliberation``)."""

    @property
    def tallies(self) -> Mapping[str, Tally]: ...  # stage -> its latest tally

    @property
    def labels(self) -> Mapping[str, str]: ...  # seat -> "Member A", ...

    @property
    def seats(self) -> Mapping[str, Seat]: ...

    @property
    def reasked(self) -> Mapping[str, set[str]]: ...  # stage -> seats asked once more

    def similarity(self, a: str, b: str) -> float: ...  # 0..1, for stances and novelty

    def ballot(self, stage: SpeakingStage, seat: Seat) -> dict[str, str]: ...

    def voters(self, stage: SpeakingStage) -> list[str]: ...  # seats named, absent ones too

    def enforced(self, tag: str, calls: int) -> None: ...  # extra calls a rule sent

    def effective_votes(  # how many independent votes the ballots carry (issue 31)
        self, stage: VoteStage, ballots: list[Ballot], turns: list[Turn]
    ) -> EffectiveVotes | None: ...

    async def ask_again(
        self,
        stage: SpeakingStage,
        seat: Seat,
        round_number: int,
        turn: Turn,
        instruction: str,
        *,
        tag: str,
        keep_schema: bool = False,
    ) -> Turn: ...


Instruction = tuple[str | None, str, tuple[str, ...]]  # (text to add, what to parse, choices)
PLAIN: Instruction = (None, "text", ())


class StageKind:
    """The behaviour of a plain speaking stage; subclasses override what their kind changes."""

    async def skip_reason(
        self, run: RunState, stage: SpeakingStage, round_number: int
    ) -> str | None:
        """Why this stage does not run this time, or None when it runs (a guard may measure
        the run, and ask models for a baseline, to decide)."""
        return None

    def seats(self, run: RunState, stage: SpeakingStage, chosen: list[Seat]) -> list[Seat]:
        """Who speaks, given the seats its selector names (a guard may narrow them)."""
        return chosen

    def variables(self, run: RunState, stage: SpeakingStage) -> dict[str, object]:
        """Extra variables this kind's prompts may use, beyond those of every stage."""
        return {}

    def instruction(self, run: RunState, stage: SpeakingStage, seat: Seat) -> Instruction:
        return PLAIN

    def response_schema(
        self, run: RunState, stage: SpeakingStage, seat: Seat
    ) -> dict[str, object] | None:
        """The JSON schema the seat's reply is held to, or None for free text."""
        return None

    def tally(
        self, run: RunState, stage: SpeakingStage, turns: list[Turn], round_number: int
    ) -> Tally | None:
        return None

    async def follow_up(
        self, run: RunState, stage: SpeakingStage, turns: list[Turn], round_number: int
    ) -> list[Turn]:
        """The stage's turns once anything it asks again for is in (as read by later stages)."""
        return turns

    def enforcement_tag(self, run: RunState, stage: SpeakingStage) -> str | None:
        """The rule a run of this stage enforces (its turns are enforcement calls), if any."""
        return None


class VoteKind(StageKind):
    """A seat whose model can be held to a JSON schema is asked for its ballot as JSON (read
    ``structured``); any other writes the text line (read ``parsed``)."""

    def instruction(self, run: RunState, stage: SpeakingStage, seat: Seat) -> Instruction:
        assert isinstance(stage, VoteStage)
        expects = "number" if stage.numeric else "vote"
        structured = seat.model.structured_output
        text = structured_vote_instruction(stage) if structured else vote_instruction(stage)
        return text, expects, tuple(stage.options or ())

    def response_schema(
        self, run: RunState, stage: SpeakingStage, seat: Seat
    ) -> dict[str, object] | None:
        assert isinstance(stage, VoteStage)
        return vote_schema(stage) if seat.model.structured_output else None

    def tally(
        self, run: RunState, stage: SpeakingStage, turns: list[Turn], round_number: int
    ) -> Tally:
        assert isinstance(stage, VoteStage)
        again = run.reasked.get(stage.id, set())
        ballots = [
            parse_ballot(t.seat, t.content if t.ok else None, stage).model_copy(
                update={"reasked": t.seat in again}
            )
            for t in turns
        ]
        # Every seat the stage names counts in the denominator: one absent since an earlier
        # failure is an uncounted ballot, not a smaller council (nyk's STEP 6: W_total is the
        # sum of every member's base weight).
        spoke = {t.seat for t in turns}
        ballots += [
            Ballot(seat=seat, valid=False, problem="absent: its model failed earlier in the run")
            for seat in run.voters(stage)
            if seat not in spoke
        ]
        weights = {seat: run.seats[seat].weight for seat in run.seats}
        effective = None if stage.numeric else run.effective_votes(stage, ballots, turns)
        return tally_votes(stage, ballots, round_number, weights, run.similarity, effective)

    async def follow_up(
        self, run: RunState, stage: SpeakingStage, turns: list[Turn], round_number: int
    ) -> list[Turn]:
        """A seat whose reply has no readable stance line is asked once, for that line only
        (nyk's STEP 5: re-prompt that one member, never infer the stance from prose); its
        answer joins its reply, so the ballot (and every later reader) sees it. Each is an
        enforcement call tagged ``missing_stance``. A JSON ballot that was read but could not
        be counted is asked for again as JSON; any other, as the line."""
        assert isinstance(stage, VoteStage)
        missing = {t.seat: parse_ballot(t.seat, t.content, stage) for t in turns if t.ok}
        missing = {seat: ballot for seat, ballot in missing.items() if not ballot.valid}
        if not missing:
            return turns

        def again(turn: Turn) -> Awaitable[Turn]:
            ballot = missing[turn.seat]
            as_json = ballot.read == "structured" and run.seats[turn.seat].model.structured_output
            ask = missing_json_instruction if as_json else missing_line_instruction
            return run.ask_again(
                stage,
                run.seats[turn.seat],
                round_number,
                turn,
                ask(stage, ballot.problem),
                tag="missing_stance",
                keep_schema=as_json,
            )

        answers = await asyncio.gather(*(again(t) for t in turns if t.seat in missing))
        added = {a.seat: a.content for a in answers if a.ok}
        return [
            t.model_copy(update={"content": f"{t.content}\n\n{added[t.seat]}"})
            if t.seat in added
            else t
            for t in turns
        ]


class RankingKind(StageKind):
    def instruction(self, run: RunState, stage: SpeakingStage, seat: Seat) -> Instruction:
        labels = list(run.ballot(stage, seat))
        return (ranking_instruction(labels), "ranking", tuple(labels)) if labels else PLAIN

    def tally(
        self, run: RunState, stage: SpeakingStage, turns: list[Turn], round_number: int
    ) -> Tally:
        assert isinstance(stage, RankingStage)
        rankings = [
            parse_ranking(
                t.seat,
                t.content if t.ok else None,
                run.ballot(stage, run.seats[t.seat]),
                own=run.labels.get(t.seat, "").replace("Member", "Response") or None,
            )
            for t in turns
        ]
        return tally_rankings(stage, rankings, round_number)


_KINDS: dict[str, StageKind] = {}
PLAIN_KIND = StageKind()  # a plain speaking stage (a vote stage switched off reads as one)


def register_stage_kind(kind: str, behaviour: StageKind) -> None:
    _KINDS[kind] = behaviour


def behaviour_of(stage: SpeakingStage) -> StageKind:
    return _KINDS.get(stage.kind, PLAIN_KIND)


register_stage_kind("vote", VoteKind())
register_stage_kind("ranking", RankingKind())
