"""Serving the MCP server: stdio (what Claude Code and Cursor launch), or streamable HTTP.

HTTP binds loopback unless told otherwise; any other address needs ``allow_remote`` and a
token, which every request must then carry as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
from typing import Any

from council.base.errors import ConfigError
from council.mcp_server.requests import ServerSettings
from council.web.settings import MIN_TOKEN_CHARS, check_token, is_loopback

TOKEN_ENV = "COUNCIL_MCP_TOKEN"  # ends in TOKEN: council.base.secrets redacts it everywhere


def check_bind(host: str, allow_remote: bool, token: str | None) -> None:
    if token is not None:
        check_token(token, f"${TOKEN_ENV} (or --token-file)")
    if is_loopback(host):
        return
    if not allow_remote:
        raise ConfigError(
            f"--host {host} is not loopback: add --allow-remote (and set ${TOKEN_ENV}) to serve "
            "other machines"
        )
    if not token:
        raise ConfigError(
            f"serving {host} needs a token of at least {MIN_TOKEN_CHARS} characters in "
            f"${TOKEN_ENV} or --token-file; clients send it as 'Authorization: Bearer <token>'"
        )


class BearerGate:
    """ASGI middleware: HTTP requests without ``Authorization: Bearer <token>`` get 401."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"text/plain"),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": b"unauthorized\n"})
                return
        await self.app(scope, receive, send)


def http_app(server: Any, settings: ServerSettings, host: str, token: str | None) -> Any:
    """The streamable HTTP app at ``/mcp``, behind the token when there is one; a malformed
    message is answered with a JSON-RPC error before it reaches the SDK."""
    from council.mcp_server.wire import JsonRpcGate

    body = settings.limits.http_body_bytes
    app = JsonRpcGate(server.streamable_http_app(host=host, max_request_body_size=body), body)
    return BearerGate(app, token) if token else app


def serve_stdio(server: Any) -> None:
    import anyio

    from council.mcp_server.wire import serve_stdio as gated

    anyio.run(gated, server)


def serve_http(
    server: Any, settings: ServerSettings, host: str, port: int, token: str | None
) -> None:
    import sys

    import anyio
    import uvicorn

    app = http_app(server, settings, host, token)
    config = uvicorn.Config(app, host=host.strip("[]"), port=port, log_level="warning")
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    print(f"council mcp: serving http://{shown}:{port}/mcp", file=sys.stderr, flush=True)
    anyio.run(uvicorn.Server(config).serve)
