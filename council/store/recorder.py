"""The run's sink: the ledger first, then everyone who follows the run.

The engine hands every event to one ``RunRecorder``. It commits the event to the ledger and
only then passes it on to its followers (the run folder's exports, the live display, a web
stream), so whatever a follower shows is already on record. The order is structural, not a
list someone has to keep in order. A live event (a piece of a streaming reply; its type says
``durable = False``) is not the record: it goes to the followers only.

A finished turn's sync to disk leaves the event loop when one is running: the turn is committed
at once (a killed process keeps it), its sync runs in a thread while the other calls go on, and
``synced()`` returns once it is on disk. The engine awaits that before the turn counts as done,
so a finished turn is on disk before a later stage reads it; turns finishing together share one
sync (group commit) instead of queueing one after another on the loop.

When the ledger cannot take an event the run must stop (going on would make calls whose
answers could not be kept). On a full disk the recorder frees the ledger's reserve, keeps the
event that failed, records how the run ended and then raises, so no finished turn is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from council.errors import LedgerFull, StorageError
from council.records.events import Event, EventSink, RunFinished, TurnFinished
from council.seats.model import ChatModel, Completion, ModelRequest, request_hash
from council.store.ledger import Ledger


class RunRecorder:
    def __init__(self, ledger: Ledger | None, followers: Sequence[EventSink] = ()) -> None:
        # No ledger: a council with no runs folder; its followers still hear every event.
        self.ledger = ledger
        self.followers = list(followers)
        self.failure: StorageError | None = None  # set once the ledger has failed this run
        self._deferred = 0  # turns committed with their sync left to `synced`
        self._synced = 0  # of those, how many are on disk
        self._syncing: asyncio.Future[None] | None = None  # the sync in flight, shared
        self._syncing_upto = 0  # the commits it covers

    def handle(self, event: Event) -> None:
        if self.ledger is not None and event.durable:
            self._record(event)
        for follower in self.followers:
            follower.handle(event)
        if self.failure is not None and not isinstance(event, RunFinished):
            raise self.failure  # the engine stops: no call it could not record

    def _record(self, event: Event) -> None:
        assert self.ledger is not None
        # An in-memory ledger has nothing to sync: no thread hop for it.
        on_disk = self.ledger.path is not None
        defer = on_disk and isinstance(event, TurnFinished) and _in_event_loop()
        try:
            self.ledger.append(event, defer_sync=defer)
        except LedgerFull as exc:
            self.failure = self.failure or exc
            if not self.ledger.release_reserve():
                raise
            self.ledger.append(event)  # the reserve makes room for this and the run's end
        except StorageError as exc:
            self.failure = self.failure or exc
            raise
        self._deferred += defer

    async def synced(self) -> None:
        """Return once every event recorded so far is on disk. One sync covers every commit
        made before it started, so callers arriving together wait for the same one."""
        while self._synced < self._deferred:
            if self._syncing is None:
                assert self.ledger is not None
                self._syncing_upto = self._deferred
                loop = asyncio.get_running_loop()
                self._syncing = loop.run_in_executor(None, self.ledger.sync_to_disk)
            syncing, upto = self._syncing, self._syncing_upto
            try:
                await asyncio.shield(syncing)
            except StorageError as exc:
                self.failure = self.failure or exc
                raise
            finally:
                if self._syncing is syncing:
                    self._syncing = None
            self._synced = max(self._synced, upto)


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class ReusingModel(ChatModel):
    """Answers a call from the ledger when one of ``run_ids`` already made the identical call
    (same model, messages and sampling) and it succeeded; otherwise calls the real model."""

    def __init__(self, inner: ChatModel, ledger: Ledger, run_ids: Sequence[str]) -> None:
        self.inner = inner
        self.model = inner.model
        self.ledger = ledger
        self.run_ids = list(run_ids)

    @property
    def structured_output(self) -> bool:  # asked as the model it stands for would be
        return self.inner.structured_output

    @property
    def reasons(self) -> bool:
        return self.inner.reasons

    async def complete(self, request: ModelRequest) -> Completion:
        row = self.ledger.answered(request_hash(self.model, request), self.run_ids)
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
