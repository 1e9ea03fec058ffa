"""What was found when a run's verdict was checked: the mechanical check the engine makes after
the chair writes (``VerdictCheck``) and the audits of it (``VerdictAudit``, ``council audit``
or an ``auditor`` stage), each finding typed."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from council.records.record import Record

# What council found when it checked the chair's verdict (``council.engine.verdict_checks``):
# checked: it has every required section, filled, states the tally's outcome, names every
# dealbreaker and keeps to its length (at once, or when asked once more); unchecked: it still
# did not when asked once more, and ``reasons`` says what it lacks.
VerdictStatus = Literal["checked", "unchecked"]


class VerdictCheck(Record):
    """The mechanical check of the chair's verdict: its status, what it still lacks
    (``reasons``, empty when checked) and, when the chair was asked once more, what the first
    verdict lacked."""

    status: VerdictStatus
    reasons: list[str] = Field(default_factory=list)
    reasked: bool = False
    first_reasons: list[str] = Field(default_factory=list)


# A verdict audit (``council audit RUN``, or a protocol's ``auditor`` stage): what a check of the
# verdict against the transcript and tally found. Each finding is typed; ``mechanical`` ones
# come from council's own checks (no model, no cost), ``auditor`` ones from the auditor's reply.
AuditFindingKind = Literal[
    "outcome",  # the verdict states an outcome the tally did not come to
    "dealbreaker",  # a seat held a dealbreaker the verdict leaves out
    "minority",  # a position a seat held that the verdict does not represent
    "unsupported_claim",  # a claim nobody made in the transcript
    "other",
]
AuditSeverity = Literal["error", "warning", "info"]


class AuditFinding(Record):
    kind: AuditFindingKind
    severity: AuditSeverity
    quote: str = ""  # the verdict's words it is about; "" where the verdict leaves it out
    explanation: str
    source: Literal["mechanical", "auditor"] = "auditor"


class VerdictAudit(Record):
    """One audit of a run's verdict: who audited it (a model of a family other than the
    chair's, unless ``same_family``), and what it found."""

    auditor_model: str
    auditor_family: str
    chair_model: str | None = None
    chair_family: str | None = None
    same_family: bool = False  # the auditor shares the chair's family (asked for)
    stage: str | None = None  # the protocol's auditor stage; None: ``council audit``
    findings: list[AuditFinding] = Field(default_factory=list)
    # Why the auditor's own findings are missing (its call failed, its reply held no findings
    # JSON); the mechanical findings stand either way.
    error: str | None = None
    at: datetime | None = None

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)
