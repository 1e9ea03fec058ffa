"""Finding runs in the ledger: ``council runs list`` filters and ``council.find_runs``.

Every condition is a bound SQL parameter (a persona name or question text is data, never SQL);
text matches are case-insensitive substrings with ``%`` and ``_`` taken literally.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any


@dataclass(frozen=True)
class RunQuery:
    """Which runs to list; every field left at None matches all runs."""

    question: str | None = None  # words in the question
    persona: str | None = None  # a persona that held a seat (exact name)
    model: str | None = None  # part of a seat's model string
    protocol: str | None = None  # the protocol's name (exact)
    status: str | None = None  # completed, failed, running, ... as recorded
    since: date | None = None  # started on or after this day (UTC)
    until: date | None = None  # started on or before this day (UTC)
    limit: int | None = None

    def where(self) -> tuple[str, list[Any]]:
        """The SQL ``WHERE`` clause over ``runs`` and its parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.question:
            clauses.append("runs.question LIKE ? ESCAPE '\\'")
            params.append(_contains(self.question))
        if self.persona:
            clauses.append(
                "EXISTS (SELECT 1 FROM json_each(runs.seats)"
                " WHERE json_extract(json_each.value, '$.persona') = ?)"
            )
            params.append(self.persona)
        if self.model:
            clauses.append(
                "EXISTS (SELECT 1 FROM json_each(runs.seats)"
                " WHERE json_extract(json_each.value, '$.model') LIKE ? ESCAPE '\\')"
            )
            params.append(_contains(self.model))
        for column, value in (("protocol", self.protocol), ("status", self.status)):
            if value:
                clauses.append(f"runs.{column} = ?")
                params.append(value)
        if self.since:
            clauses.append("runs.started_at >= ?")
            params.append(self.since.isoformat())
        if self.until:
            clauses.append("runs.started_at < ?")
            params.append((self.until + timedelta(days=1)).isoformat())
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _contains(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
