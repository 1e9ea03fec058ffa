"""A seat's fallback chain: when its model fails for good, the next one answers.

The chain itself tries its primary first on every call; the engine keeps a seat whose
fallback answered on that fallback for the rest of the run (``from_fallback``), as nyk's
SKILL.md says: "use the fallback provider for all remaining rounds"."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from council.base.errors import ModelCallError
from council.seats.model import ChatModel, Completion, ModelRequest, Need


class FallbackModel(ChatModel):
    """Tries each model in order; each has already spent its own retries before the next."""

    def __init__(self, models: Sequence[ChatModel]) -> None:
        if not models:
            raise ValueError("a fallback chain needs at least one model")
        self.models = list(models)
        self.model = self.models[0].model

    def from_fallback(self, answered_by: str) -> ChatModel:
        """The chain from the model that answered on (the failed ones before it dropped)."""
        place = next((i for i, m in enumerate(self.models) if m.model == answered_by), 0)
        if place == 0:
            return self
        rest = self.models[place:]
        return rest[0] if len(rest) == 1 else FallbackModel(rest)

    @property
    def structured_output(self) -> bool:  # as its primary: a fallback drops what it cannot send
        return self.models[0].structured_output

    @property
    def tool_calling(self) -> bool:  # tools offered mid-turn must reach whichever answers
        return all(model.tool_calling for model in self.models)

    @property
    def reasons(self) -> bool:
        return any(model.reasons for model in self.models)

    async def preflight(self) -> Need | None:
        """Callable when any model of the chain is; otherwise what its primary needs."""
        needs = [await model.preflight() for model in self.models]
        return None if any(need is None for need in needs) else needs[0]

    async def complete(self, request: ModelRequest) -> Completion:
        failures: list[str] = []
        attempts = 0
        for model, after in zip(self.models, [*self.models[1:], None], strict=True):
            try:
                completion = await model.complete(request)
            except ModelCallError as exc:
                failures.append(f"{model.model}: {exc}")
                attempts += exc.attempts
                if after is not None:
                    request.listener.falling_back(model.model, after.model, str(exc))
                continue
            if model is self.models[0]:
                return completion
            return dataclasses.replace(  # every field of the answer, reasoning included
                completion,
                attempts=attempts + completion.attempts,
                model=completion.model or model.model,
            )
        raise ModelCallError(
            f"all {len(self.models)} models failed: " + " | ".join(failures),
            retryable=False,
            attempts=attempts,
        )
