"""Polarity-aware seating and model families."""

from __future__ import annotations

import json

import pytest

from council import Council
from council.cli.main import main
from council.personas import find_persona
from council.seats.routing import model_family, route


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("openai/gpt-4o-mini", "openai"),
        ("azure/my-gpt4-deployment", "openai"),
        ("anthropic/claude-3-5-haiku-20241022", "anthropic"),
        ("openrouter/anthropic/claude-3.5-haiku", "anthropic"),
        ("openrouter/meta-llama/llama-3.1-70b-instruct", "meta"),
        ("openrouter/mistralai/mistral-large", "mistral"),
        ("bedrock/anthropic.claude-3-haiku-20240307-v1:0", "anthropic"),
        ("bedrock/meta.llama3-1-70b-instruct-v1:0", "meta"),
        ("gemini/gemini-2.0-flash", "google"),
        ("vertex_ai/gemini-1.5-pro", "google"),
        ("groq/llama-3.1-8b-instant", "meta"),
        ("together_ai/Qwen/Qwen2.5-72B-Instruct", "qwen"),
        ("ollama_chat/qwen2.5:7b", "qwen"),
        ("ollama/gemma2", "google"),
        ("hosted_vllm/meta-llama/Llama-3.1-8B-Instruct", "meta"),
        ("openai/llama3", "meta"),  # an OpenAI-compatible server running a Llama
        ("local/smollm2-135m-instruct", "huggingface"),
        ("deepseek/deepseek-chat", "deepseek"),
    ],
)
def test_model_family(model: str, family: str) -> None:
    assert model_family(model) == family


def cards(*names: str):  # type: ignore[no-untyped-def]
    return [find_persona(name) for name in names]


def test_every_polarity_pair_sits_on_two_families() -> None:
    panel = cards("popper", "kuhn", "hayek", "keynes", "meadows", "taleb")
    models = ["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku", "gemini/gemini-2.0-flash"]
    seats = {choice.persona: choice for choice in route(panel, models)}
    for a, b in [("popper", "kuhn"), ("hayek", "keynes"), ("meadows", "taleb")]:
        assert seats[a].family != seats[b].family
    assert seats["popper"].family == "anthropic" and "affinity" in seats["popper"].reason
    assert "apart from its opponent popper (anthropic)" in seats["kuhn"].reason


def test_families_count_not_model_strings() -> None:
    # Two routes to anthropic are still one family: the pair must not share it.
    models = [
        "anthropic/claude-3-5-haiku",
        "openrouter/anthropic/claude-3.5-sonnet",
        "ollama_chat/qwen2.5:7b",
    ]
    seats = {c.persona: c for c in route(cards("popper", "kuhn"), models)}
    assert {seats["popper"].family, seats["kuhn"].family} == {"anthropic", "qwen"}


def test_one_family_cannot_separate_a_pair_and_says_so() -> None:
    seats = route(cards("popper", "kuhn"), ["openai/gpt-4o-mini", "openai/gpt-4o"])
    assert {s.family for s in seats} == {"openai"}
    assert any("could not separate from" in s.reason for s in seats)
    assert {s.model for s in seats} == {"openai/gpt-4o-mini", "openai/gpt-4o"}  # spread in turn


def test_council_routes_the_panel_and_keeps_overrides() -> None:
    council = Council(
        ["popper", "kuhn", "taleb"],
        protocol="quick",
        models=["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku"],
        seats={"taleb": "mistral/mistral-small-latest"},
        runs_dir=None,
    )
    rows = {row.seat: row for row in council.seat_map()}
    assert rows["popper"].model != rows["kuhn"].model
    assert (
        rows["taleb"].model == "mistral/mistral-small-latest"
        and rows["taleb"].reason == "set for this seat"
    )
    # Every family of the pool is on the panel: the chair takes the pool's first model.
    assert rows["chair"].model == "openai/gpt-4o-mini"
    assert rows["chair"].reason.startswith("chair: every family of the pool is on the panel")


def test_dry_route_prints_the_seat_map_and_calls_nothing(capsys) -> None:
    args = [
        "convene",
        "Any question",
        "--personas",
        "hayek,keynes",
        "--protocol",
        "duo",
        "--models",
        "openai/gpt-4o-mini,openrouter/anthropic/claude-3.5-haiku",
        "--dry-route",
        "--json",
    ]
    assert main(args) == 0
    rows = {row["seat"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["hayek"]["family"] != rows["keynes"]["family"]
    assert rows["hayek"]["reason"].startswith("routed: ")
    assert rows["chair"]["model"] == "openai/gpt-4o-mini"  # the pool's, both families taken
    assert main(args[:-1]) == 0
    assert "routed: provider affinity" in capsys.readouterr().out
