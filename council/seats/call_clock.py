"""What a call waited for before its model worked on it: a turn, a start."""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Iterator

# Each running loop's turns on the local servers, one lock per bundled model.
_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def local_turn(model: str) -> asyncio.Lock:
    turns = _TURNS.setdefault(asyncio.get_running_loop(), {})
    return turns.setdefault(model, asyncio.Lock())


class Clock:
    """What one call waited for before its model worked on it, in seconds."""

    def __init__(self) -> None:
        self.queue_s = 0.0  # a turn on a local server, a rate limit
        self.start_s = 0.0  # a warm worker or a local server starting

    @contextlib.contextmanager
    def queued(self) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.queue_s += time.perf_counter() - began

    @contextlib.contextmanager
    def starting(self) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.start_s += time.perf_counter() - began
