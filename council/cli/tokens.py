"""Where a server's token comes from: an environment variable or a file, never the command
line (every user of the machine can read a process's arguments, with ``ps``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from council.base.errors import ConfigError

MAX_TOKEN_FILE_BYTES = 4096


def add_token_options(parser: Any, env_var: str) -> None:
    parser.add_argument(
        "--token-file",
        metavar="FILE",
        help=f"read the token every request must carry from FILE (or set ${env_var})",
    )
    # Taken only to refuse it with the reason: argparse would say 'unrecognized arguments'.
    parser.add_argument("--token", help=argparse.SUPPRESS)


def read_token(args: argparse.Namespace, env_var: str) -> str | None:
    """The token from ``--token-file`` or ``$env_var``; None when neither is given."""
    if args.token is not None:
        raise ConfigError(
            "--token is refused: a token on the command line is visible to every user of this "
            f"machine (ps); set ${env_var} or give --token-file FILE"
        )
    if args.token_file:
        path = Path(args.token_file)
        try:
            if path.stat().st_size > MAX_TOKEN_FILE_BYTES:
                raise ConfigError(f"--token-file {path}: larger than {MAX_TOKEN_FILE_BYTES} bytes")
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise ConfigError(f"--token-file {path}: {reason}") from None
        if not text:
            raise ConfigError(f"--token-file {path}: the file is empty")
        return text
    return os.environ.get(env_var) or None
