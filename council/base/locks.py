"""Locks processes agree on (a run's lease, warm workers counting each other) and this user's
private folder for worker sockets and child leases."""

from __future__ import annotations

import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def held_by_another(lock: Path, *, create: bool = True) -> bool:
    """Whether a live process holds ``lock`` with ``flock`` (a run's lease, a warm worker):
    a test lock is refused. Opening creates the file where it is missing, unless ``create``
    is off: then a missing file is nobody's."""
    try:
        with lock.open("a" if create else "r") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold ``path`` with ``flock`` for the block, waiting for it: what processes that must not
    act at once (warm workers counting each other) agree on. A folder is locked as it is, and
    leaves no file behind; a file is made where missing."""
    flags = os.O_RDONLY if path.is_dir() else os.O_RDWR | os.O_CREAT
    handle = os.open(path, flags, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock


def private_dir() -> Path | None:
    """This user's folder for worker sockets and child leases (``$XDG_RUNTIME_DIR``, else the
    temporary folder, ``/council-UID``), made 0700; None where it is not safely ours."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    folder = Path(base) / f"council-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
    except OSError:
        return None
    private = stat.S_ISDIR(info.st_mode) and not info.st_mode & 0o077
    return folder if private and info.st_uid == os.getuid() else None
