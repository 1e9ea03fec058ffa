"""A model that answers a call from the record when an earlier run already made it (how resume
and replay avoid paying twice); otherwise it calls the model it stands for."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from council.seats.model import ChatModel, Completion, ModelRequest, request_hash

# The recorded successful call with this request hash, or None: the ledger's lookup, narrowed to
# the runs being reused (``Ledger.answered``), handed in so seats need not know the store.
Answered = Callable[[str], Mapping[str, Any] | None]


class ReusingModel(ChatModel):
    """Answers a call from ``answered`` when the identical call (same model, messages and
    sampling) was made and succeeded; otherwise calls ``inner``."""

    def __init__(self, inner: ChatModel, answered: Answered) -> None:
        self.inner = inner
        self.model = inner.model
        self.answered = answered

    @property
    def structured_output(self) -> bool:  # asked as the model it stands for would be
        return self.inner.structured_output

    @property
    def reasons(self) -> bool:
        return self.inner.reasons

    @property
    def tool_calling(self) -> bool:
        return self.inner.tool_calling

    async def complete(self, request: ModelRequest) -> Completion:
        row = self.answered(request_hash(self.model, request))
        if row is None:
            return await self.inner.complete(request)
        return Completion(
            content=row["content"],
            prompt_tokens=row["prompt_tokens"],
            completion_tokens=row["completion_tokens"],
            cost_usd=row["cost_usd"],
            attempts=0,
            model=row["model"] if row["model"] != self.model else None,
            reused=True,
            structured=request.response_schema is not None and self.structured_output,
        )
