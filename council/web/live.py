"""Runs the web app started and is still running: each in a thread of its own, its events fanned
out to every browser watching.

A browser that connects mid-run is sent the events so far, then each new one, with no gap and
no repeat: the history and the subscriber list change under one lock. Events arrive here after
the ledger has committed them (the broadcaster is a follower of the run's recorder), each with
the line the recorder serialized it to once: the stream sends that line, made on the run's
thread, so no serialization happens on the server's loop and none is shared between runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from council.base.errors import ConfigError, CouncilError
from council.base.secrets import redact
from council.records.events import Event, RunFinished, RunStarted, event_json

# What a subscriber's queue carries: an event's line (its JSON), or None once the run is over.
Item = str | None


@dataclass
class RunBroadcast:
    """The events of one live run (their lines), kept for late subscribers and pushed to
    every queue."""

    history: list[str] = field(default_factory=list)
    run_id: str | None = None
    done: bool = False
    error: str | None = None  # why the run could not start or finish, if it could not
    started: threading.Event = field(default_factory=threading.Event)
    _subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Item]]] = field(
        default_factory=list
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # A browser shows each reply as it is written: the run's calls stream (an EventSink flag).
    wants_deltas: ClassVar[bool] = True

    def handle(self, event: Event) -> None:
        self.handle_line(event, event_json(event))

    def handle_line(self, event: Event, line: str) -> None:
        with self._lock:
            # A late subscriber is sent the record so far; the pieces of a reply streamed before
            # it came are in the finished turn, so live-only events are not kept.
            if event.durable:
                self.history.append(line)
            self.run_id = self.run_id or event.run_id
            targets = list(self._subscribers)
        for loop, queue in targets:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        if isinstance(event, RunStarted):
            self.started.set()

    def finish(self, error: str | None = None) -> None:
        with self._lock:
            self.done, self.error = True, error
            targets = list(self._subscribers)
        for loop, queue in targets:
            loop.call_soon_threadsafe(queue.put_nowait, None)
        self.started.set()  # a run that failed before it started wakes its starter too

    def subscribe(self) -> tuple[list[str], asyncio.Queue[Item] | None]:
        """(the lines so far, a queue of the rest); no queue when the run is already over."""
        queue: asyncio.Queue[Item] = asyncio.Queue()
        with self._lock:
            if self.done:
                return list(self.history), None
            self._subscribers.append((asyncio.get_running_loop(), queue))
            return list(self.history), queue

    def unsubscribe(self, queue: asyncio.Queue[Item]) -> None:
        with self._lock:
            self._subscribers = [(lp, q) for lp, q in self._subscribers if q is not queue]


class Busy(CouncilError):
    """As many councils are running as the server allows."""


class LiveRuns:
    """Starts councils in threads, at most ``limit`` at once, and finds their broadcasts."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._runs: dict[str, RunBroadcast] = {}
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()

    def get(self, run_id: str) -> RunBroadcast | None:
        with self._lock:
            return self._runs.get(run_id)

    def running(self) -> list[str]:
        with self._lock:
            return [run_id for run_id, run in self._runs.items() if not run.done]

    def start(self, convene: Callable[[RunBroadcast], Any], *, wait_s: float = 60) -> str:
        """Run ``convene(broadcast)`` in a thread; return the run ID once it has started."""
        if not self._slots.acquire(blocking=False):
            raise Busy(f"{self.limit} council(s) already running: wait for one to finish")
        broadcast = RunBroadcast()

        def work() -> None:
            error = None
            try:
                convene(broadcast)
            except CouncilError as exc:
                error = redact(str(exc))
            except Exception as exc:  # reported to the browser, never a server crash
                error = redact(f"{type(exc).__name__}: {exc}")
            finally:
                self._slots.release()
                broadcast.finish(error)

        threading.Thread(target=work, name="council-run", daemon=True).start()
        if not broadcast.started.wait(wait_s) or broadcast.run_id is None:
            raise ConfigError(broadcast.error or "the council did not start")
        with self._lock:
            self._runs[broadcast.run_id] = broadcast
        return broadcast.run_id


def is_final(event: Event) -> bool:
    return isinstance(event, RunFinished)
