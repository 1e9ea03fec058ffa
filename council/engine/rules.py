"""What a run does when a rule of nyk's shapes its calls or a seat's model fails: seats that
speak one after another, a turn asked again and counted as an enforcement call, a fallen-back
seat kept on its fallback, and the verdict written by council itself when the chair fails. A
mixin of ``Deliberation``, which holds the run's state."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from council.engine import verdict
from council.engine.seating import select_seats
from council.protocols.spec import SpeakingStage
from council.records.events import CallFellBack, Event, TurnFinished
from council.records.record import utc_now
from council.records.run import Tally, Turn
from council.seats.model import ModelRequest
from council.seats.seat import Seat


class RunRules:
    run_id: str
    question: str
    panel: list[Seat]
    chair: Seat
    seats: dict[str, Seat]
    tallies: dict[str, Tally]
    enforcement: Counter[str]
    chair_failed: bool
    _latest: dict[str, list[Turn]]
    _emit: Callable[[Event], None]

    reasked: dict[str, set[str]]
    _partial: dict[str, list[Turn]]

    if TYPE_CHECKING:  # provided by the engine's other parts (``TurnTaking``,
        # ``StagePrompts``); declared for the type checker only, so no stub can shadow them

        async def _on_disk(self) -> None: ...

        def _request(self, stage: SpeakingStage, seat: Seat, round_number: int) -> ModelRequest: ...

        async def _take_turn(
            self,
            stage: SpeakingStage,
            seat: Seat,
            round_number: int,
            request: ModelRequest | None = None,
            record_as: str | None = None,
        ) -> Turn: ...

    def enforced(self, tag: str, calls: int) -> None:
        """Count extra calls a rule sent (nyk's STEP 8 enforcement_breakdown)."""
        if calls:
            self.enforcement[tag] += calls

    async def _one_by_one(
        self, stage: SpeakingStage, seats: list[Seat], round_number: int
    ) -> list[Turn | BaseException]:
        """Seats in panel order, each reading the replies before it in this stage (nyk's
        sequential round 2); a call the budget refuses ends the stage there."""
        self._partial[stage.id] = []
        results: list[Turn | BaseException] = []
        for seat in seats:
            try:
                turn = await self._take_turn(stage, seat, round_number)
            except Exception as exc:
                results.append(exc)
                break
            results.append(turn)
            self._partial[stage.id].append(turn)
        return results

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
    ) -> Turn:
        """One more call for a turn that missed something (a stance line): the seat sees its
        own reply and the instruction. It is recorded as its own turn, ``<stage>.reask``, and
        counted as an enforcement call under ``tag``."""
        self.enforced(tag, 1)
        assert turn.request is not None and turn.content is not None
        first = self._request(stage, seat, round_number)  # the prompt the turn was sent
        # Asked again, a seat writes free text (the vote line: the fallback from JSON that
        # could not be read), unless its reply is asked for again under the schema.
        schema = first.response_schema if keep_schema else None
        request = dataclasses.replace(
            first,
            response_schema=schema,
            messages=[
                *first.messages,
                {"role": "assistant", "content": turn.content},
                {"role": "user", "content": instruction},
            ],
        )
        self.reasked.setdefault(stage.id, set()).add(seat.name)
        return await self._take_turn(stage, seat, round_number, request, f"{stage.id}.reask")

    def voters(self, stage: SpeakingStage) -> list[str]:
        """Every seat the stage names, absent ones too: a vote's electorate."""
        return [seat.name for seat in select_seats(stage.seats, self.panel, self.chair)]

    def fall_back_for_good(self, name: str, answered_by: str) -> None:
        """A seat whose model failed and whose fallback answered stays on that fallback for
        the rest of the run (nyk: "use the fallback provider for all remaining rounds")."""
        seat = self.seats[name]
        stuck = dataclasses.replace(seat, model=seat.model.from_fallback(answered_by))
        if stuck.model is seat.model:
            return
        self.seats[name] = stuck
        self.panel = [stuck if s.name == name else s for s in self.panel]
        if self.chair.name == name:
            self.chair = stuck

    async def coordinator_verdict(
        self, stage: SpeakingStage, round_number: int, failed: Turn
    ) -> Turn:
        """The verdict council assembles from the record when every model of the chair failed
        (``council.engine.verdict``): recorded as the chair's turn by ``council/tally-verdict``,
        with the fallback logged like any other."""
        self.chair_failed = True
        self._emit(
            CallFellBack(
                run_id=self.run_id,
                stage=stage.id,
                round=round_number,
                seat=failed.seat,
                failed=failed.model,
                fallback=verdict.COORDINATOR_MODEL,
                error=failed.error or "",
            )
        )
        content = verdict.tally_verdict(
            self.question,
            failed.seat,
            failed.error,
            list(self.tallies.values()),
            _seen(self._latest, stage.sees),
        )
        turn = failed.model_copy(
            update={
                "content": content,
                "error": None,
                "provider": "council",
                "model": verdict.COORDINATOR_MODEL,
                "prompt_tokens": None,
                "completion_tokens": None,
                "cost_usd": None,
                "latency_s": 0.0,
                "started_at": utc_now(),
            }
        )
        self._emit(TurnFinished(run_id=self.run_id, turn=turn))
        await self._on_disk()
        return turn


def _seen(latest: Mapping[str, list[Turn]], sees: list[str]) -> dict[str, list[Turn]]:
    return {stage: latest.get(stage, []) for stage in sees}
