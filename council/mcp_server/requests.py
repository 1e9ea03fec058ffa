"""What a client may ask of the server, checked before anything runs.

A client names things; it never hands the server a path or, unless the server was started
with ``--allow-endpoints``, a URL. Every list and text has a bound, and a request past one is
refused with one line naming the field and the limit (an MCP tool error, not a crash).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from council.base.errors import ConfigError, UnknownNameError
from council.base.runs_home import RUNS_HOME, RunsHome
from council.seats.local import DEFAULT_LOCAL_MODEL
from council.seats.model import ChatModel

# A persona, panel, protocol or run: a name on the server's search paths, never a file path.
_NAME = re.compile(r"(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.\-]*")
# A litellm model string 'provider/model': no scheme, so no URL hides in it.
_MODEL = re.compile(r"(?!.*://)[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9_.:@+\-/]+")
Sized = Sequence[str] | Mapping[str, str]


@dataclass(frozen=True)
class Limits:
    """How big one request may be; the defaults fit any council worth convening."""

    question_chars: int = 20_000
    personas: int = 12
    models: int = 12  # entries in the routing pool, the seat map, the endpoints
    name_chars: int = 100
    model_chars: int = 200
    url_chars: int = 500
    max_tokens: int = 4096  # per turn
    run_seconds: float = 1800.0  # a run's wall-time budget
    runs_listed: int = 100
    seed: int = 2**32 - 1  # the largest seed a provider is sent
    http_body_bytes: int = 1 << 20


@dataclass(frozen=True)
class ServerSettings:
    """How ``council mcp`` was started: only the person starting it sets these."""

    runs_dir: Path | str | RunsHome = RUNS_HOME
    default_model: str = DEFAULT_LOCAL_MODEL
    allow_endpoints: bool = False
    max_concurrent: int = 2
    embedder: str | None = None  # for diversity: None is the bundled all-MiniLM-L6-v2
    limits: Limits = field(default_factory=Limits)
    context_dir: Path | None = None  # where requests' context documents are read; None: none


def _matching(value: str, pattern: re.Pattern[str], most: int, refusal: str) -> str:
    if len(value) > most or not pattern.fullmatch(value):
        raise ConfigError(refusal)
    return value


def check_name(value: str, what: str, limits: Limits) -> str:
    most = limits.name_chars
    return _matching(
        value,
        _NAME,
        most,
        f"{what} '{value[:most]}' is not a name (letters, "
        f"digits, '-', '_', '.'; at most {most} characters): this server takes "
        "names, not paths",
    )


def library_entry(name: str, what: str, library: Mapping[str, Path], limits: Limits) -> Path:
    """The file a library name stands for. Only names listed in ``library`` (found on the
    search path under ``paths.library_only``) resolve: never a path, never a file in the
    folder the server was started in (``x.md`` would be read as one)."""
    check_name(name, what, limits)
    if name not in library:
        raise UnknownNameError(what, name, library)
    return library[name]


def check_question(question: str, limits: Limits) -> str:
    if len(question) > limits.question_chars:
        raise ConfigError(
            f"question: {len(question)} characters; this server takes at most "
            f"{limits.question_chars}"
        )
    if not question.strip():
        raise ConfigError("question: empty")
    return question


def check_count(values: Sized, what: str, most: int) -> None:
    if len(values) > most:
        raise ConfigError(f"{what}: {len(values)} given; this server takes at most {most}")


def check_model(value: str, what: str, limits: Limits) -> str:
    most = limits.model_chars
    return _matching(
        value,
        _MODEL,
        most,
        f"{what}: '{value[:most]}' is not a model string "
        f"'provider/model' (at most {most} characters, no URL)",
    )


def check_endpoints(endpoints: Mapping[str, str], settings: ServerSettings) -> dict[str, str]:
    """Model -> base URL, only where the server was started allowing it."""
    if not endpoints:
        return {}
    if not settings.allow_endpoints:
        raise ConfigError(
            "endpoints: this server does not let a request point seats at URLs "
            "(start it with 'council mcp --allow-endpoints' to allow it)"
        )
    limits = settings.limits
    check_count(endpoints, "endpoints", limits.models)
    for model, url in endpoints.items():
        check_model(model, "endpoints", limits)
        parts = urlsplit(url)
        if (
            len(url) > limits.url_chars
            or parts.scheme not in ("http", "https")
            or not parts.hostname
        ):
            raise ConfigError(f"endpoints[{model}]: not an http(s) URL with a host")
    return dict(endpoints)


def seat_model(
    value: str, what: str, limits: Limits, test_models: Mapping[str, ChatModel]
) -> str | ChatModel:
    """A model string, or the test double the server was built with under that name."""
    if value in test_models:
        return test_models[value]
    return check_model(value, what, limits)


def check_range(value: float | None, what: str, low: float, high: float) -> None:
    """``low <= value <= high`` (NaN is outside every range); None means the default."""
    if value is not None and not low <= value <= high:
        raise ConfigError(f"{what}: {value}; this server takes {low} to {high}")


def check_numbers(
    max_tokens: int | None, temperature: float | None, seed: int | None, limits: Limits
) -> None:
    check_range(max_tokens, "max_tokens", 1, limits.max_tokens)
    check_range(temperature, "temperature", 0, 2)
    check_range(seed, "seed", 0, limits.seed)
