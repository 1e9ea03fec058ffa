"""``council serve``: the web app on loopback, against the fake provider and in a real headless
Chromium, and the rules that keep it safe."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cdp import browser_page

from council.base.errors import ConfigError
from council.records.events import event_json, parse_event
from council.reports.page import body_of
from council.store.ledger import Ledger
from council.testing import FakeProvider
from council.web.app import create_app
from council.web.settings import MAX_BODY_BYTES, ServerSettings


class Server:
    """The web app on a free loopback port, in a thread; ``asgi`` wraps it where a test
    watches its traffic (tests/test_security_web.py)."""

    def __init__(self, settings: ServerSettings, asgi: Any = None) -> None:
        app = asgi or create_app(settings)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def request(
        self,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, str]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(
            self.base + path,
            data=data,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


REPLY = "Reply from fake, long enough to measure."


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    # Replies of 40 characters or more: shorter ones are too short for the meter to measure.
    with FakeProvider(
        lambda body: f"Reply from {body['model']}, long enough to measure.", latency_s=0.2
    ) as fake:
        yield fake


def serve(tmp_path: Path, provider: FakeProvider, **changes: Any) -> Server:
    settings = ServerSettings(
        runs_dir=tmp_path / "runs",
        endpoints={"openai/fake": provider.api_base},
        default_model="openai/fake",
        **changes,
    )
    return Server(settings)


@pytest.fixture
def server(tmp_path: Path, provider: FakeProvider) -> Iterator[Server]:
    running = serve(tmp_path, provider)
    yield running
    running.stop()


QUICK = {"question": "Should a city ban cars?", "protocol": "quick", "personas": ["popper", "kuhn"]}


def events_of(stream: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in stream.splitlines() if line.startswith('data: {"')]


def test_convene_and_follow_the_event_stream(server: Server, provider, tmp_path: Path) -> None:
    provider.fail_next(503)  # one seat's first attempt fails: the page is told, then the retry
    status, text = server.request("/api/convene", QUICK)
    assert status == 200, text
    run_id = json.loads(text)["run_id"]
    status, stream = server.request(f"/api/runs/{run_id}/events")  # joins mid-run: no gap
    streamed = events_of(stream)
    events = [e for e in streamed if e["type"] != "turn_delta"]  # live only, never stored
    verdict = [e["text"] for e in streamed if e["type"] == "turn_delta" and e["seat"] == "chair"]
    assert "".join(verdict) == REPLY  # the verdict streamed in pieces
    assert [e["type"] for e in events].count("call_retrying") == 1
    assert events[0]["type"] == "run_started" and events[-1]["type"] == "run_finished"
    assert stream.rstrip().endswith("event: end\ndata: {}")
    ledger = Ledger.existing(tmp_path / "runs")
    assert [json.loads(line) for line in ledger.event_lines(run_id)] == events
    again = events_of(server.request(f"/api/runs/{run_id[:20]}/events")[1])  # from the ledger
    assert again == events
    listed = json.loads(server.request("/api/runs?persona=kuhn")[1])
    assert [r["run_id"] for r in listed] == [run_id]
    assert json.loads(server.request("/api/runs?persona=hayek")[1]) == []
    run = json.loads(server.request("/api/runs/latest")[1])
    assert run["status"] == "completed" and run["synthesis"] == REPLY


def test_pages_render(server: Server) -> None:
    server.request("/api/convene", QUICK)
    for path, needle in [
        ("/", "Convene a council"),
        ("/runs?question=cars", "Should a city"),
        ("/personas", "popper"),
        ("/personas/popper?question=Tax%20sugar%3F", "Tax sugar?"),
        ("/protocols", "council"),
        ("/protocols/council", "<svg"),
        ("/runs/latest", "Costs and latencies"),
        ("/experiments", "No experiment folders"),
        ("/static/app.js", "EventSource"),
    ]:
        status, text = server.request(path)
        assert status == 200 and needle in text, path
    assert server.request("/personas/..%2F..%2Fetc%2Fpasswd")[0] == 404
    assert server.request("/static/../app.py")[0] == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**QUICK, "endpoints": {"openai/x": "http://example.com/v1"}}, "--allow-endpoints"),
        ({**QUICK, "model": "openai/gpt-4o"}, "model 'openai/gpt-4o' is not offered"),
        ({**QUICK, "personas": ["../../secret.md"]}, "unknown persona '../../secret.md'"),
        ({**QUICK, "protocol": "/etc/passwd"}, "unknown protocol '/etc/passwd'"),
        ({**QUICK, "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({**QUICK, "personas": ["popper"] * 13}, "personas: List should have at most 12"),
        ({**QUICK, "question": ""}, "question: String should have at least 1 character"),
    ],
)
def test_a_request_outside_what_the_server_allows_is_refused(
    server, provider, body, message
) -> None:
    status, text = server.request("/api/convene", body)
    assert status == 400 and message in json.loads(text)["error"]
    assert provider.request_count == 0


def test_request_guards(tmp_path: Path, provider: FakeProvider, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-never-shown-123456")
    running = serve(tmp_path, provider, token="s3cret-token-0123456789")
    auth = {"Authorization": "Bearer s3cret-token-0123456789"}
    try:
        assert running.request("/")[0] == 401
        assert running.request("/?token=wrong")[0] == 401
        assert running.request("/", headers=auth)[0] == 200
        status, _ = running.request("/runs", headers={"Host": "evil.example:80", **auth})
        assert status == 421  # a page elsewhere cannot rebind its name to this server
        big = b"{" + b" " * (MAX_BODY_BYTES + 1) + b"}"
        assert running.request("/api/convene", raw=big, headers=auth)[0] == 413
        status, text = running.request("/api/convene", QUICK, headers=auth)
        run_id = json.loads(text)["run_id"]
        pages = [
            running.request(p, headers=auth)[1]
            for p in ("/", f"/runs/{run_id}", f"/api/runs/{run_id}", f"/api/runs/{run_id}/events")
        ]
        assert not any("sk-test-never-shown" in page for page in pages)
    finally:
        running.stop()


def test_concurrent_convenes_are_capped(tmp_path: Path) -> None:
    with FakeProvider("Slow.", latency_s=2.0) as slow:
        running = serve(tmp_path, slow, max_runs=1)
        try:
            assert running.request("/api/convene", QUICK)[0] == 200
            status, text = running.request("/api/convene", QUICK)
            assert status == 429 and "1 council(s) already running" in text
        finally:
            running.stop()


def test_binding_beyond_loopback_needs_a_flag_and_a_token(tmp_path: Path) -> None:
    ServerSettings(runs_dir=tmp_path, host="127.0.0.1").check_bind(allow_remote=False)
    ServerSettings(runs_dir=tmp_path, host="::1").check_bind(allow_remote=False)
    with pytest.raises(ConfigError, match="not loopback: add --allow-remote"):
        ServerSettings(runs_dir=tmp_path, host="0.0.0.0").check_bind(allow_remote=False)
    with pytest.raises(ConfigError, match="needs a token of at least 16 characters"):
        ServerSettings(runs_dir=tmp_path, host="0.0.0.0").check_bind(allow_remote=True)
    with pytest.raises(ConfigError, match="has 1 characters; it needs at least 16"):
        ServerSettings(runs_dir=tmp_path, host="0.0.0.0", token="t").check_bind(allow_remote=True)
    ServerSettings(runs_dir=tmp_path, host="0.0.0.0", token="t" * 16).check_bind(allow_remote=True)


ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "screenshots"


async def keep(page: Any, name: str) -> Path:
    """A screenshot kept after the test (build/screenshots/, outside version control)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"web-{name}.png"
    await page.screenshot(str(path))
    assert path.stat().st_size > 10_000
    return path


async def test_a_council_convened_and_watched_in_a_browser(server: Server, tmp_path) -> None:
    async with browser_page() as page:
        await page.goto(server.base + "/")
        await page.evaluate("""(() => {
            const form = document.getElementById('convene');
            form.question.value = 'Should the library open on Sundays?';
            form.protocol.value = 'council';
            for (const box of form.querySelectorAll('input[name=personas]')) {
                box.checked = ['popper', 'kuhn', 'meadows'].includes(box.value);
            }
            form.requestSubmit();
        })()""")
        await page.wait_for("document.body.dataset.runDone === 'true'", timeout_s=120)
        shown = await page.evaluate("""(() => ({
            status: document.getElementById('status').textContent,
            verdict: document.getElementById('verdict').textContent,
            stages: [...document.querySelectorAll('.stage h3')].map(h => h.textContent),
            seats: [...document.querySelectorAll('.stage .seat')].map(s => s.textContent),
            running: document.querySelectorAll('.turn.running').length,
            run: document.getElementById('run').dataset.run,
            title: document.title,
        }))()""")
        assert shown["status"] == "completed" and shown["running"] == 0
        assert shown["verdict"] == REPLY
        assert shown["stages"] == ["Blind round", "Cross-examination", "Chair's verdict"]
        assert shown["title"].startswith("council: Should the library open on Sundays?")
        # The seats saw each other as anonymous members; the page shows them so until revealed.
        assert all(s.startswith("Member ") for s in shown["seats"][:6])
        await page.evaluate("document.getElementById('reveal').click()")
        revealed = await page.evaluate(
            "[...document.querySelectorAll('.stage .seat')].map(s => s.textContent)"
        )
        assert sorted(revealed[:3]) == ["kuhn", "meadows", "popper"]
        run = json.loads(server.request(f"/api/runs/{shown['run']}")[1])
        assert run["question"] == "Should the library open on Sundays?"
        await keep(page, "run-live")

        # Opened afterwards, the run page is filled from the ledger: the same stages and verdict.
        await page.goto(f"{server.base}/runs/{shown['run'][:20]}")
        await page.wait_for("document.body.dataset.runDone === 'true'")
        later = await page.evaluate("""(() => ({
            verdict: document.getElementById('verdict').textContent,
            turns: document.querySelectorAll('.turn').length,
        }))()""")
        assert later == {"verdict": REPLY, "turns": 7}
        await page.evaluate("document.querySelector('[data-tab=Transcript]').click()")
        assert "Should the library open on Sundays?" in await page.evaluate(
            "document.querySelector('[data-pane=Transcript]').innerText"
        )
        await keep(page, "run-transcript")

        # Measured only when asked (a POST from the page's button), then shown from then on,
        # inside the app: its navigation, and the run page's Diversity tab.
        await page.goto(f"{server.base}/runs/{shown['run']}/diversity")
        await page.evaluate("document.getElementById('measure').click()")
        await page.wait_for("document.querySelectorAll('.report svg').length > 0", timeout_s=120)
        report = await page.evaluate("document.querySelector('.report').innerText")
        assert "popper" in report and "kuhn" in report and "meadows" in report
        assert await page.evaluate("document.querySelectorAll('nav a').length") == 5
        await keep(page, "run-diversity")
        await page.goto(f"{server.base}/runs/{shown['run']}")
        await page.evaluate("document.querySelector('[data-tab=Diversity]').click()")
        tab = await page.evaluate("document.querySelector('[data-pane=Diversity]').innerText")
        assert "popper" in tab and "Measure now" not in tab


@pytest.mark.local_model
def test_the_web_app_convenes_on_the_bundled_model(tmp_path: Path, capsys) -> None:
    running = Server(ServerSettings(runs_dir=tmp_path / "runs"))
    try:
        started = time.monotonic()
        status, text = running.request("/api/convene", {**QUICK, "max_tokens": 24})
        assert status == 200, text
        run_id = json.loads(text)["run_id"]
        first_token_s = None
        url = f"{running.base}/api/runs/{run_id}/events"
        with urllib.request.urlopen(url, timeout=900) as stream:
            lines = []
            for raw in stream:
                line = raw.decode()
                lines.append(line)
                if first_token_s is None and '"type":"turn_delta"' in line:
                    first_token_s = time.monotonic() - started
        events = events_of("".join(lines))
        assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "completed"
        models = {e["turn"]["model"] for e in events if e["type"] == "turn_finished"}
        assert models == {"local/smollm2-135m-instruct"}
        assert first_token_s is not None  # the bundled model's replies stream to the page
        with capsys.disabled():
            print(f"\nweb, bundled model: first streamed token {first_token_s:.2f} s after start")
    finally:
        running.stop()


def test_experiments_are_browsed_with_the_reports_charts(tmp_path, provider) -> None:
    docs = Path(__file__).resolve().parent.parent / "docs" / "experiments"
    running = serve(tmp_path, provider, experiments_dir=docs)
    try:
        status, listing = running.request("/experiments")
        assert status == 200 and "/experiments/diversity" in listing
        status, page = running.request("/experiments/diversity")
        assert status == 200 and "<svg" in page and "placebo floor" in page.lower()
        assert running.request("/experiments/..%2F..%2Fetc")[0] == 404
    finally:
        running.stop()


def test_a_runs_diversity_is_measured_on_request_and_kept(tmp_path) -> None:
    # Replies long enough for the meter (MIN_REPLY_CHARACTERS); shorter ones are not measured.
    def reply(body: dict[str, Any]) -> str:
        return f"A reply from {body['model']}, long enough to be measured."

    with FakeProvider(reply) as provider:
        server = serve(tmp_path, provider)
        try:
            run_id = json.loads(server.request("/api/convene", QUICK)[1])["run_id"]
            server.request(f"/api/runs/{run_id}/events")  # until it has finished
            status, unmeasured = server.request(f"/runs/{run_id[:20]}/diversity")
            assert status == 200 and "Measure now" in unmeasured and "<svg" not in unmeasured
            kept = tmp_path / "runs" / run_id / "report.html"
            assert not kept.exists()  # a GET computes nothing
            status, text = server.request(f"/api/runs/{run_id[:20]}/diversity", {})
            assert status == 200 and json.loads(text)["url"] == f"/runs/{run_id}/diversity"
            status, page = server.request(f"/runs/{run_id[:20]}/diversity")
        finally:
            server.stop()
    assert status == 200 and "<svg" in page and "popper" in page and "<nav" in page
    assert body_of(kept.read_text(encoding="utf-8")) in page  # the kept report, in the app


def test_two_councils_in_threads_stream_each_event_as_its_own_line(
    tmp_path: Path, provider: FakeProvider
) -> None:
    """Councils run in worker threads while the server's loop streams their events: every SSE
    line is its own event's serialization, of its own run, as the ledger recorded it."""
    running = serve(tmp_path, provider, max_runs=2)
    streams: dict[str, str] = {}
    problems: list[str] = []

    def follow(question: str) -> None:
        status, text = running.request("/api/convene", {**QUICK, "question": question})
        if status != 200:
            problems.append(text)
            return
        run_id = json.loads(text)["run_id"]
        streams[run_id] = running.request(f"/api/runs/{run_id}/events")[1]  # joins mid-run

    try:
        threads = [
            threading.Thread(target=follow, args=(f"Should town {n} ban cars?",)) for n in (1, 2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        running.stop()
    assert problems == [] and len(streams) == 2
    ledger = Ledger.existing(tmp_path / "runs")
    try:
        for run_id, stream in streams.items():
            assert stream.rstrip().endswith("event: end\ndata: {}")
            lines = [line[6:] for line in stream.splitlines() if line.startswith('data: {"')]
            events = [parse_event(line) for line in lines]
            assert {event.run_id for event in events} == {run_id}
            assert [event_json(event) for event in events] == lines
            recorded = [line for event, line in zip(events, lines, strict=True) if event.durable]
            assert recorded == ledger.event_lines(run_id)  # every type, in order, same JSON
            assert any(event.type == "turn_delta" for event in events)  # live pieces too
    finally:
        ledger.close()
