"""The write-ahead log's upkeep, kept off every run's path.

SQLite checkpoints the WAL into the database file (two fsyncs) when the last connection to it
closes, then deletes it, so the next run's first commit makes the file again (another sync):
a run paid about 26 ms at its close and more at its start. Instead, while this process writes
to a ledger it also holds one idle connection to it, a *keeper*. A connection open in WAL mode
keeps a shared lock on the database file, so a run's connection closes at once, with no
checkpoint, and the log stays for the next run.

The keeper closes, and that close checkpoints, off every run's path: on a background thread
once no run has written for ``IDLE_S`` seconds, at the process's exit, or in ``settle()`` (the
CLI calls it after its output). Runs' connections never checkpoint as they commit
(``wal_autocheckpoint=0``); once the log has grown past ``CHECKPOINT_BYTES`` the keeper
checkpoints it on a background thread (PASSIVE: writers and readers go on meanwhile).

A process killed before the checkpoint loses nothing: the log is the record until then, and
the next connection reads it. A keeper that cannot open changes nothing but speed: the run's
own close checkpoints, as SQLite does by default.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

IDLE_S = 2.0  # back-to-back runs share one keeper; a quiet ledger is checkpointed
_LOOK_S = 0.5  # how often a keeper's reaper looks (one thread per keeper, not one per run)
CHECKPOINT_BYTES = 4 << 20  # SQLite's own default: 1000 pages of 4 KiB


@dataclass
class _Keeper:
    db: sqlite3.Connection
    writers: int = 1
    closed: bool = False
    idle_since: float = 0.0  # when its last writer closed
    checkpointing: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)  # one use of `db` at a time


_keepers: dict[Path, _Keeper] = {}
_lock = threading.Lock()


def hold(path: Path) -> bool:
    """A writer opened ``path``: keep the log alive past its close. False when no keeper
    could be opened (the writer then checkpoints on its own, as SQLite does)."""
    path = path.absolute()
    with _lock:
        keeper = _keepers.get(path)
        if keeper is not None:
            keeper.writers += 1
            return True
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # takes the shared lock
        except sqlite3.Error:
            return False
        keeper = _keepers[path] = _Keeper(db)
    threading.Thread(target=_reap, args=(path, keeper), name="council-wal", daemon=True).start()
    return True


def release(path: Path, *, wal_bytes: int) -> None:
    """A writer of ``path`` closed (its connection is gone): checkpoint in the background if
    the log has grown, and close the keeper once no writer has come back for ``IDLE_S``."""
    path = path.absolute()
    with _lock:
        keeper = _keepers.get(path)
        if keeper is None:
            return
        keeper.writers -= 1
        keeper.idle_since = time.monotonic()
    grown(path, wal_bytes=wal_bytes)


def grown(path: Path, *, wal_bytes: int) -> None:
    """The log of ``path`` is ``wal_bytes`` long: past ``CHECKPOINT_BYTES``, checkpoint it on a
    background thread (one at a time per ledger)."""
    if wal_bytes < CHECKPOINT_BYTES:
        return
    path = path.absolute()
    with _lock:
        keeper = _keepers.get(path)
        if keeper is None or keeper.checkpointing:
            return
        keeper.checkpointing = True
    threading.Thread(target=_checkpoint, args=(keeper,), name="council-wal", daemon=True).start()


def settle() -> None:
    """Close every keeper no writer holds now, checkpointing each log into its database file:
    for the end of a command, and the process's exit."""
    with _lock:
        idle = [(path, k) for path, k in _keepers.items() if k.writers == 0]
        for path, _ in idle:
            del _keepers[path]
    for _, keeper in idle:
        _close(keeper)


def _reap(path: Path, keeper: _Keeper) -> None:
    """Close the keeper once no writer has held it for ``IDLE_S`` (or stop: settled)."""
    while True:
        time.sleep(_LOOK_S)
        with _lock:
            if _keepers.get(path) is not keeper:
                return  # settle() took it
            if keeper.writers or time.monotonic() - keeper.idle_since < IDLE_S:
                continue
            del _keepers[path]
        _close(keeper)
        return


def _close(keeper: _Keeper) -> None:
    with keeper.lock:
        if keeper.closed:
            return
        keeper.closed = True
        # The last connection's close checkpoints. A ledger gone read-only or removed since
        # keeps its log as it stands: the next opener reads it.
        with contextlib.suppress(sqlite3.Error):
            keeper.db.close()


def _checkpoint(keeper: _Keeper) -> None:
    try:
        with keeper.lock:
            if not keeper.closed:
                with contextlib.suppress(sqlite3.Error):
                    keeper.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    finally:
        keeper.checkpointing = False


_inherited: list[_Keeper] = []


def _after_fork_in_child() -> None:
    # A forked child holds no lock through its parent's keepers, and must not close them
    # (SQLite's rule for connections across fork): they are kept, unused, and it makes its own.
    global _lock
    _lock = threading.Lock()
    _inherited.extend(_keepers.values())
    _keepers.clear()


atexit.register(settle)
os.register_at_fork(after_in_child=_after_fork_in_child)
