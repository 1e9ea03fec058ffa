"""One spec per council: ``CouncilSpec`` holds every option and its default, the command line
(flags, ``council.toml``, ``config show``) and the MCP tool's schema are generated from it, a
run records the spec it ran with, and a configuration recorded before the spec still resumes."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from council import Council
from council.app.resume import resume
from council.base.errors import ConfigError
from council.cli.main import build_parser, main
from council.mcp_server.server import build_server
from council.records.events import RunStarted
from council.records.options import BY_KEY, option_values, options, with_options
from council.records.settings import CallSettings, RunConfig, SamplingSettings
from council.records.spec import CLI, MCP, Budget, CouncilSpec
from council.store.ledger import Ledger
from council.testing import FakeProvider

QUESTION = "Should the library open on Sundays?"


def convene_help() -> str:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    return " ".join(commands.choices["convene"].format_help().split())  # type: ignore[attr-defined]


def test_a_spec_round_trips_as_json_and_its_parts_carry_the_defaults() -> None:
    spec = CouncilSpec(
        personas=["popper", "kuhn"],
        protocol="quick",
        seats={"kuhn": "openai/other"},
        reasoning_effort="High",
        sampling=SamplingSettings(temperature=0.2, seed=3),
        budget=Budget(max_usd=0.5),
        switches={"anonymize": False},
    )
    assert spec.reasoning_effort == {"*": "high"}  # one level for every seat, read case-blind
    assert CouncilSpec.model_validate_json(spec.to_json()) == spec
    assert CouncilSpec().sampling == SamplingSettings() and CouncilSpec().calls == CallSettings()
    with pytest.raises(ValueError, match="finite"):
        SamplingSettings(temperature=float("nan"))
    with pytest.raises(ConfigError, match="'temperature': Input should be less than or equal"):
        with_options({"temperature": 3}, name=lambda key: f"'{key}'")
    assert with_options({"timeout": 5, "budget_tokens": 900}).calls.timeout_s == 5
    assert with_options({"models": "a/x, b/y"}).models == ["a/x", "b/y"]


def test_council_from_spec_seats_what_the_spec_says() -> None:
    spec = CouncilSpec(
        personas=["popper", "kuhn"],
        protocol="quick",
        model="openai/main",
        seats={"kuhn": "anthropic/other"},
        chairman="gemini/chair",
        fallbacks={"popper": ["openai/backup"]},
        sampling=SamplingSettings(max_tokens=64),
    )
    council = Council.from_spec(spec, runs_dir=None)
    models = {row.seat: row.model for row in council.seat_map()}
    assert models == {"popper": "openai/main", "kuhn": "anthropic/other", "chair": "gemini/chair"}
    assert council.sampling.max_tokens == 64
    recorded = council.config("seed").spec  # resolved: each seat's chain pinned
    assert recorded.seats["kuhn"] == "anthropic/other"
    assert recorded.fallbacks == {"popper": ["openai/backup"]}
    assert recorded.personas == ["popper", "kuhn"] and recorded.protocol == "quick"


def test_every_command_line_option_is_a_flag_with_the_specs_help_and_default() -> None:
    text = convene_help()
    for option in options(CLI):
        assert option.flag in text, option.key
        assert " ".join(option.description.split())[:40] in text, option.key
        words = option.default_words()
        if words:
            assert f"(default: {words})" in text, option.key
    assert "(default: 0.7)" in text and "(default: 120)" in text and "(default: 4)" in text


def test_config_show_lists_every_option_and_council_toml_is_read_into_the_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "council.toml").write_text(
        'temperature = 0.3\nmodels = "openai/a, anthropic/b"\nstream = false\n'
        'reasoning_effort = "low"\n'
    )
    assert main(["config", "show", "--json", "--timeout", "9"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert list(shown) == [*(option.key for option in options(CLI)), "out"]
    assert shown["temperature"] == {"value": 0.3, "from": "council.toml"}
    assert shown["models"]["value"] == ["openai/a", "anthropic/b"]
    assert shown["stream"] == {"value": False, "from": "council.toml"}
    assert shown["reasoning_effort"]["value"] == {"*": "low"}
    assert shown["timeout"] == {"value": 9.0, "from": "flag"}
    assert shown["attempts"] == {"value": CallSettings().max_attempts, "from": "default"}
    (tmp_path / "council.toml").write_text("temperature = 7\n")
    assert main(["config", "show"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("council: error: council.toml: key 'temperature':") and "\n" not in err


def test_the_mcp_convene_schema_is_the_specs_mcp_options() -> None:
    async def schema() -> dict[str, Any]:
        tools = await build_server().list_tools()
        return next(tool.input_schema for tool in tools if tool.name == "convene")

    properties = asyncio.run(schema())["properties"]
    assert list(properties) == ["question", *(option.key for option in options(MCP))]
    assert "(default: 0.7)" in properties["temperature"]["description"]
    for option in options(MCP):
        assert properties[option.key]["description"].startswith(option.description)
    # What the command line may set but a client may not (files, fallbacks, budgets) is absent.
    assert not {"seat_slots", "persona_dirs", "budget_usd", "fallbacks"} & set(properties)


def _as_before_the_spec(config: dict[str, Any]) -> dict[str, Any]:
    """A configuration as RunConfig recorded it before it carried the spec."""
    spec = config.pop("spec")
    kept = (
        "endpoints",
        "api_key_envs",
        "sampling",
        "calls",
        "switches",
        "weights",
        "reasoning_effort",
    )
    return config | {key: spec[key] for key in kept} | {"budget": None}


def test_a_run_recorded_before_the_spec_still_resumes(tmp_path: Path) -> None:
    calls = CallSettings(timeout_s=5, max_attempts=1, backoff_initial_s=0.01)
    with FakeProvider("Fine, with one caveat.") as provider:
        provider.fail_next(401, 401)
        spec = CouncilSpec(
            personas=["popper", "kuhn"],
            protocol="quick",
            model="openai/fake",
            endpoints={"openai/fake": provider.api_base},
            calls=calls,
            sampling=SamplingSettings(temperature=0.25),
        )
        run = Council.from_spec(spec, runs_dir=tmp_path).convene(QUESTION)
        assert run.status == "failed"
        db = sqlite3.connect(tmp_path / "ledger.sqlite")
        (body,) = db.execute(
            "SELECT body FROM events WHERE run_id = ? AND type = 'run_started'", (run.run_id,)
        ).fetchone()
        event = json.loads(body)
        event["config"] = _as_before_the_spec(event["config"])
        db.execute(
            "UPDATE events SET body = ? WHERE run_id = ? AND type = 'run_started'",
            (json.dumps(event), run.run_id),
        )
        db.commit()
        db.close()
        ledger = Ledger.existing(tmp_path)
        started = next(e for e in ledger.events(run.run_id) if isinstance(e, RunStarted))
        ledger.close()
        assert started.config is not None and started.config.spec.sampling.temperature == 0.25
        provider.requests.clear()
        resumed = resume(run.run_id, tmp_path)
    assert resumed.status == "completed"
    assert {body["temperature"] for body in provider.requests} == {0.25}


def test_a_client_names_only_the_options_the_spec_gives_it() -> None:
    from council.mcp_server.convening import Convener, ConveneRequest
    from council.mcp_server.requests import ServerSettings

    convener = Convener(ServerSettings(runs_dir=Path("unused")))
    spec = convener.spec(ConveneRequest(QUESTION, {"temperature": 0.4, "max_tokens": 50}))
    assert spec.sampling == SamplingSettings(temperature=0.4, max_tokens=50)
    assert spec.budget.max_wall_s == convener.settings.limits.run_seconds
    for options_given, refusal in [
        ({"seat_slots": "/etc/passwd"}, "seat_slots: not an option this server takes"),
        ({"persona_dirs": ["/"]}, "persona_dirs: not an option this server takes"),
        ({"temperature": 5.0}, "temperature: 5.0"),
    ]:
        with pytest.raises(ConfigError, match=refusal):
            convener.spec(ConveneRequest(QUESTION, options_given))


def test_recorded_configuration_holds_the_spec(tmp_path: Path) -> None:
    config = Council.from_spec(CouncilSpec(protocol="quick"), runs_dir=None).config("seed")
    again = RunConfig.model_validate_json(config.model_dump_json())
    assert again == config and again.spec.protocol == "quick"
    assert option_values(again.spec)["temperature"] == 0.7
    assert set(BY_KEY) >= {"temperature", "timeout", "attempts", "budget_tokens"}


def test_a_call_budget_stops_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeProvider("Fine, with one caveat.") as provider:
        argv = [
            "convene",
            QUESTION,
            "--protocol",
            "quick",
            "--model",
            "openai/fake",
            "--endpoint",
            f"openai/fake={provider.api_base}",
            "--budget-calls",
            "2",
            "--out",
            str(tmp_path),
            "--json",
            "--quiet",
        ]
        main(argv)
        assert provider.request_count == 2
    run = json.loads(capsys.readouterr().out)
    assert run["status"] == "stopped" and "call budget spent: 2 of 2" in run["error"]
