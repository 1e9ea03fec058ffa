"""Follow-ups in the web app: the thread on a run's page (parent and children links), the
follow-up box on a finished run, its POST held to the same guard and the server's limits, and
one follow-up asked in a real headless Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cdp import browser_page
from test_web import QUICK, Server, events_of, serve

from council.testing import FakeProvider

NEXT = "Then which streets first?"


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with FakeProvider(lambda body: f"Reply from {body['model']}, long enough to measure.") as fake:
        yield fake


@pytest.fixture
def server(tmp_path: Path, provider: FakeProvider) -> Iterator[Server]:
    running = serve(tmp_path, provider)
    yield running
    running.stop()


def finished_run(server: Server, path: str, body: dict[str, object]) -> str:
    """POST ``body`` to ``path``, then follow the run's stream to its end; its ID."""
    status, text = server.request(path, body)
    assert status == 200, text
    run_id: str = json.loads(text)["run_id"]
    events = events_of(server.request(f"/api/runs/{run_id}/events")[1])
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "completed"
    return run_id


def test_a_follow_up_is_posted_linked_and_shown_in_the_thread(server: Server) -> None:
    parent = finished_run(server, "/api/convene", QUICK)
    child = finished_run(server, f"/api/runs/{parent}/follow-up", {"question": NEXT})
    run = json.loads(server.request(f"/api/runs/{child}")[1])
    assert run["question"] == NEXT and run["parent_run"] == parent and run["thread"] == [parent]
    seats = {seat["seat"] for seat in run["seats"]}
    assert seats == {"popper", "kuhn", "chair"}  # the parent's seats, not the form's defaults
    opening = next(t for t in run["turns"] if t["seat"] == "popper")
    assert "Earlier in this thread" in opening["request"]["messages"][-1]["content"]
    _, page = server.request(f"/runs/{parent}")
    assert f"Follow-ups: <a href='/runs/{child}'>" in page and "id='follow-up'" in page
    _, page = server.request(f"/runs/{child}")
    assert f"Follows <a href='/runs/{parent}'>" in page


def test_a_follow_up_post_is_guarded_and_bounded(server: Server) -> None:
    parent = finished_run(server, "/api/convene", QUICK)
    path = f"/api/runs/{parent}/follow-up"
    for body, status, message in [
        ({"question": " "}, 400, "question"),
        ({"question": "x" * 100_001}, 400, "100000"),
        ({"question": NEXT, "model": "openai/other"}, 400, "model"),
        ({}, 400, "question"),
    ]:
        got, text = server.request(path, body)
        assert got == status and message in text, (body, got, text)
    got, text = server.request("/api/runs/no-such-run/follow-up", {"question": NEXT})
    assert got == 404 and "no run 'no-such-run'" in text
    # The same guard as convene: another site cannot post, nor a form without JSON.
    got, _ = server.request(path, {"question": NEXT}, headers={"Sec-Fetch-Site": "cross-site"})
    assert got == 403
    got, _ = server.request(path, raw=b"question=x", headers={"Content-Type": "text/plain"})
    assert got == 415


def test_a_run_outside_the_servers_models_is_not_followed_up(
    tmp_path: Path, provider: FakeProvider
) -> None:
    from council import Council

    Council(
        ["popper", "kuhn"],
        protocol="quick",
        model="openai/elsewhere",
        endpoints={"openai/elsewhere": provider.api_base},
        runs_dir=tmp_path / "runs",
    ).convene(QUICK["question"])  # type: ignore[arg-type]
    server = serve(tmp_path, provider)
    try:
        got, text = server.request("/api/runs/latest/follow-up", {"question": NEXT})
        assert got == 400 and "model 'openai/elsewhere' of that run is not offered" in text
    finally:
        server.stop()


async def test_a_follow_up_asked_from_a_finished_runs_page(server: Server) -> None:
    parent = finished_run(server, "/api/convene", QUICK)
    async with browser_page() as page:
        await page.goto(f"{server.base}/runs/{parent}")
        await page.wait_for("document.body.dataset.runDone === 'true'")
        await page.evaluate(f"""(() => {{
            const form = document.getElementById('follow-up');
            form.question.value = {json.dumps(NEXT)};
            form.requestSubmit();
        }})()""")
        await page.wait_for(
            "document.querySelector('.follows') !== null "
            "&& document.body.dataset.runDone === 'true'",
            timeout_s=120,
        )
        shown = await page.evaluate("""(() => ({
            follows: document.querySelector('.follows a').getAttribute('href'),
            status: document.getElementById('status').textContent,
            title: document.title,
        }))()""")
        assert shown["follows"] == f"/runs/{parent}" and shown["status"] == "completed"
        assert NEXT in shown["title"]
