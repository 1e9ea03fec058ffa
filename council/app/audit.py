"""Auditing a recorded run's verdict: ``council audit RUN`` and ``council.audit(run)``.

The audit (``council.engine.audit``: council's mechanical checks first, then an auditor model
of a family other than the chair's) is appended to the run as one ``VerdictAudited`` event,
once per auditor model: asked again with the same model, it returns the audit the run holds
and calls nothing. The run folder's ``events.jsonl`` and ``transcript.md`` are written again
so they show it too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from council.base.errors import ConfigError
from council.base.runs_home import RUNS_HOME, RunsHome, runs_location
from council.engine.audit import (
    AUDIT_MAX_TOKENS,
    AuditCase,
    audit_with,
    choose_auditor,
    record_text,
)
from council.records.events import VerdictAudited
from council.records.fold import EmptyRun, fold_events
from council.records.run import RunResult, SeatAssignment
from council.records.transcript import synthesis_turn
from council.records.verdicts import VerdictAudit
from council.seats.seat import make_model
from council.store.folder import export_run
from council.store.ledger import Ledger
from council.store.loader import resolve_run_id


@dataclass(frozen=True)
class AuditOutcome:
    """An audit of a run, and whether it was made now (False: the run held it already)."""

    run_id: str
    audit: VerdictAudit
    new: bool


def _names(seat: SeatAssignment) -> list[str]:
    """Ways a verdict may name a seat when only its record is at hand: seat, persona, and the
    persona's last word ("council-ada" -> "ada")."""
    persona = seat.persona
    found = {seat.seat, persona, persona.replace("-", " "), persona.split("-")[-1]}
    return sorted((n for n in found if len(n) > 2), key=len, reverse=True)


def audit_case(result: RunResult) -> AuditCase:
    """What a recorded run's verdict is audited against (its turns before the verdict)."""
    verdict = synthesis_turn(result)
    stop = verdict.stage if verdict is not None else None
    record = [t for t in result.turns if t.stage != stop and not t.stage.startswith(f"{stop}.")]
    audited = {a.stage for a in result.audits if a.stage}
    record = [t for t in record if t.stage not in audited]
    return AuditCase(
        question=result.question,
        verdict=result.synthesis or "",
        tallies=result.tallies,
        names={s.seat: _names(s) for s in result.seats},
        record=record_text(record, result.tallies),
    )


def chair_model(result: RunResult) -> str | None:
    return next((s.model for s in result.seats if s.role == "chair"), None)


def audit_run(
    name: str,
    runs_dir: Path | str | RunsHome = RUNS_HOME,
    *,
    model: str | None = None,
    same_family: bool = False,
    endpoints: Mapping[str, str] | None = None,
    max_tokens: int = AUDIT_MAX_TOKENS,
) -> AuditOutcome:
    """Audit the verdict of the run ``name`` (an ID, a unique prefix or ``latest``) in
    ``runs_dir``'s ledger and append the audit to it. ``model``: the auditor (default: the
    first panel model of a family other than the chair's); ``same_family`` allows the chair's.
    ``endpoints`` (model -> base URL) add to those the run recorded; ``max_tokens`` caps the
    auditor's reply."""
    ledger = Ledger.existing(runs_location(runs_dir))
    try:
        run_id = resolve_run_id(ledger, name)
        try:
            result = fold_events(ledger.events(run_id))
        except EmptyRun:
            raise ConfigError(f"run {run_id}: no run_started event") from None
        if not result.synthesis:
            raise ConfigError(f"run {run_id} has no verdict to audit ({result.status})")
        chair = chair_model(result)
        panel = [s.model for s in result.seats if s.role == "panel"]
        chosen = choose_auditor(
            chair, list(dict.fromkeys(panel)), model=model, same_family=same_family
        )
        held = next((a for a in result.audits if a.auditor_model == chosen), None)
        if held is not None:
            return AuditOutcome(run_id, held, new=False)
        config = result.config
        auditor = make_model(
            chosen,
            endpoints={**(config.endpoints if config else {}), **(endpoints or {})},
            settings=config.calls if config else None,
            api_key_envs=config.spec.api_key_envs if config else None,
        )
        case = audit_case(result)
        audit = asyncio.run(audit_with(case, auditor, chair_model=chair, max_tokens=max_tokens))
        ledger.append(VerdictAudited(run_id=run_id, audit=audit))
        if result.run_dir and Path(result.run_dir).is_dir():
            export_run(ledger, run_id, Path(result.run_dir))
    finally:
        ledger.close()
    return AuditOutcome(run_id, audit, new=True)
