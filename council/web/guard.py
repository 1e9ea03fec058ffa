"""What every request to the web app passes before a route sees it, and the headers every
answer carries.

A page on another site can make the user's browser send requests here: a form post, an image,
a ``no-cors`` fetch. None of them may start a run or load the machine:

- A request that changes anything (any method but GET, HEAD and OPTIONS) must be
  ``Content-Type: application/json``: no form or ``text/plain`` body qualifies, and a
  cross-origin JSON request needs a CORS preflight this server never grants. It must also come
  from this app's own origin: ``Sec-Fetch-Site`` (when sent) is ``same-origin`` and ``Origin``
  (when sent) names this server. A client that is no browser (curl, a script) sends neither
  header and is let through: it could send anything anyway, and the token, when the server has
  one, still applies. Browsers send ``Origin`` on every cross-origin POST.
- A GET from another site is let through only as a top-level navigation (a link the user
  followed); loading a page here as an image, script, frame or fetch from elsewhere is refused.
  No GET computes anything expensive (a diversity report is measured by a POST).

The token, when set, is compared as bytes: a non-ASCII token in a URL is a wrong token (401).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlsplit

from starlette.requests import Request

from council.web.settings import MAX_BODY_BYTES, ServerSettings, is_loopback

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FRAMING = "frame-ancestors 'none'; base-uri 'none'"


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# The app's pages (reports included: a diversity or experiment report is shown inside one, its
# inline style block left out): their script and style sheet are files served from here,
# nothing inline but the one style attribute a transcript's verdict carries (it is a notebook
# fragment too).
APP_CSP = (
    "default-src 'none'; script-src 'self'; "
    f"style-src 'self' 'unsafe-hashes' {_hash('white-space:pre-wrap')}; img-src 'self' data:; "
    f"connect-src 'self'; form-action 'self'; {_FRAMING}"
)
HEADERS = {
    "Content-Security-Policy": APP_CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # a ?token= link never leaks to another site
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def refusal(request: Request, settings: ServerSettings) -> tuple[int, str] | None:
    """(status, why) for a request refused before any route runs; None to let it through."""
    host = _host(request).rsplit(":", 1)[0].strip("[]")
    if is_loopback(settings.host) and not is_loopback(host):
        return 421, "this server answers only to requests addressed to this machine"
    if settings.token and not _token_matches(request, settings.token):
        return 401, "a token is required (Authorization: Bearer TOKEN, or ?token=TOKEN)"
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        return 413, f"a request body is at most {MAX_BODY_BYTES} bytes"
    if request.method in SAFE_METHODS:
        return _cross_site_load(request)
    return _forged(request)


def _host(request: Request) -> str:
    return (request.headers.get("host") or "").lower()


def _token_matches(request: Request, token: str) -> bool:
    bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
    given = bearer or request.query_params.get("token") or request.cookies.get("council_token")
    return hmac.compare_digest((given or "").encode("utf-8", "replace"), token.encode("utf-8"))


def _cross_site_load(request: Request) -> tuple[int, str] | None:
    site = request.headers.get("sec-fetch-site")
    if site not in ("cross-site", "same-site"):
        return None  # this app's own pages, a typed address, or a client that is no browser
    mode, dest = request.headers.get("sec-fetch-mode"), request.headers.get("sec-fetch-dest")
    if mode == "navigate" and dest in (None, "document"):
        return None  # a link followed from elsewhere: a page to read, nothing computed
    return 403, "this server's pages and data are not loaded by other sites"


def _forged(request: Request) -> tuple[int, str] | None:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        return 415, "a request that changes anything must be Content-Type: application/json"
    site = request.headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return 403, f"refused: a {site} request (only this app's own pages may send it)"
    origin = request.headers.get("origin")
    if origin is not None and not _is_own_origin(origin, _host(request)):
        return 403, "refused: the request comes from another origin"
    return None


def _is_own_origin(origin: str, host: str) -> bool:
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc.lower() == host
