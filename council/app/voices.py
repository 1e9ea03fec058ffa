"""Sampling voices outside a deliberation: the same model with no persona (the generic
assistant): the no-persona baseline, for drift and ``council.measure``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from council.base.errors import ConfigError
from council.base.secrets import REDACTED
from council.engine import lengths
from council.engine.prompts import ASSISTANT_SYSTEM_PROMPT
from council.personas.card import Persona
from council.personas.prompt import template_variables
from council.protocols.graph import Protocol, compile_protocol
from council.protocols.library import find_protocol
from council.protocols.spec import StatementStage
from council.records.run import RunResult
from council.records.spec import CallSettings, SamplingSettings
from council.seats.model import ModelRequest
from council.seats.seat import make_model
from council.text.templates import render_template

# What a prompt's {{ card.* }} reads when the one asked is the plain assistant (no persona).
ASSISTANT_CARD = Persona("assistant", description="A helpful AI assistant.", role="Assistant")


def first_prompt(protocol: Protocol, question: str) -> str:
    """The user prompt of the protocol's first blind stage, as a seat would have seen it."""
    stage = next((s for s in protocol.speaking_stages() if isinstance(s, StatementStage)), None)
    if stage is None:
        return question
    variables = {
        "question": question,
        "seat": "assistant",
        "persona": "assistant",
        "stage": stage.id,
        "members": 1,
        "round": 1,
        "rounds": 1,
        "card": template_variables(ASSISTANT_CARD, question),
    }
    prompt = render_template(stage.prompt, variables, path=protocol.path)
    limit = lengths.stated(stage.words, None)  # as the engine states it: the same limit
    return f"{prompt}\n\n{limit}" if limit else prompt


async def sample(
    model: str,
    system: str,
    prompt: str,
    k: int,
    *,
    max_tokens: int,
    temperature: float,
    seed: int,
    endpoints: Mapping[str, str] | None = None,
    api_key_envs: Mapping[str, str] | None = None,
    settings: CallSettings | None = None,
) -> list[str]:
    """k answers from one model to one prompt, sampled with seeds seed..seed+k-1."""
    chat = make_model(model, endpoints=endpoints, api_key_envs=api_key_envs, settings=settings)
    answers: list[str] = []
    for i in range(k):  # one local server answers one request at a time anyway
        request = ModelRequest(
            stage="voice",
            seat="voice",
            messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt}],
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed + i,
        )
        completion = await chat.complete(request)
        answers.append(completion.content)
    return answers


def recorded_protocol(run: RunResult) -> Protocol:
    """The protocol as the run recorded it, never as the library holds it now; a record
    without its text (one made before runs recorded it) falls back to the library by name
    (``library_protocol_note`` says so)."""
    if run.config is not None:
        path = Path(run.config.protocol_path or f"<protocol '{run.protocol}' as recorded>")
        return compile_protocol(run.config.protocol_text, path)
    return find_protocol(run.protocol)


def library_protocol_note(run: RunResult) -> str | None:
    """What a report says when the baseline's prompt came from the library, not the record."""
    if run.config is not None:
        return None
    return (
        "the run recorded no protocol text: its no-persona baseline answers the first prompt "
        f"of protocol '{run.protocol}' as the library holds it now"
    )


def recorded_endpoints(
    run: RunResult, endpoints: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The endpoints the run's models were reached at, as it recorded them, with ``endpoints``
    given now taking precedence. A URL whose credentials were redacted when the run was
    recorded must be given again: the baseline asks the same server the seat did."""
    recorded = dict(run.config.endpoints) if run.config is not None else {}
    urls = {**recorded, **(endpoints or {})}
    for model, url in urls.items():
        if REDACTED in url:
            raise ConfigError(
                f"the endpoint of {model} had credentials, which are never stored: give it "
                f"again with --endpoint {model}=URL (endpoints={{...}} in Python)"
            )
    return urls


def collect_baseline(
    run: RunResult,
    k: int,
    *,
    max_tokens: int = 160,
    temperature: float = SamplingSettings().temperature,  # a council's, unless given
    first_seed: int = 0,
    endpoints: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """k answers from each of the run's panel models to its first prompt (of the protocol as
    the run recorded it), with no persona, on seeds ``first_seed`` .. ``first_seed + k - 1``.

    Each model is reached as the run reached it: at its recorded endpoint (``endpoints``
    overrides one, or adds one the record lacks), with the key variable it named; keys are
    never recorded, so they are read from the environment now."""
    protocol = recorded_protocol(run)
    prompt = first_prompt(protocol, run.question)
    models: Sequence[str] = sorted({s.model for s in run.seats if s.role == "panel"})
    urls = recorded_endpoints(run, endpoints)
    key_envs = run.config.api_key_envs if run.config is not None else {}
    calls = run.config.calls if run.config is not None else None

    async def gather() -> list[dict[str, Any]]:
        rows = []
        for model in models:
            answers = await sample(
                model,
                ASSISTANT_SYSTEM_PROMPT,
                prompt,
                k,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=first_seed,
                endpoints=urls,
                api_key_envs=key_envs,
                settings=calls,
            )
            rows += [{"model": model, "content": a, "kind": "assistant"} for a in answers]
        return rows

    return asyncio.run(gather())
