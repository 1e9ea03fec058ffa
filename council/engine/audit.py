"""The verdict audit: a seat of another model family checks the chair's verdict against the
transcript and the tally, after council's own checks have read it for nothing.

Two passes, both recorded as typed findings (``council.records.verdicts.AuditFinding``):

- **mechanical** (no model, no cost, always first): the verdict states the outcome the tally
  came to (``verdict_checks.outcome_problem``: saying "consensus" of a split is an error),
  names every seat that held a dealbreaker (nyk's ``DEALBREAKER: yes``; an error when left
  out), and represents each position outvoted in the tally by its words or a holder's name (a
  warning when not). These catches never depend on the auditor model.
- **auditor**: a model of a family other than the chair's (``choose_auditor``) reads the
  record, the tally and the verdict, and answers with findings as JSON held to
  ``FINDINGS_SCHEMA`` (litellm's ``response_format``, where its model takes one); a reply that
  wraps the JSON in prose is read leniently, as ballots are (``read_findings``). It is asked
  for the checks a word match cannot make: a claim no seat made in the transcript.

``council audit RUN`` (``council.app.audit``) runs both on a recorded run; a protocol's
``auditor`` stage runs them inside the run (``AuditorKind``). Either records one
``VerdictAudited`` event.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pydantic import ValidationError

from council.base.errors import ConfigError, ModelCallError
from council.engine.verdict_checks import (
    VerdictFacts,
    outcome_problem,
    stated_outcomes,
    unnamed_dealbreakers,
)
from council.records.describe import describe_tally
from council.records.replies import json_values
from council.records.run import Tally, Turn
from council.records.verdicts import AuditFinding, VerdictAudit
from council.seats.model import ChatModel, ModelRequest
from council.seats.routing import model_family

KINDS = ("outcome", "dealbreaker", "minority", "unsupported_claim", "other")
SEVERITIES = ("error", "warning", "info")
AUDIT_MAX_TOKENS = 1200
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")

FINDINGS_SCHEMA: dict[str, Any] = {
    "title": "verdict_audit",
    "type": "object",
    "properties": {
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "kind": {"enum": list(KINDS)},
                    "severity": {"enum": list(SEVERITIES)},
                    "quote": {"type": "string"},
                    "explanation": {"type": "string"},
                },
                "required": ["kind", "severity", "quote", "explanation"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["findings"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class AuditCase:
    """What a verdict is audited against: the question, the verdict, the vote tallies it read
    (the last with an outcome is the one it must state), the names each seat goes by, and the
    deliberation as text (the record a claim must come from)."""

    question: str
    verdict: str
    tallies: Sequence[Tally]
    names: Mapping[str, list[str]]
    record: str

    @property
    def tally(self) -> Tally | None:
        votes = [t for t in self.tallies if t.kind == "vote" and t.outcome and t.rule != "median"]
        return votes[-1] if votes else None

    @property
    def facts(self) -> VerdictFacts:
        return VerdictFacts(tally=self.tally, names=self.names, question=self.question)


def record_text(turns: Iterable[Turn], tallies: Iterable[Tally]) -> str:
    """The deliberation as the auditor reads it: each stage's replies, then its tally."""
    by_stage = {(t.stage, t.round): t for t in tallies}
    groups: dict[tuple[str, int], list[Turn]] = {}
    for turn in turns:
        groups.setdefault((turn.stage, turn.round), []).append(turn)
    lines: list[str] = []
    for (stage, round_number), group in groups.items():
        lines.append(f"## {stage}" + (f" (round {round_number})" if round_number else ""))
        for turn in group:
            lines += [f"### {turn.seat}", turn.text if turn.ok and turn.text else "(no answer)"]
        if (stage, round_number) in by_stage:
            lines.append(describe_tally(by_stage[(stage, round_number)], {}))
        lines.append("")
    return "\n".join(lines)


def _sentence_with_outcome(verdict: str) -> str:
    """The verdict's first sentence that states a vote outcome (what a finding quotes)."""
    prose = "\n".join(line for line in verdict.splitlines() if not line.lstrip().startswith("#"))
    for sentence in _SENTENCE.findall(prose):
        if stated_outcomes(sentence):
            return " ".join(sentence.split())[:300]
    return ""


def mechanical_findings(case: AuditCase) -> list[AuditFinding]:
    """What council's own checks find: a misstated outcome and a dropped dealbreaker
    (errors), an outvoted position the verdict does not represent (a warning)."""
    found: list[AuditFinding] = []
    facts = case.facts
    problem = outcome_problem(case.verdict, facts)
    if problem is not None:
        found.append(_mechanical("outcome", "error", _sentence_with_outcome(case.verdict), problem))
    for seat in unnamed_dealbreakers(case.verdict, facts):
        found.append(
            _mechanical(
                "dealbreaker",
                "error",
                "",
                f"{seat} held a dealbreaker (DEALBREAKER: yes) and the verdict never names it",
            )
        )
    found += _unrepresented(case)
    return found


def _unrepresented(case: AuditCase) -> list[AuditFinding]:
    """Positions outvoted (every position, when no option carried) that the verdict names
    neither by their words nor by any seat that held them."""
    tally = case.tally
    if tally is None:
        return []
    held: dict[str, list[str]] = {}
    for ballot in tally.ballots:
        if ballot.valid and ballot.stance and ballot.stance != tally.winner:
            held.setdefault(ballot.stance, []).append(ballot.seat)
    text = case.verdict.lower()
    found = []
    for stance, seats in held.items():
        names = [n for seat in seats for n in case.names.get(seat, [seat])]
        if stance.lower() in text or any(_named(n, case.verdict) for n in names):
            continue
        found.append(
            _mechanical(
                "minority",
                "warning",
                "",
                f"the position '{stance}' ({', '.join(seats)}) is not represented in the verdict",
            )
        )
    return found


def _named(name: str, text: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", text, re.IGNORECASE) is not None


def _mechanical(kind: str, severity: str, quote: str, explanation: str) -> AuditFinding:
    return AuditFinding.model_validate(
        {
            "kind": kind,
            "severity": severity,
            "quote": quote,
            "explanation": explanation,
            "source": "mechanical",
        }
    )


def audit_instruction(case: AuditCase, mechanical: Sequence[AuditFinding]) -> str:
    """What the auditor is asked, after the record and the verdict."""
    tally = case.tally
    lines = [
        "You are auditing the chair's verdict of the council above. Check it against the "
        "deliberation and the tally only:",
        "- is the vote's outcome stated as the tally gives it?",
        "- is every dealbreaker, and every minority position, represented?",
        "- does it make any claim that no member made in the deliberation?",
    ]
    if tally is not None:
        lines.append(f"The tally: {describe_tally(tally, {})}")
    if mechanical:
        lines.append("Council's own checks already found (do not repeat these):")
        lines += [f"- {f.kind}: {f.explanation}" for f in mechanical]
    kinds, severities = ", ".join(KINDS), ", ".join(SEVERITIES)
    lines += [
        "Answer with one JSON object and nothing else: "
        '{"findings": [{"kind": ..., "severity": ..., "quote": ..., "explanation": ...}]}',
        f"kind is one of {kinds}; severity one of {severities} (error: the verdict misstates "
        "or leaves out something the record holds); quote: the verdict's own words the "
        'finding is about, exactly, or "" for something it leaves out; explanation: one '
        'sentence. A faithful verdict gets {"findings": []}.',
    ]
    return "\n".join(lines)


def audit_messages(case: AuditCase, mechanical: Sequence[AuditFinding]) -> list[dict[str, str]]:
    """The auditor's call when it audits a recorded run (``council audit``)."""
    user = "\n\n".join(
        [
            f"The question before the council: {case.question}",
            "# The deliberation\n\n" + case.record,
            "# The chair's verdict\n\n" + case.verdict,
            audit_instruction(case, mechanical),
        ]
    )
    system = (
        "You audit the verdicts of a council of advisors: you check that a verdict reports "
        "the deliberation faithfully. You do not judge whether its conclusion is right."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def read_findings(text: str) -> list[AuditFinding] | None:
    """The auditor's findings from its reply: the last JSON object holding ``findings``,
    failing that the last bare JSON list of them, wherever prose puts it; None when the reply
    holds neither. A finding of no known kind reads as ``other``, of no known severity as a
    warning; one with no explanation is left out."""
    wrapped: list[Any] | None = None
    bare: list[Any] | None = None
    for _, value in json_values(text, "[{"):
        if isinstance(value, dict) and isinstance(value.get("findings"), list):
            wrapped = value["findings"]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            bare = value
    found = wrapped if wrapped is not None else bare
    if found is None:
        return None
    return [f for item in found if isinstance(item, dict) and (f := _finding(item)) is not None]


def _finding(item: Mapping[str, Any]) -> AuditFinding | None:
    explanation = str(item.get("explanation") or "").strip()
    if not explanation:
        return None
    kind = str(item.get("kind") or "").strip().lower().replace(" ", "_")
    severity = str(item.get("severity") or "").strip().lower()
    try:
        return AuditFinding(
            kind=cast(Any, kind if kind in KINDS else "other"),
            severity=cast(Any, severity if severity in SEVERITIES else "warning"),
            quote=str(item.get("quote") or ""),
            explanation=explanation,
        )
    except ValidationError:
        return None


def choose_auditor(
    chair_model: str | None,
    candidates: Sequence[str],
    *,
    model: str | None = None,
    same_family: bool = False,
) -> str:
    """The auditor's model: ``model`` when given, else the first of ``candidates`` (the
    panel's models) of a family other than the chair's. Refused in one line when only the
    chair's family is on offer, unless ``same_family``."""
    chair = model_family(chair_model) if chair_model else None
    if model is not None:
        if chair is not None and model_family(model) == chair and not same_family:
            raise ConfigError(
                f"auditor model {model} is of the chair's family ({chair}): name one of "
                "another family, or pass --same-family"
            )
        return model
    other = [m for m in candidates if model_family(m) != chair]
    if other:
        return other[0]
    if same_family and candidates:
        return candidates[0]
    raise ConfigError(
        f"every model of this run is of the chair's family ({chair}): name an auditor of "
        "another family with --model, or pass --same-family"
    )


def audit_record(
    case: AuditCase,
    reply: str | None,
    *,
    auditor_model: str,
    chair_model: str | None,
    error: str | None = None,
    stage: str | None = None,
) -> VerdictAudit:
    """The audit: the mechanical findings, then the auditor's as its reply gives them."""
    findings = mechanical_findings(case)
    read = read_findings(reply) if reply is not None else None
    if read is None and error is None:
        error = "the auditor's reply held no findings JSON"
    family = model_family(auditor_model)
    chair = model_family(chair_model) if chair_model else None
    return VerdictAudit(
        auditor_model=auditor_model,
        auditor_family=family,
        chair_model=chair_model,
        chair_family=chair,
        same_family=family == chair,
        stage=stage,
        findings=[*findings, *(read or [])],
        error=error,
    )


async def audit_with(
    case: AuditCase,
    model: ChatModel,
    *,
    chair_model: str | None,
    temperature: float = 0.0,
    max_tokens: int = AUDIT_MAX_TOKENS,
) -> VerdictAudit:
    """Audit a recorded verdict with ``model``: one call, its reply held to the findings
    schema where the model takes one. A failed call leaves the mechanical findings."""
    mechanical = mechanical_findings(case)
    request = ModelRequest(
        stage="audit",
        messages=audit_messages(case, mechanical),
        max_tokens=max_tokens,
        temperature=temperature,
        seat="auditor",
        kind="auditor",
        expects="audit",
        response_schema=FINDINGS_SCHEMA if model.structured_output else None,
    )
    try:
        completion = await model.complete(request)
    except ModelCallError as exc:
        return audit_record(
            case, None, auditor_model=model.model, chair_model=chair_model, error=str(exc)
        )
    return audit_record(
        case,
        completion.content,
        auditor_model=model.model,
        chair_model=chair_model,
        error=completion.problem,
    )
