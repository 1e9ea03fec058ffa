"""Tallies in words, for the seats that read them (the chair among them), the transcript and
the MCP answer.

A vote by weight (majority, supermajority, confidence-weighted) is written as nyk's STEP 6
asks the Vote Tally to be (SKILL.md v1.2.0, MIT, 0xNyk): one line per option with its weight
and its backers, the seat that carried a domain weight (or that none did), each backer's
confidence factor, the total of base weights, the weight needed and whether it was cleared;
then who abstained, whose ballot went uncounted, every dealbreaker, and on a split each
option's strongest argument. For example::

    **Vote tally** (confidence_weighted, ballot nyk):
    - monorepo — 2.25 (ada [1.5× domain, high], feynman [med → 0.75]) — did not clear 2.333
    - polyrepo — 1.0 (torvalds [high])
    - W_total 3.5 · threshold 2/3 → 2.333 · no option carries → escalated to the user
"""

from __future__ import annotations

from fractions import Fraction

from council.records.run import Ballot, SessionMetadata, Tally
from council.records.verdicts import AuditFinding, VerdictAudit

HARMFUL = "the opposing option is actively harmful, not merely sub-optimal"


def weight(value: float) -> str:
    """A weight as nyk writes it: 1.0, 2.25, 2.333."""
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _fraction(value: float) -> str:
    share = Fraction(value).limit_denominator(100)
    if abs(float(share) - value) < 1e-3:
        return f"{share.numerator}/{share.denominator}"
    return f"{value:g}"


def describe_tally(tally: Tally, name: dict[str, str]) -> str:
    """What the tally decided and how; ``name`` maps seats to how this reader knows them."""
    if tally.kind == "ranking":
        order = sorted(tally.scores.items(), key=lambda item: item[1])
        places = ", ".join(
            f"{i}. {name.get(s, s)} (average place {v:.2f})" for i, (s, v) in enumerate(order, 1)
        )
        return f"Aggregate ranking: {places}."
    if tally.rule in ("median", "borda"):
        return _describe_other(tally, name)
    return "\n".join(_weighted_lines(tally, name) + _notes(tally, name) + _effective(tally))


def _effective(tally: Tally) -> list[str]:
    """Effective votes beside the tally (issue 31), and the warning when the consensus rests
    on correlated seats."""
    found = tally.effective_votes
    if found is None:
        return []
    line = (
        f"Effective votes: {found.n} seats, about {found.n_eff:.1f} independent votes "
        f"({found.low:.1f} to {found.high:.1f}); basis: {found.basis}."
    )
    if found.note:  # n_eff well below n (the meter's CORRELATED share)
        line += (
            " The consensus rests on correlated seats: it counts fewer independent votes "
            "than seats."
            if tally.consensus
            else " The seats' votes are correlated."
        )
    return [line]


def _backer(tally: Tally, ballot: Ballot, name: dict[str, str]) -> str:
    base = tally.weights.get(ballot.seat, 1.0)
    kind = "independence" if tally.rule == "independence_weighted" else "domain"
    parts = [f"{weight(base)}× {kind}"] if base != 1.0 else []
    if tally.rule == "confidence_weighted":
        level = ballot.confidence_label or f"{ballot.confidence:g}"
        vote = base * ballot.confidence
        parts.append(level + (f" → {weight(vote)}" if vote != base else ""))
    return name.get(ballot.seat, ballot.seat) + (f" [{', '.join(parts)}]" if parts else "")


def _weighted_lines(tally: Tally, name: dict[str, str]) -> list[str]:
    ballot = f", ballot {tally.ballot}" if tally.ballot else ""
    lines = [f"**Vote tally** ({tally.rule}{ballot}):"]
    needed = tally.needed if tally.needed is not None else 0.0
    bar = f"more than {weight(needed)}" if tally.rule == "majority" else weight(needed)
    top = max(tally.scores.values(), default=None)
    for option, score in tally.scores.items():
        backers = [b for b in tally.ballots if b.valid and b.stance == option]
        who = ", ".join(_backer(tally, b, name) for b in backers)
        line = f"- {option} — {weight(score)} ({who})"
        if score == top:
            cleared = tally.consensus and option == tally.winner
            line += f" — {'cleared' if cleared else 'did not clear'} the {bar} threshold"
        lines.append(line)
    if not tally.scores:
        lines.append("- no option was backed")
    share = _fraction(tally.threshold or 0)
    total = weight(tally.denominator or 0)
    lines.append(f"- W_total {total} · threshold {share} → {bar} · {_outcome(tally)}")
    return lines


def _outcome(tally: Tally) -> str:
    if tally.consensus and tally.winner:
        return f"**{tally.winner} carries** (consensus)"
    if tally.outcome == "inconclusive":
        uncounted = sum(tally.weights.get(s, 1.0) for s in tally.invalid)
        return (
            f"**inconclusive**: no option carries, and the uncounted ballots (weight "
            f"{weight(uncounted)}) could have decided it → the council's answer is unknown"
        )
    if tally.tied:
        return (
            f"**no option carries**: {' and '.join(tally.tied)} tie, a live split (no "
            "further breaker by design) → escalated to the user"
        )
    return "**no option carries** (No consensus reached) → escalated to the user"


def _notes(tally: Tally, name: dict[str, str]) -> list[str]:
    heavy = [s for s, w in tally.weights.items() if w != 1.0]
    if tally.rule == "independence_weighted":  # each seat's weight is its independence's
        shown = ", ".join(f"{name.get(s, s)} {weight(w)}" for s, w in tally.weights.items())
        heavy, independence = [], [f"Independence weights (base x independence): {shown}."]
    else:
        independence = []
    domain = (
        "Domain-weight seat: "
        + ", ".join(f"{name.get(s, s)} ({weight(tally.weights[s])}×)" for s in heavy)
        if heavy
        else "No seat carried 1.5× (no domain-weight seat)."
    )
    notes = [*independence, domain]
    if tally.abstained:
        shown = ", ".join(name.get(s, s) for s in tally.abstained)
        notes.append(f"Abstained (counted in W_total at full base weight): {shown}.")
    if tally.invalid:
        why = {b.seat: b.problem for b in tally.ballots if not b.valid}
        shown = "; ".join(f"{name.get(s, s)} ({why.get(s) or 'unreadable'})" for s in tally.invalid)
        notes.append(f"Uncounted (in W_total, backing nothing): {shown}.")
    if tally.merged:
        notes.append(
            "Merged: " + ", ".join(f"'{raw}' → {canon}" for raw, canon in tally.merged.items())
        )
    notes += _dealbreakers(tally, name)
    if not tally.consensus and tally.arguments:
        notes.append(
            "Strongest argument for each option: "
            + "; ".join(f"{option}: {reason}" for option, reason in tally.arguments.items())
        )
    return notes


def _dealbreakers(tally: Tally, name: dict[str, str]) -> list[str]:
    held = [b for b in tally.ballots if b.valid and b.dealbreaker]
    if not held:
        return []
    if tally.dealbreaker == "harmful":
        who = ", ".join(f"{name.get(b.seat, b.seat)} (backs {b.stance})" for b in held)
        return [f"Dealbreakers ({HARMFUL}; in the Minority Report even if outvoted): {who}."]
    return [
        "Dealbreakers: "
        + "; ".join(f"{name.get(b.seat, b.seat)}: {b.dealbreaker}" for b in held)
        + "."
    ]


def _describe_other(tally: Tally, name: dict[str, str]) -> str:
    """Borda points and Delphi medians: one paragraph."""
    if tally.winner is None:
        return (
            f"Vote ({tally.rule}): no valid winner ({len(tally.invalid)} unreadable "
            f"ballots; {tally.outcome or 'split'})."
        )
    share = f"{(tally.agreement or 0):.0%}"
    if tally.rule == "median":
        s = tally.scores
        text = (
            f"Group estimate: median {s['median']:g}, interquartile range {s['q1']:g} to "
            f"{s['q3']:g}, {len(tally.ballots) - len(tally.invalid)} estimates; {share} lie "
            "close to the median."
        )
    else:
        counts = ", ".join(f"{option} {score:g}" for option, score in tally.scores.items())
        verdict = "consensus reached" if tally.consensus else f"no consensus ({tally.outcome})"
        text = f"Vote ({tally.rule}): {counts}. Leading: {tally.winner} with {share}; {verdict}."
    if tally.dissenters:
        text += " Dissent: " + ", ".join(name.get(s, s) for s in tally.dissenters) + "."
    deal = _dealbreakers(tally, name)
    effective = _effective(tally)
    return text + (" " + deal[0] if deal else "") + (" " + effective[0] if effective else "")


def _thousands(tokens: int) -> str:
    return f"~{tokens / 1000:.1f}k" if tokens else "~unknown"


def session_block(meta: SessionMetadata) -> str:
    """The run's metadata as nyk's STEP 8 ``Session Metadata`` block (schema_version 1)."""
    breakdown = (
        "{" + ", ".join(f"{tag}: {n}" for tag, n in meta.enforcement_breakdown.items()) + "}"
        if meta.enforcement_calls
        else "none"
    )
    rows = [
        ("schema_version", str(meta.schema_version)),
        ("mode", meta.mode),
        ("panel_size", str(meta.panel_size)),
        ("rounds_run", str(meta.rounds_run)),
        ("enforcement_calls", str(meta.enforcement_calls)),
        ("enforcement_breakdown", breakdown),
        ("chairman_failed_fallback", "yes" if meta.chairman_failed_fallback else "no"),
        ("tools_used", "yes" if meta.tools_used else "no"),
        ("input_tokens_estimate", _thousands(meta.input_tokens)),
        ("output_tokens_estimate", _thousands(meta.output_tokens)),
        ("duration_seconds", f"~{meta.duration_s:.0f}"),
        ("provider_count", str(meta.provider_count or len(meta.providers))),
        ("fallbacks_triggered", ", ".join(meta.fallbacks_triggered) or "none"),
    ]
    return "\n".join(f"{key}: {value}" for key, value in rows)


def audit_heading(audit: VerdictAudit) -> str:
    """Who audited the verdict and what it found, in one line."""
    family = (
        f"{audit.auditor_family}, the chair's family"
        if audit.same_family
        else (f"{audit.auditor_family}; chair {audit.chair_family or 'unknown'}")
    )
    counts = [
        f"{n} {severity}{'s' if n != 1 else ''}"
        for severity in ("error", "warning", "info")
        if (n := sum(f.severity == severity for f in audit.findings))
    ]
    where = f" (stage {audit.stage})" if audit.stage else ""
    found = ", ".join(counts) if counts else "no findings"
    return f"Audit by {audit.auditor_model} ({family}){where}: {found}"


def finding_line(finding: AuditFinding) -> str:
    """One finding: severity, kind, whose check, the verdict's words, why."""
    quote = f' "{finding.quote}"' if finding.quote else ""
    return f"[{finding.severity}] {finding.kind} ({finding.source}){quote}: {finding.explanation}"


def describe_audit(audit: VerdictAudit) -> list[str]:
    """An audit as lines: its heading, each finding, and why the auditor's own are missing."""
    lines = [audit_heading(audit), *(f"- {finding_line(f)}" for f in audit.findings)]
    if audit.error:
        lines.append(f"- the auditor's findings are missing: {audit.error}")
    return lines
