"""``council mcp``: serve council to coding agents over MCP (stdio, or streamable HTTP).

The MCP SDK loads only when the command runs; without it the command says what to install.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from council.cli.arguments import non_negative_int, positive_int, runs_folder
from council.cli.tokens import add_token_options, read_token


def _mcp(args: argparse.Namespace) -> int:
    from council.base.runs_home import RUNS_HOME
    from council.mcp_server import require_sdk
    from council.mcp_server.requests import ServerSettings
    from council.mcp_server.transports import TOKEN_ENV, check_bind

    require_sdk()
    settings = ServerSettings(
        runs_dir=args.out or RUNS_HOME,
        allow_endpoints=args.allow_endpoints,
        max_concurrent=args.max_concurrent,
        embedder=args.embedder,
        context_dir=Path(args.context_dir) if args.context_dir else None,
        **({"default_model": args.model} if args.model else {}),
    )
    token = read_token(args, TOKEN_ENV)
    if args.http:
        check_bind(args.host, args.allow_remote, token)

    from council.mcp_server.server import build_server
    from council.mcp_server.transports import serve_http, serve_stdio

    server = build_server(settings)
    if args.http:
        serve_http(server, settings, args.host, args.port, token)
    else:
        serve_stdio(server)
    return 0


def register(commands: Any) -> None:
    mcp = commands.add_parser(
        "mcp",
        help="serve council to coding agents over MCP (stdio; --http for streamable HTTP)",
        description="An MCP server with tools to convene a council, list and show personas, "
        "panels and protocols, fetch past runs and measure their diversity. Requests name "
        "personas, protocols and models; they cannot point seats at URLs unless "
        "--allow-endpoints is given. Add it to Claude Code: claude mcp add council -- council mcp",
    )
    mcp.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    mcp.add_argument("--host", default="127.0.0.1", help="address to bind with --http")
    mcp.add_argument("--port", type=non_negative_int, default=8765, help="port with --http")
    mcp.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host; needs a token in $COUNCIL_MCP_TOKEN or --token-file",
    )
    add_token_options(mcp, "COUNCIL_MCP_TOKEN")
    mcp.add_argument(
        "--allow-endpoints",
        action="store_true",
        help="let requests send seats to base URLs of their choosing (off: names only)",
    )
    mcp.add_argument(
        "--context-dir",
        metavar="DIR",
        help="read requests' context documents in this folder (off: requests name none)",
    )
    mcp.add_argument(
        "--max-concurrent",
        type=positive_int,
        default=2,
        help="councils convening at once; one more is refused as busy",
    )
    mcp.add_argument("--model", help="model for seats a request leaves unset (default: bundled)")
    mcp.add_argument(
        "--out",
        type=runs_folder,
        help="folder for runs (default: the runs home, $COUNCIL_RUNS or "
        "~/.local/share/council/runs)",
    )
    mcp.add_argument(
        "--embedder", help="embedder for measure_diversity (default: the bundled MiniLM)"
    )
    mcp.set_defaults(handler=_mcp)
