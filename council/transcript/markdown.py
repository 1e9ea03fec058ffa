"""A run as a Markdown transcript a person reads top to bottom."""

from __future__ import annotations

from council.transcript.records import RunResult, Turn


def _turn_meta(turn: Turn) -> str:
    parts = [f"`{turn.model}`", f"{turn.latency_s:.1f} s"]
    if turn.completion_tokens is not None:
        parts.append(f"{turn.prompt_tokens} → {turn.completion_tokens} tokens")
    if turn.cost_usd:
        parts.append(f"${turn.cost_usd:.4f}")
    if turn.attempts > 1:
        parts.append(f"{turn.attempts} attempts")
    return " · ".join(parts)


def render_transcript(result: RunResult) -> str:
    lines = [
        f"# {result.question}",
        "",
        f"- Run: `{result.run_id}` ({result.status}, {result.wall_s:.1f} s)",
        f"- Protocol: `{result.protocol}` (sha256 `{result.protocol_hash[:12]}`)",
        f"- Started: {result.started_at.isoformat(timespec='seconds')}",
    ]
    if result.error:
        lines.append(f"- Error: {result.error}")
    lines += ["", "| seat | persona | role | model |", "|---|---|---|---|"]
    lines += [f"| {s.seat} | {s.persona} | {s.role} | `{s.model}` |" for s in result.seats]

    stages = list(dict.fromkeys(t.stage for t in result.turns))
    for stage in stages:
        lines += ["", f"## {stage.replace('_', ' ').capitalize()}"]
        for turn in result.turns_in(stage):
            lines += ["", f"### {turn.seat}", "", f"*{_turn_meta(turn)}*", ""]
            lines.append(
                turn.content if turn.ok and turn.content else f"> **No answer.** {turn.error}"
            )

    lines += ["", "## Synthesis", "", result.synthesis or "*No synthesis: the run did not finish.*"]
    return "\n".join(lines) + "\n"
