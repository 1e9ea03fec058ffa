"""Documents a council was given as evidence, what each seat was shown of them, and the
citations its replies make, as recorded.

A document is named by a short id (``D1``, ``D2``, ...), its lines numbered from 1; a seat cites
a passage as ``[D2:14-20]`` (or ``[D2:14]``), optionally followed by a short quote in double
quotes, which must occur in those lines. Each citation is checked after the turn and kept with
it, valid or not, with the reason when not.
"""

from __future__ import annotations

from pydantic import Field

from council.records.record import Record


class DocumentInfo(Record):
    """One context document as the ledger keeps it: never its text, which may be private."""

    id: str  # D1, D2, ... in the order the documents were given
    path: str  # as given (redacted like every recorded text)
    sha256: str  # of the file's bytes
    bytes: int
    lines: int  # of its text, as numbered for citations
    pages: int | None = Field(default=None, exclude_if=lambda v: v is None)  # PDF only


class Passage(Record):
    """Lines ``start``..``end`` (1-based, inclusive) of one document."""

    doc: str
    start: int
    end: int

    @property
    def label(self) -> str:
        return f"{self.doc}:{self.start}-{self.end}"


class Citation(Record):
    """A citation a reply made, and whether council found it supported."""

    doc: str
    start: int
    end: int
    quote: str | None = Field(default=None, exclude_if=lambda v: v is None)
    valid: bool
    problem: str | None = Field(default=None, exclude_if=lambda v: v is None)  # when not valid

    @property
    def label(self) -> str:
        lines = f"{self.start}" if self.start == self.end else f"{self.start}-{self.end}"
        return f"[{self.doc}:{lines}]"

    @property
    def note(self) -> str:
        """``[D2:14-20]`` when valid; ``[D9:1] unsupported (no document D9)`` when not."""
        return self.label if self.valid else f"{self.label} unsupported ({self.problem})"


class ToolCall(Record):
    """A read-only context tool a seat called during its turn (``search_context``,
    ``read_context``): what it asked, how much came back, or why it failed. The result's text
    is not kept: it is lines of the documents, which the run already names by hash."""

    name: str
    arguments: str  # as the model wrote them (cut to 300 characters)
    result_chars: int = 0
    ok: bool = True
    error: str | None = Field(default=None, exclude_if=lambda v: v is None)

    @property
    def note(self) -> str:
        call = f"{self.name}({self.arguments})"
        return f"{call} -> {self.result_chars} chars" if self.ok else f"{call} -> {self.error}"


def tool_calls_line(calls: list[ToolCall]) -> str | None:
    """A turn's tool calls in one line; None when it made none."""
    if not calls:
        return None
    return f"Tool calls ({len(calls)}): " + " · ".join(c.note for c in calls)


def citations_line(citations: list[Citation]) -> str | None:
    """A turn's citations in one line, the unsupported ones marked; None when it made none."""
    if not citations:
        return None
    bad = sum(not c.valid for c in citations)
    counted = f"{len(citations)} cited, {bad} unsupported" if bad else f"{len(citations)} cited"
    return f"Citations ({counted}): " + " · ".join(c.note for c in citations)


def documents_lines(documents: list[DocumentInfo]) -> list[str]:
    """The run's documents, one line each: id, path, size, hash."""
    return [
        f"{d.id} {d.path} ({d.lines} lines"
        + (f", {d.pages} pages" if d.pages is not None else "")
        + f", {d.bytes} bytes, sha256 {d.sha256[:12]})"
        for d in documents
    ]
