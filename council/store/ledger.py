"""The ledger: the one store of runs. Every event of every run, in one SQLite database (WAL).

The ``events`` table is the record; ``runs`` and ``calls`` are indexes kept in the same
transaction as the event they come from (a run's status, a call's request hash for reuse).
Each event is committed the moment it happens, before any later stage can read it, so a run
killed at any point (SIGKILL included) keeps every finished turn.

Storage faults end in a ``StorageError`` subclass with one line and its own exit status: a
read-only folder, a full disk, a lock held past the busy timeout, a damaged or empty file, a
ledger written by a newer council. A brand-new ledger is built aside and linked into place,
so a ledger file is either absent or complete, however many processes create it at once.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from council.errors import (
    LedgerBusy,
    LedgerDamaged,
    LedgerFull,
    LedgerReadOnly,
    LedgerTooNew,
    StorageError,
)
from council.records.events import (
    Event,
    RunFinished,
    RunStarted,
    TurnFinished,
    event_json,
    parse_event,
)
from council.records.run import Outcome
from council.store.query import RunQuery
from council.store.schema import SCHEMA_VERSION, migrate

LEDGER_FILE = "ledger.sqlite"
RESERVE_BYTES = 512 * 1024  # freed on a full disk so the run can record how it ended
BUSY_TIMEOUT_ENV = "COUNCIL_LEDGER_BUSY_TIMEOUT_S"


def busy_timeout_s() -> float:
    try:
        return max(0.0, float(os.environ.get(BUSY_TIMEOUT_ENV, "5")))
    except ValueError:
        return 5.0


def storage_error(exc: BaseException, path: Path | str) -> StorageError:
    """One clear error for anything SQLite or the file system says about the ledger."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if name.startswith("SQLITE_FULL") or code == errno.ENOSPC or "disk is full" in text:
        return LedgerFull(f"the disk holding the ledger {path} is full: free some space")
    if name.startswith("SQLITE_READONLY") or code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return LedgerReadOnly(
            f"the ledger {path} cannot be written (read-only folder or file): use --out "
            "to record runs elsewhere"
        )
    if name.startswith("SQLITE_CANTOPEN"):
        return LedgerReadOnly(f"cannot open the ledger {path}: its folder is missing or read-only")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return LedgerBusy(
            f"the ledger {path} stayed locked by another process for more than "
            f"{busy_timeout_s():g} s ({BUSY_TIMEOUT_ENV} sets the wait): try again"
        )
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "malformed" in text:
        return LedgerDamaged(
            f"the ledger {path} is damaged ({text}): move it aside; a new one is made next run"
        )
    return StorageError(f"the ledger {path} failed: {text}")


class Ledger:
    """Open with ``Ledger.in_folder(runs_dir)`` (created if absent), ``Ledger.existing(...)``
    (read only what is there) or ``Ledger.in_memory()`` (a council with no runs folder)."""

    def __init__(self, path: Path | None, *, read_only: bool = False) -> None:
        self.path = path
        self.where = str(path) if path is not None else "in memory"
        with self._guard():
            if path is None:
                self._db = sqlite3.connect(":memory:", isolation_level=None)
                migrate(self._db)
            elif read_only:
                self._db = _open_read_only(path)
            else:
                self._db = self._open(path)
        self._db.row_factory = sqlite3.Row
        self._full_sync = True  # PRAGMA synchronous=FULL, as opened

    @classmethod
    def in_folder(cls, runs_dir: Path | str) -> Ledger:
        path = Path(runs_dir) / LEDGER_FILE
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, path) from None
        return cls(path)

    @classmethod
    def existing(cls, runs_dir: Path | str) -> Ledger:
        path = Path(runs_dir) / LEDGER_FILE
        try:
            found = path.is_file()
        except OSError as exc:  # a folder this user may not enter
            raise storage_error(exc, path) from None
        if not found:
            raise StorageError(f"no ledger in '{runs_dir}': convene a council there first (--out)")
        try:
            return cls(path)
        except LedgerReadOnly:  # an archive on read-only storage: read it as it stands
            return cls(path, read_only=True)

    @classmethod
    def in_memory(cls) -> Ledger:
        return cls(None)

    # -- opening ------------------------------------------------------------------------------

    def _open(self, path: Path) -> sqlite3.Connection:
        if not path.exists():
            _create(path)
        if path.stat().st_size == 0:
            raise LedgerDamaged(
                f"the ledger {path} is empty (0 bytes): it was truncated or never written; "
                "move it aside and a new one is made next run"
            )
        db = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_s())
        try:
            db.execute(f"PRAGMA busy_timeout={int(busy_timeout_s() * 1000)}")
            db.execute("PRAGMA synchronous=FULL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise LedgerTooNew(
                    f"the ledger {path} has schema version {version}; this council reads up to "
                    f"{SCHEMA_VERSION}: upgrade council to open it"
                )
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # NOTADB shows here
            if version < SCHEMA_VERSION:
                migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise storage_error(exc, self.where) from None

    def close(self) -> None:
        self._db.close()

    # -- the reserve: room to record how a run ended on a full disk --------------------------

    @property
    def _reserve(self) -> Path | None:
        return self.path.with_name(self.path.name + ".reserve") if self.path else None

    def reserve(self) -> None:
        """Hold back a little disk space; a full disk at start fails here, before any call."""
        if self._reserve is None or self._reserve.exists():
            return
        with self._guard(), self._reserve.open("wb") as handle:
            handle.write(b"\0" * RESERVE_BYTES)
            handle.flush()
            os.fsync(handle.fileno())

    def release_reserve(self) -> bool:
        if self._reserve is None or not self._reserve.exists():
            return False
        self._reserve.unlink()
        return True

    # -- writing ----------------------------------------------------------------------------

    def append(self, event: Event, *, defer_sync: bool = False) -> None:
        """Commit one event, with the index rows it implies, in one transaction.

        Every commit survives the process being killed (WAL). A run's start, each finished
        turn and its end are also synced to the disk before this returns, so a power cut
        loses at most progress markers, never a paid-for answer; the WAL keeps order, so a
        synced event carries every event before it. ``defer_sync`` leaves that sync to the
        caller's ``sync_to_disk``, which it must make before anything reads the event.
        """
        if not event.durable:
            raise ValueError(f"a live event ({event.type}) is never stored in the ledger")
        full_sync = isinstance(event, RunStarted | TurnFinished | RunFinished) and not defer_sync
        with self._guard():
            if full_sync != self._full_sync:
                self._db.execute(f"PRAGMA synchronous={'FULL' if full_sync else 'NORMAL'}")
                self._full_sync = full_sync
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seq = self._db.execute(
                    "SELECT coalesce(max(seq), 0) + 1 FROM events WHERE run_id=?",
                    (event.run_id,),
                ).fetchone()[0]
                self._db.execute(
                    "INSERT INTO events (run_id, seq, type, body) VALUES (?, ?, ?, ?)",
                    (event.run_id, seq, event.type, event_json(event)),
                )
                self._index(event)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def sync_to_disk(self) -> None:
        """Sync the write-ahead log, as a FULL commit would: every event committed so far
        survives a power cut. Safe from another thread; one sync covers every commit before
        it, however many."""
        if self.path is None:
            return
        with self._guard():
            try:
                wal = os.open(f"{self.path}-wal", os.O_RDONLY)
            except FileNotFoundError:
                return  # checkpointed into the database file, which the checkpoint synced
            try:
                os.fsync(wal)
            finally:
                os.close(wal)

    def _index(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            h = event.header
            config = event.config.model_dump_json() if event.config else "null"
            seats = json.dumps({s.seat: s.to_json() for s in h.seats})
            self._db.execute(
                "INSERT INTO runs (run_id, question, protocol, protocol_hash, status, started_at,"
                " run_dir, seats, config) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?)"
                " ON CONFLICT(run_id) DO UPDATE SET status='running', error=NULL,"
                " finished_at=NULL",
                (h.run_id, h.question, h.protocol, h.protocol_hash, h.started_at.isoformat(),
                 h.run_dir, seats, config),
            )  # fmt: skip
        elif isinstance(event, TurnFinished):
            t = event.turn
            request = t.request.model_dump_json() if t.request else None
            self._db.execute(
                "INSERT INTO calls (run_id, stage, round, seat, persona, provider, model,"
                " request_hash, content, error, prompt_tokens, completion_tokens, cost_usd,"
                " latency_s, attempts, reused, started_at, request)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (t.run_id, t.stage, t.round, t.seat, t.persona, t.provider, t.model,
                 t.request_hash, t.content, t.error, t.prompt_tokens, t.completion_tokens,
                 t.cost_usd, t.latency_s, t.attempts, int(t.reused), t.started_at.isoformat(),
                 request),
            )  # fmt: skip
        elif isinstance(event, RunFinished):
            self._db.execute(
                "UPDATE runs SET status=?, error=?, finished_at=? WHERE run_id=?",
                (event.status, event.error, event.finished_at.isoformat(), event.run_id),
            )

    def record_outcome(self, outcome: Outcome) -> None:
        with self._guard():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO outcomes (run_id, seq, body) SELECT ?, coalesce(max(seq), 0) + 1,"
                    " ? FROM outcomes WHERE run_id=?",
                    (outcome.run_id, outcome.model_dump_json(), outcome.run_id),
                )
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def outcome(self, run_id: str) -> Outcome | None:
        """A run's outcome as last updated."""
        with self._guard():
            row = self._db.execute(
                "SELECT body FROM outcomes WHERE run_id=? ORDER BY seq DESC LIMIT 1", (run_id,)
            ).fetchone()
        return Outcome.model_validate_json(row["body"]) if row else None

    # -- reading ----------------------------------------------------------------------------

    def event_lines(self, run_id: str) -> list[str]:
        """The run's events exactly as recorded: the lines of its ``events.jsonl``."""
        with self._guard():
            rows = self._db.execute(
                "SELECT body FROM events WHERE run_id=? ORDER BY seq", (run_id,)
            ).fetchall()
        return [row["body"] for row in rows]

    def events(self, run_id: str) -> list[Event]:
        return [parse_event(line) for line in self.event_lines(run_id)]

    def answered(self, request_hash: str, run_ids: Iterable[str]) -> dict[str, Any] | None:
        """The latest successful call with this request hash in one of these runs."""
        runs = list(run_ids)
        if not runs:
            return None
        marks = ",".join("?" * len(runs))
        with self._guard():
            row = self._db.execute(
                f"SELECT * FROM calls WHERE request_hash=? AND error IS NULL AND content IS NOT"
                f" NULL AND content != '' AND run_id IN ({marks}) ORDER BY id DESC LIMIT 1",
                (request_hash, *runs),
            ).fetchone()
        return dict(row) if row is not None else None

    def run(self, run_id: str) -> dict[str, Any] | None:
        with self._guard():
            row = self._db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return dict(row) if row is not None else None

    def runs(self, query: RunQuery | None = None) -> list[dict[str, Any]]:
        """Runs, newest first; ``query`` narrows them (question words, persona, model...)."""
        where, params = (query or RunQuery()).where()
        limit = f" LIMIT {int(query.limit)}" if query and query.limit else ""
        with self._guard():
            rows = self._db.execute(
                "SELECT runs.*, (SELECT count(*) FROM calls WHERE calls.run_id = runs.run_id)"
                f" AS calls FROM runs{where} ORDER BY started_at DESC, run_id DESC{limit}",
                params,
            ).fetchall()
        return [dict(row) for row in rows]

    def calls(self, run_id: str) -> list[dict[str, Any]]:
        with self._guard():
            rows = self._db.execute(
                "SELECT * FROM calls WHERE run_id=? ORDER BY id", (run_id,)
            ).fetchall()
        calls = [dict(row) for row in rows]
        for call in calls:
            call["request"] = json.loads(call["request"]) if call["request"] else None
            call["reused"] = bool(call["reused"])
        return calls

    def run_ids(self) -> list[str]:
        with self._guard():
            return [row["run_id"] for row in self._db.execute("SELECT run_id FROM runs")]


def _open_read_only(path: Path) -> sqlite3.Connection:
    """A ledger nobody can write (its folder or file is read-only). Read-only mode needs the
    WAL's shared-memory file, which a read-only folder without one cannot make; then it is
    opened immutable: no process can be writing where nothing can be written (a WAL file
    left there by a crashed writer is not read). Writing to it fails as read-only."""
    uri = path.absolute().as_uri()
    for query in ("mode=ro", "mode=ro&immutable=1"):
        db = sqlite3.connect(f"{uri}?{query}", uri=True, isolation_level=None)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            break
        except sqlite3.OperationalError:
            db.close()
            if query.endswith("immutable=1"):
                raise
    if version != SCHEMA_VERSION:
        db.close()
        raise LedgerReadOnly(
            f"the ledger {path} has schema version {version} and cannot be written to upgrade "
            f"it (this council reads {SCHEMA_VERSION}): copy it somewhere writable"
        )
    return db


def _create(path: Path) -> None:
    """Build a new ledger beside ``path`` and link it into place: creation is atomic, so ten
    processes starting at once all open one complete ledger (the first link wins)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.new")
    try:
        db = sqlite3.connect(temporary, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # kept in the file: set once, here
            migrate(db)
        finally:
            db.close()
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
