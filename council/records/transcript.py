"""A run as a Markdown transcript a person reads top to bottom."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from council.records.describe import describe_audit, describe_tally, finding_line, session_block
from council.records.grounding import citations_line, documents_lines, tool_calls_line
from council.records.run import (
    CONTINUATION,
    REASONING_RETRY,
    TRANSCRIPT_RENDERERS,
    GateNote,
    RunResult,
    Turn,
)
from council.records.verdicts import VerdictAudit


def _turn_meta(turn: Turn) -> str:
    parts = [f"`{turn.model}`", f"{turn.latency_s:.1f} s"]
    if turn.completion_tokens is not None:
        parts.append(f"{turn.prompt_tokens} → {turn.completion_tokens} tokens")
    if turn.cost_usd:
        parts.append(f"${turn.cost_usd:.4f}")
    if turn.attempts > 1:
        parts.append(f"{turn.attempts} attempts")
    return " · ".join(parts + length_notes(turn))


def length_notes(turn: Turn) -> list[str]:
    """What a turn's length says: its words against its limit, and a cut-off at its cap."""
    notes = []
    if turn.words is not None and turn.word_limit is not None:
        over = "over the limit of" if turn.over_limit else "within"
        notes.append(f"{turn.words} words, {over} {turn.word_limit}")
    cap = f" at {turn.request.max_tokens} tokens" if turn.request is not None else ""
    if turn.continued:
        again = ", cut off again" if turn.truncated else ""
        notes.append(f"cut off{cap}, continued once{again}")
    elif turn.truncated:
        notes.append(f"cut off{cap}")
    if turn.starved:
        notes.append("its reasoning used the whole first cap: asked again with a larger one")
    return notes


def _lengths_line(result: RunResult) -> list[str]:
    """The run's replies over their word limit or cut off, counted; nothing when none are."""
    replies = [t for t in result.turns if not t.stage.endswith((CONTINUATION, REASONING_RETRY))]
    counts = [
        (sum(t.over_limit for t in replies), "over their word limit"),
        (sum(t.truncated for t in replies), "left cut off at their token cap"),
        (sum(t.continued for t in replies), "cut off and continued once"),
    ]
    said = [f"{n} {what}" for n, what in counts if n]
    return [f"- Replies: {', '.join(said)}"] if said else []


def verdict_note(result: RunResult) -> str | None:
    """What council's check of the verdict found, in one line; None where none was made."""
    check = result.verdict_check
    if check is None:
        return None
    if check.status == "unchecked":
        return "unchecked, still short when asked once more: " + "; ".join(check.reasons)
    if check.reasked:
        return (
            "checked, when asked once more (the first fell short: "
            + "; ".join(check.first_reasons)
            + ")"
        )
    return "checked"


def _verdict_line(result: RunResult) -> list[str]:
    note = verdict_note(result)
    return [f"- Verdict: {note}"] if note else []


def synthesis_turn(result: RunResult) -> Turn | None:
    """The turn whose reply is the run's synthesis (the chair's verdict), shown in its stage
    and so not again under its own heading; None where the synthesis is no turn's (none, or
    the engine's verdict from the tally when the chair failed)."""
    if not result.synthesis:
        return None
    return next((t for t in reversed(result.turns) if t.ok and t.content == result.synthesis), None)


def _gate_line(note: GateNote) -> str:
    where = note.stage + (f" round {note.round}" if note.round else "")
    outcome = ("fired" if note.fired else "passed") + (
        f" on {', '.join(note.seats)}" if note.seats else ""
    )
    return f"*Gate {note.gate} in {where}: {outcome}: {note.reason}*"


def _audit_lines(result: RunResult) -> list[str]:
    """The verdict's audits, shown beside it: who audited it and each finding."""
    lines: list[str] = []
    for audit in result.audits:
        heading, *findings = describe_audit(audit)
        lines += ["", f"> **{heading}**", *(f"> {line}" for line in findings)]
    return lines


def render_transcript(result: RunResult) -> str:
    lines = [
        f"# {result.question}",
        "",
        f"- Run: `{result.run_id}` ({result.status}, {result.wall_s:.1f} s)",
        f"- Protocol: `{result.protocol}` (sha256 `{result.protocol_hash[:12]}`)",
        f"- Started: {result.started_at.isoformat(timespec='seconds')}",
    ]
    if result.outcome is not None:
        lines.append(f"- Outcome of the vote: {result.outcome}")
    if result.error:
        lines.append(f"- Error: {result.error}")
    lines += _verdict_line(result)
    lines += _lengths_line(result)
    lines += [f"- Document {line}" for line in documents_lines(result.documents)]
    lines += ["", "| seat | persona | role | model |", "|---|---|---|---|"]
    lines += [f"| {s.seat} | {s.persona} | {s.role} | `{s.model}` |" for s in result.seats]

    tallies = {(t.stage, t.round): t for t in result.tallies}
    verdict = synthesis_turn(result)
    for stage, round_number in dict.fromkeys((t.stage, t.round) for t in result.turns):
        title = stage.replace("_", " ").capitalize()
        lines += ["", f"## {title}" + (f" (round {round_number})" if round_number else "")]
        for turn in [t for t in result.turns if (t.stage, t.round) == (stage, round_number)]:
            lines += ["", f"### {turn.seat}", "", f"*{_turn_meta(turn)}*", ""]
            lines.append(turn.text if turn.ok and turn.text else f"> **No answer.** {turn.error}")
            if turn.ok and turn.truncated:
                lines += ["", "> **Cut off** at its token cap: the reply ends where it stopped."]
            for said in (tool_calls_line(turn.tool_calls), citations_line(turn.citations)):
                if said:
                    lines += ["", f"> {said}"]
        tally = tallies.get((stage, round_number))
        if tally is not None:
            lines += ["", describe_tally(tally, {}), ""]
            problems = [f"{b.seat}: {b.problem}" for b in tally.ballots if b.problem]
            problems += [f"{r.seat}: {'; '.join(r.problems)}" for r in tally.rankings if r.problems]
            lines += [f"- parsing: {problem}" for problem in problems]
        if verdict is not None and (stage, round_number) == (verdict.stage, verdict.round):
            lines += _audit_lines(result)
    for loop in result.loops:
        why = f", stopped early: {loop.stopped_early}" if loop.stopped_early else ""
        lines += ["", f"*Loop `{loop.loop}`: {loop.rounds} of {loop.max_rounds} rounds{why}.*"]
    lines += ["", *(f"*Skipped {reason}*" for reason in result.skipped)] if result.skipped else []
    lines += ["", *(_gate_line(note) for note in result.gates)] if result.gates else []
    lines += ["", *(f"*Absent {seat}*" for seat in result.absent)] if result.absent else []

    if result.metadata is not None and result.metadata.fallback_log:
        lines += ["", *(f"`{line}`" for line in result.metadata.fallback_log)]
    if verdict is None:  # else the verdict stands in its stage, printed once
        text = result.synthesis or "*No synthesis: the run did not finish.*"
        lines += ["", "## Synthesis", "", text, *_audit_lines(result)]
    check = result.verdict_check
    if check is not None and check.status == "unchecked":
        lines += [
            "",
            "> **Verdict unchecked.** Asked once more, it still lacks:",
            *(f"> - {reason}" for reason in check.reasons),
        ]
    if result.metadata is not None:
        lines += [
            "",
            "---",
            "",
            "### Session Metadata",
            "",
            "```",
            session_block(result.metadata),
            "```",
            "",
            "Council's full record of it:",
            "",
            "```json",
            result.metadata.model_dump_json(indent=2),
            "```",
        ]
    return "\n".join(lines) + "\n"


def _html_turn(turn: Turn) -> str:
    body = turn.text if turn.ok and turn.text else f"No answer. {turn.error or ''}"
    reused = " · reused" if turn.reused else ""
    cited = citations_line(turn.citations)
    unsupported = " unsupported" if any(not c.valid for c in turn.citations) else ""
    citations = f"<p class='citations{unsupported}'>{escape(cited)}</p>" if cited else ""
    tools = tool_calls_line(turn.tool_calls)
    citations += f"<p class='tool-calls'>{escape(tools)}</p>" if tools else ""
    return (
        f"<details open><summary><b>{escape(turn.seat)}</b> "
        f"<small>{escape(_turn_meta(turn).replace('`', ''))}{reused}</small></summary>"
        f"<pre style='white-space:pre-wrap'>{escape(body)}</pre>{citations}</details>"
    )


def audits_html(audits: Sequence[VerdictAudit]) -> str:
    """The verdict's audits as HTML (the transcript and the run page show them beside the
    verdict): a heading each, then its findings, errors first."""
    order = {"error": 0, "warning": 1, "info": 2}
    parts = []
    for audit in audits:
        heading, *_ = describe_audit(audit)
        findings = sorted(audit.findings, key=lambda f: order[f.severity])
        items = "".join(
            f"<li class='finding {escape(f.severity)}'>{escape(finding_line(f))}</li>"
            for f in findings
        )
        missing = (
            f"<li class='finding'>the auditor's findings are missing: {escape(audit.error)}</li>"
            if audit.error
            else ""
        )
        parts.append(
            f"<div class='audit'><p><b>{escape(heading)}</b></p><ul>{items}{missing}</ul></div>"
        )
    return "".join(parts)


def render_transcript_html(result: RunResult) -> str:
    """The transcript as a fragment of HTML: what a notebook shows for a run."""
    rows = "".join(
        f"<tr><td>{escape(s.seat)}</td><td>{escape(s.persona)}</td><td>{escape(s.role)}</td>"
        f"<td><code>{escape(s.model)}</code></td></tr>"
        for s in result.seats
    )
    parts = [
        f"<div class='council-run'><h3>{escape(result.question)}</h3>",
        f"<p><code>{escape(result.run_id)}</code> · {escape(result.protocol)} · "
        f"<b>{escape(result.status)}</b> · {result.wall_s:.1f} s</p>",
    ]
    if result.error:
        parts.append(f"<p><b>Error:</b> {escape(result.error)}</p>")
    if result.absent:
        parts.append(f"<p><b>Absent:</b> {escape('; '.join(result.absent))}</p>")
    verdict = verdict_note(result)
    if verdict:
        parts.append(f"<p class='verdict-check'><b>Verdict:</b> {escape(verdict)}</p>")
    parts.append(audits_html(result.audits))
    parts.append(
        f"<table><tr><th>seat</th><th>persona</th><th>role</th><th>model</th></tr>{rows}</table>"
    )
    tallies = {(t.stage, t.round): t for t in result.tallies}
    for stage, round_number in dict.fromkeys((t.stage, t.round) for t in result.turns):
        title = stage.replace("_", " ").capitalize()
        parts.append(f"<h4>{escape(title)}" + (f" (round {round_number})" if round_number else ""))
        parts.append("</h4>")
        here = [t for t in result.turns if (t.stage, t.round) == (stage, round_number)]
        parts += [_html_turn(turn) for turn in here]
        tally = tallies.get((stage, round_number))
        if tally is not None:
            text = describe_tally(tally, {}).replace("**", "")
            parts.append(f"<pre style='white-space:pre-wrap'>{escape(text)}</pre>")
    if synthesis_turn(result) is None:  # else the verdict stands in its stage, shown once
        synthesis = result.synthesis or "No synthesis: the run did not finish."
        parts.append(
            f"<h4>Synthesis</h4><pre style='white-space:pre-wrap'>{escape(synthesis)}</pre>"
        )
    return "".join(parts) + "</div>"


TRANSCRIPT_RENDERERS.update(markdown=render_transcript, html=render_transcript_html)
