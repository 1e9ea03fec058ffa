"""nyk's project override, ``.council.yaml`` (SKILL.md v1.2.0, "Project Overrides"; MIT, 0xNyk):
its keys become council's settings, explicit flags win, ``council.toml`` wins over it, a bad key
is one line naming file, line and key, and a run says (and records) that overrides applied."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from council.cli.main import main
from council.testing import FakeProvider, well_formed_verdict

NYK = Path(__file__).parent / "fixtures" / "nyk" / "agents"
POOL = "openai/gpt-4o-mini,anthropic/claude-3-5-haiku-20241022,gemini/gemini-2.0-flash"
OVERRIDE = "# this repo convenes the architecture triad\ntriad: architecture\nchairman: gemini\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    folder = tmp_path / "personas"
    assert main(["personas", "import", str(NYK), "--to", str(folder)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("COUNCIL_PERSONAS_PATH", str(folder))
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".council.yaml").write_text(OVERRIDE)
    yield tmp_path


def shown(capsys) -> dict[str, dict[str, object]]:  # type: ignore[no-untyped-def]
    assert main(["config", "show", "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_nyks_keys_become_councils_settings(project: Path, capsys) -> None:
    settings = shown(capsys)
    assert settings["panel"] == {"value": "architecture", "from": ".council.yaml"}
    # A chairman named by provider takes that provider's high-tier model (routing/defaults.yaml).
    assert settings["chairman"] == {"value": "gemini/gemini-2.5-pro", "from": ".council.yaml"}
    (project / ".council.yaml").write_text(
        "profile: classic\nmembers: [council-socrates, council-feynman]\n"
        "models: slots.yaml\nno_auto_route: true\n"
    )
    settings = shown(capsys)
    assert settings["panel"]["value"] == "classic"  # a profile, with no triad to narrow it
    assert settings["personas"]["value"] == ["council-socrates", "council-feynman"]
    assert settings["seat_slots"]["value"] == "slots.yaml"  # a YAML file is a seat-slot file
    assert settings["use_model_hints"] == {"value": True, "from": ".council.yaml"}


def test_flags_win_and_council_toml_wins_over_it(project: Path, capsys) -> None:
    (project / "council.toml").write_text('chairman = "openai/gpt-4o"\n')
    settings = shown(capsys)
    assert settings["chairman"] == {"value": "openai/gpt-4o", "from": "council.toml"}
    assert settings["panel"]["from"] == ".council.yaml"
    argv = ["convene", "Q?", "--dry-route", "--json", "--models", POOL]
    assert main([*argv, "--panel", "architecture", "--chairman", "xai/grok-4"]) == 0
    rows = {r["seat"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["chair"]["model"] == "xai/grok-4"  # the flag won


def test_a_run_states_and_records_that_project_overrides_applied(project: Path, capsys) -> None:
    def reply(body: dict[str, Any]) -> str:  # a ballot line, and a verdict that passes the checks
        return well_formed_verdict(
            body["messages"], "STANCE: monorepo | CONFIDENCE: high | DEALBREAKER: no"
        )

    with FakeProvider(reply) as fake:
        argv = [
            "convene",
            "Monorepo or polyrepo?",
            "--protocol",
            "high-council-quick",
            "--model",
            "openai/fake",
            "--chairman",
            "openai/fake",
            "--endpoint",
            f"openai/fake={fake.api_base}",
            "--json",
        ]
        assert main(argv) == 0
    captured = capsys.readouterr()
    note = "project overrides applied from .council.yaml: panel"  # --chairman won the chair
    assert f"council: {note}" in captured.err
    run = json.loads(captured.out)
    assert sorted(s["seat"] for s in run["seats"] if s["role"] == "panel") == [
        "council-ada",
        "council-aristotle",
        "council-feynman",
    ]
    assert note in run["choice_notes"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "triad: architecture\nchairmen: gemini\n",
            ".council.yaml:2: field 'chairmen': unknown field",
        ),
        ("no_auto_route: maybe\n", ".council.yaml:1: field 'no_auto_route'"),
        ("chairman: nobody\n", "'nobody' is neither a model"),
        ("triad: [unclosed\n", ".council.yaml:"),
    ],
)
def test_a_bad_override_is_one_line_naming_file_line_and_key(
    project: Path, capsys, text: str, message: str
) -> None:
    (project / ".council.yaml").write_text(text)
    assert main(["config", "show"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
