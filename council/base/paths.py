"""Where council looks for persona cards, protocols, panels and routing defaults; the runs
home; this user's private folder for sockets and leases; and whether a lock file is held."""

from __future__ import annotations

import contextvars
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

# The shipped library: folders at the top of the repository (they are data, not code), mapped
# into the package as ``council/library/<kind>`` when a wheel is built (see setup.py).
LIBRARY_KINDS = ("personas", "protocols", "panels", "routing")
PACKAGED_LIBRARY = "library"

# In a checkout (editable install, or PYTHONPATH) council/ sits beside the library folders.
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


def shipped_dir(kind: str) -> Path:
    """The shipped ``personas``, ``protocols``, ``panels`` or ``routing`` folder: inside the
    installed package (wheel or sdist install), else beside it in a checkout."""
    packaged = resources.files("council").joinpath(PACKAGED_LIBRARY, kind)
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return PROJECT_ROOT / kind


# A server answering requests (``council mcp``) searches the library alone: which folder it
# was started in is an accident, and a request must not reach the files there.
_WORKING_DIRECTORY_SEARCHED = contextvars.ContextVar("council_cwd_searched", default=True)


@contextmanager
def library_only() -> Iterator[None]:
    """Within this block (and threads started with its context), names resolve in the
    environment's folders and the shipped library, never in ``./<kind>``."""
    token = _WORKING_DIRECTORY_SEARCHED.set(False)
    try:
        yield
    finally:
        _WORKING_DIRECTORY_SEARCHED.reset(token)


def search_path(kind: str, env_var: str, extra: list[Path] | None = None) -> list[Path]:
    """Folders to search, first match wins: explicit folders, the environment variable
    (``os.pathsep``-separated), ``./<kind>`` in the working directory (not inside
    ``library_only``), then the shipped one."""
    candidates = list(extra or [])
    candidates += [Path(p) for p in os.environ.get(env_var, "").split(os.pathsep) if p]
    if _WORKING_DIRECTORY_SEARCHED.get():
        candidates.append(Path.cwd() / kind)
    candidates.append(shipped_dir(kind))
    unique: dict[Path, Path] = {}
    for folder in candidates:
        if folder.is_dir():
            unique.setdefault(folder.resolve(), folder)
    return list(unique.values())


# Runs are recorded in one home shared by every working directory, so `council runs list`
# finds yesterday's run wherever it was convened. A project (council.toml `out`), a flag
# (`--out`) or the environment moves it.
RUNS_ENV = "COUNCIL_RUNS"


class RunsHome:
    """The default runs folder, looked up when a run starts (not when the module loads), so
    a changed ``COUNCIL_RUNS`` takes effect."""

    def __repr__(self) -> str:
        return "RUNS_HOME"

    def path(self) -> Path:
        if os.environ.get(RUNS_ENV):
            return Path(os.environ[RUNS_ENV]).expanduser()
        data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(data).expanduser() / "council" / "runs"


RUNS_HOME = RunsHome()


def runs_location(value: Path | str | RunsHome) -> Path:
    """A runs folder as given, or the runs home."""
    return value.path() if isinstance(value, RunsHome) else Path(value)


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
