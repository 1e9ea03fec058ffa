"""Which distribution installed the ``council`` package, and whether another one also did.

Another distribution on PyPI (``council-ai``, or the ``council`` placeholder) installs an import
package of the same name: installed into one environment, the two overwrite each other's files or
one silently shadows the other. ``import council`` says so in one line. The usual case costs a few
directory listings and one small file read (0.1-0.3 ms); installed distributions' file lists are
read, and ``importlib.metadata`` imported, only when something looks wrong
(``importlib.metadata.packages_distributions()`` alone takes ~0.4 s in the project's environment).
"""

from __future__ import annotations

import os
import re
import sys

# pathlib is not imported here: it costs `import council` a few milliseconds (urllib.parse).
__version__ = "0.1.0"  # the one place it is written: pyproject.toml and `council --version` read it
DISTRIBUTION = "persona-council"
PACKAGE = "council"

_said = False
# How a RECORD line naming a file of the package starts (CSV may quote the path).
_RECORD_MARKS = tuple(f"\n{p}".encode() for p in (f"{PACKAGE}/", f'"{PACKAGE}/', f"{PACKAGE}.py,"))


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them: ``Persona_Council`` is ``persona-council``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _dist_info_name(folder_name: str) -> str:
    """``council_ai-0.0.29.dist-info`` -> ``council-ai``."""
    return normalized(folder_name.removesuffix(".dist-info").rsplit("-", 1)[0])


def _package_folders() -> list[str]:
    """Every ``sys.path`` folder that holds a ``council`` package or module, in search order."""
    folders: dict[str, str] = {}
    for entry in sys.path:
        folder = entry or os.getcwd()
        package = os.path.join(folder, PACKAGE)
        if os.path.isdir(package) or os.path.isfile(f"{package}.py"):
            folders.setdefault(os.path.realpath(folder), folder)
    return list(folders.values())


def _own_record(site: str, version: str) -> str:
    prefix = normalized(DISTRIBUTION).replace("-", "_")
    return os.path.join(site, f"{prefix}-{version}.dist-info", "RECORD")


def _foreign_entries(site: str, version: str) -> set[str]:
    """Entries of ``site/council`` that this distribution's RECORD does not list (none outside
    a wheel install: a checkout has no RECORD and nobody installs into it)."""
    try:
        with open(_own_record(site, version), encoding="utf-8") as record:
            paths = [line.rsplit(",", 2)[0] for line in record]
    except OSError:
        return set()
    ours = {path.split("/")[1] for path in paths if path.startswith(f"{PACKAGE}/")}
    return set(os.listdir(os.path.join(site, PACKAGE))) - ours - {"__pycache__"}


def _suspicious(folders: list[str], version: str) -> bool:
    """Cheap signs of a second provider: a second folder holding ``council``, files in ours that
    are not ours, or a ``*council*`` distribution beside it other than this one."""
    if len(folders) > 1 or (folders and _foreign_entries(folders[0], version)):
        return True
    own = normalized(DISTRIBUTION)
    return any(
        entry.endswith(".dist-info")
        and "council" in entry.lower()
        and _dist_info_name(entry) != own
        for folder in folders
        for entry in os.listdir(folder)
    )


def _lists_package(record: bytes) -> bool:
    """Whether a RECORD file lists files of the ``council`` package (a CSV path may be quoted)."""
    text = b"\n" + record
    return any(mark in text for mark in _RECORD_MARKS)


def other_providers(folders: list[str]) -> list[str]:
    """``name version`` of each installed distribution other than this one whose files include
    the ``council`` package, in the given folders. RECORD files are read as plain text (all of
    them: ~50 ms in the project's environment); metadata is parsed only for the ones that list
    ``council``."""
    from importlib.metadata import PathDistribution
    from pathlib import Path

    found: list[str] = []
    for folder in folders:
        for entry in sorted(os.listdir(folder)):
            if not entry.endswith(".dist-info") or _dist_info_name(entry) == DISTRIBUTION:
                continue
            try:
                with open(os.path.join(folder, entry, "RECORD"), "rb") as record:
                    if not _lists_package(record.read()):
                        continue
            except OSError:
                continue
            dist = PathDistribution(Path(folder, entry))
            found.append(f"{dist.metadata['Name'] or entry} {dist.version}")
    return found


def warn_if_shadowed(version: str = __version__) -> None:
    """Say once, on stderr, when another installed distribution also provides ``council``."""
    global _said
    if _said:
        return
    _said = True
    folders = _package_folders()
    if not _suspicious(folders, version):
        return
    others = other_providers(folders)
    if others:
        print(
            f"council: {', '.join(others)} also installs a package named 'council'; the two "
            f"overwrite or shadow each other (pip uninstall it, or use separate environments)",
            file=sys.stderr,
        )
