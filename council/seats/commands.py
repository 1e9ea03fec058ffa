"""Command seats: a model reached through a local program, the prompt on its stdin (or as one
argument), the reply on its stdout. This is how the subscription CLIs people already pay for
take a seat with no API key: ``claude -p``, ``codex exec``, ``gemini``, ``ollama run`` and
``cursor-agent -p``.

A command seat is the model string ``cli/NAME`` or ``cli/NAME:MODEL`` (``cli/codex:gpt-5``,
``cli/ollama:llama3.1:8b``). ``NAME`` is a shipped preset (``PRESETS``) or a command a seat-slot
file registered (``register_command``). The call still goes through ``litellm.acompletion``:
``council.seats.command_provider`` is the ``cli`` provider registered in litellm's
``custom_provider_map``, and each call carries its command in its parameters, so the engine,
retries, records and live pieces are those of any other seat.

Safety and bounds: the program is started from an argument list, never through a shell, so
nothing in a prompt is ever read as shell syntax; the prompt goes on stdin unless a preset
says the program only takes it as an argument (cursor-agent), and then it is one argument that
can never be read as an option. A call ends at its timeout or when the program has printed
more than ``max_output_bytes``; then, or when the call is cancelled, the program's whole
process group is killed. A non-zero exit or an empty reply is a failed call (as in nyk's
dispatch), not retried: the seat's fallback, if it has one, takes over.

This module imports nothing heavy; the litellm side lives in ``command_provider``.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from council.base.errors import ConfigError

CLI_PROVIDER = "cli"
PARAM = "council_command"  # the litellm parameter a command seat's call carries its command in
STDERR_KEPT = 4000  # bytes of a failed program's stderr kept to say why it failed


@dataclass(frozen=True)
class CommandSpec:
    """How to call one program. ``{model}`` in ``model_args`` is the seat's model, added only
    when the model string names one; the prompt goes on stdin or as the last argument."""

    argv: tuple[str, ...]
    model_args: tuple[str, ...] = ()
    prompt: Literal["stdin", "argument"] = "stdin"
    timeout_s: float = 120.0
    max_output_bytes: int = 1_000_000
    needs_model: bool = False
    name: str = ""  # what messages call it: the seat's command name, else the program's

    def command_line(self, model: str | None, prompt: str) -> list[str]:
        if model is None and self.needs_model:
            raise ConfigError(f"the {self.argv[0]} command needs a model: cli/NAME:MODEL")
        argv = list(self.argv)
        if model is not None:
            argv = [part.replace("{model}", model) for part in [*argv, *self.model_args]]
        if self.prompt == "argument":
            # An argument that starts with '-' would be read as an option.
            argv.append(prompt if not prompt.startswith("-") else f" {prompt}")
        return argv

    def to_params(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> CommandSpec:
        return cls(
            **{
                **params,
                "argv": tuple(params["argv"]),
                "model_args": tuple(params.get("model_args", ())),
            }
        )


# The subscription CLIs, called as nyk's dispatch calls them (SKILL.md STEP 2, MIT, 0xNyk),
# with the prompt on stdin where the program reads it there; timeouts are nyk's.
_PRESETS: dict[str, CommandSpec] = {
    "claude": CommandSpec(("claude", "-p", "--output-format", "text"), ("--model", "{model}")),
    "codex": CommandSpec(
        ("codex", "exec", "--skip-git-repo-check", "--sandbox", "read-only"),
        ("-c", "model={model}"), timeout_s=60.0,
    ),
    "gemini": CommandSpec(("gemini",), ("-m", "{model}"), timeout_s=60.0),
    "ollama": CommandSpec(("ollama", "run"), ("{model}",), timeout_s=120.0, needs_model=True),
    "cursor-agent": CommandSpec(
        ("cursor-agent", "-p", "--mode", "ask", "--output-format", "text"),
        ("--model", "{model}"), prompt="argument", timeout_s=90.0,
    ),
}  # fmt: skip
PRESETS = {name: replace(spec, name=name) for name, spec in _PRESETS.items()}
_registered: dict[str, CommandSpec] = {}


def register_command(name: str, spec: CommandSpec) -> None:
    """Make ``cli/NAME`` call ``spec``; the same name again must mean the same command."""
    spec = replace(spec, name=name)
    known = command_spec(name)
    if known is not None and known != spec:
        raise ConfigError(f"command seat '{name}' is already another command: name it apart")
    _registered[name] = spec


def command_spec(name: str) -> CommandSpec | None:
    """The command ``cli/NAME`` calls: a registered one, else the preset of that name."""
    return _registered.get(name) or PRESETS.get(name)


def command_names() -> list[str]:
    return sorted({*PRESETS, *_registered})


def parse_command_model(model: str) -> tuple[str, str | None]:
    """``cli/codex:gpt-5`` -> ``('codex', 'gpt-5')``; ``cli/claude`` -> ``('claude', None)``."""
    _, _, rest = model.partition("/")
    name, sep, chosen = rest.partition(":")
    return name, (chosen if sep and chosen else None)


def command_params(model: str) -> dict[str, Any]:
    """What a command seat's calls carry to the ``cli`` provider: the command and the model."""
    name, chosen = parse_command_model(model)
    spec = command_spec(name)
    if spec is None:
        known = ", ".join(command_names())
        raise ConfigError(f"unknown command seat '{name}' in '{model}'; known: {known}")
    spec.command_line(chosen, "")  # a missing model is said now, before any call
    return {"spec": spec.to_params(), "model": chosen}


def prompt_text(messages: Sequence[dict[str, Any]]) -> str:
    """A conversation as the one text a CLI reads: the system prompt, then the question; a
    longer conversation with each turn labelled by who said it."""
    system = [str(m.get("content") or "") for m in messages if m.get("role") == "system"]
    rest = [m for m in messages if m.get("role") != "system"]
    if len(rest) == 1 and rest[0].get("role") == "user":
        turns = [str(rest[0].get("content") or "")]
    else:
        turns = [f"[{m.get('role')}]\n{m.get('content') or ''}" for m in rest]
    return "\n\n".join(part.strip() for part in [*system, *turns] if part.strip())


class CommandFailed(Exception):
    """The program failed: it is missing, exited non-zero, printed nothing or too much, or
    ran out of time. ``kind`` says which, for the provider to classify."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


def _kill_group(process: asyncio.subprocess.Process) -> None:
    # The program may have started others (a CLI's node workers): the whole group goes.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def _feed(process: asyncio.subprocess.Process, data: bytes) -> None:
    if process.stdin is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        process.stdin.write(data)
        await process.stdin.drain()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        process.stdin.close()


async def _tail(stream: asyncio.StreamReader | None, kept: bytearray) -> None:
    while stream is not None and (block := await stream.read(65536)):
        kept += block
        del kept[:-STDERR_KEPT]


def _why(kept: bytearray) -> str:
    lines = [line.strip() for line in kept.decode("utf-8", "replace").splitlines()]
    said = next((line for line in reversed(lines) if line), "")
    return f": {said[:300]}" if said else ""


async def _start(spec: CommandSpec, argv: list[str]) -> asyncio.subprocess.Process:
    stdin = asyncio.subprocess.PIPE if spec.prompt == "stdin" else asyncio.subprocess.DEVNULL
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, so all of it can be stopped
        )
    except FileNotFoundError:
        raise CommandFailed("missing", f"'{argv[0]}' is not installed or not on PATH") from None
    except OSError as exc:
        raise CommandFailed("missing", f"'{argv[0]}' cannot be started: {exc}") from None


async def run_command(
    spec: CommandSpec, model: str | None, prompt: str, *, timeout_s: float | None = None
) -> AsyncIterator[str]:
    """The program's reply, piece by piece as it prints it. Raises ``CommandFailed``; the
    process group is killed whenever the reply does not end well (cancellation included)."""
    argv = spec.command_line(model, prompt)
    limit = min(spec.timeout_s, timeout_s) if timeout_s else spec.timeout_s
    name = spec.name or os.path.basename(argv[0])
    process = await _start(spec, argv)
    stderr = bytearray()
    helpers = [asyncio.ensure_future(_tail(process.stderr, stderr))]
    if spec.prompt == "stdin":
        helpers.append(asyncio.ensure_future(_feed(process, prompt.encode("utf-8"))))
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    printed, said, finished = 0, False, False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    assert process.stdout is not None
    try:
        # Each wait is bounded on its own: the reply is yielded between reads, and a timer
        # spanning a yield would cancel whoever is reading the reply, not the read.
        while block := await asyncio.wait_for(process.stdout.read(65536), deadline - loop.time()):
            printed += len(block)
            if printed > spec.max_output_bytes:
                raise CommandFailed(
                    "flood", f"'{name}' printed more than {spec.max_output_bytes} bytes: stopped"
                )
            if text := decoder.decode(block):
                said = said or bool(text.strip())
                yield text
        if text := decoder.decode(b"", final=True):
            said = said or bool(text.strip())
            yield text
        status = await asyncio.wait_for(process.wait(), deadline - loop.time())
        await asyncio.wait_for(asyncio.gather(*helpers), deadline - loop.time())
        if status != 0:
            raise CommandFailed("exit", f"'{name}' exited with status {status}{_why(stderr)}")
        if not said:
            raise CommandFailed("empty", f"'{name}' printed no reply{_why(stderr)}")
        finished = True
    except TimeoutError:
        raise CommandFailed("timeout", f"'{name}' gave no full reply in {limit:g} s") from None
    finally:
        if not finished:
            _kill_group(process)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(process.wait()), 5)
        for helper in helpers:
            helper.cancel()
