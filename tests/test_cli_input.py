"""How a question reaches the council (argument, standard input, a file), help that names its
defaults, `council models`, and a run that finishes without a seat saying so."""

from __future__ import annotations

import io
import json
import re
import socket

import pytest

from council.base.secrets import redact
from council.cli.arguments import MAX_QUESTION_BYTES
from council.cli.main import build_parser, main
from council.seats.detect import model_catalogue
from council.testing import FakeProvider


def args(provider: FakeProvider, *extra: str) -> list[str]:
    return [
        "convene",
        *extra,
        "--protocol",
        "quick",
        "--quiet",
        "--json",
        "--model",
        "openai/fake",
        "--endpoint",
        f"openai/fake={provider.api_base}",
    ]


def stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_dash_reads_the_question_from_standard_input(provider, monkeypatch, capsys) -> None:
    stdin(monkeypatch, b"  Should we build the bridge?\n")
    assert main(args(provider, "-")) == 0
    assert json.loads(capsys.readouterr().out)["question"] == "Should we build the bridge?"


def test_a_question_longer_than_an_argument_can_be_comes_from_a_file(
    provider, tmp_path, capsys
) -> None:
    long_question = "Why? " * 40_000  # 200 KB: over the kernel's 128 KB per argument
    path = tmp_path / "question.txt"
    path.write_text(long_question)
    assert main(args(provider, "--question-file", str(path))) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["question"] == long_question.strip() and run["status"] == "completed"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe not text", "standard input: not UTF-8 text (byte 0)"),
        (b"   \n", "standard input: the question is empty"),
        (b"x" * (MAX_QUESTION_BYTES + 1), "standard input: the question is over 1 MiB"),
    ],
)
def test_bad_standard_input_is_one_line(provider, monkeypatch, capsys, data, message) -> None:
    stdin(monkeypatch, data)
    assert main(args(provider, "-")) == 2
    assert capsys.readouterr().err == f"council: error: {message}\n"
    assert provider.request_count == 0


def test_question_and_file_are_one_or_the_other(provider, tmp_path, capsys) -> None:
    (tmp_path / "q.txt").write_text("From the file?")
    assert (
        main(args(provider, "From the argument?", "--question-file", str(tmp_path / "q.txt"))) == 2
    )
    assert main(args(provider)) == 2
    assert main(args(provider, "--question-file", str(tmp_path / "missing.txt"))) == 2
    err = capsys.readouterr().err.splitlines()
    assert all(line.startswith("council: error: ") for line in err) and len(err) == 3
    assert "missing.txt: cannot read it: No such file or directory" in err[2]


def help_text(*command: str) -> str:
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args([*command, "--help"])
    return ""


def test_help_names_the_defaults(capsys) -> None:
    for command in (["convene"], ["runs", "list"], ["replay"], ["diversity"], ["models"]):
        help_text(*command)
    text = capsys.readouterr().out
    convene_help = text.split("usage: council runs list")[0]
    for default in (
        "(default: council)",
        "(default: 120)",
        "(default: 4)",
        "(default: 0.7)",
        "(default: the bundled local model)",
        "(default: the runs home",
    ):
        assert default in re.sub(r"\s+", " ", convene_help), default
    assert "(default: as recorded)" in text  # replay keeps the recorded seats


def test_models_lists_what_can_sit_without_calling_anyone(provider, monkeypatch, capsys) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret-value-123456")
    assert main(["models", "--json"]) == 0
    out = capsys.readouterr().out
    entries = {entry["model"]: entry for entry in json.loads(out)}
    assert entries["local/smollm2-135m-instruct"]["ready"] is True
    assert entries["openai/gpt-4o"] == {
        "model": "openai/gpt-4o",
        "source": "openai (high)",
        "ready": False,
        "note": "set OPENAI_API_KEY",
    }
    assert entries["anthropic/claude-sonnet-4-5"]["ready"] is True
    assert "sk-ant-secret" not in out
    port = int(provider.api_base.rsplit(":", 1)[1].split("/")[0])
    served = model_catalogue(servers=(("llama.cpp", port, "/v1/models"),))
    assert [(e.model, e.ready) for e in served if "127.0.0.1" in e.source] == [
        ("openai/fake", True)
    ]
    assert provider.request_count == 0  # listing models is a GET, never a completion


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_run_without_a_seat_says_so_and_exits_3(provider, capsys) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    command = [
        "convene",
        "Should we?",
        "--protocol",
        "quick",
        "--quiet",
        "--attempts",
        "1",
        "--model",
        "openai/fake",
        "--endpoint",
        f"openai/fake={provider.api_base}",
        "--seat",
        "kuhn=openai/gone",
        "--endpoint",
        f"openai/gone={dead}",
    ]
    # The pre-flight finds nobody answering at kuhn's endpoint: the run fails before any call
    # (exit 78), or, allowed to, convenes without kuhn, recorded absent with the reason.
    assert main(command) == 78
    _, err = capsys.readouterr()
    assert "seat kuhn: openai/gone" in err and "object at 0x" not in err
    assert main([*command, "--allow-absent"]) == 3
    out, err = capsys.readouterr()
    assert out.startswith("[Synthesis without 1 absent seat(s): kuhn: pre-flight: openai/gone")
    assert err.startswith("council: run completed with 1 seat(s) absent: kuhn")
    assert "object at 0x" not in out + err


def test_object_reprs_never_reach_a_message() -> None:
    text = (
        "Cannot connect to host localhost:11434 ssl:<ssl.SSLContext object at 0x7f3a2c> "
        "[Connect call failed]; session <aiohttp.client.ClientSession object at 0xdead>"
    )
    assert redact(text) == (
        "Cannot connect to host localhost:11434 [Connect call failed]; session <ClientSession>"
    )
