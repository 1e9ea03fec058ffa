"""Child processes that end with the council that started them, however it ends.

A council starts children: the bundled model's llama.cpp server (about 600 MB) and the
template render worker. None of them may outlive it:

- **Ctrl-C, SIGTERM, SIGHUP.** ``end_like_ctrl_c`` makes SIGTERM and SIGHUP do what Ctrl-C
  does (the run is recorded as interrupted), so the process ends through its exit handlers,
  and those stop the children.
- **SIGKILL, a crash.** Nothing runs in the parent. On Linux each child asks the kernel to send
  it SIGKILL when its parent dies (``PR_SET_PDEATHSIG``): ``python -m council.base.processes``
  sets it, checks that its parent is still the one that started it, then runs the child's
  module. The kernel sends it when the *thread* that started the child ends, so every child
  is started from one thread that lives as long as the process. SIGKILL, not SIGTERM: a
  parentless model server has nobody to answer and nothing to save.
- **Elsewhere, or as a second line.** Each child has a lease (its PID and start time, its
  parent's PID and start time) in this user's private folder; the next child started by any
  council first reaps every child whose parent is gone.

The warm worker (``council.seats.warm_server``) is no child of this kind: it serves later
processes on purpose. It starts no process, keeps nothing for a caller that hung up, and exits
once idle (see ``council/seats/warm.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from council.base.locks import private_dir

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent.parent)
_spawner: list[Any] = []  # the one ThreadPoolExecutor that starts children
_spawner_lock = threading.Lock()
_leases: dict[int, Path] = {}  # child PID -> its lease file


# -- starting children ---------------------------------------------------------------------


def spawn(
    module: str, args: list[str], *, env: dict[str, str] | None = None, **popen: Any
) -> subprocess.Popen[bytes]:
    """``python -m module args...`` as a child that dies with this process. ``popen`` goes to
    ``subprocess.Popen`` (pipes, output). Call ``ended`` once the child is stopped."""
    reap_stale()
    paths = [_PACKAGE_ROOT, (env or os.environ).get("PYTHONPATH", "")]
    env = {**(env or os.environ), "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    argv = [sys.executable, "-m", __name__, str(os.getpid()), module, *args]
    process = _spawning_thread().submit(subprocess.Popen, argv, env=env, **popen).result()
    _write_lease(process.pid, module)
    return process


def ended(process: subprocess.Popen[bytes]) -> None:
    """The child is stopped and waited for: its lease goes."""
    lease = _leases.pop(process.pid, None)
    if lease is not None:
        with contextlib.suppress(OSError):
            lease.unlink()


def _spawning_thread() -> Any:
    """One thread, alive until the interpreter shuts down, that starts every child: the death
    signal follows the thread that forked, and a pool's or a request's thread ends early."""
    from concurrent.futures import ThreadPoolExecutor

    with _spawner_lock:
        if not _spawner:
            _spawner.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="council-spawn"))
        return _spawner[0]


def _die_with_parent(parent: int) -> None:
    """In the child: SIGKILL when the parent dies; exit at once if it already has."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the signal was asked for
        os._exit(1)


def _run_child(argv: list[str]) -> None:
    import runpy

    parent, module, args = int(argv[0]), argv[1], argv[2:]
    _die_with_parent(parent)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


# -- leases: a later council reaps what a dead one left --------------------------------------


def _lease_dir() -> Path | None:
    folder = private_dir()
    if folder is None:
        return None
    leases = folder / "children"
    try:
        leases.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        return None
    return leases


def start_time(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot on Linux, ``ps``'s ``lstart`` elsewhere):
    with the PID, it names one process even after the PID is reused. None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return _ps_start_time(pid)
    fields = text[text.rindex(")") + 2 :].split()
    return None if fields[0] in ("Z", "X") else fields[19]  # a zombie has ended


def _ps_start_time(pid: int) -> str | None:
    try:
        done = subprocess.run(
            ["ps", "-o", "lstart=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _write_lease(pid: int, module: str) -> None:
    folder = _lease_dir()
    started, parent_started = start_time(pid), start_time(os.getpid())
    if folder is None or started is None or parent_started is None:
        return  # the child is already gone, or nowhere is private: no lease
    lease = {
        "pid": pid,
        "started": started,
        "parent": os.getpid(),
        "parent_started": parent_started,
        "module": module,
    }
    path = folder / f"{pid}.json"
    with contextlib.suppress(OSError):
        path.write_text(json.dumps(lease))
        _leases[pid] = path


def reap_stale() -> list[int]:
    """Kill every child whose parent is gone (a lease names both, with their start times) and
    drop their leases; return the PIDs killed."""
    folder = _lease_dir()
    killed: list[int] = []
    for path in sorted(folder.glob("*.json")) if folder else []:
        try:
            lease = json.loads(path.read_text())
            pid, parent = int(lease["pid"]), int(lease["parent"])
            started, parent_started = str(lease["started"]), str(lease["parent_started"])
        except (OSError, ValueError, KeyError, TypeError):
            with contextlib.suppress(OSError):
                path.unlink()  # unreadable: it names nobody that can be checked
            continue
        if start_time(parent) == parent_started:
            continue  # its parent lives and answers for it
        if start_time(pid) == started:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        with contextlib.suppress(OSError):
            path.unlink()
    return killed


# -- ending this process the way Ctrl-C does ------------------------------------------------

_received: list[int] = []


def end_like_ctrl_c() -> None:
    """Make SIGTERM and SIGHUP end this process as Ctrl-C does: a run in progress is recorded
    as interrupted and exit handlers stop the children. A signal someone chose to ignore
    (``nohup``) stays ignored. From the main thread only, where Python runs signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) == signal.SIG_DFL:
            signal.signal(number, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    handler = signal.getsignal(signal.SIGINT)  # asyncio's, while a run is in progress
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:  # SIGINT ignored (a background job): interrupt all the same
        raise KeyboardInterrupt


def interrupted_by() -> signal.Signals | None:
    """The first SIGTERM or SIGHUP this process was sent, once ``end_like_ctrl_c`` was called."""
    return signal.Signals(_received[0]) if _received else None


if __name__ == "__main__":
    _run_child(sys.argv[1:])
