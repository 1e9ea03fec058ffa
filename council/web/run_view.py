"""A run's page: it leads with the answer (the question, the status, the verdict and each tally
drawn), then the stages by their titles, then the transcript, prompts, costs and diversity.

The verdict and the tallies are drawn by the page's script from the run's event stream (the
same stream for a run still going and one read back from the ledger), so one drawing serves
both; the server fills in what it already knows (the question, the status, a finished run's
verdict) so the page leads with them before the stream is read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from council.web.pages import layout, table


def run_page(
    run: Mapping[str, Any],
    synthesis: str | None,
    tabs: Mapping[str, str],
    *,
    running: bool,
    audits: str = "",
    thread: str = "",
) -> str:
    """``run``: the ledger's row for the run (run_id, question, protocol, status);
    ``audits``: the verdict's audits as HTML (``council.records.transcript.audits_html``)."""
    run_id = str(run["run_id"])
    status = "running" if running else str(run.get("status") or "")
    verdict = escape(synthesis) if synthesis else ("…" if running else "No verdict.")
    header = (
        f"<p class='run-id'>{escape(str(run.get('protocol') or ''))} · run "
        f"<code>{escape(run_id)}</code></p>"
        f"<p id='status' class='status' role='status'>{escape(status)}</p>"
        "<section class='answer' aria-labelledby='verdict-heading'>"
        "<h2 id='verdict-heading'>Verdict</h2>"
        f"<div id='verdict' class='verdict'>{verdict}</div>"
        f"<div id='audits' class='audits'>{audits}</div>"  # what the verdict's audits found
        "<div id='tallies' class='tallies'></div></section>"
    )
    body = f"<div id='run' data-run='{escape(run_id)}'>{header}{thread}{_tabs(tabs)}</div>"
    return layout(str(run.get("question") or "Run"), body)


def _run_link(run_id: str) -> str:
    return f"<a href='/runs/{escape(run_id)}'><code>{escape(run_id)}</code></a>"


def thread_pane(
    parent: str | None, thread: Sequence[str], children: Sequence[str], finished: bool
) -> str:
    """A run's place in its thread: the run it follows (and those before), the runs that
    follow it, and on a finished run a box to ask its seats one more question."""
    parts = []
    if parent is not None:
        before = " → ".join(_run_link(run_id) for run_id in thread)
        whole = f" (thread: {before})" if len(thread) > 1 else ""
        parts.append(f"<p class='follows'>Follows {_run_link(parent)}{whole}</p>")
    if children:
        links = ", ".join(_run_link(run_id) for run_id in children)
        parts.append(f"<p class='follow-ups'>Follow-ups: {links}</p>")
    if finished:
        parts.append(
            "<form id='follow-up'><label for='follow-up-question'>Ask these seats a follow-up "
            "(each is shown this verdict and its own last position)</label>"
            "<textarea id='follow-up-question' name='question' rows='2' required></textarea>"
            "<button type='submit'>Ask</button>"
            "<p id='follow-up-error' class='error' role='status'></p></form>"
        )
    body = "".join(parts)
    return f"<section class='thread' aria-label='Thread'>{body}</section>" if body else ""


def _tabs(tabs: Mapping[str, str]) -> str:
    buttons = "".join(
        f"<button type='button' role='tab' id='tab-{i}' aria-controls='pane-{i}' "
        f"aria-selected='false' data-tab='{escape(key)}'>{escape(key)}</button>"
        for i, key in enumerate(tabs)
    )
    panes = "".join(
        f"<section class='tab' role='tabpanel' id='pane-{i}' aria-labelledby='tab-{i}' "
        f"data-pane='{escape(key)}'>{html}</section>"
        for i, (key, html) in enumerate(tabs.items())
    )
    return f"<div class='tabs' role='tablist' aria-label='Parts of the run'>{buttons}</div>{panes}"


def stages_pane() -> str:
    return (
        "<label class='reveal'><input type='checkbox' id='reveal'> reveal who is who "
        "(the seats saw each other as anonymous members; your choice is remembered)</label>"
        "<div id='stages'></div>"
    )


def _number(value: Any) -> int:
    return int(value) if value is not None else 0


def costs_pane(calls: Sequence[Mapping[str, Any]]) -> str:
    """Every call, then the totals: per seat and for the whole run."""
    if not calls:
        return "<p>No calls yet.</p>"
    rows = [
        [
            c["stage"],
            c["round"],
            c["seat"],
            c["model"],
            f"{c['latency_s']:.2f} s",
            c["prompt_tokens"] if c["prompt_tokens"] is not None else "-",
            c["completion_tokens"] if c["completion_tokens"] is not None else "-",
            f"${c['cost_usd']:.4f}" if c["cost_usd"] else "-",
            c["attempts"],
            "reused" if c["reused"] else (c["error"] or "ok"),
        ]
        for c in calls
    ]
    headers = [
        "stage",
        "round",
        "seat",
        "model",
        "latency",
        "prompt",
        "completion",
        "cost",
        "attempts",
        "state",
    ]
    return "<h2>Totals</h2>" + _totals(calls) + "<h2>Every call</h2>" + table(headers, rows)


def _totals(calls: Sequence[Mapping[str, Any]]) -> str:
    by_seat: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for call in calls:
        by_seat[str(call["seat"])].append(call)

    def row(name: str, group: Sequence[Mapping[str, Any]]) -> list[str]:
        cost = sum(c["cost_usd"] or 0 for c in group)
        return [
            name,
            str(len(group)),
            f"{sum(c['latency_s'] for c in group):.2f} s",
            f"{max(c['latency_s'] for c in group):.2f} s",
            str(sum(_number(c["prompt_tokens"]) for c in group)),
            str(sum(_number(c["completion_tokens"]) for c in group)),
            f"${cost:.4f}" if cost else "-",
        ]

    rows = [row(seat, group) for seat, group in by_seat.items()]
    rows.append(row("all seats", calls))
    headers = [
        "seat",
        "calls",
        "latency, summed",
        "slowest call",
        "prompt tokens",
        "completion tokens",
        "cost",
    ]
    note = (
        "<p class='explain'>Latencies are summed over calls; seats answer in parallel, so the "
        "run took less wall time than the sum.</p>"
    )
    return table(headers, rows) + note


def prompts_pane(calls: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for call in calls:
        messages = (call.get("request") or {}).get("messages", [])
        shown = "".join(
            f"<h3>{escape(m['role'])}</h3><pre>{escape(str(m['content']))}</pre>" for m in messages
        )
        title = f"{call['stage']} r{call['round']} · {call['seat']} · {call['model']}"
        parts.append(f"<details><summary>{escape(title)}</summary>{shown}</details>")
    return "".join(parts) or "<p>No calls yet.</p>"


def diversity_pane(run_id: str, report: str | None) -> str:
    """The run's kept diversity report, inside the app; or the button that measures it."""
    if report is not None:
        return f"<div class='report'>{report}</div>"
    return (
        "<p>This run's diversity has not been measured yet. Measuring embeds every reply "
        "(seconds; the first time also loads the embedder), then keeps the report beside "
        "the run.</p>"
        f"<button type='button' id='measure' data-run='{escape(run_id)}'>Measure now</button> "
        "<span id='measure-status' class='error' role='status'></span>"
    )
