"""A run's lease: proof that a live process is running it, so nobody resumes it twice.

The running process holds an exclusive ``flock`` on ``runs/.live/RUN.lock`` for as long as
the run lasts. The kernel drops the lock when the process ends, however it ends (SIGKILL
included), so a lease is never stale: a lock that can be taken belongs to nobody alive.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from council.base.errors import RunInProgress
from council.base.locks import held_by_another
from council.store.ledger import storage_error

LIVE_DIR = ".live"


def _lock_path(runs_dir: Path, run_id: str) -> Path:
    return runs_dir / LIVE_DIR / f"{run_id}.lock"


class RunLease:
    def __init__(self, runs_dir: Path, run_id: str) -> None:
        self.path = _lock_path(runs_dir, run_id)
        self.run_id = run_id
        self._handle: IO[str] | None = None

    def acquire(self) -> RunLease:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise storage_error(exc, self.path) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunInProgress(
                f"run {self.run_id} is still running (process {holder}): wait for it, or stop "
                "that process, before resuming it"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            # Closing drops the lock. The file stays: unlinking it could let two processes
            # lock two different files of the same name.
            self._handle.close()
            self._handle = None


def is_live(runs_dir: Path | str, run_id: str) -> bool:
    """Whether a live process holds this run's lease right now."""
    path = _lock_path(Path(runs_dir), run_id)
    if not path.exists():
        return False
    return held_by_another(path)
