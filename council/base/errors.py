"""The project's own error types.

Every mistake a user can make (a malformed card, an unknown persona, a protocol with a cycle)
ends in a ``CouncilError`` whose ``str()`` is one clear line; the CLI prints that line and exits
non-zero instead of showing a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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
    """A model call failed for good (after retries, or with an error that is not retried).
    ``queue_s`` and ``start_s`` say how long it waited before its model worked on it (a turn
    on a local server, a warm worker or server starting), as a turn records them."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        attempts: int,
        queue_s: float = 0.0,
        start_s: float = 0.0,
    ) -> None:
        self.retryable = retryable
        self.attempts = attempts
        self.queue_s = queue_s
        self.start_s = start_s
        super().__init__(message)


@dataclass(frozen=True)
class SeatProblem:
    """What one seat's model needs before it can be called, and how to give it that."""

    seat: str
    model: str
    need: str  # "OPENAI_API_KEY", "a server answering at http://127.0.0.1:8080/v1"
    fix: str  # "export it, or seat another model: council models"

    @property
    def line(self) -> str:
        return f"seat {self.seat}: {self.model} needs {self.need} ({self.fix})"


class PreflightError(CouncilError):
    """Seats whose models cannot be called here (a key not set, a server not answering, a
    bundled model not installed, a setting the model does not take), found before any call:
    nothing was spent. ``problems`` holds one per seat; the message is one line per seat.
    Exit status 78 (sysexits' EX_CONFIG)."""

    exit_code = 78

    def __init__(self, problems: Iterable[SeatProblem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = (
            f"pre-flight: {count} seat{'s' if count != 1 else ''} cannot be called here; "
            "nothing was sent (--allow-absent convenes without them)"
        )
        super().__init__("\n".join([head, *(p.line for p in self.problems)]))


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
