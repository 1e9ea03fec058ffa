"""What every experiment keeps in its folder, read and checked one way: ``plan.json`` (a resume
under another plan is refused, naming what differs), append-only JSONL journals (a line cut
short by an interrupted write is dropped, so the run resumes), and the embedding cache."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from council.base.errors import ConfigError
from council.meter.cache import open_embedder
from council.meter.embedders import Embedder

PLAN_FILE = "plan.json"
EMBEDDINGS_FILE = "embeddings.sqlite"


def check_plan(out: Path, plan: Mapping[str, Any], *, create: bool = True) -> None:
    """Refuse a folder whose ``plan.json`` is another plan; write it when absent (``create``)."""
    path = out / PLAN_FILE
    if not path.is_file():
        if not create:
            raise ConfigError(f"{out}: nothing has run yet (no {PLAN_FILE}: run it first)")
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(plan, indent=2), encoding="utf-8")
        return
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the plan: {exc}") from None
    if not isinstance(found, dict):
        raise ConfigError(f"{path}: not an experiment plan")
    changed = sorted(name for name in {*plan, *found} if found.get(name) != plan.get(name))
    if changed:
        raise ConfigError(
            f"{out} holds a different experiment ({PLAN_FILE} differs in "
            f"{', '.join(changed)}): use another --out or the same options"
        )


def journal_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each complete line. A last line without its newline was being
    written when the run stopped: it is cut off the file, and its unit runs again."""
    if not path.is_file():
        return
    data = path.read_bytes()
    complete = data.rfind(b"\n") + 1
    if complete < len(data):
        with path.open("r+b") as handle:
            handle.truncate(complete)
            os.fsync(handle.fileno())
    for number, line in enumerate(data[:complete].decode("utf-8").splitlines(), 1):
        if line.strip():
            yield number, line


def json_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a JSONL journal; a line that is not a JSON object is refused by number."""
    for number, line in journal_lines(path):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise ConfigError(f"{path}:{number}: not a JSON line") from None
        if not isinstance(row, dict):
            raise ConfigError(f"{path}:{number}: expected a JSON object")
        yield row


def experiment_embedder(embedder: str | Embedder | None, out: Path) -> Embedder:
    """An embedder object as it is; a name (or None: the bundled one) behind the folder's cache."""
    if embedder is not None and not isinstance(embedder, str):
        return embedder
    return open_embedder(embedder, out / EMBEDDINGS_FILE)
