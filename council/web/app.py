"""The web app: pages, a small JSON API, and each run's events as server-sent events.

Every request passes the guard first (``guard.refusal``): a Host header naming this machine when
bound to loopback (a page elsewhere cannot rebind its name to us), the token when one is set, a
bounded body, and no request from another site that changes anything or loads anything but a
page. Every answer carries the guard's headers (a Content-Security-Policy, no framing, no
referrer).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from html import escape
from importlib import resources
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from council.base.errors import CouncilError, UnknownNameError, first_problem
from council.base.secrets import redact
from council.personas.library import available_personas, find_persona
from council.personas.panels import available_panels
from council.protocols.library import available_protocols, find_protocol
from council.records.transcript import audits_html, render_transcript_html
from council.store.ledger import Ledger
from council.store.loader import load_run, resolve_run_id
from council.store.query import RunQuery
from council.web import pages, run_view
from council.web.convene import allowed_models, convene
from council.web.convene import follow_up as follow_up_run
from council.web.errors import error_response
from council.web.guard import HEADERS, refusal
from council.web.library_pages import (
    experiments_page,
    persona_page,
    personas_page,
    protocol_page,
    protocols_page,
)
from council.web.live import Busy, LiveRuns
from council.web.settings import (
    MAX_BODY_BYTES,
    ConveneRequest,
    FollowUpRequest,
    ServerSettings,
)

STATIC_TYPES = {"app.js": "text/javascript", "app.css": "text/css"}


def create_app(settings: ServerSettings) -> FastAPI:
    app = FastAPI(title="council", docs_url=None, redoc_url=None, openapi_url=None)
    live = LiveRuns(settings.max_runs)
    app.state.settings, app.state.live = settings, live

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        problem = refusal(request, settings)
        if problem is not None:
            response = error_response(request, *problem)
        else:
            response = await call_next(request)
            if settings.token and request.query_params.get("token"):  # a link with the token:
                # the pages it loads (scripts, the event stream) carry it as a cookie from then on
                response.set_cookie(
                    "council_token", settings.token, httponly=True, samesite="strict"
                )
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)  # a report page brings its own policy
        return response

    @app.exception_handler(CouncilError)
    async def council_error(request: Request, exc: CouncilError) -> Response:
        status = 429 if isinstance(exc, Busy) else 400
        return error_response(request, status, redact(str(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(request, exc.status_code, str(exc.detail))

    _static_routes(app)
    _run_routes(app, settings, live)
    _library_routes(app, settings)
    return app


def _static_routes(app: FastAPI) -> None:
    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC_TYPES:
            raise HTTPException(404)
        text = resources.files("council.web").joinpath("static", name).read_text("utf-8")
        return Response(text, media_type=STATIC_TYPES[name])


async def _body(request: Request) -> bytes:
    """The body, read no further than the limit (a chunked upload has no Content-Length)."""
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY_BYTES:
            raise HTTPException(413, f"a request body is at most {MAX_BODY_BYTES} bytes")
    return data


def _run_routes(app: FastAPI, settings: ServerSettings, live: LiveRuns) -> None:
    @app.post("/api/convene")
    async def start(request: Request) -> JSONResponse:
        try:
            wanted = ConveneRequest.model_validate_json(await _body(request))
        except ValidationError as exc:
            return JSONResponse({"error": first_problem(exc, "body")}, status_code=400)
        run_id = await asyncio.to_thread(live.start, lambda sink: convene(wanted, settings, sink))
        return JSONResponse({"run_id": run_id, "url": f"/runs/{run_id}"})

    @app.post("/api/runs/{name}/follow-up")
    async def follow_up(name: str, request: Request) -> JSONResponse:
        try:
            wanted = FollowUpRequest.model_validate_json(await _body(request))
        except ValidationError as exc:
            return JSONResponse({"error": first_problem(exc, "body")}, status_code=400)
        parent = _run_id(settings, name, live)
        run_id = await asyncio.to_thread(
            live.start, lambda sink: follow_up_run(parent, wanted, settings, sink)
        )
        return JSONResponse({"run_id": run_id, "url": f"/runs/{run_id}"})

    @app.get("/api/runs")
    def runs(request: Request) -> list[dict[str, Any]]:
        return [_row(r) for r in _find(settings, dict(request.query_params))]

    @app.get("/api/runs/{name}")
    def run(name: str) -> dict[str, Any]:
        return load_run(_run_id(settings, name), settings.runs_dir).to_json()

    @app.get("/api/runs/{name}/events")
    async def events(name: str) -> StreamingResponse:
        run_id = _run_id(settings, name, live)
        return StreamingResponse(
            _sse(settings, live, run_id),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store"},
        )

    @app.get("/runs", response_class=HTMLResponse)
    def runs_page(request: Request) -> str:
        filters = {k: v for k, v in request.query_params.items() if v}
        return pages.runs_page(_find(settings, filters), filters)

    @app.get("/runs/{name}", response_class=HTMLResponse)
    def run_page(name: str) -> str:
        return _run_page(settings, live, _run_id(settings, name, live))

    @app.get("/runs/{name}/diversity", response_class=HTMLResponse)
    def diversity(name: str) -> str:
        from council.web.measure import kept_report

        run_id = _run_id(settings, name)  # measured only when asked by a POST: a GET computes
        pane = run_view.diversity_pane(run_id, kept_report(settings, run_id))  # nothing
        back = f"<p><a href='/runs/{escape(run_id)}'>Back to the run</a></p>"
        return pages.layout("Diversity", back + pane)

    @app.post("/api/runs/{name}/diversity")
    async def measure(name: str) -> dict[str, str]:
        from council.web.measure import measure_once

        run_id = _run_id(settings, name)
        await asyncio.to_thread(measure_once, settings, run_id)
        return {"url": f"/runs/{run_id}/diversity"}


def _find(settings: ServerSettings, filters: dict[str, str]) -> list[dict[str, Any]]:
    from datetime import date

    known = {"question", "persona", "model", "protocol", "status", "since", "until"}
    given: dict[str, Any] = {k: v for k, v in filters.items() if k in known and v}
    try:
        for key in ("since", "until"):
            if key in given:
                given[key] = date.fromisoformat(given[key])
    except ValueError:
        raise HTTPException(400, "dates are YYYY-MM-DD") from None
    ledger = _ledger(settings)
    if ledger is None:
        return []
    try:
        return ledger.runs(RunQuery(limit=500, **given))
    finally:
        ledger.close()


def _ledger(settings: ServerSettings) -> Ledger | None:
    from council.store.ledger import LEDGER_FILE

    if not (settings.runs_dir / LEDGER_FILE).is_file():
        return None
    return Ledger.existing(settings.runs_dir)


def _row(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("run_id", "question", "protocol", "status", "started_at", "finished_at", "calls")
    return {key: run[key] for key in keys}


def _run_id(settings: ServerSettings, name: str, live: LiveRuns | None = None) -> str:
    """The run ``name`` names; an error names what was asked for and never lists the ledger's
    run IDs (a page may be shown to someone who should not learn the others)."""
    if live is not None and live.get(name) is not None:
        return name
    ledger = _ledger(settings)
    if ledger is None:
        raise HTTPException(404, "no runs yet")
    try:
        return resolve_run_id(ledger, name)
    except UnknownNameError:
        raise HTTPException(404, f"no run '{name}'") from None
    except CouncilError:  # 'latest' in an empty ledger, or a prefix of several runs
        raise HTTPException(404, f"no single run '{name}': give more of its ID") from None
    finally:
        ledger.close()


async def _sse(settings: ServerSettings, live: LiveRuns, run_id: str) -> AsyncIterator[str]:
    # Each line is sent as the run's recorder serialized it (or as the ledger holds it): the
    # stream never serializes, so it cannot mix one event's JSON with another's.
    broadcast = live.get(run_id)
    if broadcast is None:  # a finished run: its record, then the end
        for line in _stored_lines(settings, run_id):
            yield f"data: {line}\n\n"
        yield "event: end\ndata: {}\n\n"
        return
    history, queue = broadcast.subscribe()
    try:
        for line in history:
            yield f"data: {line}\n\n"
        while queue is not None:
            item = await queue.get()
            if item is None:
                break
            yield f"data: {item}\n\n"
        end = {"error": broadcast.error} if broadcast.error else {}
        yield f"event: end\ndata: {json.dumps(end)}\n\n"
    finally:
        if queue is not None:
            broadcast.unsubscribe(queue)


def _stored_lines(settings: ServerSettings, run_id: str) -> list[str]:
    ledger = Ledger.existing(settings.runs_dir)
    try:
        return ledger.event_lines(run_id)
    finally:
        ledger.close()


def _run_page(settings: ServerSettings, live: LiveRuns, run_id: str) -> str:
    from council.web.measure import kept_report

    ledger = _ledger(settings)
    if ledger is None:
        raise HTTPException(404, "no runs yet")
    try:
        calls, row = ledger.calls(run_id), ledger.run(run_id) or {"run_id": run_id}
        children = ledger.follow_ups(run_id)
    finally:
        ledger.close()
    broadcast = live.get(run_id)
    running = broadcast is not None and not broadcast.done
    transcript, synthesis, report = (
        "<p>The transcript appears when the run has finished.</p>",
        None,
        None,
    )
    audits = ""
    thread = run_view.thread_pane(row.get("parent_run"), [], children, finished=False)
    if not running:
        result = load_run(run_id, settings.runs_dir)
        transcript, synthesis = render_transcript_html(result), result.synthesis
        audits = audits_html(result.audits)
        report = kept_report(settings, run_id)
        finished = row.get("status") == "completed"
        thread = run_view.thread_pane(result.parent_run, result.thread, children, finished)
    tabs = {
        "Stages": run_view.stages_pane(),
        "Transcript": transcript,
        "Prompts": run_view.prompts_pane(calls),
        "Costs and latencies": run_view.costs_pane(calls),
        "Diversity": run_view.diversity_pane(run_id, report),
    }
    return run_view.run_page(row, synthesis, tabs, running=running, audits=audits, thread=thread)


def _library_routes(app: FastAPI, settings: ServerSettings) -> None:
    @app.get("/", response_class=HTMLResponse)
    def home() -> str:
        cards = {name: find_persona(name) for name in available_personas()}
        panels = available_panels(cards.values())
        protocols = {name: find_protocol(name).spec.description for name in available_protocols()}
        models = allowed_models(settings)
        default = settings.default_model or (models[0] if models else "")
        return pages.convene_page(
            cards, panels, dict(sorted(protocols.items())), models, default, settings.ceilings()
        )

    @app.get("/api/models")
    def models() -> list[str]:
        return allowed_models(settings)

    @app.get("/personas", response_class=HTMLResponse)
    def personas() -> str:
        return personas_page({name: find_persona(name) for name in available_personas()})

    @app.get("/personas/{name}", response_class=HTMLResponse)
    def persona(name: str, question: str = "Should a city ban private cars?") -> str:
        if name not in available_personas():
            raise HTTPException(404, f"no persona '{name}'")
        return persona_page(find_persona(name), question[:2000])

    @app.get("/protocols", response_class=HTMLResponse)
    def protocols() -> str:
        return protocols_page({name: find_protocol(name) for name in available_protocols()})

    @app.get("/protocols/{name}", response_class=HTMLResponse)
    def protocol(name: str) -> str:
        if name not in available_protocols():
            raise HTTPException(404, f"no protocol '{name}'")
        return protocol_page(find_protocol(name))

    @app.get("/experiments", response_class=HTMLResponse)
    def experiments() -> str:
        return experiments_page(_experiment_folders(settings))

    @app.get("/experiments/{name}", response_class=HTMLResponse)
    def experiment(name: str) -> str:
        from council.web.measure import experiment_html

        folders = {p.name: p for p in _experiment_folders(settings)}
        if name not in folders:
            raise HTTPException(404, f"no experiment '{name}'")
        fragment = f"<div class='report'>{experiment_html(folders[name])}</div>"
        return pages.layout(f"Experiment: {name}", fragment)


def _experiment_folders(settings: ServerSettings) -> list[Any]:
    root = settings.experiments_dir
    if root is None or not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "summary.json").is_file())
