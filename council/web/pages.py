"""The web app's pages: server-rendered HTML, every value escaped, no asset from elsewhere."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

NAV = (("/", "Convene"), ("/runs", "Runs"), ("/experiments", "Experiments"),
       ("/personas", "Personas"), ("/protocols", "Protocols"))  # fmt: skip


def layout(title: str, body: str, *, script: bool = True) -> str:
    links = "".join(f"<a href='{href}'>{label}</a>" for href, label in NAV)
    js = "<script src='/static/app.js'></script>" if script else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)} · council</title>"
        "<link rel='stylesheet' href='/static/app.css'></head>"
        f"<body><nav><b>council</b>{links}</nav><main><h1>{escape(title)}</h1>{body}</main>"
        f"{js}</body></html>"
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, raw: bool = False) -> str:
    """A table; cells are escaped unless ``raw`` (cells the caller built from escaped parts)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if raw else escape(str(c))}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def options(values: Iterable[str], selected: str | None = None) -> str:
    return "".join(
        f"<option value='{escape(v)}'{' selected' if v == selected else ''}>{escape(v)}</option>"
        for v in values
    )


def convene_page(
    personas: Mapping[str, str], panels: Sequence[str], protocols: Sequence[str],
    models: Sequence[str], default_model: str,
) -> str:  # fmt: skip
    boxes = "".join(
        f"<label class='persona' title='{escape(about)}'><input type='checkbox' name='personas' "
        f"value='{escape(name)}'> {escape(name)}</label>"
        for name, about in personas.items()
    )
    body = f"""
<form id='convene' class='stack'>
  <label>Question<textarea name='question' required rows='3' maxlength='100000'></textarea></label>
  <div class='row'>
    <label>Protocol<select name='protocol'>{options(protocols, "council")}</select></label>
    <label>Panel<select name='panel'><option value=''>the personas ticked below</option>
      <option value='auto'>auto: the panel that fits the question</option>
      {options(panels)}</select></label>
    <label>Model<select name='model'>{options(models, default_model)}</select></label>
  </div>
  <div class='row'>
    <label>Token budget<input name='budget_tokens' type='number' min='1'></label>
    <label>Seconds budget<input name='budget_seconds' type='number' min='1'></label>
    <label title="replaces every turn's cap, raising or lowering the protocol's">Token cap per
      turn<input name='max_tokens' type='number' min='1'></label>
  </div>
  <fieldset><legend>Personas (none ticked: the default panel)</legend>{boxes}</fieldset>
  <button type='submit'>Convene</button> <span id='convene-error' class='error'></span>
</form>"""
    return layout("Convene a council", body)


def run_page(run_id: str, header: str, tabs: Mapping[str, str]) -> str:
    buttons = "".join(
        f"<button type='button' data-tab='{escape(key)}'>{escape(key)}</button>" for key in tabs
    )
    panes = "".join(
        f"<section class='tab' data-pane='{escape(key)}'>{html}</section>"
        for key, html in tabs.items()
    )
    body = (
        f"<div id='run' data-run='{escape(run_id)}'>{header}"
        f"<div class='tabs'>{buttons}</div>{panes}</div>"
    )
    return layout("Run", body)


def measure_page(run_id: str) -> str:
    """A run not measured yet: measuring takes seconds, so it waits for the button (a POST)."""
    body = (
        f"<p class='run-id'><code>{escape(run_id)}</code></p>"
        "<p>This run's diversity has not been measured yet. Measuring embeds every reply "
        "(seconds; the first time also loads the embedder), then keeps the report beside "
        "the run.</p>"
        f"<button type='button' id='measure' data-run='{escape(run_id)}'>Measure now</button> "
        "<span id='measure-status' class='error'></span>"
    )
    return layout("Diversity", body)


def live_pane() -> str:
    return (
        "<p id='status' class='status'>connecting…</p>"
        "<label class='reveal'><input type='checkbox' id='reveal'> reveal who is who "
        "(the seats saw each other as anonymous members)</label>"
        "<div id='stages'></div><h2>Verdict</h2><div id='verdict' class='verdict'>…</div>"
    )


def calls_table(calls: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        [c["stage"], c["round"], c["seat"], c["model"], f"{c['latency_s']:.2f} s",
         c["prompt_tokens"] if c["prompt_tokens"] is not None else "-",
         c["completion_tokens"] if c["completion_tokens"] is not None else "-",
         f"${c['cost_usd']:.4f}" if c["cost_usd"] else "-", c["attempts"],
         "reused" if c["reused"] else (c["error"] or "ok")]
        for c in calls
    ]  # fmt: skip
    headers = ["stage", "round", "seat", "model", "latency", "prompt", "completion", "cost",
               "attempts", "state"]  # fmt: skip
    return table(headers, rows)


def prompts_pane(calls: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for call in calls:
        messages = (call.get("request") or {}).get("messages", [])
        shown = "".join(
            f"<h4>{escape(m['role'])}</h4><pre>{escape(str(m['content']))}</pre>" for m in messages
        )
        title = f"{call['stage']} r{call['round']} · {call['seat']} · {call['model']}"
        parts.append(f"<details><summary>{escape(title)}</summary>{shown}</details>")
    return "".join(parts) or "<p>No calls yet.</p>"


def runs_page(rows: Sequence[Mapping[str, Any]], filters: Mapping[str, str]) -> str:
    def field(name: str, label: str, kind: str = "text") -> str:
        value = escape(filters.get(name, ""))
        return f"<label>{label}<input name='{name}' type='{kind}' value='{value}'></label>"

    form = (
        "<form class='row' method='get'>"
        + field("question", "Question has")
        + field("persona", "Persona")
        + field("model", "Model like")
        + field("protocol", "Protocol")
        + field("status", "Status")
        + field("since", "Since", "date")
        + field("until", "Until", "date")
        + "<button>Filter</button></form>"
    )
    body_rows = [
        [f"<a href='/runs/{escape(r['run_id'])}'>{escape(r['run_id'])}</a>", escape(r["status"]),
         escape(r["protocol"]), escape(r["question"][:160]), escape(str(r["calls"]))]
        for r in rows
    ]  # fmt: skip
    listing = table(["run", "status", "protocol", "question", "calls"], body_rows, raw=True)
    return layout("Runs", form + (listing if rows else "<p>No runs match.</p>"))
