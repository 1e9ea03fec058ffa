"""Where council looks for persona cards, protocols, panels and routing defaults."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

# The shipped library: folders at the top of the repository (they are data, not code), mapped
# into the package as ``council/library/<kind>`` when a wheel is built (see setup.py).
LIBRARY_KINDS = ("personas", "protocols", "panels", "routing")
PACKAGED_LIBRARY = "library"

# In a checkout (editable install, or PYTHONPATH) council/ sits beside the library folders.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def shipped_dir(kind: str) -> Path:
    """The shipped ``personas``, ``protocols``, ``panels`` or ``routing`` folder: inside the
    installed package (wheel or sdist install), else beside it in a checkout."""
    packaged = resources.files("council").joinpath(PACKAGED_LIBRARY, kind)
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return PROJECT_ROOT / kind


def search_path(kind: str, env_var: str, extra: list[Path] | None = None) -> list[Path]:
    """Folders to search, first match wins: explicit folders, the environment variable
    (``os.pathsep``-separated), ``./<kind>`` in the working directory, then the shipped one."""
    candidates = list(extra or [])
    candidates += [Path(p) for p in os.environ.get(env_var, "").split(os.pathsep) if p]
    candidates += [Path.cwd() / kind, shipped_dir(kind)]
    unique: dict[Path, Path] = {}
    for folder in candidates:
        if folder.is_dir():
            unique.setdefault(folder.resolve(), folder)
    return list(unique.values())
