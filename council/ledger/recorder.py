"""Writing a run into the ledger as it happens, and answering calls from earlier runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from council.engine.observer import Observer
from council.ledger.store import Ledger
from council.seats.model import ChatModel, Completion, ModelRequest, request_hash
from council.transcript.records import RunHeader, RunResult, Turn


class LedgerRecorder(Observer):
    """Commits the run when it starts, each call when its turn finishes, the outcome at the end."""

    def __init__(self, ledger: Ledger, config: dict[str, Any]) -> None:
        self.ledger = ledger
        self.config = config

    def run_started(self, header: RunHeader) -> None:
        self.ledger.start_run(header, self.config)

    def turn_finished(self, turn: Turn) -> None:
        self.ledger.record_call(turn)

    def run_finished(self, result: RunResult) -> None:
        self.ledger.finish_run(result)


class ReusingModel(ChatModel):
    """Answers a call from the ledger when one of ``run_ids`` already made the identical call
    (same model, messages and sampling) and it succeeded; otherwise calls the real model."""

    def __init__(self, inner: ChatModel, ledger: Ledger, run_ids: Sequence[str]) -> None:
        self.inner = inner
        self.model = inner.model
        self.ledger = ledger
        self.run_ids = list(run_ids)

    async def complete(self, request: ModelRequest) -> Completion:
        row = self.ledger.answered(request_hash(self.model, request), self.run_ids)
        if row is None:
            return await self.inner.complete(request)
        return Completion(
            content=row["response"],
            prompt_tokens=row["prompt_tokens"],
            completion_tokens=row["completion_tokens"],
            cost_usd=row["cost_usd"],
            attempts=0,
            model=row["model"] if row["model"] != self.model else None,
            reused=True,
        )
