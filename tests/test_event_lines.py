"""Each event is serialized once, by the run's recorder, and that line is what the ledger
stores, the run folder's events.jsonl holds and every line-taking follower (a web stream) is
handed: no cache shared between runs or threads (the web app's threaded test is in
tests/test_web.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from council import Council
from council.records.events import Event, event_json
from council.store import folder as folder_module
from council.store import recorder as recorder_module
from council.store.ledger import Ledger
from council.testing import ScriptedModel


class Lines:
    """A follower that writes events out: it takes the recorder's line, reply pieces too."""

    wants_deltas = True  # so that the run streams and live pieces reach it

    def __init__(self) -> None:
        self.got: list[tuple[Event, str]] = []

    def handle(self, event: Event) -> None:
        raise AssertionError("a follower that takes lines is handed lines")

    def handle_line(self, event: Event, line: str) -> None:
        self.got.append((event, line))


def test_each_event_is_serialized_once_and_every_follower_gets_that_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []

    def counted(event: Event) -> str:
        line = event_json(event)
        made.append(line)
        return line

    def refused(event: Event) -> str:
        raise AssertionError("the run folder serialized an event again")

    monkeypatch.setattr(recorder_module, "event_json", counted)
    monkeypatch.setattr(folder_module, "event_json", refused)
    lines = Lines()
    council = Council(
        ["popper", "kuhn"],
        protocol="quick",
        runs_dir=tmp_path,
        sinks=[lines],
        model=ScriptedModel(default="A view, streamed in pieces."),
    )
    run = council.convene("Should the library open on Sundays?")
    assert run.status == "completed"
    assert len(made) == len(lines.got)  # one serialization per event, live pieces included
    assert all(line is mine for (_, line), mine in zip(lines.got, made, strict=True))
    assert any(not event.durable for event, _ in lines.got)
    recorded = [line for event, line in lines.got if event.durable]
    ledger = Ledger.existing(tmp_path)
    try:
        assert ledger.event_lines(run.run_id) == recorded
    finally:
        ledger.close()
    exported = (tmp_path / run.run_id / "events.jsonl").read_text(encoding="utf-8")
    assert exported.splitlines() == recorded
