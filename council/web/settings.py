"""What the operator allows when starting ``council serve`` or ``council mcp``, and what a
convene request from a browser may ask for within it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from council.base.errors import ConfigError

MAX_QUESTION_CHARS = 100_000
MAX_PERSONAS = 12
MAX_BODY_BYTES = 256 * 1024  # a convene request, with a long question, fits with room to spare
MIN_TOKEN_CHARS = 16
TOKEN_ENV = "COUNCIL_SERVE_TOKEN"  # ends in TOKEN: council.base.secrets redacts it everywhere


@dataclass
class ServerSettings:
    """Set on the command line by whoever starts the server; never by a request."""

    runs_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None  # required on every request when set
    max_runs: int = 2  # councils running at once
    allow_endpoints: bool = False  # may a request send seats to a URL of its choosing?
    endpoints: dict[str, str] = field(default_factory=dict)  # the operator's, always allowed
    models: list[str] = field(default_factory=list)  # the operator's pool, always allowed
    default_model: str | None = None
    experiments_dir: Path | None = None
    # What one run started from the browser may spend: a request may ask for less, never more.
    max_tokens: int = 4096  # per turn
    budget_tokens: int = 500_000
    budget_usd: float = 1.0  # models with a known price; a local model costs nothing
    budget_seconds: float = 1800.0

    def check_bind(self, allow_remote: bool) -> None:
        """Loopback unless told otherwise, and never beyond it without a strong token."""
        if self.token is not None:
            check_token(self.token, f"${TOKEN_ENV} (or --token-file)")
        if is_loopback(self.host):
            return
        if not allow_remote:
            raise ConfigError(f"--host {self.host} is not loopback: add --allow-remote and set "
                              f"${TOKEN_ENV} to serve beyond this machine")  # fmt: skip
        if not self.token:
            raise ConfigError(f"serving beyond loopback needs a token of at least "
                              f"{MIN_TOKEN_CHARS} characters in ${TOKEN_ENV} or --token-file "
                              "(every request must carry it)")  # fmt: skip


def check_token(token: str, where: str) -> str:
    """A token worth the name: at least 16 printable ASCII characters, no spaces (it travels
    in a header, a cookie and a URL)."""
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"the token in {where} has {len(token)} characters; it needs at least "
                          f"{MIN_TOKEN_CHARS}")  # fmt: skip
    if not all("!" <= c <= "~" for c in token):
        raise ConfigError(f"the token in {where} must be printable ASCII with no spaces")
    return token


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address, ``[::1]`` included, or ``localhost``) is this machine; a
    host name may resolve to anything, so it is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ConveneRequest(BaseModel):
    """A convene from the browser: names from the library and models from the allowed list,
    never a file path; an endpoint URL only where the operator allowed endpoints."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    personas: list[str] = Field(default_factory=list, max_length=MAX_PERSONAS)
    panel: str | None = Field(default=None, max_length=100)
    protocol: str = Field(default="council", max_length=100)
    model: str | None = Field(default=None, max_length=200)
    seats: dict[str, str] = Field(default_factory=dict, max_length=MAX_PERSONAS + 1)
    endpoints: dict[str, str] = Field(default_factory=dict, max_length=MAX_PERSONAS + 1)
    budget_tokens: int | None = Field(default=None, ge=1, le=10_000_000)
    budget_usd: float | None = Field(default=None, gt=0, le=1000)
    budget_seconds: float | None = Field(default=None, gt=0, le=24 * 3600)
    max_tokens: int | None = Field(default=None, ge=1, le=100_000)  # replaces every turn's cap
