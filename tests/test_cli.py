"""The command line, in process, against the loopback fake provider."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from council.cli.main import main
from council.testing import FakeProvider
from council.testing.fake_provider import Reply


@pytest.fixture
def provider_reply() -> Reply:
    return lambda body: f"Answer #{len(body['messages'][-1]['content'])}"


def convene_args(provider: FakeProvider, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "convene",
        "Should cities ban private cars?",
        "--personas",
        "popper,kuhn",
        "--model",
        "openai/fake",
        "--endpoint",
        f"openai/fake={provider.api_base}",
        "--out",
        str(tmp_path),
        "--attempts",
        "2",
        *extra,
    ]


def test_convene_json(provider: FakeProvider, tmp_path: Path, capsys) -> None:
    assert main(convene_args(provider, tmp_path, "--json")) == 0
    out, err = capsys.readouterr()
    run = json.loads(out)
    assert {"run_id", "run_dir", "protocol", "turns", "synthesis", "status"} <= set(run)
    assert run["protocol"] == "council" and run["status"] == "completed"
    assert [t["stage"] for t in run["turns"]] == ["opening"] * 2 + ["cross_examination"] * 2 + [
        "verdict"
    ]
    for turn in run["turns"]:
        assert {"seat", "persona", "model", "stage", "content", "error"} <= set(turn)
        assert turn["model"] == "openai/fake" and turn["provider"] == "openai"
    assert run["synthesis"].startswith("Answer #")
    assert Path(run["run_dir"], "events.jsonl").is_file()
    assert provider.request_count == 5
    # The progress display went to stderr, one line per turn when not on a terminal.
    assert "opening · popper: ok" in err and "completed in" in err


def test_convene_prints_synthesis_and_run_folder(provider, tmp_path, capsys) -> None:
    assert main(convene_args(provider, tmp_path, "--protocol", "quick", "--quiet")) == 0
    out, err = capsys.readouterr()
    assert out.startswith("Answer #") and "Run folder: " + str(tmp_path) in out
    assert err == ""


def test_seat_override_by_persona(provider, tmp_path, capsys) -> None:
    args = convene_args(provider, tmp_path, "--json", "--quiet", "--protocol", "quick")
    args += ["--seat", "kuhn=openai/other", "--endpoint", f"openai/other={provider.api_base}"]
    assert main(args) == 0
    run = json.loads(capsys.readouterr().out)
    models = {t["seat"]: t["model"] for t in run["turns"]}
    assert models == {"popper": "openai/fake", "kuhn": "openai/other", "chair": "openai/fake"}


def test_a_failed_run_exits_1_with_one_line(provider, tmp_path, capsys) -> None:
    provider.fail_next(*[401] * 10)
    assert main(convene_args(provider, tmp_path, "--quiet", "--protocol", "quick")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("council: run failed: stage 'opening': 0 of 2 seats answered")
    assert "Traceback" not in "".join(err)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--protocol", "nope"], "unknown protocol 'nope'; available: council, debate"),
        (["--personas", "popper,nobody"], "unknown persona 'nobody'; available: "),
        (["--seat", "popper"], "--seat expects NAME=VALUE, got 'popper'"),
        (
            ["--seat", "socrates=openai/x"],
            "unknown seat 'socrates'; available: chair, kuhn, popper",
        ),
        (["--model", "nomodel"], "not a litellm model string"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(provider, tmp_path, capsys, extra, message) -> None:
    assert main(convene_args(provider, tmp_path, *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith("council: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert provider.request_count == 0


def test_a_malformed_card_names_file_line_and_field(provider, tmp_path, write, capsys) -> None:
    card = write(
        "cards/broken.md",
        "---\nname: broken\ndescription: x\nrole: y\ntraits: 7\n---\nBody\n",
    )
    args = convene_args(provider, tmp_path)
    args[args.index("--personas") + 1] = f"popper,{card}"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"council: error: {card}:5: field 'traits': Input should be a valid list"


def test_list_commands(capsys) -> None:
    assert main(["personas", "list", "--json"]) == 0
    personas = json.loads(capsys.readouterr().out)
    assert {"name", "path", "description"} <= set(personas[0])
    assert "popper" in {p["name"] for p in personas}
    assert main(["protocols", "list", "--json"]) == 0
    protocols = json.loads(capsys.readouterr().out)
    assert {p["name"] for p in protocols} >= {"quick", "council"}
    assert main(["protocols", "list"]) == 0
    assert "council" in capsys.readouterr().out


def test_help_and_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "convene" in capsys.readouterr().out
