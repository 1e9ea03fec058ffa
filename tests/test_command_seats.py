"""Command seats: a local program (a subscription CLI) as a seat, called through litellm's
``cli`` provider, bounded by time and output size, its process group killed when it overruns
or the call is cancelled, and recorded like any other call.

The real CLIs are not on the test machine: tests/fixtures/commands/fake_cli.py stands in for
them (a persona-aware reply, a hang, a flood, a failure, silence)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from council.base.errors import ConfigError, ModelCallError, SourceError
from council.cli.main import main
from council.personas.card import slugify
from council.seats import ModelRequest, make_model
from council.seats import commands as command_registry
from council.seats.commands import PRESETS, CommandSpec, register_command
from council.seats.detect import model_catalogue
from council.seats.litellm_model import import_litellm
from council.seats.routing import model_family
from council.seats.slots import read_seat_slots

FAKE = str(Path(__file__).parent / "fixtures" / "commands" / "fake_cli.py")
SYSTEM = "You are Ada Lovelace. Answer briefly."
QUESTION = "The council is deliberating: Should the library open on Sundays?"


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(command_registry, "_registered", {})
    yield


def fake(mode: str, **options: object) -> CommandSpec:
    return CommandSpec((sys.executable, FAKE, mode), ("--model", "{model}"), **options)  # type: ignore[arg-type]


def request(listener: object = None) -> ModelRequest:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    extra = {"listener": listener} if listener is not None else {}
    return ModelRequest(stage="s", messages=messages, max_tokens=60, temperature=0.5, **extra)  # type: ignore[arg-type]


class Heard:
    def __init__(self) -> None:
        self.pieces: list[str] = []

    def delta(self, text: str) -> None:
        self.pieces.append(text)

    def retrying(self, *_: object) -> None:
        pass

    def falling_back(self, *_: object) -> None:
        pass


def complete(model: str, *, attempts: int = 1, stream: bool = True, listener: object = None):  # type: ignore[no-untyped-def]
    from council.records.settings import CallSettings

    seat = make_model(model, settings=CallSettings(max_attempts=attempts, stream=stream))
    return asyncio.run(seat.complete(request(listener)))


def gone(pid: int) -> bool:
    """The process has exited (a zombie awaiting its parent counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_until_gone(pids: list[int]) -> bool:
    for _ in range(200):  # polls at most 10 s; the assertion is on the outcome, not the time
        if all(gone(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


# --- A reply, through litellm ---------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_a_command_seat_replies_in_character_through_litellm(stream: bool) -> None:
    register_command("fake", fake("reply"))
    heard = Heard()
    completion = complete("cli/fake:m1", stream=stream, listener=heard)
    assert completion.content.startswith(
        "Speaking as Ada Lovelace on m1: on 'Should the library open on Sundays?'"
    )
    assert completion.prompt_tokens and completion.completion_tokens  # counted by litellm
    assert completion.cost_usd is None  # a subscription: no price per call
    assert ("".join(heard.pieces).strip() == completion.content) if stream else not heard.pieces
    litellm = import_litellm()
    assert any(entry["provider"] == "cli" for entry in litellm.custom_provider_map)


def test_a_council_on_command_seats_from_a_slot_file_is_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slots = tmp_path / "slots.yaml"
    argv = json.dumps([sys.executable, FAKE, "reply", "--model", "{model}"])
    slots.write_text(
        f"seats:\n  popper: {{command: {argv}, model: m-popper}}\n"
        f"  kuhn: {{command: {argv}, model: m-kuhn}}\n"
        f"chairman: {{command: {argv}, model: m-chair}}\n"
    )
    args = [
        "convene",
        "Is falsifiability enough?",
        "--personas",
        "popper,kuhn",
        "--protocol",
        "quick",
        "--models",
        str(slots),
        "--out",
        str(tmp_path / "runs"),
        "--json",
        "--quiet",
    ]
    assert main(args) == 0, capsys.readouterr().err
    run = json.loads(capsys.readouterr().out)
    program = slugify(Path(sys.executable).name)
    for turn in run["turns"]:
        assert turn["error"] is None and turn["provider"] == "cli"
        assert turn["model"] == f"cli/{program}:m-{turn['seat']}"
        assert turn["completion_tokens"] and turn["request"]["messages"]
    said = {t["seat"]: t["content"] for t in run["turns"] if t["seat"] != "chair"}
    assert "on m-popper" in said["popper"] and "on m-kuhn" in said["kuhn"]
    assert said["popper"].startswith("Speaking as Karl Popper")  # its own card's prompt
    assert said["kuhn"].startswith("Speaking as Thomas S")  # "Thomas S. Kuhn", cut at the dot
    assert (tmp_path / "runs" / "ledger.sqlite").is_file()


# --- Bounds: time, output, exit status --------------------------------------------------------


def test_a_hung_command_is_killed_with_its_process_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids_file = tmp_path / "pids"
    monkeypatch.setenv("FAKE_CLI_PIDS", str(pids_file))
    register_command("fake", fake("hang", timeout_s=1.0))
    with pytest.raises(ModelCallError, match="'fake' gave no full reply in 1 s") as err:
        complete("cli/fake:m", attempts=3)
    assert not err.value.retryable and err.value.attempts == 1  # a hang is not retried
    pids = [int(p) for p in pids_file.read_text().split()]
    assert wait_until_gone(pids)  # the program and the child it started


def test_a_cancelled_call_kills_its_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids_file = tmp_path / "pids"
    monkeypatch.setenv("FAKE_CLI_PIDS", str(pids_file))
    register_command("fake", fake("hang", timeout_s=600.0))

    async def cancel_midway() -> None:
        from council.records.settings import CallSettings

        seat = make_model("cli/fake:m", settings=CallSettings(max_attempts=1))
        call = asyncio.ensure_future(seat.complete(request()))
        while not pids_file.exists():
            await asyncio.sleep(0.05)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call

    asyncio.run(cancel_midway())
    assert wait_until_gone([int(p) for p in pids_file.read_text().split()])


@pytest.mark.parametrize(
    ("mode", "options", "expected"),
    [
        ("flood", {"max_output_bytes": 100_000}, "'fake' printed more than 100000 bytes"),
        ("fail", {}, r"'fake' exited with status 3: Error: not logged in\. Run `fake login`"),
        ("silent", {}, "'fake' printed no reply"),
    ],
)
def test_a_command_that_floods_fails_or_says_nothing_fails_the_call(
    mode: str, options: dict[str, object], expected: str
) -> None:
    register_command("fake", fake(mode, **options))
    for stream in (True, False):
        with pytest.raises(ModelCallError, match=expected) as err:
            complete("cli/fake:m", attempts=3, stream=stream)
        assert not err.value.retryable and err.value.attempts == 1
        assert "\n" not in str(err.value)


def test_a_missing_program_and_an_unknown_seat_are_one_line_errors() -> None:
    register_command("ghost", CommandSpec(("no-such-cli-7f3a",)))
    with pytest.raises(ModelCallError, match="'no-such-cli-7f3a' is not installed or not on PATH"):
        complete("cli/ghost")
    with pytest.raises(ConfigError, match="unknown command seat 'nope'.*known: claude, codex"):
        make_model("cli/nope")
    with pytest.raises(ConfigError, match="the ollama command needs a model: cli/NAME:MODEL"):
        make_model("cli/ollama")
    with pytest.raises(ConfigError, match="'fake' is already another command"):
        register_command("fake", fake("reply"))
        register_command("fake", fake("fail"))


# --- Presets: argv lists, never a shell ---------------------------------------------------------


HOSTILE = 'Is it safe? "; rm -rf ~; echo $(whoami) `id` > /tmp/x'


@pytest.mark.parametrize(
    ("name", "model", "argv"),
    [
        ("claude", "opus", ["claude", "-p", "--output-format", "text", "--model", "opus"]),
        ("claude", None, ["claude", "-p", "--output-format", "text"]),
        ("codex", "gpt-5", ["codex", "exec", "--skip-git-repo-check", "--sandbox", "read-only",
                            "-c", "model=gpt-5"]),
        ("gemini", "gemini-2.5-pro", ["gemini", "-m", "gemini-2.5-pro"]),
        ("ollama", "llama3.1:8b", ["ollama", "run", "llama3.1:8b"]),
        ("cursor-agent", "gpt-5", ["cursor-agent", "-p", "--mode", "ask", "--output-format",
                                   "text", "--model", "gpt-5", HOSTILE]),
    ],
)  # fmt: skip
def test_presets_are_argument_lists_with_the_prompt_on_stdin_where_the_cli_reads_it(
    name: str, model: str | None, argv: list[str]
) -> None:
    assert PRESETS[name].command_line(model, HOSTILE) == argv
    assert PRESETS[name].prompt == ("argument" if name == "cursor-agent" else "stdin")
    assert {p.timeout_s for p in PRESETS.values()} == {60.0, 90.0, 120.0}  # nyk's timeouts


def test_a_prompt_given_as_an_argument_is_one_argument_never_shell_text(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    prompt = f"-rf $(touch {marker}) `touch {marker}`; touch {marker}"
    spec = CommandSpec((sys.executable, FAKE, "reply", "--prompt-arg"), prompt="argument")
    argv = spec.command_line(None, prompt)
    assert argv[-1] == f" {prompt}"  # one argument, that cannot be read as an option
    register_command("fake", spec)
    messages = [{"role": "user", "content": prompt}]
    seat = make_model("cli/fake")
    reply = asyncio.run(seat.complete(ModelRequest("s", messages, 60, 0.5)))
    assert f"prompt characters: {len(prompt) + 1}" in reply.content
    assert not marker.exists()


# --- Slot files, routing, the catalogue ------------------------------------------------------------


def test_nyk_slot_files_seat_members_on_their_subscription_clis(tmp_path: Path) -> None:
    slots = tmp_path / "slots.yaml"
    slots.write_text(
        "profile: exploration-orthogonal\n"
        "seats:\n"
        "  socrates: {provider: anthropic, model: opus, exec_method: subagent}\n"
        "  feynman: {provider: openai, model: gpt-5, exec_method: codex_exec}\n"
        "  sun-tzu: {provider: google, model: gemini-2.5-pro, exec_method: gemini_cli}\n"
        "  lao-tzu: {provider: ollama, model: 'llama3.1:8b', exec_method: ollama_run}\n"
        "  ada: {provider: cursor_cli, model: grok-4, reasoning_mode: formal}\n"
        "  torvalds: {exec_method: codex_exec, model: gpt-5, timeout_s: 300}\n"
        "  aurelius: {command: 'my-llm --model {model}', model: small, prompt: argument}\n"
        "  musashi: {provider: anthropic, model: claude-sonnet-4-5}\n"
        "fallback: {exec_method: subagent, model: sonnet}\n"
    )
    plan = read_seat_slots(slots)
    assert plan.seats == {
        "socrates": "cli/claude:opus",
        "feynman": "cli/codex:gpt-5",
        "sun-tzu": "cli/gemini:gemini-2.5-pro",
        "lao-tzu": "cli/ollama:llama3.1:8b",
        "ada": "cli/cursor-agent:grok-4",
        "torvalds": "cli/codex-torvalds:gpt-5",
        "aurelius": "cli/my-llm:small",
        "musashi": "anthropic/claude-sonnet-4-5",
    }
    assert plan.fallback == "cli/claude:sonnet"
    assert command_registry.command_spec("codex-torvalds").timeout_s == 300  # type: ignore[union-attr]
    # The command's own limit is the call's, past the default call timeout (120 s) too.
    assert make_model("cli/codex-torvalds:gpt-5").timeout_s == 300  # type: ignore[attr-defined]
    custom = command_registry.command_spec("my-llm")
    assert custom is not None and custom.command_line("small", "Q") == [
        "my-llm",
        "--model",
        "small",
        "Q",
    ]
    families = {m: model_family(m) for m in plan.seats.values()}
    assert families["cli/claude:opus"] == "anthropic" and families["cli/codex:gpt-5"] == "openai"
    assert families["cli/gemini:gemini-2.5-pro"] == "google"
    assert families["cli/cursor-agent:grok-4"] == "xai"
    assert families["cli/ollama:llama3.1:8b"] == "meta"


def test_a_slot_that_says_nothing_to_call_is_a_one_line_error(tmp_path: Path) -> None:
    slots = tmp_path / "slots.yaml"
    slots.write_text("seats:\n  socrates:\n    reasoning_mode: analytical\n")
    with pytest.raises(SourceError, match=r"slots.yaml:\d+: .*provider and model, an exec_method"):
        read_seat_slots(slots)


def test_the_catalogue_lists_subscription_clis_on_path() -> None:
    found = {"claude": "/usr/bin/claude", "ollama": "/usr/bin/ollama"}
    entries = model_catalogue(env={}, servers=(), which=found.get)
    clis = {e.model: e for e in entries if e.model.startswith("cli/")}
    assert set(clis) == {"cli/claude", "cli/ollama:MODEL"}
    assert clis["cli/claude"].ready and "claude CLI at /usr/bin/claude" in clis["cli/claude"].source
    assert not clis["cli/ollama:MODEL"].ready  # a model must be named first


def test_the_test_double_is_a_real_program() -> None:
    """The fake stands in for a CLI only if it behaves as one: stdin in, stdout out."""
    import subprocess

    done = subprocess.run(
        [sys.executable, FAKE, "reply"],
        input=f"{SYSTEM}\n\n{QUESTION}",
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
    )
    assert done.stdout.startswith("Speaking as Ada Lovelace on default")
