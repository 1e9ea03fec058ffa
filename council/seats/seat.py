"""A seat binds a persona card to the model it speaks through."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from council.base.errors import ConfigError, ModelCallError
from council.personas.card import PersonaCard
from council.records.settings import CallSettings
from council.seats import needs
from council.seats.commands import CLI_PROVIDER, PARAM, command_params
from council.seats.litellm_model import LiteLLMModel
from council.seats.local import LOCAL_PROVIDER, LOCAL_SERVERS
from council.seats.model import REASONING_EFFORTS, ChatModel, Need, split_model_string

__all__ = ["CallSettings", "Seat", "SeatRole", "make_model"]

SeatRole = Literal["panel", "chair"]


@dataclass(frozen=True)
class Seat:
    name: str
    persona: PersonaCard
    model: ChatModel
    role: SeatRole = "panel"
    reason: str = ""  # why this seat is on this model (an override, routing, the default)
    weight: float = 1.0  # its vote's weight in a tally (1.5 for a panel's domain seat)
    # How hard the seat's model reasons before it answers (``REASONING_EFFORTS``); None: the
    # provider's default. Sent with each of its calls as ``reasoning_effort``.
    reasoning_effort: str | None = None


def check_reasoning_effort(value: str, where: str) -> str:
    """A reasoning effort as given by a user (a flag, a slot file, council.toml), checked."""
    level = value.strip().lower()
    if level not in REASONING_EFFORTS:
        raise ConfigError(f"{where}: '{value}' is not one of {', '.join(REASONING_EFFORTS)}")
    return level


def _key_from(variable: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise ModelCallError(f"the key variable {variable} is not set", retryable=False, attempts=0)
    return value


def split_credentials(url: str) -> tuple[str, str | None]:
    """``http://user:KEY@host/v1`` -> (``http://host/v1``, ``KEY``): an OpenAI-compatible server
    takes its key as ``Authorization: Bearer KEY``, and the HTTP client refuses to send a URL's
    credentials beside that header. The password is the key (the user name, when there is no
    password); a URL without credentials is returned as it is, with no key."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rsplit("@", 1)[1]
    key = unquote(parts.password if parts.password is not None else parts.username or "")
    return urlunsplit(parts._replace(netloc=host)), key or None


def make_model(
    model: str | ChatModel,
    *,
    endpoints: Mapping[str, str] | None = None,
    settings: CallSettings | None = None,
    api_key_envs: Mapping[str, str] | None = None,
) -> ChatModel:
    """Turn a litellm model string into a seat model; model objects pass through unchanged.

    ``local/<name>`` is a bundled model served on loopback; ``activations/<name>`` the same
    model in PyTorch, recording each turn's activations; ``cli/<name>[:<model>]`` a local
    program such as a subscription CLI (``council.seats.commands``); a model listed in
    ``endpoints`` is sent to that OpenAI-compatible base URL; anything else goes to litellm as
    it is.
    """
    if isinstance(model, ChatModel):
        return model
    provider, _ = split_model_string(model)  # refuse malformed strings before any call is made
    if provider == "activations":  # an open-weight seat in PyTorch; imported only when named
        from council.seats.activations.backend import ActivationModel

        return ActivationModel(model, cap=settings.activation_cap if settings else None)
    settings = settings or CallSettings()
    if provider == CLI_PROVIDER:  # a local program: its command travels with each call
        command = command_params(model)
        program = str(command["spec"]["argv"][0])

        async def program_check() -> Need | None:
            return needs.program_need(program)

        return LiteLLMModel(  # the command's own time limit is the call's
            model,
            timeout_s=command["spec"]["timeout_s"],
            max_attempts=settings.max_attempts,
            backoff_initial_s=settings.backoff_initial_s,
            backoff_max_s=settings.backoff_max_s,
            stream=settings.stream,
            priced=False,
            in_process=True,
            extra_params={PARAM: command},
            check=program_check,
        )
    given = (endpoints or {}).get(model)
    endpoint, url_key = split_credentials(given) if given is not None else (None, None)
    key_env = (api_key_envs or {}).get(model)
    if url_key is not None and key_env is not None:
        raise ConfigError(
            f"{model}: its endpoint URL carries a key and an api key variable is "
            "named for it too: give the key one way"
        )

    async def resolve(model_string: str) -> dict[str, Any]:
        if endpoint is not None:
            # A user's own server never receives a provider key from the environment, only
            # the one named for it (or written in its URL), read now and never written anywhere.
            key = _key_from(key_env) if key_env else url_key
            return {"api_base": endpoint, "api_key": key or "no-key"}
        return await asyncio.to_thread(LOCAL_SERVERS.litellm_params, model_string)

    async def check() -> Need | None:  # what the pre-flight asks before the first call
        if endpoint is None:
            return needs.bundled_need(model)
        if key_env and not os.environ.get(key_env):
            return Need(key_env, f"export it (the key named for {model}), or {needs.OTHER_MODEL}")
        return await needs.endpoint_need(endpoint)

    is_local = model.startswith(f"{LOCAL_PROVIDER}/") and endpoint is None
    return LiteLLMModel(
        model,
        resolve_endpoint=resolve if (is_local or endpoint is not None) else None,
        timeout_s=settings.timeout_s,
        max_attempts=settings.max_attempts,
        backoff_initial_s=settings.backoff_initial_s,
        backoff_max_s=settings.backoff_max_s,
        stream=settings.stream,
        runs_on_this_machine=is_local,
        priced=endpoint is None,
        # The bundled models' llama.cpp server holds a reply to a JSON schema by a grammar.
        structured_output=True if is_local else None,
        schema_form="json_object" if is_local else "json_schema",
        check=check if (is_local or endpoint is not None) else None,
    )
