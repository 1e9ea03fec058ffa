"""What the operator allows when starting ``council serve`` or ``council mcp``, and what a
convene request from a browser may ask for within it: the library choices, and the council
options ``CouncilSpec`` marks ``WEB``, generated from the spec and held to the web's bounds."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ConfigDict, Field, create_model

from council.base.errors import ConfigError
from council.records.options import Option, options
from council.records.spec import WEB

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
    context_dir: Path | None = None  # where requests' context documents are read; None: none
    # What one run started from the browser may spend: a request may ask for less, never more.
    max_tokens: int = 4096  # per turn
    budget_tokens: int = 500_000
    budget_usd: float = 1.0  # models with a known price; a local model costs nothing
    budget_seconds: float = 1800.0

    def ceilings(self) -> dict[str, float]:
        """The caps above by the key of the option each caps (a request may ask for less)."""
        return {
            "max_tokens": self.max_tokens,
            "budget_tokens": self.budget_tokens,
            "budget_usd": self.budget_usd,
            "budget_seconds": self.budget_seconds,
        }

    def check_bind(self, allow_remote: bool) -> None:
        """Loopback unless told otherwise, and never beyond it without a strong token."""
        if self.token is not None:
            check_token(self.token, f"${TOKEN_ENV} (or --token-file)")
        if is_loopback(self.host):
            return
        if not allow_remote:
            raise ConfigError(
                f"--host {self.host} is not loopback: add --allow-remote and set "
                f"${TOKEN_ENV} to serve beyond this machine"
            )
        if not self.token:
            raise ConfigError(
                f"serving beyond loopback needs a token of at least "
                f"{MIN_TOKEN_CHARS} characters in ${TOKEN_ENV} or --token-file "
                "(every request must carry it)"
            )


def check_token(token: str, where: str) -> str:
    """A token worth the name: at least 16 printable ASCII characters, no spaces (it travels
    in a header, a cookie and a URL)."""
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"the token in {where} has {len(token)} characters; it needs at least {MIN_TOKEN_CHARS}"
        )
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


# The web's own bounds on the options a browser may set, where it is stricter than the spec
# (the server's caps in ServerSettings narrow the spending ones further, per server).
WEB_LIMITS: dict[str, dict[str, float]] = {
    "seed": {"ge": 0, "le": 2**32 - 1},  # the largest seed a provider is sent
    "max_tokens": {"le": 100_000},  # per turn
    "budget_tokens": {"le": 10_000_000},
    "budget_usd": {"le": 1000},
    "budget_seconds": {"le": 24 * 3600},
    "budget_calls": {"le": 100_000},
}
_BOUNDS = {Ge: "ge", Gt: "gt", Le: "le", Lt: "lt"}


def bounds(
    option: Option, limits: Mapping[str, Mapping[str, float]] = WEB_LIMITS
) -> dict[str, float]:
    """An option's numeric bounds (``ge``, ``gt``, ``le``, ``lt``): the spec field's, each
    replaced by the web's own where ``limits`` names one."""
    found: dict[str, float] = {}
    for constraint in option.info.metadata:
        name = _BOUNDS.get(type(constraint))
        if name is not None:
            found[name] = getattr(constraint, name)
    return found | dict(limits.get(option.key, {}))


class ConveneChoices(BaseModel):
    """What a browser picks from the library to convene: names from the library and models
    from the allowed list, never a file path; an endpoint URL only where the operator allowed
    endpoints. The council's options are added to it from the spec (``convene_request``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    personas: list[str] = Field(default_factory=list, max_length=MAX_PERSONAS)
    panel: str | None = Field(default=None, max_length=100)
    protocol: str = Field(default="council", max_length=100)
    model: str | None = Field(default=None, max_length=200)
    seats: dict[str, str] = Field(default_factory=dict, max_length=MAX_PERSONAS + 1)
    endpoints: dict[str, str] = Field(default_factory=dict, max_length=MAX_PERSONAS + 1)

    def options_given(self) -> dict[str, Any]:
        """The council options this request set, by key (those it left out are None)."""
        chosen = ConveneChoices.model_fields
        return {
            name: value
            for name in type(self).model_fields
            if name not in chosen and (value := getattr(self, name)) is not None
        }


class FollowUpRequest(BaseModel):
    """A follow-up from a finished run's page: only the new question; the seats, models and
    settings are the run's own (``council.web.convene.bounded_follow_up``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)


def convene_request(web_options: Sequence[Option]) -> type[ConveneChoices]:
    """The request model: the library choices and one optional field per option, typed as
    the spec types it, with the spec's bounds narrowed by the web's (``bounds``)."""
    fields: dict[str, Any] = {}
    for option in web_options:
        limits: dict[str, Any] = bounds(option)
        info = Field(default=None, description=option.description, **limits)
        fields[option.key] = (option.annotation | None, info)
    return create_model("ConveneRequest", __base__=ConveneChoices, **fields)


# A convene request from the browser: exactly the options the spec marks WEB.
ConveneRequest = convene_request(options(WEB))
