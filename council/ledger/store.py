"""The run ledger: every run and every model call in one SQLite database (WAL mode).

A call is committed the moment its turn finishes, before any later stage can read it, so a run
killed at any point (SIGKILL included) keeps every finished call. Resume and replay look calls
up by request hash and reuse them instead of paying for them again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from council.transcript.records import RunHeader, RunResult, Turn

LEDGER_FILE = "ledger.sqlite"

_SCHEMA = """
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
    seats TEXT NOT NULL,        -- JSON: seat -> persona, model, card path and hash
    config TEXT NOT NULL        -- JSON: what resume needs to convene the same council again
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
"""


class Ledger:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            self.path, isolation_level=None
        )  # autocommit: one write, one commit
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    @classmethod
    def in_folder(cls, runs_dir: Path | str) -> Ledger:
        return cls(Path(runs_dir) / LEDGER_FILE)

    def close(self) -> None:
        self._db.close()

    # -- writing ----------------------------------------------------------------------------

    def start_run(self, header: RunHeader, config: dict[str, Any]) -> None:
        seats = {s.seat: s.to_json() for s in header.seats}
        self._db.execute(
            "INSERT INTO runs (run_id, question, protocol, protocol_hash, status, started_at,"
            " run_dir, seats, config) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?)"
            " ON CONFLICT(run_id) DO UPDATE SET status='running', error=NULL, finished_at=NULL",
            (
                header.run_id, header.question, header.protocol, header.protocol_hash,
                header.started_at.isoformat(), header.run_dir, json.dumps(seats),
                json.dumps(config),
            ),
        )  # fmt: skip

    def record_call(self, turn: Turn) -> None:
        self._db.execute(
            "INSERT INTO calls (run_id, stage, round, seat, persona, provider, model, request_hash,"
            " response, error, prompt_tokens, completion_tokens, cost_usd, latency_s, attempts,"
            " reused, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                turn.run_id, turn.stage, turn.round, turn.seat, turn.persona, turn.provider,
                turn.model, turn.request_hash, turn.content, turn.error, turn.prompt_tokens,
                turn.completion_tokens, turn.cost_usd, turn.latency_s, turn.attempts,
                int(turn.reused), turn.started_at.isoformat(),
            ),
        )  # fmt: skip

    def finish_run(self, result: RunResult) -> None:
        self._db.execute(
            "UPDATE runs SET status=?, error=?, finished_at=? WHERE run_id=?",
            (result.status, result.error, result.finished_at.isoformat(), result.run_id),
        )

    # -- reading ----------------------------------------------------------------------------

    def answered(self, request_hash: str, run_ids: Iterable[str]) -> sqlite3.Row | None:
        """The latest successful call with this request hash in one of these runs."""
        runs = list(run_ids)
        if not runs:
            return None
        marks = ",".join("?" * len(runs))
        return self._db.execute(
            f"SELECT * FROM calls WHERE request_hash=? AND error IS NULL AND response IS NOT NULL"
            f" AND response != '' AND run_id IN ({marks}) ORDER BY id DESC LIMIT 1",
            (request_hash, *runs),
        ).fetchone()

    def run(self, run_id: str) -> sqlite3.Row | None:
        return self._db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()

    def runs(self) -> list[sqlite3.Row]:
        return self._db.execute("SELECT * FROM runs ORDER BY started_at DESC").fetchall()

    def calls(self, run_id: str) -> list[sqlite3.Row]:
        return self._db.execute(
            "SELECT * FROM calls WHERE run_id=? ORDER BY id", (run_id,)
        ).fetchall()

    def run_ids(self) -> list[str]:
        return [row["run_id"] for row in self._db.execute("SELECT run_id FROM runs")]
