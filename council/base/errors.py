"""The project's own error types.

Every mistake a user can make (a malformed card, an unknown persona, a protocol with a cycle)
ends in a ``CouncilError`` whose ``str()`` is one clear line; the CLI prints that line and exits
non-zero instead of showing a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any


class CouncilError(Exception):
    """Base class for errors caused by user input or by a failed run."""


class SourceError(CouncilError):
    """A user-authored file (persona card, protocol) is malformed.

    Carries the file, and where known the 1-based line and the field, so the message reads
    ``personas/popper.md:7: field 'traits': Input should be a valid list``.
    """

    def __init__(
        self, path: Path | str, message: str, *, line: int | None = None, field: str | None = None
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.field = field
        self.message = message
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        what = f"field '{field}': {message}" if field else message
        super().__init__(f"{where}: {what}")


class CardError(SourceError):
    """A persona card is malformed or its template cannot be rendered."""


class ProtocolError(SourceError):
    """A protocol file is malformed or does not compile to a valid stage graph."""


class UnknownNameError(CouncilError):
    """A persona, protocol or seat name that does not exist; the message lists the known ones."""

    def __init__(self, kind: str, name: str, available: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.available = sorted(available)
        listing = ", ".join(self.available) if self.available else "none found"
        super().__init__(f"unknown {kind} '{name}'; available: {listing}")


class ConfigError(CouncilError):
    """Invalid settings given on the command line or to the Python API."""


class ModelCallError(CouncilError):
    """A model call failed for good (after retries, or with an error that is not retried)."""

    def __init__(self, message: str, *, retryable: bool, attempts: int) -> None:
        self.retryable = retryable
        self.attempts = attempts
        super().__init__(message)


class RunFailed(CouncilError):
    """The protocol cannot go on (a stage fell below its quorum); finished turns are kept."""


class RunInProgress(CouncilError):
    """A run that another live process is still running: resuming it would call twice."""

    exit_code = 69


class StorageError(CouncilError):
    """The ledger cannot be read or written. Each kind exits with its own status, so scripts
    can tell a full disk from a locked or damaged ledger."""

    exit_code = 70


class LedgerReadOnly(StorageError):
    exit_code = 73


class LedgerFull(StorageError):
    exit_code = 74


class LedgerBusy(StorageError):
    exit_code = 75


class LedgerDamaged(StorageError):
    exit_code = 76


class LedgerTooNew(StorageError):
    exit_code = 77


def first_problem(exc: Any, top: str) -> str:
    """A pydantic ``ValidationError`` as one line: its first error's place (dotted; ``top``
    when the whole value is wrong) and message."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or top
    return f"{where}: {first['msg']}"
