"""Errors as their asker reads them: a page (with the app's navigation) for a browser, JSON
for the API. Anything under ``/api/`` is the API; elsewhere a client that asks for JSON and
not HTML (``Accept``) gets JSON too. An error never lists what exists (no run IDs, no file
names): naming what was asked for is enough."""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from council.web.pages import layout

TITLES = {
    400: "Bad request",
    401: "Token needed",
    403: "Refused",
    404: "Not found",
    405: "Method not allowed",
    413: "Too large",
    421: "Wrong host",
    429: "Busy",
}


def wants_json(request: Request) -> bool:
    if request.url.path.startswith("/api/"):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_response(request: Request, status: int, message: str) -> Response:
    if wants_json(request):
        return JSONResponse({"error": message}, status_code=status)
    title = TITLES.get(status, "Error")
    body = (
        f"<p class='error-message'>{escape(message)}</p>"
        "<p><a href='/runs'>The runs</a> · <a href='/'>Convene a council</a></p>"
    )
    # No script: an error page runs nothing (the guard's refusals are answered this way too).
    return HTMLResponse(layout(f"{status} · {title}", body, script=False), status_code=status)
