"""Where council looks for persona cards, protocols, panels and routing defaults: the folders
given, the environment's, the working directory's and the shipped library."""

from __future__ import annotations

import contextvars
import os
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
