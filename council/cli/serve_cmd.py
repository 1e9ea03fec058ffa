"""``council serve``: the web app on this machine (loopback unless told otherwise)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from council.cli.arguments import positive_int, runs_folder


def _serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from council.cli.output import parse_endpoints
    from council.cli.project import runs_location
    from council.cli.seat_options import models_option
    from council.errors import ConfigError
    from council.web.settings import ServerSettings

    try:
        import uvicorn

        from council.web.app import create_app
    except ImportError as exc:
        raise ConfigError(f"the web app needs fastapi and uvicorn ({exc.name} is missing): "
                          "pip install 'fastapi>=0.110' 'uvicorn>=0.29'") from None  # fmt: skip
    _, pool = models_option(args.models)
    settings = ServerSettings(
        runs_dir=runs_location(args), host=args.host, port=args.port, token=args.token,
        max_runs=args.max_runs, allow_endpoints=args.allow_endpoints,
        endpoints=parse_endpoints(args.endpoint), models=pool, default_model=args.model,
        experiments_dir=Path(args.experiments) if args.experiments else None,
    )  # fmt: skip
    settings.check_bind(args.allow_remote)
    link = f"http://{args.host}:{args.port}/" + (f"?token={args.token}" if args.token else "")
    print(f"council: serving {settings.runs_dir} on {link}", file=sys.stderr)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return 0


def register(commands: Any) -> None:
    serve = commands.add_parser(
        "serve", help="a local web app: convene and watch councils, browse runs and the library"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind")
    serve.add_argument("--port", type=positive_int, default=8000, help="port to bind")
    serve.add_argument(
        "--allow-remote", action="store_true",
        help="allow a --host beyond loopback (needs --token)",
    )  # fmt: skip
    serve.add_argument("--token", help="a secret every request must carry (Bearer or ?token=)")
    serve.add_argument("--max-runs", type=positive_int, default=2, help="councils at once")
    serve.add_argument(
        "--allow-endpoints", action="store_true",
        help="let a convene request send seats to a URL of its choosing",
    )  # fmt: skip
    serve.add_argument("--model", help="the default model offered (default: the bundled one)")
    serve.add_argument("--models", metavar="M1,M2,...", help="more models to offer")
    serve.add_argument(
        "--endpoint", action="append", default=[], metavar="MODEL=URL",
        help="offer a model served at an OpenAI-compatible URL; repeatable",
    )  # fmt: skip
    serve.add_argument("--out", type=runs_folder, help="the runs folder (default: the runs home)")
    serve.add_argument("--experiments", metavar="DIR", help="a folder of experiment folders")
    serve.set_defaults(handler=_serve)
