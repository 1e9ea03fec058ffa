"""The standing security suite of ``council serve``: no page on another site can start a run,
load the machine or frame the app; every answer carries its headers; the token is strong, from
the environment or a file, and compared as bytes. Each forgery is refused *and* starts nothing:
no request reaches the provider and no run folder is made. The browser probes use a real
headless Chromium and a real second site (``localhost`` on another port is another site than
``127.0.0.1``)."""

from __future__ import annotations

import http.client
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_web as web
import uvicorn
from cdp import browser_page

from council.cli.main import main
from council.store.ledger import Ledger
from council.store.query import RunQuery
from council.testing import FakeProvider
from council.testing.fake_provider import Reply
from council.web.app import create_app
from council.web.guard import APP_CSP
from council.web.settings import ServerSettings

QUICK = {"question": "Should a city ban cars?", "protocol": "quick", "personas": ["popper", "kuhn"]}
TOKEN = "a-token-of-24-characters"
JSON = {"Content-Type": "application/json"}


class Recorded:
    """ASGI wrapper: what reached the app and what it answered (method, path, status)."""

    def __init__(self, app: Any) -> None:
        self.app, self.seen = app, []  # type: list[tuple[str, str, int]]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.seen.append((scope["method"], scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, watch if scope["type"] == "http" else send)


class Server(web.Server):
    """The app behind ``Recorded``: every answer it gave, by method, path and status."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.recorded = Recorded(self.app)
        super().__init__(settings, asgi=self.recorded)

    def send(
        self,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        method: str | None = None,
    ) -> tuple[int, dict[str, str], str]:
        """Exactly these headers (http.client adds no Content-Type of its own)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            connection.request(
                method or ("POST" if body is not None else "GET"),
                path,
                body=body,
                headers=headers or {},
            )
            reply = connection.getresponse()
            return (
                reply.status,
                {k.lower(): v for k, v in reply.getheaders()},
                reply.read().decode(),
            )
        finally:
            connection.close()

    def runs_started(self) -> list[str]:
        """Every run this server started: folders in the runs folder, rows in its ledger, and
        councils running now."""
        runs = self.settings.runs_dir
        started = set(self.app.state.live.running())
        if runs.is_dir():
            started |= {p.name for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")}
        if (runs / "ledger.sqlite").is_file():
            ledger = Ledger.existing(runs)
            started |= {row["run_id"] for row in ledger.runs(RunQuery())}
            ledger.close()
        return sorted(started)


@pytest.fixture
def provider_reply() -> Reply:
    """Replies of 40 characters or more: shorter ones are too short for the meter to measure."""
    return lambda body: f"Reply from {body['model']}, long enough to measure."


def serve(tmp_path: Path, provider: FakeProvider, **changes: Any) -> Server:
    return Server(
        ServerSettings(
            runs_dir=tmp_path / "runs",
            default_model="openai/fake",
            endpoints={"openai/fake": provider.api_base},
            **changes,
        )
    )


@pytest.fixture
def server(tmp_path: Path, provider: FakeProvider) -> Iterator[Server]:
    running = serve(tmp_path, provider)
    yield running
    running.stop()


def finished_run(server: Server) -> str:
    """A run convened by a plain client, once it has finished."""
    status, _, text = server.send("/api/convene", json.dumps(QUICK).encode(), JSON)
    assert status == 200, text
    run_id: str = json.loads(text)["run_id"]
    server.send(f"/api/runs/{run_id}/events")  # the stream ends when the run does
    return run_id


def own_origin(server: Server) -> dict[str, str]:
    return {"Origin": server.base, "Sec-Fetch-Site": "same-origin", **JSON}


# -- forged requests: refused, and nothing started ---------------------------------------------

FORGERIES = {
    # A form with enctype=text/plain, or fetch(..., {mode: "no-cors", body: "..."}).
    "text/plain body": ({"Content-Type": "text/plain;charset=UTF-8"}, 415),
    "form-encoded post": ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
    "multipart form post": ({"Content-Type": "multipart/form-data; boundary=x"}, 415),
    "no content type": ({}, 415),
    "no-cors fetch from another site": (
        {
            "Content-Type": "text/plain",
            "Origin": "http://evil.example",
            "Sec-Fetch-Site": "cross-site",
            "Sec-Fetch-Mode": "no-cors",
        },
        415,
    ),
    "foreign origin": ({**JSON, "Origin": "http://evil.example"}, 403),
    "null origin (sandboxed frame)": ({**JSON, "Origin": "null"}, 403),
    "another port on this machine": ({**JSON, "Origin": "http://127.0.0.1:1"}, 403),
    "sec-fetch-site cross-site": ({**JSON, "Sec-Fetch-Site": "cross-site"}, 403),
    "sec-fetch-site same-site": ({**JSON, "Sec-Fetch-Site": "same-site"}, 403),
}


@pytest.mark.parametrize(("headers", "status"), FORGERIES.values(), ids=list(FORGERIES))
def test_a_forged_convene_is_refused_and_starts_nothing(
    server: Server, provider: FakeProvider, headers: dict[str, str], status: int
) -> None:
    got, answer_headers, text = server.send("/api/convene", json.dumps(QUICK).encode(), headers)
    assert got == status and "error" in json.loads(text)
    assert answer_headers["x-frame-options"] == "DENY"
    time.sleep(0.3)  # a run started in a thread would have called the provider by now
    assert provider.request_count == 0 and server.runs_started() == []


def test_the_apps_own_pages_and_a_plain_client_still_convene(
    server: Server, provider: FakeProvider
) -> None:
    """Positive controls: the app's own origin, and a client that is no browser (curl sends
    neither Origin nor Sec-Fetch-Site; it needs the JSON content type all the same)."""
    for headers in (own_origin(server), JSON):
        status, _, text = server.send("/api/convene", json.dumps(QUICK).encode(), headers)
        assert status == 200, text
        server.send(f"/api/runs/{json.loads(text)['run_id']}/events")  # until it has finished
    assert len(server.runs_started()) == 2


def test_measuring_diversity_takes_a_post_from_the_app_alone(
    server: Server, provider: FakeProvider
) -> None:
    run_id = finished_run(server)
    report = server.settings.runs_dir / run_id / "report.html"
    path = f"/api/runs/{run_id}/diversity"
    for headers, refused in FORGERIES.values():
        assert server.send(path, b"{}", headers)[0] == refused
    # A GET from anywhere computes nothing; another site may not even load the page.
    assert server.send(f"/runs/{run_id}/diversity")[0] == 200
    cross = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
    assert server.send(f"/runs/{run_id}/diversity", headers=cross)[0] == 403
    assert not report.exists()
    # One measurement at a time: a second is told to wait, not queued.
    from council.web.measure import _MEASURING

    with _MEASURING:
        status, _, text = server.send(path, b"{}", own_origin(server))
        assert status == 429 and "being measured" in json.loads(text)["error"]
    assert not report.exists()
    assert server.send(path, b"{}", own_origin(server))[0] == 200
    status, headers, page = server.send(f"/runs/{run_id}/diversity")
    # Shown inside the app's page, under the app's policy: no inline style, no script of its own.
    assert status == 200 and "<svg" in page and headers["content-security-policy"] == APP_CSP
    assert "<style" not in page


@pytest.mark.parametrize(
    ("dest", "mode", "status"),
    [
        ("image", "no-cors", 403),
        ("script", "no-cors", 403),
        ("iframe", "navigate", 403),
        ("empty", "cors", 403),
        ("document", "navigate", 200),
    ],
)
def test_another_site_may_link_here_but_not_load_anything(
    server: Server, dest: str, mode: str, status: int
) -> None:
    headers = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": mode, "Sec-Fetch-Dest": dest}
    for path in ("/", "/api/runs", "/runs", "/static/app.js"):
        assert server.send(path, headers=headers)[0] == status, path


def test_a_request_past_the_servers_caps_is_refused_and_a_run_has_a_budget(
    server: Server, provider: FakeProvider
) -> None:
    for field, value in (
        ("max_tokens", 100_000),
        ("budget_tokens", 10_000_000),
        ("budget_usd", 500),
        ("budget_seconds", 86_400),
    ):
        status, _, text = server.send(
            "/api/convene", json.dumps({**QUICK, field: value}).encode(), JSON
        )
        assert status == 400 and "more than this server allows" in json.loads(text)["error"]
    assert provider.request_count == 0 and server.runs_started() == []
    run_id = finished_run(server)
    settings = server.settings
    ledger = Ledger.existing(settings.runs_dir)
    config = json.loads((ledger.run(run_id) or {})["config"])
    ledger.close()
    assert config["spec"]["budget"] == {
        "max_tokens": settings.budget_tokens,
        "max_usd": settings.budget_usd,
        "max_wall_s": settings.budget_seconds,
        "max_calls": None,  # the server caps tokens, dollars and time, not calls
    }
    # The server's cap is a ceiling on the protocol's own caps (200 and 300 tokens here).
    assert max(body["max_tokens"] for body in provider.requests) <= settings.max_tokens
    provider.requests.clear()
    status, _, text = server.send(
        "/api/convene", json.dumps({**QUICK, "max_tokens": 50}).encode(), JSON
    )
    server.send(f"/api/runs/{json.loads(text)['run_id']}/events")
    assert {body["max_tokens"] for body in provider.requests} == {50}


# -- headers on every answer ---------------------------------------------------------------------


def test_every_answer_carries_the_security_headers(server: Server, tmp_path: Path) -> None:
    run_id = finished_run(server)
    answers = [
        server.send(path)
        for path in (
            "/",
            "/runs",
            f"/runs/{run_id}",
            f"/runs/{run_id}/diversity",
            "/personas",
            "/personas/popper",
            "/protocols",
            "/protocols/council",
            "/experiments",
            "/api/models",
            "/api/runs",
            f"/api/runs/{run_id}",
            "/static/app.js",
            "/static/app.css",
            "/no-such-page",
        )
    ]
    answers.append(server.send("/api/convene", b"x", {"Content-Type": "text/plain"}))
    assert [status for status, _, _ in answers].count(200) == 14
    for _, headers, _ in answers:
        assert headers["content-security-policy"] == APP_CSP
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cross-origin-resource-policy"] == "same-origin"


# -- the token -----------------------------------------------------------------------------------


def test_the_token_is_compared_as_bytes(tmp_path: Path, provider: FakeProvider) -> None:
    running = serve(tmp_path, provider, token=TOKEN)
    try:
        assert running.send("/", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
        for probe in (
            "/?token=%C3%A9t%C3%A9",
            "/?token=%FF%FE",
            f"/?token={TOKEN[:-1]}%E2%82%AC",
            "/?token=%00",
        ):
            status, headers, text = running.send(probe)
            assert status == 401 and "Traceback" not in text, probe
            assert headers["x-frame-options"] == "DENY"
        raw = http.client.HTTPConnection("127.0.0.1", running.port, timeout=30)
        raw.putrequest("GET", "/")
        raw.putheader("Authorization", b"Bearer " + "été-token-non-ascii".encode())
        raw.putheader("Cookie", "council_token=\xe9t\xe9".encode("latin-1"))
        raw.endheaders()
        assert raw.getresponse().status == 401
        raw.close()
        # The token in a link once: a cookie carries it from then on.
        status, headers, _ = running.send(f"/?token={TOKEN}")
        assert status == 200 and "council_token=" in headers["set-cookie"]
    finally:
        running.stop()


@pytest.fixture
def never_served(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``council serve`` that should refuse to start fails the test instead of serving."""

    def served(*args: Any, **kwargs: Any) -> None:
        pytest.fail("council serve started a server it should have refused")

    monkeypatch.setattr(uvicorn, "run", served)


@pytest.mark.usefixtures("never_served")
def test_serve_refuses_a_token_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--token", "x" * 32]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--token is refused" in err and "COUNCIL_SERVE_TOKEN" in err


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("x", "has 1 characters; it needs at least 16"),
        ("fifteen-chars-x", "has 15 characters"),
        ("a token with spaces inside it", "printable ASCII with no spaces"),
        ("tøken-ñon-ascii-long-enough", "printable ASCII"),
    ],
)
@pytest.mark.usefixtures("never_served")
def test_serve_refuses_a_weak_token(
    token: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COUNCIL_SERVE_TOKEN", token)
    argv = ["serve", "--host", "0.0.0.0", "--allow-remote", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    monkeypatch.delenv("COUNCIL_SERVE_TOKEN")
    (tmp_path / "token").write_text(token + "\n")
    assert main([*argv, "--token-file", str(tmp_path / "token")]) == 2  # the file: the same rule
    assert message in capsys.readouterr().err


@pytest.mark.usefixtures("never_served")
def test_serving_beyond_loopback_needs_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("COUNCIL_SERVE_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--allow-remote", "--out", str(tmp_path)]) == 2
    assert "needs a token of at least 16 characters" in capsys.readouterr().err
    assert main(["serve", "--token-file", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "--token-file" in capsys.readouterr().err


# -- in a real browser, from a real second site ------------------------------------------------

ATTACK = """<!doctype html><html><body>
<form id=f method=post enctype=text/plain target=sink action="APP/api/convene">
<input name='{"question":"Forged?","protocol":"quick","x":"' value='"}'></form>
<iframe name=sink id=sink></iframe>
<img id=img src="APP/runs/RUN/diversity">
<script>
const app = "APP", body = JSON.stringify(QUICK);
const settle = p => p.then(r => r.type, e => "error: " + e);
window.results = {};
Promise.all([
  settle(fetch(app + "/api/convene", {method: "POST", mode: "no-cors", body})),
  settle(fetch(app + "/api/convene", {method: "POST", mode: "no-cors", body,
                                      headers: {"Content-Type": "text/plain"}})),
  settle(fetch(app + "/api/convene", {method: "POST", body,
                                      headers: {"Content-Type": "application/json"}})),
  settle(fetch(app + "/api/runs/RUN/diversity", {method: "POST", mode: "no-cors", body: "{}"})),
  settle(fetch(app + "/api/runs", {mode: "no-cors"})),
]).then(found => {
  window.results.fetches = found;
  document.getElementById("sink").onload = () => { window.results.form = "sent"; };
  document.getElementById("f").submit();
});
</script></body></html>"""


class _Page(http.server.BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:  # the standard library's name
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args: Any) -> None:
        pass


async def test_a_page_on_another_site_starts_nothing_in_a_real_browser(
    server: Server, provider: FakeProvider
) -> None:
    run_id = finished_run(server)
    before = (provider.request_count, server.runs_started())
    page = ATTACK.replace("APP", server.base).replace("RUN", run_id)
    handler = type("Attack", (_Page,), {"page": page.replace("QUICK", json.dumps(QUICK)).encode()})
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    server.recorded.seen.clear()
    try:
        async with browser_page() as browser:
            await browser.goto(f"http://localhost:{evil.server_address[1]}/")
            await browser.wait_for("window.results && window.results.form === 'sent'")
            fetches = await browser.evaluate("window.results.fetches")
    finally:
        evil.shutdown()
    time.sleep(0.3)
    assert (provider.request_count, server.runs_started()) == before  # nothing started
    assert not (server.settings.runs_dir / run_id / "report.html").exists()  # nothing measured
    assert fetches[2].startswith("error")  # the JSON fetch: its preflight was refused
    seen = server.recorded.seen
    # Every forged request reached the app and was refused by it (not only by the browser).
    assert ("POST", "/api/convene", 415) in seen  # the no-cors fetches and the text/plain form
    assert ("OPTIONS", "/api/convene", 403) in seen  # the JSON fetch's preflight
    assert ("POST", f"/api/runs/{run_id}/diversity", 415) in seen
    assert ("GET", f"/runs/{run_id}/diversity", 403) in seen  # the image
    assert ("GET", "/api/runs", 403) in seen
    assert all(status >= 400 for _, _, status in seen), seen


CSP_WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  e => window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample}`));
"""


async def test_the_apps_own_pages_break_no_policy_in_a_real_browser(server: Server) -> None:
    run_id = finished_run(server)
    async with browser_page() as page:
        await page.send("Page.addScriptToEvaluateOnNewDocument", source=CSP_WATCH)
        for path in (
            "/",
            "/runs",
            f"/runs/{run_id}",
            "/personas",
            "/personas/popper",
            "/protocols",
            "/protocols/council",
            "/experiments",
            f"/runs/{run_id}/diversity",
        ):
            await page.goto(server.base + path)
            if path == f"/runs/{run_id}":
                await page.wait_for("document.body.dataset.runDone === 'true'")
                await page.evaluate("document.querySelector('[data-tab=Transcript]').click()")
            assert await page.evaluate("window.__violations") == [], path
        # The report, once measured, inside the app's page: styled by the app's style sheet.
        await page.evaluate("document.getElementById('measure').click()")
        await page.wait_for("document.querySelectorAll('.report svg').length > 0", timeout_s=120)
        assert await page.evaluate("window.__violations") == []
        shown = await page.evaluate("getComputedStyle(document.querySelector('main')).maxWidth")
        assert shown == "1100px"  # the app's own style applies
