"""Finding protocols by name: ./protocols, $COUNCIL_PROTOCOLS_PATH, then the shipped library."""

from __future__ import annotations

import os
from pathlib import Path

from council.base.errors import UnknownNameError
from council.base.library_paths import search_path
from council.protocols.graph import Protocol, load_protocol_file


def protocol_dirs() -> list[Path]:
    return search_path("protocols", "COUNCIL_PROTOCOLS_PATH")


def available_protocols() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in protocol_dirs():
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            found.setdefault(path.stem, path)
    return found


def find_protocol(name_or_path: str) -> Protocol:
    """Load a protocol by name, or by path when given a ``.yaml`` file."""
    if name_or_path.endswith((".yaml", ".yml")) or os.sep in name_or_path:
        return load_protocol_file(name_or_path)
    protocols = available_protocols()
    if name_or_path not in protocols:
        raise UnknownNameError("protocol", name_or_path, protocols)
    return load_protocol_file(protocols[name_or_path])
