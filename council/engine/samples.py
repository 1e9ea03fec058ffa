"""A guard's baseline inside a run: answers from a seat's model to a stage's prompt with no
persona (the plain assistant prompt), budgeted like turns but not turns of the run. A mixin of
``Deliberation``, which holds the run's budget, its limits on calls in flight and its
redactor."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from council.base.secrets import Redactor
from council.engine.budget import BudgetTracker, worst_case_tokens
from council.protocols.spec import SpeakingStage
from council.seats.model import ModelRequest
from council.seats.seat import Seat


class AssistantSamples:
    redact: Redactor
    _budget: BudgetTracker
    _in_flight: asyncio.Semaphore

    if TYPE_CHECKING:  # provided by the engine's other parts (``TurnTaking``,
        # ``StagePrompts``); declared for the type checker only, so no stub can shadow them

        def _slots(self, seat: Seat) -> asyncio.Semaphore: ...

        def _assistant_request(
            self, stage: SpeakingStage, seat: Seat, round_number: int, sample: int
        ) -> ModelRequest: ...

    async def sample_assistant(
        self, stage: SpeakingStage, seat: Seat, round_number: int, count: int
    ) -> list[str]:
        """``count`` answers from the seat's model to the stage's prompt as the seat was sent
        it, with no persona: a guard's baseline. Budgeted like turns; not turns of the run."""

        async def one(request: ModelRequest) -> str:
            reservation = self._budget.reserve(
                worst_case_tokens(request.messages, request.max_tokens)
            )
            tokens, usd, content = 0, 0.0, ""
            try:
                async with self._in_flight, self._slots(seat):
                    completion = await seat.model.complete(request)
                content = self.redact(completion.content)
                if not completion.reused:
                    tokens = (completion.prompt_tokens or 0) + (completion.completion_tokens or 0)
                    usd = completion.cost_usd or 0.0
            except Exception:  # a sample short (or a model's bug): the rest still measure
                pass
            finally:
                self._budget.settle_usage(reservation, tokens, usd)
            return content

        requests = [self._assistant_request(stage, seat, round_number, i) for i in range(count)]
        return list(await asyncio.gather(*(one(r) for r in requests)))
