"""The ledger's schema, as numbered migrations. ``PRAGMA user_version`` holds the number of the
last one applied: an older ledger is brought forward when it is opened, a newer one is refused.

Add a migration by appending a function; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from council.store.legacy import backfill_events


def _script(db: sqlite3.Connection, script: str) -> None:
    # Not executescript: it commits first, and migrations run inside one transaction.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _m001_runs_and_calls(db: sqlite3.Connection) -> None:
    """The first-round ledger: runs and calls (a ledger of that era has these already)."""
    _script(
        db,
        """
        CREATE TABLE IF NOT EXISTS runs (
            run_id TEXT PRIMARY KEY,
            question TEXT NOT NULL,
            protocol TEXT NOT NULL,
            protocol_hash TEXT NOT NULL,
            status TEXT NOT NULL,
            error TEXT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            run_dir TEXT,
            seats TEXT NOT NULL,
            config TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS calls (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            stage TEXT NOT NULL,
            round INTEGER NOT NULL,
            seat TEXT NOT NULL,
            persona TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            request_hash TEXT,
            response TEXT,
            error TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            cost_usd REAL,
            latency_s REAL NOT NULL,
            attempts INTEGER NOT NULL,
            reused INTEGER NOT NULL DEFAULT 0,
            started_at TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS calls_by_request ON calls(request_hash);
        CREATE INDEX IF NOT EXISTS calls_by_run ON calls(run_id);
        """,
    )


def _m002_events(db: sqlite3.Connection) -> None:
    """The event stream becomes the record; calls keep the full request, and ``content`` is
    called what the records call it. Runs recorded before this get their events rebuilt."""
    db.execute("ALTER TABLE calls RENAME COLUMN response TO content")
    db.execute("ALTER TABLE calls ADD COLUMN request TEXT")
    db.execute(
        "CREATE TABLE events (run_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,"
        " body TEXT NOT NULL, PRIMARY KEY (run_id, seq)) WITHOUT ROWID"
    )
    backfill_events(db)


def _m003_outcomes(db: sqlite3.Connection) -> None:
    """Whether verdicts proved right: each update to a run's outcome, in order."""
    db.execute(
        "CREATE TABLE outcomes (run_id TEXT NOT NULL REFERENCES runs(run_id), seq INTEGER NOT"
        " NULL, body TEXT NOT NULL, PRIMARY KEY (run_id, seq)) WITHOUT ROWID"
    )


def _m004_parent_run(db: sqlite3.Connection) -> None:
    """Follow-ups: the run each one follows (NULL for a run that follows none), indexed so a
    run's follow-ups are found without reading every run's events."""
    db.execute("ALTER TABLE runs ADD COLUMN parent_run TEXT")
    db.execute("CREATE INDEX runs_by_parent ON runs(parent_run)")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _m001_runs_and_calls,
    _m002_events,
    _m003_outcomes,
    _m004_parent_run,
]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: sqlite3.Connection) -> None:
    """Apply every migration past the ledger's version, in one write transaction.

    ``BEGIN IMMEDIATE`` takes the write lock before the version is read, so two processes
    opening one old ledger at once migrate it once.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
            step(db)
            db.execute(f"PRAGMA user_version = {number}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
