"""The warm worker itself (see council/seats/warm.py): imports litellm once, then makes the model
calls its callers send, one JSON line each way per connection.

    python -m council.seats.warm_server SOCKET COUNCIL_DIR

Started by ``warm.start_worker``, never by hand, with a scrubbed environment. Holds
``SOCKET.lock`` (its pid written in it) while it lives, so two callers starting one at once
leave one worker. The socket is made only once litellm is imported: a caller that can connect
gets a warm worker.

Each call carries the provider variables its model reads; they are set in this process's
environment while the call runs (litellm reads keys from there) and removed when no call
needs them. Calls whose variables differ take turns: one waits until the calls in flight with
other variables have finished, so no call ever runs with another caller's keys.

It lives ``COUNCIL_WARM_WORKER_IDLE_S`` past its last call. Only a call keeps it: a connection
that sends none is dropped after that time and never holds it past it. A call whose caller
hangs up (or dies) is cancelled. On its way out (idle, its socket or lock file removed,
SIGTERM) it removes its socket and its lock file (never a newer worker's at the same path),
and any lock file no worker holds.

Workers do not pile up: each call touches the worker's socket, and each worker, as it starts,
once it has imported litellm, and every few seconds while it serves, retires the least
recently used workers beyond ``warm.max_workers()`` (those still starting count) by removing
their socket and lock file, under a lock on their folder. A retired worker takes no new
call, finishes those it holds and exits.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import fcntl
import json
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from council.base.errors import ModelCallError
from council.base.locks import locked
from council.base.secrets import redact
from council.seats.litellm_model import LiteLLMModel, import_litellm
from council.seats.model import ModelRequest
from council.seats.provider_env import is_credential
from council.seats.warm import IDLE_ENV, live_workers, lock_held, max_workers

MODELS_KEPT = 256  # models (with what they learned: unpriced names) kept between calls
TICK_S = 5.0  # how often a serving worker looks at its socket, lock file and the others


class CallEnvironment:
    """The provider variables of the calls in flight, set in ``os.environ`` (where litellm
    reads keys) while they run. Calls with the same variables run together; a call with other
    ones waits, in order of arrival, until those in flight have finished. When the last call
    ends its variables are removed: an idle worker holds no key."""

    def __init__(self) -> None:
        self.current: dict[str, str] = {}
        self.active = 0
        self._queue: collections.deque[object] = collections.deque()
        self._changed: asyncio.Condition | None = None

    @contextlib.asynccontextmanager
    async def holding(self, variables: dict[str, str]) -> AsyncIterator[None]:
        changed = self._changed = self._changed or asyncio.Condition()
        ticket = object()
        async with changed:
            self._queue.append(ticket)

            def our_turn() -> bool:  # first in line, and nobody runs with other variables
                first = self._queue[0] is ticket
                return first and (self.active == 0 or self.current == variables)

            try:
                await changed.wait_for(our_turn)
            finally:
                self._queue.remove(ticket)
                changed.notify_all()  # the next in line may go now (or in our stead)
            self._set(variables)
            self.active += 1
        try:
            yield
        finally:
            async with changed:
                self.active -= 1
                if not self.active:
                    self._set({})
                changed.notify_all()

    def _set(self, variables: dict[str, str]) -> None:
        for name in self.current.keys() - variables.keys():
            os.environ.pop(name, None)
        os.environ.update(variables)
        self.current = dict(variables)


class Worker:
    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self.active = 0
        self.last = time.monotonic()
        self.models: dict[str, LiteLLMModel] = {}
        self.path: Path | None = None  # its socket, touched at each call: when it was last used
        self.environment = CallEnvironment()

    def model(self, settings: dict[str, Any], endpoint: dict[str, Any]) -> LiteLLMModel:
        key = json.dumps([settings, endpoint], sort_keys=True)
        if key not in self.models:
            if len(self.models) >= MODELS_KEPT:
                self.models.clear()

            async def resolved(_model: str) -> dict[str, Any]:
                return endpoint

            self.models[key] = LiteLLMModel(resolve_endpoint=resolved, **settings)
        return self.models[key]

    async def answer(self, line: bytes, relay: _Relay) -> dict[str, Any]:
        try:
            call = json.loads(line)
            relay.take_variables(call.get("env") or {})
            request = ModelRequest(
                **{
                    **call["request"],
                    "choices": tuple(call["request"]["choices"]),
                    "tools": tuple(call["request"].get("tools") or ()),
                },
                listener=relay,
            )
            model = self.model(call["settings"], call["endpoint"])
            async with self.environment.holding(relay.variables):
                completion = await model.complete(request)
        except ModelCallError as exc:
            error = redact(str(exc), relay.secrets)
            return {"error": error, "retryable": exc.retryable, "attempts": exc.attempts}
        except Exception as exc:  # a malformed call: said so, the worker goes on
            return {
                "error": f"warm worker: {type(exc).__name__}",
                "retryable": False,
                "attempts": 0,
            }
        return {"completion": dataclasses.asdict(completion)}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if _peer_uid(writer) not in (None, os.getuid()):
                return  # another user's process: not a word
            try:
                # Only a call keeps the worker: a connection that sends none is let go.
                line = await asyncio.wait_for(reader.readline(), timeout=self.idle_s)
            except TimeoutError:
                return
            if line.strip():  # an empty line: a caller checking that the worker answers
                await self._call(line, reader, writer)
        except (OSError, ValueError):
            pass
        finally:
            writer.close()

    async def _call(
        self, line: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.active += 1
        try:
            call = asyncio.ensure_future(self.answer(line, _Relay(writer)))
            hangup = asyncio.ensure_future(reader.read(1))  # the caller gave up: so do we
            await asyncio.wait({call, hangup}, return_when=asyncio.FIRST_COMPLETED)
            hangup.cancel()
            if not call.done():
                call.cancel()
                return
            writer.write(json.dumps(call.result()).encode() + b"\n")
            await writer.drain()
        finally:
            self.active -= 1
            self.last = time.monotonic()
            if self.path is not None:
                with contextlib.suppress(OSError):
                    os.utime(self.path)  # recently used: the last to be retired

    async def serve(self, path: Path, lock: IO[str]) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a dead worker's socket; the lock says none lives
        server = await asyncio.start_unix_server(self.handle, str(path))
        os.chmod(path, 0o600)
        bound = os.stat(path)
        self.path = path
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(number, stopping.set)
        retired = False
        try:
            while self.active or (not retired and time.monotonic() - self.last < self.idle_s):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout=min(TICK_S, self.idle_s))
                if stopping.is_set():
                    break
                if not retired and not _still_wanted(path, lock):
                    # Another worker or a cleanup wants this one gone: no new call, and the
                    # calls in hand are finished first.
                    retired = True
                    server.close()
        finally:
            server.close()
            _remove_if_same(path, bound)


class _Relay:
    """Tells the caller, line by line, what its call's listener would have heard there, its
    keys redacted."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.variables: dict[str, str] = {}  # the call's provider variables
        self.secrets: list[str] = []  # their credentials, kept out of every message

    def take_variables(self, variables: dict[str, Any]) -> None:
        self.variables = {str(name): str(value) for name, value in variables.items()}
        self.secrets = [v for k, v in self.variables.items() if is_credential(k) and v]

    def _send(self, message: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            self.writer.write(json.dumps(message).encode() + b"\n")

    def delta(self, text: str) -> None:
        self._send({"delta": text})

    def retrying(self, model: str, attempt: int, error: str, wait_s: float) -> None:
        self._send({"retrying": [model, attempt, redact(error, self.secrets), wait_s]})

    def falling_back(self, failed: str, fallback: str, error: str) -> None:
        pass  # fallbacks are chosen in the caller, never in the worker


def _peer_uid(writer: asyncio.StreamWriter) -> int | None:
    sock = writer.get_extra_info("socket")
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    _pid, uid, _gid = struct.unpack(
        "3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    )
    return int(uid)


def _take(path: Path) -> IO[str] | None:
    """The worker's lock file, locked, its pid written in it; or None: another worker holds
    it. A caller checking whether one lives holds it for an instant, so a refusal is tried
    again for a moment before it means another worker. A file an exiting worker removed while
    we waited is no lock: the one now at ``path`` is."""
    for _ in range(25):
        handle = open(path, "a")  # noqa: SIM115 - held for the worker's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            time.sleep(0.02)
            continue
        if _is_file_at(handle, path):
            handle.truncate(0)
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            return handle
        handle.close()
    return None


def _is_file_at(handle: IO[str], path: Path) -> bool:
    try:
        here, there = os.fstat(handle.fileno()), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _remove_if_same(path: Path, made: os.stat_result) -> None:
    """Remove the file at ``path`` if it is still the one this worker made: a newer worker's
    socket at the same path is not ours to remove."""
    with contextlib.suppress(OSError):
        now = os.stat(path)
        if (now.st_dev, now.st_ino) == (made.st_dev, made.st_ino):
            path.unlink()


def _still_wanted(sock: Path, lock: IO[str]) -> bool:
    """Whether this worker keeps serving: its socket and lock file are where it left them,
    and it is not beyond the cap (counted again, in case two workers started at once)."""
    lock_path = sock.with_suffix(".lock")
    if not (sock.exists() and _is_file_at(lock, lock_path)):
        return False
    _retire_beyond_cap(sock.parent, max_workers())
    return sock.exists()


def _retire_beyond_cap(folder: Path, keep: int) -> None:
    """Retire the least recently used live workers beyond ``keep`` (this one included, those
    still importing litellm too) by removing their socket and lock file: each sees it, finishes
    its calls and exits. Sockets of dead workers go too. Under the folder's lock, so workers
    starting at once count each other."""
    with locked(folder):
        for sock in folder.glob("worker-*.sock"):
            if not lock_held(sock.with_suffix(".lock")):
                with contextlib.suppress(OSError):
                    sock.unlink()  # no worker holds its lock: a dead one's
        for worker in live_workers(folder)[keep:]:
            for path in (worker.socket, worker.socket.with_suffix(".lock")):
                with contextlib.suppress(OSError):
                    path.unlink()


def _remove_unheld_locks(folder: Path) -> None:
    """Lock files of workers that are gone (older workers did not remove theirs)."""
    for lock in folder.glob("worker-*.lock"):
        with contextlib.suppress(OSError), lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _is_file_at(handle, lock):
                lock.unlink()


def _idle_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get(IDLE_ENV, "600")))
    except ValueError:
        return 600.0


def main(argv: list[str]) -> int:
    path, council_dir = Path(argv[0]), Path(argv[1])
    if Path(__file__).resolve().parent.parent != council_dir:
        return 1  # another council than the caller's: it would answer differently
    lock_path = path.with_suffix(".lock")
    lock = _take(lock_path)
    if lock is None:
        return 0  # another worker for the same callers is starting or serving
    made = os.fstat(lock.fileno())
    try:
        _remove_unheld_locks(path.parent)
        # Counted as it starts (the newest: it stays) and again once litellm is in, seconds
        # later: a worker that started meanwhile may have retired this one.
        _retire_beyond_cap(path.parent, max_workers())
        import_litellm()
        if _is_file_at(lock, lock_path):
            _retire_beyond_cap(path.parent, max_workers())
        if _is_file_at(lock, lock_path):
            asyncio.run(Worker(_idle_seconds()).serve(path, lock))
    finally:
        # Removed while still held: a worker starting now locks the file made after it.
        _remove_if_same(lock_path, made)
        lock.close()
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # Every call is answered, socket and lock are removed, output goes nowhere: nothing is
    # left to flush. The interpreter's teardown of litellm would take seconds more.
    os._exit(code)
