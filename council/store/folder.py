"""The run folder, ``runs/<run id>/``: ``events.jsonl`` and ``transcript.md``, exports of the
ledger for people and tools that read files.

``RunFolder`` follows a live run and writes each event as it is recorded; ``export_run``
writes the same two files from the ledger at any time, byte for byte what the live run wrote.
An export that cannot be written (a full disk) is dropped with a note, never the run: the
ledger holds everything and ``council runs export`` writes the files again.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from council.records.events import Event, RunFinished, event_json, parse_event
from council.records.fold import fold_events
from council.records.record import utc_now
from council.records.transcript import render_transcript
from council.store.ledger import Ledger

EVENTS_FILE = "events.jsonl"
TRANSCRIPT_FILE = "transcript.md"


def slugify(text: str, max_length: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "run"


def new_run_id(question: str) -> str:
    """``20261125-163812-3f9a-should-cities-ban-cars``: sortable, unique, readable."""
    stamp = utc_now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(2)}-{slugify(question)}"


class RunFolder:
    """Writes a live run's exports as its events are recorded."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problem: str | None = None  # why the exports stopped, if they did
        self._events: list[Event] = []
        try:
            path.mkdir(parents=True, exist_ok=True)  # a resumed run appends to its log
            self._log = (path / EVENTS_FILE).open("a", encoding="utf-8")
        except OSError as exc:
            self.problem = f"cannot write the run folder {path}: {exc.strerror}"

    def handle(self, event: Event) -> None:
        if event.durable:
            self.handle_line(event, event_json(event))

    def handle_line(self, event: Event, line: str) -> None:
        """Write the event's line as the ledger recorded it (serialized once, by the recorder)."""
        if not event.durable:
            return  # the folder is a copy of the ledger, which keeps no live events
        self._events.append(event)
        if self.problem is not None:
            return
        try:
            self._log.write(line + "\n")
            self._log.flush()  # the ledger is the durable record; this is its copy
            if isinstance(event, RunFinished):
                # No fsync: the ledger is the durable record, and `council runs export` writes
                # this copy again; a sync here was a disk flush on every run's path.
                self._log.close()
                transcript = render_transcript(fold_events(self._events))
                (self.path / TRANSCRIPT_FILE).write_text(transcript, encoding="utf-8")
        except OSError as exc:
            self.problem = f"the run folder {self.path} stopped at: {exc.strerror}"


def export_run(ledger: Ledger, run_id: str, folder: Path) -> list[Path]:
    """Write ``events.jsonl`` and ``transcript.md`` of a recorded run into ``folder``."""
    lines = ledger.event_lines(run_id)
    events = [parse_event(line) for line in lines]
    folder.mkdir(parents=True, exist_ok=True)
    log, transcript = folder / EVENTS_FILE, folder / TRANSCRIPT_FILE
    log.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    written = [log]
    if any(isinstance(event, RunFinished) for event in events):
        transcript.write_text(render_transcript(fold_events(events)), encoding="utf-8")
        written.append(transcript)
    return written
