"""A finished turn's sync to disk leaves the event loop, and is shared by turns finishing
together, yet every finished turn is on disk before a later stage starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from council import Council
from council.records.events import Event
from council.store.ledger import Ledger
from council.store.recorder import RunRecorder
from council.testing import ScriptedModel

PANEL = ["popper", "kuhn", "meadows"]


class Log:
    def __init__(self) -> None:
        self.entries: list[str] = []

    def handle(self, event: Event) -> None:
        self.entries.append(event.type)


def test_every_finished_turn_is_synced_before_the_next_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = Log()
    real_sync = Ledger.sync_to_disk

    def sync(ledger: Ledger) -> None:
        real_sync(ledger)
        log.entries.append("synced")

    monkeypatch.setattr(Ledger, "sync_to_disk", sync)
    council = Council(
        PANEL,
        protocol="council",
        model=ScriptedModel(default="An answer."),
        runs_dir=tmp_path,
        sinks=[log],
    )
    result = council.convene("Should the library open on Sundays?")
    assert result.status == "completed"
    entries = log.entries
    starts = [i for i, kind in enumerate(entries) if kind == "stage_started"]
    assert len(starts) == 3
    for start in starts[1:]:
        before = entries[:start]
        last_turn = max(i for i, kind in enumerate(before) if kind == "turn_finished")
        assert "synced" in before[last_turn:], "a later stage started before a turn was synced"
    syncs, turns = entries.count("synced"), entries.count("turn_finished")
    assert 1 <= syncs <= turns  # shared by turns finishing together, never more than one each
    assert len(result.turns) == turns == 3 + 3 + 1


def test_outside_an_event_loop_a_finished_turn_is_synced_as_it_is_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replaying a run's events with no loop running (no one could await a deferred sync):
    every finished turn is committed with its sync, as before."""
    council = Council(
        PANEL, protocol="council", model=ScriptedModel(default="x"), runs_dir=tmp_path / "first"
    )
    run = council.convene("Q?")
    events = Ledger.existing(tmp_path / "first").events(run.run_id)
    deferred: list[bool] = []
    real_append = Ledger.append

    def append(self: Ledger, event: Event, *, defer_sync: bool = False) -> None:
        deferred.append(defer_sync)
        real_append(self, event, defer_sync=defer_sync)

    monkeypatch.setattr(Ledger, "append", append)
    recorder = RunRecorder(Ledger.in_folder(tmp_path / "second"))
    for event in events:
        recorder.handle(event)
    assert len(deferred) == len(events) and not any(deferred)
    assert [e.type for e in recorder.ledger.events(run.run_id)] == [e.type for e in events]
