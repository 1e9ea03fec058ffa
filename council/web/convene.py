"""Turning a browser's convene request into a council, within what the operator allowed."""

from __future__ import annotations

from typing import Any

from council.app.council import Council
from council.base.errors import ConfigError
from council.personas.library import available_personas
from council.protocols.library import available_protocols
from council.records.options import option_values, with_options
from council.records.settings import RunConfig
from council.records.spec import WEB, CouncilSpec
from council.seats.detect import model_catalogue
from council.text.documents import confined
from council.web.live import RunBroadcast
from council.web.settings import ConveneChoices, FollowUpRequest, ServerSettings


def allowed_models(settings: ServerSettings) -> list[str]:
    """The models a request may seat: the operator's, the bundled ones and the providers whose
    keys are set (read from the environment by name only), and models served on loopback."""
    ready = [entry.model for entry in model_catalogue() if entry.ready]
    operator = [settings.default_model, *settings.models, *settings.endpoints]
    return list(dict.fromkeys(m for m in [*operator, *ready] if m))


def _check_names(request: ConveneChoices) -> None:
    personas = available_personas()
    for name in request.personas:
        if name not in personas:  # a name from the library, never a path
            raise ConfigError(f"unknown persona '{name}'")
    if request.protocol not in available_protocols():
        raise ConfigError(f"unknown protocol '{request.protocol}'")


def _check_models(request: ConveneChoices, settings: ServerSettings) -> dict[str, str]:
    """The request's endpoints (only where allowed), after every model has been checked."""
    if request.endpoints and not settings.allow_endpoints:
        raise ConfigError(
            "this server does not let a request send seats to a URL "
            "(start it with --allow-endpoints)"
        )
    allowed = set(allowed_models(settings)) | set(request.endpoints)
    for model in [request.model, *request.seats.values()]:
        if model and model not in allowed:
            raise ConfigError(f"model '{model}' is not offered by this server")
    return {**settings.endpoints, **request.endpoints}


def _within(asked: float | None, ceiling: float, field: str, flag: str) -> float:
    """What a request asked for, or the server's ceiling when it asked nothing; never more."""
    if asked is None:
        return ceiling
    if asked > ceiling:
        raise ConfigError(
            f"{field}: {asked:g} is more than this server allows ({ceiling:g}; "
            f"council serve {flag} raises it)"
        )
    return asked


def _spending(request: ConveneChoices, settings: ServerSettings) -> dict[str, Any]:
    """Tokens per turn and the run's budget: every run from the browser has both."""
    given = request.options_given()
    spending = {  # each server cap is set by the serve flag of its name
        key: _within(given.get(key), ceiling, key, "--" + key.replace("_", "-"))
        for key, ceiling in settings.ceilings().items()
    }
    return spending | {key: int(spending[key]) for key in ("max_tokens", "budget_tokens")}


def council_spec(request: ConveneChoices, settings: ServerSettings) -> CouncilSpec:
    """The council a browser asks for, held to what the operator allowed: names from the
    library, models offered, endpoints where allowed, spending within the server's caps."""
    _check_names(request)
    given = request.model_dump(exclude={"question"}, exclude_defaults=True)
    given |= {"endpoints": _check_models(request, settings), **_spending(request, settings)}
    if "context" in given:  # files of the server's: only those in the operator's folder
        given["context"] = confined(given["context"], settings.context_dir)
    return with_options(given, CouncilSpec(model=settings.default_model))


def build_council(request: ConveneChoices, settings: ServerSettings, sink: RunBroadcast) -> Council:
    spec = council_spec(request, settings)
    return Council.from_spec(
        spec, question=request.question, runs_dir=settings.runs_dir, sinks=[sink]
    )


def convene(request: ConveneChoices, settings: ServerSettings, sink: RunBroadcast) -> None:
    build_council(request, settings, sink).convene(request.question)


def bounded_follow_up(config: RunConfig, settings: ServerSettings) -> RunConfig:
    """A recorded council as a browser may convene it again: every model it seats offered by
    this server (its endpoints the operator's, unless requests may name URLs), and its
    spending held to the server's caps (an uncapped run takes the caps)."""
    models = {model for chain in config.seats.values() for model in chain or []}
    allowed = set(allowed_models(settings))
    for model in sorted(models - allowed - set(settings.endpoints)):
        raise ConfigError(f"model '{model}' of that run is not offered by this server")
    spec = config.spec
    if not settings.allow_endpoints:
        for model in sorted(set(spec.endpoints) - set(settings.endpoints)):
            raise ConfigError(
                f"that run sent {model} to a URL, which this server does not let a request do"
            )
    given = option_values(spec, WEB)
    held = {
        key: ceiling if given.get(key) is None else min(given[key], ceiling)
        for key, ceiling in settings.ceilings().items()
    }
    held |= {key: int(held[key]) for key in ("max_tokens", "budget_tokens")}
    return config.model_copy(update={"spec": with_options(held, spec)})


def follow_up(
    run_id: str, request: FollowUpRequest, settings: ServerSettings, sink: RunBroadcast
) -> None:
    """A finished run's seats asked the request's question (``council.app.follow_up``)."""
    from council.app.follow_up import follow_up as convene_again

    convene_again(
        run_id,
        request.question,
        settings.runs_dir,
        sinks=[sink],
        endpoints=settings.endpoints,
        within=lambda config: bounded_follow_up(config, settings),
    )
