"""The run's sink: the ledger first, then everyone who follows the run.

The engine hands every event to one ``RunRecorder``. It commits the event to the ledger and
only then passes it on to its followers (the run folder's exports, the live display, a web
stream), so whatever a follower shows is already on record. The order is structural, not a
list someone has to keep in order. A live event (a piece of a streaming reply; its type says
``durable = False``) is not the record: it goes to the followers only, in its place in the
order. Each event is serialized once, here: the ledger stores that line, and followers that
write events out (``LineSink``: the run folder, a web stream) are handed the same line.

Inside an event loop, the events of one turn of the loop are queued and committed together,
in one transaction, at the end of it: turns that finish together share one write. A finished
turn counts as done once ``synced()`` returns (the engine awaits it before a later stage reads
the turn): its transaction is committed by then, so a killed process keeps it. With
``COUNCIL_FSYNC=every-turn`` the log is also synced to the disk first, off the loop, one sync
for every turn committed before it starts. A run's start, each turn's start and the run's end
are committed at once, with whatever is queued, so no call starts before the record is current;
outside a loop every event is; ``close()`` commits anything an interrupted run left queued.

When the ledger cannot take an event the run must stop (going on would make calls whose
answers could not be kept). On a full disk the recorder frees the ledger's reserve, keeps the
events that failed, records how the run ended and then raises, so no finished turn is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from council.base.errors import LedgerFull, StorageError
from council.records.events import (
    Event,
    EventSink,
    RunFinished,
    RunStarted,
    TurnFinished,
    TurnStarted,
    event_json,
)
from council.store.ledger import Ledger, fsync_every_turn

# Written at once, with whatever is queued: no call starts before the record is current (a full
# disk stops the run before a call whose answer could not be kept), and a run's end has nothing
# left to wait for.
_AT_ONCE = (RunStarted, TurnStarted, RunFinished)

# How a follower takes an event: with its line (a LineSink) or without.
Tell = Callable[[Event, str | None], None]


class RunRecorder:
    def __init__(self, ledger: Ledger | None, followers: Sequence[EventSink] = ()) -> None:
        # No ledger: a council with no runs folder; its followers still hear every event.
        self.ledger = ledger
        self.followers = list(followers)
        self.failure: StorageError | None = None  # set once the ledger has failed this run
        self._tells = [_tell(follower) for follower in self.followers]
        self._lines = any(hasattr(follower, "handle_line") for follower in self.followers)
        self._every_turn = ledger is not None and ledger.path is not None and fsync_every_turn()
        self._queued: list[Event] = []
        self._written: asyncio.Future[None] | None = None  # the queued events' commit
        self._raised: Exception | None = None  # a follower's error in a commit of the loop's
        self._committed = 0  # transactions committed
        self._synced = 0  # of those, how many are on disk (every-turn)
        self._syncing: asyncio.Future[None] | None = None  # the sync in flight, shared
        self._syncing_upto = 0  # the commits it covers

    def handle(self, event: Event) -> None:
        if self.ledger is None or not (event.durable or self._queued):
            self._deliver([event])  # nothing to record first, nothing queued before it
        else:
            self._queued.append(event)
            if isinstance(event, _AT_ONCE):  # every-turn: a run's start and end on disk too
                self._write(sync=isinstance(event, RunStarted | RunFinished))
            elif not self._queue_in_loop():  # no loop: nobody awaits `synced`
                self._write(sync=isinstance(event, TurnFinished))
        self._raise()
        if self.failure is not None and not isinstance(event, RunFinished):
            raise self.failure  # the engine stops: no call it could not record

    async def synced(self) -> None:
        """Return once every event handed over so far is committed (and, every-turn, on
        disk); raise if the ledger failed. Callers arriving together share one commit."""
        if self._written is not None:
            await asyncio.shield(self._written)
        self._raise()
        if self.failure is not None:
            raise self.failure
        while self._every_turn and self._synced < self._committed:
            await self._sync()

    def close(self) -> None:
        """Commit what is still queued (an interrupted run): call before closing the ledger."""
        if self._queued:
            self._write()
        if self._every_turn and self._synced < self._committed and self.failure is None:
            self._sync_now()
        self._raise()

    # -- writing ------------------------------------------------------------------------------

    def _queue_in_loop(self) -> bool:
        """Commit the queue at the end of this turn of the event loop; False outside a loop."""
        if self._written is not None:
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._written = loop.create_future()
        loop.call_soon(self._write_soon)
        return True

    def _write_soon(self) -> None:
        try:
            self._write()
        except Exception as exc:  # a follower's: raised to the engine at its next event
            self._raised = self._raised or exc

    def _write(self, *, sync: bool = False) -> None:
        """Commit the queue in one transaction (every-turn and ``sync``: on disk before this
        returns), then hand it to the followers."""
        batch, self._queued = self._queued, []
        written, self._written = self._written, None
        try:
            lines = [event_json(e) if e.durable or self._lines else None for e in batch]
            pairs = zip(batch, lines, strict=True)
            durable = [(e, line) for e, line in pairs if line is not None and e.durable]
            if durable and not self._commit(durable):
                return  # not on record: no follower hears it
            if self._every_turn and sync:
                self._sync_now()
            self._deliver(batch, lines)
        finally:
            if written is not None and not written.done():
                written.set_result(None)

    def _commit(self, entries: list[tuple[Event, str]]) -> bool:
        assert self.ledger is not None
        try:
            try:
                self.ledger.append_many(entries)
            except LedgerFull as exc:
                self.failure = self.failure or exc
                if not self.ledger.release_reserve():
                    return False
                self.ledger.append_many(entries)  # the reserve makes room for these and the end
        except StorageError as exc:
            self.failure = self.failure or exc
            return False
        self._committed += 1
        return True

    def _deliver(self, events: Sequence[Event], lines: Sequence[str | None] = ()) -> None:
        if not lines:
            lines = [event_json(e) if self._lines else None for e in events]
        for event, line in zip(events, lines, strict=True):
            for tell in self._tells:
                tell(event, line)

    def _raise(self) -> None:
        if self._raised is not None:
            raised, self._raised = self._raised, None
            raise raised

    # -- every-turn: the log synced to the disk ---------------------------------------------

    async def _sync(self) -> None:
        """One sync covers every commit made before it started, so callers arriving together
        wait for the same one."""
        if self._syncing is None:
            assert self.ledger is not None
            self._syncing_upto = self._committed
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

    def _sync_now(self) -> None:
        assert self.ledger is not None
        try:
            self.ledger.sync_to_disk()
        except StorageError as exc:
            self.failure = self.failure or exc
            return
        self._synced = self._committed


def _tell(follower: EventSink) -> Tell:
    handle_line = getattr(follower, "handle_line", None)
    if handle_line is None:
        return lambda event, _line: follower.handle(event)
    return lambda event, line: handle_line(event, line if line is not None else event_json(event))
