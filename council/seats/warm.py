"""A warm worker: a long-lived process that has litellm imported and makes model calls for the
processes that start after it, so their first request leaves at once instead of after the
seconds litellm takes to import.

Every call still goes through ``litellm.acompletion`` (with council's retries and pricing), in
the worker. A process that has not imported litellm asks the worker for this user and install;
when there is none it starts one in the background and waits for it (one import instead of
two), and when that fails it calls litellm itself, as before.

One worker per user and install: the socket's name is a digest of what makes a worker answer
as its caller would (the Python, council's source, litellm, and the few variables litellm
reads once: ``provider_env.worker_variables``), so shells and scripts that differ in anything
else share it. The worker starts with a scrubbed environment and never holds a provider key of
its own: each call carries the provider variables its model reads
(``provider_env.call_variables``), and the worker sets exactly those while the call runs
(calls with other variables wait for it), then removes them. A key one environment sends is
never seen by a call from another that lacks it.

Safety: the socket lives in a folder only this user can enter (checked, never trusted), the
worker answers only this user's processes (``SO_PEERCRED``), and the calls' variables travel
over that socket only: never on a command line, in the worker's environment, or in a message
(the worker redacts them from every error it returns). ``COUNCIL_WARM_WORKER=off`` turns it
off (the tests do).

Lifetime: unlike the children of ``council.base.processes``, the worker is meant to outlive the
process that started it (it runs in a session of its own). It ends after
``COUNCIL_WARM_WORKER_IDLE_S`` (default 600) seconds with no call (an open connection that
sends nothing does not count), when its socket or lock file is removed, or on SIGTERM, and
removes its socket and lock file as it goes. At most ``COUNCIL_WARM_WORKERS`` (default 2) live
at once per user and private folder, those still starting included: each worker, as it starts
and every few seconds after, retires the least recently used beyond that (under a lock, so two
starting at once cannot miss each other). A caller that dies mid-call has its call cancelled;
the worker starts no process and resolves no endpoint (a bundled model's server belongs to the
caller), so a dead caller leaves it holding nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from council.base.errors import ModelCallError
from council.base.locks import held_by_another, private_dir
from council.seats.model import CallListener, Completion, ModelRequest
from council.seats.provider_env import call_variables, worker_variables

SWITCH_ENV = "COUNCIL_WARM_WORKER"
IDLE_ENV = "COUNCIL_WARM_WORKER_IDLE_S"
MAX_ENV = "COUNCIL_WARM_WORKERS"  # workers alive at once per user (default 2)
START_WAIT_S = 60.0  # a cold worker imports litellm: seconds on a busy machine
# What a worker keeps of the environment that starts it, besides ``worker_variables``: where
# it finds its files and how it speaks, nothing a call reads.
_KEPT_ENV = {
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    IDLE_ENV,
    MAX_ENV,
}
COUNCIL_DIR = Path(__file__).resolve().parent.parent


def enabled() -> bool:
    flag = os.environ.get(SWITCH_ENV, "on").strip().lower()
    return flag not in ("0", "off", "false", "no") and hasattr(socket, "AF_UNIX")


def private_folder() -> Path | None:
    """This user's folder for worker sockets, made 0700; None where it is not safely ours."""
    return private_dir()


def fingerprint() -> str:
    """What a worker must share with its callers: Python, council's source, litellm, and the
    variables litellm reads once (never a key: those travel with each call). Stat calls only,
    a few milliseconds."""
    digest = hashlib.sha256(f"{sys.executable}\0{sys.version}\0{COUNCIL_DIR}".encode())
    for folder, dirs, files in os.walk(COUNCIL_DIR):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(f for f in files if f.endswith(".py")):
            info = os.stat(os.path.join(folder, name))
            digest.update(f"{folder}/{name}\0{info.st_mtime_ns}\0{info.st_size}\0".encode())
    spec = find_spec("litellm")
    if spec is not None and spec.origin:
        info = os.stat(spec.origin)
        digest.update(f"{spec.origin}\0{info.st_mtime_ns}\0{info.st_size}\0".encode())
    for key, value in sorted(worker_variables().items()):
        digest.update(f"{key}={value}\0".encode(errors="surrogateescape"))
    return digest.hexdigest()[:24]


def socket_path() -> Path | None:
    """Where this process's worker listens; None where no socket can be made safely (no
    private folder, or a path too long for a Unix socket's 108 bytes)."""
    folder = private_folder()
    if folder is None or len(os.fsencode(folder)) > 70:
        return None
    return folder / f"worker-{fingerprint()}.sock"


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def worker_environment() -> dict[str, str]:
    """The whole environment a worker starts with: scrubbed of every provider variable."""
    paths = [str(COUNCIL_DIR.parent), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    paths = [os.path.abspath(p) for p in paths if p]  # it starts in /, not the caller's folder
    kept = {k: v for k, v in os.environ.items() if k in _KEPT_ENV or k.startswith("LC_")}
    return {**kept, **worker_variables(), SWITCH_ENV: "off", "PYTHONPATH": os.pathsep.join(paths)}


def start_worker(path: Path) -> subprocess.Popen[bytes]:
    """A worker for ``path``, detached from this process's session, terminal and folder."""
    return subprocess.Popen(
        [sys.executable, "-m", "council.seats.warm_server", str(path), str(COUNCIL_DIR)],
        env=worker_environment(),
        cwd="/",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def find_or_start(path: Path, wait_s: float = START_WAIT_S) -> bool:
    """Whether a worker answers at ``path``, starting one when none does or is starting."""
    if _answers(path):
        return True
    lock = path.with_suffix(".lock")
    started = None if lock_held(lock) else start_worker(path)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if _answers(path):
            return True
        if (started is None or started.poll() is not None) and not lock_held(lock):
            return False  # nobody is starting one (it failed): call litellm here
    return False


def max_workers() -> int:
    try:
        return max(1, int(os.environ.get(MAX_ENV, "2")))
    except ValueError:
        return 2


def lock_held(lock: Path) -> bool:
    """Whether a worker holds ``lock``; a missing file is nobody's (and is not made here: a
    worker removes its lock file when it exits)."""
    return held_by_another(lock, create=False)


@dataclasses.dataclass(frozen=True)
class LiveWorker:
    """A worker alive in this user's folder (serving, or still importing litellm)."""

    socket: Path
    pid: int | None  # written in its lock file as it starts (None: an older worker's)
    serving: bool  # its socket is there: it takes calls
    last_used: float  # when it last finished a call (or started), seconds since the epoch
    rss_mb: float | None  # its resident memory now, from /proc (None where there is none)


def live_workers(folder: Path | None = None) -> list[LiveWorker]:
    """Every worker alive in ``folder`` (default: this user's), most recently used first."""
    folder = folder or private_folder()
    found = []
    for lock in sorted(folder.glob("worker-*.lock")) if folder else []:
        if not lock_held(lock):
            continue
        sock = lock.with_suffix(".sock")
        try:
            text = lock.read_text().strip()
            times = [lock.stat().st_mtime, *([sock.stat().st_mtime] if sock.exists() else [])]
        except OSError:
            continue  # gone as we looked
        pid = int(text) if text.isdigit() else None
        found.append(LiveWorker(sock, pid, sock.exists(), max(times), resident_mb(pid)))
    return sorted(found, key=lambda w: -w.last_used)


def resident_mb(pid: int | None) -> float | None:
    """A process's resident set size (VmRSS) in MiB, from /proc; None where it cannot be read."""
    try:
        status = Path(f"/proc/{pid}/status").read_text() if pid else ""
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


class WorkerClient:
    """Sends one call per connection to the worker at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.gone = False  # the worker stopped answering: calls go back to this process

    async def complete(
        self, settings: dict[str, Any], endpoint: dict[str, Any], request: ModelRequest
    ) -> Completion | None:
        """The worker's completion; None when it could not be reached or stopped during the
        call, or the call cannot travel as JSON: the caller then makes the call itself."""
        sent = {
            f.name: getattr(request, f.name)
            for f in dataclasses.fields(request)
            if f.name != "listener"
        }
        # The provider variables this call reads, from this process: the worker has none.
        env = call_variables(str(settings.get("model", "")))
        call = {"settings": settings, "endpoint": endpoint, "request": sent, "env": env}
        try:
            line = json.dumps(call).encode() + b"\n"
        except (TypeError, ValueError):
            return None
        try:
            reader, writer = await asyncio.open_unix_connection(str(self.path), limit=1 << 24)
        except OSError:
            self.gone = True
            return None
        try:
            writer.write(line)
            await writer.drain()
            answer = await _final_answer(reader, request.listener)
        finally:
            writer.close()
        if answer is None:  # the worker died: the call is made here, as a retry would be
            self.gone = True
            return None
        if "error" in answer:
            raise ModelCallError(
                answer["error"], retryable=answer["retryable"], attempts=answer["attempts"]
            )
        return Completion(**answer["completion"])


async def _final_answer(
    reader: asyncio.StreamReader, listener: CallListener
) -> dict[str, Any] | None:
    """Read the worker's lines: what the call's listener would have heard here (each piece of a
    streamed reply, each retry), then the answer; None when the worker hung up first."""
    while line := await reader.readline():
        message = json.loads(line)
        if "delta" in message:
            listener.delta(message["delta"])
        elif "retrying" in message:
            listener.retrying(*message["retrying"])
        else:
            return dict(message)
    return None


_chosen: list[WorkerClient | None] = []  # empty until chosen, once per process
_choosing = threading.Lock()
# Its own thread: waiting for a worker to start must not hold the loop's default executor,
# where finished turns are synced to disk.
_chooser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="council-warm")


def _choose() -> WorkerClient | None:
    with _choosing:
        if not _chosen:
            path = socket_path()
            _chosen.append(WorkerClient(path) if path and find_or_start(path) else None)
        return _chosen[0]


async def worker() -> WorkerClient | None:
    """The warm worker this process's calls go to, or None: call litellm here. Chosen once per
    process; a process that already imported litellm keeps calling it itself."""
    if "litellm" in sys.modules or not enabled():
        return None
    if not _chosen:
        await asyncio.get_running_loop().run_in_executor(_chooser, _choose)
    chosen = _chosen[0]
    return None if chosen is None or chosen.gone else chosen
