"""``council serve``: the web app on this machine (loopback unless told otherwise)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from council.cli.arguments import positive_float, positive_int, runs_folder
from council.cli.tokens import add_token_options, read_token


def _serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from council.base.errors import ConfigError
    from council.cli.arguments import parse_endpoints
    from council.cli.project import runs_folder_of
    from council.cli.seat_options import models_option
    from council.web.settings import TOKEN_ENV, ServerSettings

    try:
        import uvicorn

        from council.web.app import create_app
    except ImportError as exc:
        raise ConfigError(
            f"the web app needs fastapi and uvicorn ({exc.name} is missing): "
            "pip install 'fastapi>=0.110' 'uvicorn>=0.29'"
        ) from None
    token = read_token(args, TOKEN_ENV)
    _, pool = models_option(args.models)
    spending = {
        key: getattr(args, key)
        for key in ("max_tokens", "budget_tokens", "budget_usd", "budget_seconds")
        if getattr(args, key) is not None
    }
    settings = ServerSettings(
        runs_dir=runs_folder_of(args),
        host=args.host,
        port=args.port,
        token=token,
        max_runs=args.max_runs,
        allow_endpoints=args.allow_endpoints,
        endpoints=parse_endpoints(args.endpoint),
        models=pool,
        default_model=args.model,
        experiments_dir=Path(args.experiments) if args.experiments else None,
        context_dir=Path(args.context_dir) if args.context_dir else None,
        **spending,
    )
    settings.check_bind(args.allow_remote)
    _check_port(args.host, args.port)  # before "serving ... on": a taken port is one line
    # The token is not printed: this line may end up in a log.
    link = f"http://{args.host}:{args.port}/" + ("?token=<your token>" if token else "")
    print(f"council: serving {settings.runs_dir} on {link}", file=sys.stderr)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return 0


def _check_port(host: str, port: int) -> None:
    """Bind the address once, as uvicorn will (SO_REUSEADDR: a port in TIME_WAIT is free), so
    that a port another program holds fails here in one line rather than in uvicorn's log
    after the app has said it is serving."""
    import socket

    from council.base.errors import ConfigError

    try:
        family, kind, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: {exc.strerror}") from None
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise ConfigError(
                f"cannot serve on {host}:{port}: {reason} (another server is there? give --port N)"
            ) from None


def register(commands: Any) -> None:
    serve = commands.add_parser(
        "serve", help="a local web app: convene and watch councils, browse runs and the library"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind")
    serve.add_argument("--port", type=positive_int, default=8000, help="port to bind")
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host beyond loopback (needs a token: $COUNCIL_SERVE_TOKEN or "
        "--token-file, at least 16 characters)",
    )
    add_token_options(serve, "COUNCIL_SERVE_TOKEN")
    serve.add_argument("--max-runs", type=positive_int, default=2, help="councils at once")
    serve.add_argument(
        "--max-tokens",
        type=positive_int,
        help="most tokens per turn a run from the browser may ask (default 4096)",
    )
    serve.add_argument(
        "--budget-tokens",
        type=positive_int,
        help="each run's token budget, unless it asks for less (default 500000)",
    )
    serve.add_argument(
        "--budget-usd",
        type=positive_float,
        help="each run's cost budget, at known prices (default 1.0)",
    )
    serve.add_argument(
        "--budget-seconds",
        type=positive_float,
        help="each run's wall-time budget (default 1800)",
    )
    serve.add_argument(
        "--allow-endpoints",
        action="store_true",
        help="let a convene request send seats to a URL of its choosing",
    )
    serve.add_argument(
        "--context-dir",
        metavar="DIR",
        help="read convene requests' context documents in this folder (off: requests name none)",
    )
    serve.add_argument("--model", help="the default model offered (default: the bundled one)")
    serve.add_argument("--models", metavar="M1,M2,...", help="more models to offer")
    serve.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="MODEL=URL",
        help="offer a model served at an OpenAI-compatible URL; repeatable",
    )
    serve.add_argument("--out", type=runs_folder, help="the runs folder (default: the runs home)")
    serve.add_argument("--experiments", metavar="DIR", help="a folder of experiment folders")
    serve.set_defaults(handler=_serve)
