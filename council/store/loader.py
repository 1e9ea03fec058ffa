"""Reading a run back: the one loader every reader uses (runs show, diversity, resume,
replay, experiments). A run is named by its ID in a runs folder's ledger (a unique prefix of
it, or ``latest``), or by a run folder, whose ``events.jsonl`` is an export of the ledger.
Either way the events are folded by ``council.records.fold``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from council.base.errors import ConfigError, UnknownNameError
from council.base.runs_home import RUNS_HOME, RunsHome, runs_location
from council.records.events import Event, parse_event
from council.records.fold import EmptyRun, fold_events
from council.records.run import RunResult
from council.store.folder import EVENTS_FILE
from council.store.ledger import LEDGER_FILE, Ledger
from council.store.legacy import is_legacy, legacy_events
from council.store.query import RunQuery

LATEST = "latest"


def resolve_run_id(ledger: Ledger, name: str) -> str:
    """A full run ID, from itself, a unique prefix of it, or ``latest``."""
    runs = ledger.runs()
    if name == LATEST:
        if not runs:
            raise ConfigError(f"no runs yet in the ledger {ledger.where}")
        return str(runs[0]["run_id"])
    ids = [str(run["run_id"]) for run in runs]
    if name in ids:
        return name
    matches = [run_id for run_id in ids if run_id.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise ConfigError(f"'{name}' matches {len(matches)} runs ({shown}): give more of the ID")
    raise UnknownNameError("run", name, ids[:20])


def folder_events(folder: Path) -> list[Event]:
    """The events of a run folder's ``events.jsonl`` (first-round folders included)."""
    path = folder / EVENTS_FILE
    lines = path.read_text(encoding="utf-8").splitlines()
    if lines and is_legacy(lines[0]):
        try:
            return legacy_events(lines)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: not a run log this council can read ({exc})") from None
    events = []
    for number, line in enumerate(lines, 1):
        try:
            events.append(parse_event(line))
        except (ValidationError, ValueError):
            raise ConfigError(f"{path}:{number}: not a run event (a cut-off last line?)") from None
    return events


def load_run(name: str | Path, runs_dir: Path | str | RunsHome = RUNS_HOME) -> RunResult:
    """A recorded run: ``name`` is a run ID (or prefix, or ``latest``) in ``runs_dir``'s
    ledger, or the path of a run folder."""
    runs_dir = runs_location(runs_dir)
    folder = Path(name)
    if (folder / EVENTS_FILE).is_file():
        events, where = folder_events(folder), str(folder / EVENTS_FILE)
    else:
        if not (Path(runs_dir) / LEDGER_FILE).is_file() and folder.is_dir():
            raise ConfigError(f"'{name}' is not a run folder: it has no {EVENTS_FILE}")
        ledger = Ledger.existing(runs_dir)
        try:
            run_id = resolve_run_id(ledger, str(name))
            events, where = ledger.events(run_id), f"run {run_id}"
        finally:
            ledger.close()
    try:
        return fold_events(events)
    except EmptyRun:
        raise ConfigError(f"{where}: no run_started event") from None


def find_runs(
    query: RunQuery | None = None, runs_dir: Path | str | RunsHome = RUNS_HOME, **filters: Any
) -> list[dict[str, Any]]:
    """The recorded runs that match, newest first, as rows of the ledger's ``runs`` index:
    ``find_runs(persona="popper", since=date(2026, 11, 1))`` (the fields of ``RunQuery``)."""
    query = query or RunQuery(**filters)
    ledger = Ledger.existing(runs_location(runs_dir))
    try:
        return ledger.runs(query)
    finally:
        ledger.close()
