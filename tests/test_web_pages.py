"""The web app's pages as a newcomer meets them (issue 32): a run page that leads with the
answer, a convene form that says who each persona is, reports inside the app, errors as pages
for a browser and JSON for the API (listing no run IDs), a protocol graph that fits its window
and draws every edge. Checked in a real headless Chromium at 1280 and 390 px wide, with
screenshots kept (build/screenshots/), and against axe-core."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from cdp import audit, browser_page, set_width
from test_web import Server, keep

from council.protocols.library import find_protocol
from council.records.events import TurnFinished, event_json, parse_event
from council.records.record import utc_now
from council.records.run import Turn
from council.store.ledger import Ledger
from council.testing import FakeProvider
from council.web.settings import ServerSettings

# A model litellm knows takes a JSON schema, served by the fake provider: its votes are
# structured ballots (JSON), everything else prose.
MODEL = "openai/gpt-4o-mini"
QUESTION = "Should the library open on Sundays?"
PANEL = ["popper", "kuhn", "meadows", "ostrom"]
REASON = "Sundays are when working families can come; the cost is modest."


def reply(body: dict[str, Any]) -> str:
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
    if schema is None:
        return "Opening on Sundays serves the people who work all week; rotas can absorb it."
    options = schema["properties"]["stance"].get("enum") or ["yes", "no"]
    # One seat in four votes against: a winner with a dissenter.
    against = "Donella Meadows" in body["messages"][0]["content"]
    stance = options[1] if against and len(options) > 1 else options[0]
    ballot = {"stance": stance, "confidence": "high", "dealbreaker": "no", "reason": REASON}
    return json.dumps(ballot)


class Served(NamedTuple):
    server: Server
    run_id: str
    runs: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One finished high-council-quick run (anonymized final vote, structured ballots)."""
    runs = tmp_path_factory.mktemp("web-pages") / "runs"
    docs = Path(__file__).resolve().parent.parent / "docs" / "experiments"
    with FakeProvider(reply) as fake:
        settings = ServerSettings(
            runs_dir=runs,
            endpoints={MODEL: fake.api_base},
            default_model=MODEL,
            experiments_dir=docs,
        )
        server = Server(settings)
        try:
            body = {"question": QUESTION, "protocol": "high-council-quick", "personas": PANEL}
            status, text = server.request("/api/convene", body)
            assert status == 200, text
            run_id = json.loads(text)["run_id"]
            server.request(f"/api/runs/{run_id}/events")  # until it has finished
            yield Served(server, run_id, runs)
        finally:
            server.stop()


SERIOUS = ("serious", "critical")

LEADS = """(() => {
    const at = (selector) => document.querySelector(selector);
    const before = (a, b) => Boolean(at(a).compareDocumentPosition(at(b))
        & Node.DOCUMENT_POSITION_FOLLOWING);
    const top = at('#tallies .tally');
    return {
        heading: at('h1').textContent,
        status: at('#status').textContent,
        verdict: at('#verdict').textContent,
        order: [before('h1', '#status'), before('#status', '#verdict'),
                before('#verdict', '#tallies'), before('#tallies', '.tabs')],
        caption: top.querySelector('figcaption').textContent,
        options: [...top.querySelectorAll('.bar')].map(b => b.dataset.option),
        winner: top.querySelector('.bar.winner').dataset.option,
        widths: [...top.querySelectorAll('.fill')].map(f => f.getBoundingClientRect().width),
        threshold: top.querySelectorAll('.threshold').length,
        facts: top.querySelector('.facts').textContent,
        stages: [...document.querySelectorAll('.stage h3')].map(h => h.textContent),
        seats: [...document.querySelectorAll('.stage .seat')].map(s => s.textContent),
        finals: [...document.querySelectorAll('[data-stage=final] .content')]
            .map(c => c.textContent),
    };
})()"""


async def test_the_run_page_leads_with_the_answer(served: Served) -> None:
    server, run_id, _ = served
    labels = [stage.label for stage in find_protocol("high-council-quick").order()]
    async with browser_page(width=1280, height=1000) as page:
        for width in (1280, 390):
            await set_width(page, width)
            await page.goto(f"{server.base}/runs/{run_id}")
            await page.wait_for("document.body.dataset.runDone === 'true'")
            shown = await page.evaluate(LEADS)
            assert shown["heading"] == QUESTION and shown["status"] == "completed"
            assert shown["order"] == [True] * 4  # question, status, verdict, tally, then stages
            assert shown["verdict"].strip()  # the chair's verdict, not a placeholder
            assert labels[1] in shown["caption"] and "carries" in shown["caption"]
            assert shown["winner"] == shown["options"][0]  # drawn: 3 of 4 weights against 1
            assert shown["widths"][0] > shown["widths"][1] > 0 and shown["threshold"] == 2
            assert "threshold" in shown["facts"] and "dissent: Member" in shown["facts"]
            assert "weights: Member" in shown["facts"]
            assert shown["stages"] == labels  # the protocol's titles, not "blind", "final"
            # A structured ballot shows as prose, as the transcript reads it (Turn.text).
            assert len(shown["finals"]) == 4
            assert all(REASON in text and "STANCE:" in text for text in shown["finals"])
            assert not any(text.lstrip().startswith("{") for text in shown["finals"])
            violations = [v for v in await audit(page) if v["impact"] in SERIOUS]
            assert violations == [], violations
            await keep(page, f"run-after-{width}")
        # The reveal is remembered: ticked once, the next page opens revealed.
        members = [seat for seat in shown["seats"] if seat != "chair"]  # the chair is named
        assert members and all(seat.startswith("Member ") for seat in members)
        await page.evaluate("document.getElementById('reveal').click()")
        await page.goto(f"{server.base}/runs/{run_id}")
        await page.wait_for("document.body.dataset.runDone === 'true'")
        assert await page.evaluate("document.getElementById('reveal').checked")
        seats = await page.evaluate(
            "[...document.querySelectorAll('.stage .seat')].map(s => s.textContent)"
        )
        assert sorted(set(seats) - {"chair"}) == sorted(PANEL)
        assert "dissent: meadows" in await page.evaluate(
            "document.querySelector('#tallies .facts').textContent"
        )


async def test_the_convene_form_says_who_each_persona_is(served: Served) -> None:
    server, _, _ = served
    async with browser_page(width=1280, height=1000) as page:
        for width in (1280, 390):
            await set_width(page, width)
            await page.goto(server.base + "/")
            form = await page.evaluate("""(() => ({
                groups: [...document.querySelectorAll('fieldset.group legend')]
                    .map(l => l.textContent),
                names: [...document.querySelectorAll('input[name=personas]')].map(b => b.value),
                popper: document.querySelector('input[value=popper]').closest('label').innerText,
                about: document.getElementById('protocol-about').textContent,
                protocols: document.querySelectorAll('.protocols dt').length,
                wide: document.documentElement.scrollWidth,
            }))()""")
            assert form["groups"][0] == "Panel: knowledge" and "Panel: commons" in form["groups"]
            assert "chair" not in form["names"]  # the chair writes the verdict: not a member
            assert len(form["names"]) == len(set(form["names"]))  # each card once
            assert "Scientific method" in form["popper"] and "Karl Popper" in form["popper"]
            assert form["about"].startswith("Blind round") and form["protocols"] >= 10
            assert form["wide"] <= width  # nothing runs off a phone's screen
            await page.evaluate("""(() => { const menu = document.querySelector(
                'select[name=protocol]'); menu.value = 'quick';
                menu.dispatchEvent(new Event('change')); })()""")
            about = await page.evaluate("document.getElementById('protocol-about').textContent")
            assert about == find_protocol("quick").spec.description
            violations = [v for v in await audit(page) if v["impact"] in SERIOUS]
            assert violations == [], violations
            await keep(page, f"convene-after-{width}")


async def test_the_protocol_graph_fits_its_window_and_draws_every_edge(
    served: Served,
) -> None:
    server, _, _ = served
    protocol = find_protocol("high-council")
    async with browser_page(width=1280, height=1000) as page:
        for width in (1280, 390):
            await set_width(page, width)
            await page.goto(server.base + "/protocols/high-council")
            graph = await page.evaluate("""(() => {
                const svg = document.querySelector('svg.graph');
                const boxes = [...svg.querySelectorAll('g.stage')];
                return {
                    viewBox: svg.getAttribute('viewBox'), width: svg.getAttribute('width'),
                    right: Math.max(...boxes.map(b => b.getBoundingClientRect().right)),
                    edges: [...svg.querySelectorAll('path.edge')]
                        .map(p => [p.dataset.from, p.dataset.to]),
                };
            })()""")
            assert graph["viewBox"].startswith("0 0 ") and graph["width"] == "100%"
            assert graph["right"] <= width  # the last stages are on screen
            assert sorted(map(tuple, graph["edges"])) == sorted(protocol.graph.edges)
    assert ("cross", "final") in protocol.graph.edges  # a stage that reads several


def test_errors_are_pages_for_a_browser_and_json_for_the_api(served: Served) -> None:
    server, run_id, _ = served
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for path in ("/runs/no-such-run", "/no-such-page", "/experiments/nothing", "/runs/1999"):
        status, page = server.request(path, headers=browser)
        assert status == 404 and page.startswith("<!doctype html>"), path
        assert "<nav" in page and "Not found" in page
        assert run_id not in page  # no run ID but what was asked for
    for path in ("/api/runs/no-such-run", "/api/runs/no-such-run/events", "/api/nothing"):
        status, text = server.request(path, headers=browser)
        assert status == 404 and "error" in json.loads(text), path
    status, text = server.request("/runs/no-such-run", headers={"Accept": "application/json"})
    assert status == 404 and json.loads(text) == {"error": "no run 'no-such-run'"}


def test_no_error_lists_the_ledgers_run_ids(tmp_path: Path) -> None:
    with FakeProvider(reply) as fake:
        settings = ServerSettings(
            runs_dir=tmp_path / "runs", endpoints={MODEL: fake.api_base}, default_model=MODEL
        )
        server = Server(settings)
        try:
            ids = []
            for n in (1, 2):
                body = {"question": f"Question {n}?", "protocol": "quick", "personas": PANEL[:2]}
                run_id = json.loads(server.request("/api/convene", body)[1])["run_id"]
                server.request(f"/api/runs/{run_id}/events")
                ids.append(run_id)
            shared = ids[0][:2]  # a prefix of both: which one is not said
            answers = [
                server.request(p)
                for p in (
                    "/api/runs/zzz",
                    f"/api/runs/{shared}",
                    "/runs/zzz",
                    f"/runs/{shared}/diversity",
                    "/api/runs/zzz/events",
                )
            ]
        finally:
            server.stop()
    for status, text in answers:
        assert status == 404 and not any(run_id in text for run_id in ids), text


def test_every_experiment_kind_opens_inside_the_app(served: Served) -> None:
    server, _, _ = served
    status, listing = server.request("/experiments")
    folders = [p.name for p in sorted(server_docs().iterdir()) if (p / "summary.json").is_file()]
    assert {"capping-p50", "capping-p90", "capping-heldout-p50", "diversity"} <= set(folders)
    for name in folders:
        assert f"/experiments/{name}" in listing
        status, page = server.request(f"/experiments/{name}")
        assert status == 200 and "<nav" in page and "class='report'" in page, name
    capping = server.request("/experiments/capping-p50")[1]
    assert "Activation capping" in capping and "primary: left character" in capping


def server_docs() -> Path:
    return Path(__file__).resolve().parent.parent / "docs" / "experiments"


def test_costs_and_latencies_have_totals(served: Served) -> None:
    server, run_id, runs = served
    ledger = Ledger.existing(runs)
    try:
        calls = ledger.calls(run_id)
    finally:
        ledger.close()
    page = server.request(f"/runs/{run_id}")[1]
    totals = page[page.index("<h2>Totals</h2>") : page.index("<h2>Every call</h2>")]
    row = totals[totals.index("<td>all seats</td>") :]
    completion = sum(c["completion_tokens"] or 0 for c in calls)
    assert f"<td>{len(calls)}</td>" in row and f"<td>{completion}</td>" in row
    assert f"<td>{sum(c['latency_s'] for c in calls):.2f} s</td>" in row


def test_a_structured_turn_event_carries_its_prose() -> None:
    ballot = json.dumps(
        {"stance": "yes", "confidence": "high", "dealbreaker": "no", "reason": REASON}
    )
    turn = Turn(
        run_id="r",
        stage="final",
        seat="popper",
        persona="popper",
        provider="openai",
        model=MODEL,
        content=ballot,
        latency_s=0.1,
        started_at=utc_now(),
        structured=True,
    )
    event = TurnFinished(run_id="r", turn=turn)
    assert event.prose == turn.text and REASON in (event.prose or "")
    line = event_json(event)
    assert parse_event(line) == event and event_json(parse_event(line)) == line
    plain = TurnFinished(run_id="r", turn=turn.model_copy(update={"structured": False}))
    assert plain.prose is None and '"prose"' not in event_json(plain)  # as before
