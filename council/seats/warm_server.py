"""The warm worker itself (see council/seats/warm.py): imports litellm once, then makes the model
calls its callers send, one JSON line each way per connection.

    python -m council.seats.warm_server SOCKET COUNCIL_DIR

Started by ``warm.start_worker``, never by hand. Holds ``SOCKET.lock`` while it lives, so two
callers starting one at once leave one worker. The socket is made only once litellm is
imported: a caller that can connect gets a warm worker.

It lives ``COUNCIL_WARM_WORKER_IDLE_S`` past its last call. Only a call keeps it: a connection
that sends none is dropped after that time and never holds it past it. A call whose caller
hangs up (or dies) is cancelled. On its way out (idle, its socket removed, SIGTERM) it removes
its socket and its lock file, and any lock file no worker holds.

Workers do not pile up: each call touches the worker's socket, and a worker that starts
removes the sockets of the least recently used others beyond ``warm.max_workers()`` (and
those of dead workers). A worker whose socket is gone takes no new call, finishes those it
holds and exits.
"""

from __future__ import annotations

import asyncio
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
from pathlib import Path
from typing import IO, Any

from council.errors import ModelCallError
from council.seats.litellm_model import LiteLLMModel, import_litellm
from council.seats.model import CallListener, ModelRequest
from council.seats.warm import IDLE_ENV, lock_held, max_workers

MODELS_KEPT = 256  # models (with what they learned: unpriced names) kept between calls


class Worker:
    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self.active = 0
        self.last = time.monotonic()
        self.models: dict[str, LiteLLMModel] = {}
        self.path: Path | None = None  # its socket, touched at each call: when it was last used

    def model(self, settings: dict[str, Any], endpoint: dict[str, Any]) -> LiteLLMModel:
        key = json.dumps([settings, endpoint], sort_keys=True)
        if key not in self.models:
            if len(self.models) >= MODELS_KEPT:
                self.models.clear()

            async def resolved(_model: str) -> dict[str, Any]:
                return endpoint

            self.models[key] = LiteLLMModel(resolve_endpoint=resolved, **settings)
        return self.models[key]

    async def answer(self, line: bytes, relay: CallListener) -> dict[str, Any]:
        try:
            call = json.loads(line)
            request = ModelRequest(
                **{**call["request"], "choices": tuple(call["request"]["choices"])},
                listener=relay,
            )
            completion = await self.model(call["settings"], call["endpoint"]).complete(request)
        except ModelCallError as exc:
            return {"error": str(exc), "retryable": exc.retryable, "attempts": exc.attempts}
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

    async def serve(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a dead worker's socket; the lock says none lives
        server = await asyncio.start_unix_server(self.handle, str(path))
        os.chmod(path, 0o600)
        self.path = path
        _retire_least_recent(path, max_workers())
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(number, stopping.set)
        retired = False
        try:
            while self.active or (not retired and time.monotonic() - self.last < self.idle_s):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout=min(5.0, self.idle_s))
                if stopping.is_set():
                    break
                if not retired and not path.exists():
                    # A newer worker or a cleanup wants this one gone: no new call, and the
                    # calls in hand are finished first.
                    retired = True
                    server.close()
        finally:
            server.close()
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


class _Relay:
    """Tells the caller, line by line, what its call's listener would have heard there."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    def _send(self, message: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            self.writer.write(json.dumps(message).encode() + b"\n")

    def delta(self, text: str) -> None:
        self._send({"delta": text})

    def retrying(self, model: str, attempt: int, error: str, wait_s: float) -> None:
        self._send({"retrying": [model, attempt, error, wait_s]})

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
    """The worker's lock file, locked, or None: another worker holds it. A caller checking
    whether one lives holds it for an instant, so a refusal is tried again for a moment before
    it means another worker. A file an exiting worker removed while we waited is no lock:
    the one now at ``path`` is."""
    for _ in range(25):
        handle = open(path, "a")  # noqa: SIM115 - held for the worker's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            time.sleep(0.02)
            continue
        if _is_file_at(handle, path):
            return handle
        handle.close()
    return None


def _is_file_at(handle: IO[str], path: Path) -> bool:
    try:
        here, there = os.fstat(handle.fileno()), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _retire_least_recent(own: Path, keep: int) -> None:
    """Remove the sockets of dead workers, and of the least recently used live ones beyond
    ``keep`` workers with this one: they see it gone, finish their calls and exit."""
    others = []
    for sock in own.parent.glob("worker-*.sock"):
        if sock == own:
            continue
        if not lock_held(sock.with_suffix(".lock")):
            with contextlib.suppress(OSError):
                sock.unlink()  # no worker holds its lock: a dead one's
            continue
        with contextlib.suppress(OSError):
            others.append((sock.stat().st_mtime, sock))
    others.sort()
    for _, sock in others[: max(0, len(others) - (keep - 1))]:
        with contextlib.suppress(OSError):
            sock.unlink()


def _remove_unheld_locks(folder: Path) -> None:
    """Lock files of workers that are gone (older workers did not remove theirs)."""
    for lock in folder.glob("worker-*.lock"):
        with contextlib.suppress(OSError), lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _is_file_at(handle, lock):
                lock.unlink()


def main(argv: list[str]) -> int:
    path, council_dir = Path(argv[0]), Path(argv[1])
    if Path(__file__).resolve().parent.parent != council_dir:
        return 1  # another council than the caller's: it would answer differently
    lock_path = path.with_suffix(".lock")
    lock = _take(lock_path)
    if lock is None:
        return 0  # another worker for the same callers is starting or serving
    try:
        _remove_unheld_locks(path.parent)
        import_litellm()
        try:
            idle_s = max(1.0, float(os.environ.get(IDLE_ENV, "600")))
        except ValueError:
            idle_s = 600.0
        asyncio.run(Worker(idle_s).serve(path))
    finally:
        # Removed while still held: a worker starting now locks the file made after it.
        with contextlib.suppress(OSError):
            lock_path.unlink()
        lock.close()
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # Every call is answered, socket and lock are removed, output goes nowhere: nothing is
    # left to flush. The interpreter's teardown of litellm would take seconds more.
    os._exit(code)
