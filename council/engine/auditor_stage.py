"""The ``auditor`` stage kind: the verdict audit (``council.engine.audit``) inside a run.

The stage seats one auditor: the first seat its selector names whose model is of a family
other than the chair's (``same_family: true`` lets the chair's family sit when no other is
there). With none, the stage is skipped and says why. The seat reads what the stage ``sees``
(the synthesis among it), is told the tally and what council's own checks already found, and
answers with findings as JSON (held to ``FINDINGS_SCHEMA`` where its model takes a schema).
Its reply, read leniently, joins the mechanical findings in one ``VerdictAudited`` event.
"""

from __future__ import annotations

from typing import Protocol, cast

from council.engine.audit import (
    FINDINGS_SCHEMA,
    AuditCase,
    audit_instruction,
    audit_record,
    mechanical_findings,
)
from council.engine.context import name_variants
from council.engine.seating import select_seats
from council.engine.stage_kinds import Instruction, RunState, StageKind, register_stage_kind
from council.protocols.graph import Protocol as Compiled
from council.protocols.spec import SpeakingStage
from council.records.run import Turn
from council.records.verdicts import VerdictAudit
from council.seats.routing import model_family
from council.seats.seat import Seat


class AuditRun(RunState, Protocol):
    """What the auditor stage reads of the run, and how it records its audit."""

    question: str
    protocol: Compiled
    panel: list[Seat]
    chair: Seat

    def previous_turns(self, stage_id: str) -> list[Turn]: ...

    def record_audit(self, audit: VerdictAudit) -> None: ...


def _auditor(run: AuditRun, stage: SpeakingStage, chosen: list[Seat]) -> Seat | None:
    chair = model_family(run.chair.model.model)
    other = [seat for seat in chosen if model_family(seat.model.model) != chair]
    if other:
        return other[0]
    return chosen[0] if chosen and getattr(stage, "same_family", False) else None


def _case(run: AuditRun) -> AuditCase:
    verdict = next((t for t in run.previous_turns(run.protocol.synthesis.id) if t.ok), None)
    names = {name: [name, *name_variants(seat)] for name, seat in run.seats.items()}
    return AuditCase(
        question=run.question,
        verdict=(verdict.text if verdict is not None else None) or "",
        tallies=list(run.tallies.values()),
        names=names,
        record="",  # the seat reads the record in its prompt, as the stage sees it
    )


class AuditorKind(StageKind):
    async def skip_reason(
        self, run: RunState, stage: SpeakingStage, round_number: int
    ) -> str | None:
        audit_run = cast(AuditRun, run)
        chosen = select_seats(stage.seats, audit_run.panel, audit_run.chair)
        if _auditor(audit_run, stage, chosen) is not None:
            return None
        family = model_family(audit_run.chair.model.model)
        return (
            f"no seat on a model family other than the chair's ({family}) to audit the "
            "verdict (same_family: true seats one of the chair's)"
        )

    def seats(self, run: RunState, stage: SpeakingStage, chosen: list[Seat]) -> list[Seat]:
        auditor = _auditor(cast(AuditRun, run), stage, chosen)
        return [auditor] if auditor is not None else []

    def instruction(self, run: RunState, stage: SpeakingStage, seat: Seat) -> Instruction:
        case = _case(cast(AuditRun, run))
        return audit_instruction(case, mechanical_findings(case)), "audit", ()

    def response_schema(
        self, run: RunState, stage: SpeakingStage, seat: Seat
    ) -> dict[str, object] | None:
        return FINDINGS_SCHEMA if seat.model.structured_output else None

    async def follow_up(
        self, run: RunState, stage: SpeakingStage, turns: list[Turn], round_number: int
    ) -> list[Turn]:
        audit_run = cast(AuditRun, run)
        if not turns:
            return turns
        turn = turns[0]
        audit = audit_record(
            _case(audit_run),
            turn.content if turn.ok else None,
            auditor_model=turn.model,
            chair_model=audit_run.chair.model.model,
            error=None if turn.ok else turn.error,
            stage=stage.id,
        )
        audit_run.record_audit(audit)
        return turns


register_stage_kind("auditor", AuditorKind())
