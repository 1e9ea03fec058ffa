"""The store off the critical path: turns finishing together share one transaction, each is
committed before a later stage starts and before any follower hears it; the log is synced to
the disk only when COUNCIL_FSYNC=every-turn asks; the log's checkpoint happens off the run."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from council import Council
from council.base.errors import ConfigError
from council.records.events import Event
from council.seats import ModelRequest
from council.store import wal
from council.store.ledger import Ledger
from council.store.recorder import RunRecorder
from council.testing import FunctionModel, ScriptedModel

PANEL = ["popper", "kuhn", "meadows"]
QUESTION = "Should the library open on Sundays?"


class Log:
    """Commits, syncs and what a follower hears, in the order they happen."""

    def __init__(self) -> None:
        self.entries: list[str] = []
        self.commits: list[list[str]] = []

    def handle(self, event: Event) -> None:
        if event.durable:  # a streamed piece of a reply is not recorded
            self.entries.append(event.type)


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> Log:
    log = Log()
    real_append, real_sync = Ledger.append_many, Ledger.sync_to_disk

    def append_many(ledger: Ledger, entries: Sequence[tuple[Event, str]]) -> None:
        real_append(ledger, entries)
        log.commits.append([event.type for event, _ in entries])
        log.entries.append("commit")

    def sync(ledger: Ledger) -> None:
        real_sync(ledger)
        log.entries.append("synced")

    monkeypatch.setattr(Ledger, "append_many", append_many)
    monkeypatch.setattr(Ledger, "sync_to_disk", sync)
    return log


def together() -> FunctionModel:
    """The panel's replies of a stage all arrive at one moment, as replies often do."""
    waiting: dict[tuple[str, int], list[asyncio.Future[None]]] = {}

    async def answer(request: ModelRequest) -> str:
        if request.seat in PANEL:
            arrived = waiting.setdefault((request.stage, request.round), [])
            mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            arrived.append(mine)
            if len(arrived) == len(PANEL):
                for future in arrived:
                    future.set_result(None)
            await mine
        return "An answer."

    return FunctionModel(answer)


def convene(runs: Path, log: Log) -> None:
    council = Council(PANEL, protocol="council", model=together(), runs_dir=runs, sinks=[log])
    result = council.convene(QUESTION)
    assert result.status == "completed"
    assert len(result.turns) == 3 + 3 + 1


def test_turns_finishing_together_share_one_commit_made_before_anyone_hears_them(
    tmp_path: Path, log: Log
) -> None:
    convene(tmp_path, log)
    heard = [kind for kind in log.entries if kind not in ("commit", "synced")]
    committed = [kind for batch in log.commits for kind in batch]
    assert heard == committed  # every event heard was recorded, in the order recorded
    # A follower hears an event only after the commit that holds it.
    position = 0
    for batch in log.commits:
        position = log.entries.index("commit", position)
        assert log.entries[position + 1 : position + 1 + len(batch)] == batch
        position += 1
    turns = [batch.count("turn_finished") for batch in log.commits]
    assert sum(turns) == 7 and max(turns) == 3  # the panel's three turns: one transaction
    assert len(log.commits) < len(committed)
    assert "synced" not in log.entries  # NORMAL: committed is kept through SIGKILL, no fsync


def test_every_turn_fsync_syncs_each_finished_turn_before_the_next_stage(
    tmp_path: Path, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNCIL_FSYNC", "every-turn")
    convene(tmp_path, log)
    entries = [kind for kind in log.entries if kind != "commit"]
    # The run's start is on disk before anyone hears of it (and before any call), its end too.
    assert entries[:2] == ["synced", "run_started"]
    assert entries[-2:] == ["synced", "run_finished"]
    starts = [i for i, kind in enumerate(entries) if kind == "stage_started"]
    assert len(starts) == 3
    for start in starts[1:]:
        before = entries[:start]
        last_turn = max(i for i, kind in enumerate(before) if kind == "turn_finished")
        assert "synced" in before[last_turn:], "a later stage started before a turn was synced"
    syncs, turns = entries.count("synced"), entries.count("turn_finished")
    assert 3 <= syncs <= turns + 2  # shared by turns finishing together


def test_an_unknown_fsync_setting_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNCIL_FSYNC", "sometimes")
    council = Council(PANEL, protocol="quick", model=ScriptedModel(default="x"), runs_dir=tmp_path)
    with pytest.raises(ConfigError, match="COUNCIL_FSYNC='sometimes': expected one of every-turn"):
        council.convene(QUESTION)


def test_outside_an_event_loop_each_event_is_committed_as_it_is_handed_over(
    tmp_path: Path, log: Log
) -> None:
    """Replaying a run's events with no loop running: nothing waits for a batch."""
    council = Council(
        PANEL, protocol="council", model=ScriptedModel(default="x"), runs_dir=tmp_path / "first"
    )
    run = council.convene(QUESTION)
    events = Ledger.existing(tmp_path / "first").events(run.run_id)
    log.commits.clear()
    recorder = RunRecorder(Ledger.in_folder(tmp_path / "second"))
    for event in events:
        recorder.handle(event)
        assert log.commits[-1] == [event.type]
    assert recorder.ledger is not None
    assert [e.type for e in recorder.ledger.events(run.run_id)] == [e.type for e in events]


def test_the_log_is_checkpointed_after_the_run_not_when_it_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wal, "IDLE_S", 60.0)  # no background close while the test looks
    council = Council(PANEL, protocol="quick", model=ScriptedModel(default="x"), runs_dir=tmp_path)
    run = council.convene(QUESTION)
    log, database = tmp_path / "ledger.sqlite-wal", tmp_path / "ledger.sqlite"
    assert log.stat().st_size > 0  # the run's close left the log for the next run

    def in_database_file() -> list[str]:  # immutable: reads the file alone, not the log
        uri = f"{database.absolute().as_uri()}?immutable=1"
        with sqlite3.connect(uri, uri=True) as db:
            return [row[0] for row in db.execute("SELECT run_id FROM runs")]

    assert in_database_file() == []
    second = council.convene(QUESTION)  # back to back: still no checkpoint between them
    assert in_database_file() == []
    wal.settle()  # what the CLI does after its output, and the process at exit
    assert sorted(in_database_file()) == sorted([run.run_id, second.run_id])
    assert not log.exists()
