"""The ledger: the one store of runs. Every event of every run, in one SQLite database (WAL).

The ``events`` table is the record; ``runs`` and ``calls`` are indexes kept in the same
transaction as the event they come from (a run's status, a call's request hash for reuse).
Events are committed as they happen (the run recorder commits those that come together in one
transaction), before any later stage can read them.

Durability: the ledger runs WAL with ``synchronous=NORMAL``. A commit is in the log, in the
operating system's hands, when it returns: a run killed at any point (SIGKILL included) keeps
every committed event, so every finished turn. What NORMAL does not survive is a power cut or
an operating-system crash: those can lose the last transactions before the log was synced
(never damage the ledger). ``COUNCIL_FSYNC=every-turn`` syncs the log to the disk before a run
starts, before each finished turn counts as done and when the run ends (turns finishing
together share one sync), for councils whose every paid answer must survive a power cut.

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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from council.base.errors import (
    ConfigError,
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
from council.store import wal
from council.store.query import RunQuery
from council.store.schema import SCHEMA_VERSION, migrate

LEDGER_FILE = "ledger.sqlite"
RESERVE_BYTES = 512 * 1024  # freed on a full disk so the run can record how it ended
BUSY_TIMEOUT_ENV = "COUNCIL_LEDGER_BUSY_TIMEOUT_S"
FSYNC_ENV = "COUNCIL_FSYNC"
FSYNC_CHOICES = ("every-turn", "off")  # off: WAL with synchronous=NORMAL (see above)
GROWTH_CHECK_COMMITS = 64  # how often a writer looks at the log's size


def fsync_every_turn() -> bool:
    """Whether ``COUNCIL_FSYNC`` asks for the log to be synced for every finished turn."""
    value = os.environ.get(FSYNC_ENV, "").strip().lower() or "off"
    if value not in FSYNC_CHOICES:
        raise ConfigError(f"{FSYNC_ENV}={value!r}: expected one of {', '.join(FSYNC_CHOICES)}")
    return value == "every-turn"


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
        self._commits = 0
        self._dir_synced = False
        # A writer's log outlives its connection (no checkpoint on the run's path: wal.py).
        self._kept = path is not None and not read_only and wal.hold(path)
        if self._kept:
            self._db.execute("PRAGMA wal_autocheckpoint=0")

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
            db.execute("PRAGMA synchronous=NORMAL")  # survives SIGKILL; see the module's note
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
        if self._kept:
            assert self.path is not None
            self._kept = False
            wal.release(self.path, wal_bytes=self._wal_bytes())

    def _wal_bytes(self) -> int:
        try:
            return os.stat(f"{self.path}-wal").st_size
        except OSError:
            return 0

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

    def append(self, event: Event) -> None:
        """Commit one event, with the index rows it implies, in one transaction."""
        self.append_many([(event, event_json(event))])

    def append_many(self, entries: Sequence[tuple[Event, str]]) -> None:
        """Commit events, each with its line (``event_json``, made once by the caller), and the
        index rows they imply, in one transaction: all of them or none."""
        if any(not event.durable for event, _ in entries):
            raise ValueError("a live event is never stored in the ledger")
        with self._guard():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                next_seq: dict[str, int] = {}
                for event, line in entries:
                    seq = (
                        next_seq.get(event.run_id)
                        or self._db.execute(
                            "SELECT coalesce(max(seq), 0) + 1 FROM events WHERE run_id=?",
                            (event.run_id,),
                        ).fetchone()[0]
                    )
                    self._db.execute(
                        "INSERT INTO events (run_id, seq, type, body) VALUES (?, ?, ?, ?)",
                        (event.run_id, seq, event.type, line),
                    )
                    next_seq[event.run_id] = seq + 1
                    self._index(event)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        self._commits += 1
        if self._kept and self._commits % GROWTH_CHECK_COMMITS == 0:
            assert self.path is not None
            wal.grown(self.path, wal_bytes=self._wal_bytes())

    def sync_to_disk(self) -> None:
        """Sync the write-ahead log, as a FULL commit would: every event committed so far
        survives a power cut. Safe from another thread; one sync covers every commit before
        it, however many. The first also syncs the folder, which holds the log's name."""
        if self.path is None:
            return
        with self._guard():
            try:
                log = os.open(f"{self.path}-wal", os.O_RDONLY)
            except FileNotFoundError:
                return  # checkpointed into the database file, which the checkpoint synced
            try:
                os.fsync(log)
            finally:
                os.close(log)
            if not self._dir_synced:
                folder = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(folder)
                finally:
                    os.close(folder)
                self._dir_synced = True

    def _index(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            h = event.header
            config = event.config.model_dump_json() if event.config else "null"
            seats = json.dumps({s.seat: s.to_json() for s in h.seats})
            self._db.execute(
                "INSERT INTO runs (run_id, question, protocol, protocol_hash, status, started_at,"
                " run_dir, seats, config, parent_run) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)"
                " ON CONFLICT(run_id) DO UPDATE SET status='running', error=NULL,"
                " finished_at=NULL",
                (
                    h.run_id,
                    h.question,
                    h.protocol,
                    h.protocol_hash,
                    h.started_at.isoformat(),
                    h.run_dir,
                    seats,
                    config,
                    h.parent_run,
                ),
            )
        elif isinstance(event, TurnFinished):
            t = event.turn
            request = t.request.model_dump_json() if t.request else None
            self._db.execute(
                "INSERT INTO calls (run_id, stage, round, seat, persona, provider, model,"
                " request_hash, content, error, prompt_tokens, completion_tokens, cost_usd,"
                " latency_s, attempts, reused, started_at, request)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    t.run_id,
                    t.stage,
                    t.round,
                    t.seat,
                    t.persona,
                    t.provider,
                    t.model,
                    t.request_hash,
                    t.content,
                    t.error,
                    t.prompt_tokens,
                    t.completion_tokens,
                    t.cost_usd,
                    t.latency_s,
                    t.attempts,
                    int(t.reused),
                    t.started_at.isoformat(),
                    request,
                ),
            )
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

    def follow_ups(self, run_id: str) -> list[str]:
        """The runs that follow ``run_id`` (its children in a thread), oldest first."""
        with self._guard():
            rows = self._db.execute(
                "SELECT run_id FROM runs WHERE parent_run=? ORDER BY started_at, run_id",
                (run_id,),
            ).fetchall()
        return [row["run_id"] for row in rows]

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
