"""Seat-slot files: which model each member sits on, in the shape nyk's users already write.

```yaml
seats:
  socrates: {provider: anthropic, model: claude-sonnet-4-5}
  ada:
    provider: meta_model_api
    model: muse-spark-1.1
    base_url: https://api.example.com/v1   # any OpenAI-compatible endpoint
    api_key_env: MODEL_API_KEY             # the key is read from this variable at call time
fallback: {provider: openai, model: gpt-4o-mini}   # tried when a seat's own model fails
chairman: {provider: google, model: gemini-2.5-pro}
```

Members are matched to seats by name or by the last part of it (``socrates`` is the seat
``council-socrates``). A seat (or the chairman) may give its model a ``reasoning_effort``
(none, minimal, low, medium, high), sent with each of its calls. Keys the file carries for
other tools (``reasoning_mode``, ``strategy``, ``profile``) are kept out of the way, not
refused.

Command seats (``council.seats.commands``) sit on a subscription CLI instead of an API key:

```yaml
seats:
  socrates: {exec_method: subagent, model: opus}            # claude -p --model opus
  feynman: {provider: openai, model: gpt-5, exec_method: codex_exec}
  sun-tzu: {exec_method: gemini_cli, model: gemini-2.5-pro}
  lao-tzu: {exec_method: ollama_run, model: "llama3.1:8b"}
  ada: {provider: cursor_cli, model: gpt-5}                 # cursor-agent -p --mode ask
  torvalds:                                                  # any program of one's own
    command: [my-llm, --model, "{model}"]                    # argv, never through a shell
    model: small
    prompt: stdin                                            # or: argument
    timeout_s: 90
    max_output_bytes: 200000
```
"""

from __future__ import annotations

import shlex
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from council.base.errors import ConfigError, SourceError
from council.personas.card import slugify
from council.seats.commands import (
    CLI_PROVIDER,
    PRESETS,
    CommandSpec,
    command_spec,
    register_command,
)
from council.seats.model import ReasoningEffort
from council.text.sourcefile import load_yaml, locate, read_text, validate

# nyk's provider names -> litellm's.
_PROVIDERS = {"google": "gemini", "xai": "xai", "meta": "meta_llama", "nvidia_nim": "nvidia_nim"}
# nyk's exec_method for each subscription CLI -> council's command preset.
EXEC_METHODS = {
    "subagent": "claude", "claude_cli": "claude", "codex_exec": "codex", "gemini_cli": "gemini",
    "ollama_run": "ollama", "cursor_cli": "cursor-agent",
}  # fmt: skip


class _Slot(BaseModel):
    model_config = ConfigDict(extra="ignore")

    provider: str | None = Field(default=None, min_length=1)
    model: str | None = Field(default=None, min_length=1)
    base_url: str | None = None
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # A command seat: nyk's exec_method for a subscription CLI, or a command of one's own.
    exec_method: str | None = None
    command: list[str] | str | None = None
    prompt: Literal["stdin", "argument"] | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    max_output_bytes: int | None = Field(default=None, gt=0)
    reasoning_effort: ReasoningEffort | None = None

    @model_validator(mode="after")
    def _says_what_to_call(self) -> _Slot:
        if self.command is not None and not (
            shlex.split(self.command) if isinstance(self.command, str) else self.command
        ):
            raise ValueError("command must name a program")
        if _preset(self) is None and self.command is None and not (self.provider and self.model):
            raise ValueError("a seat needs provider and model, an exec_method or a command")
        return self


class _SlotsFile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    seats: dict[str, _Slot] = Field(default_factory=dict)
    fallback: _Slot | None = None
    chairman: _Slot | None = None


@dataclass
class SeatSlots:
    seats: dict[str, str] = field(default_factory=dict)  # member -> litellm model string
    endpoints: dict[str, str] = field(default_factory=dict)  # model string -> base URL
    api_key_envs: dict[str, str] = field(default_factory=dict)  # model string -> variable
    fallback: str | None = None
    chairman: str | None = None
    reasoning_efforts: dict[str, str] = field(default_factory=dict)  # member ("chair") -> effort
    source: Path | None = None  # the file it was read from, and each member's line in it
    lines: dict[str, int] = field(default_factory=dict)

    def seat_for(self, member: str, seats: list[str]) -> str | None:
        """The seat a file's member names: itself, or the one seat ending in ``-member``."""
        if member in seats:
            return member
        found = [s for s in seats if s.endswith(f"-{member}")]
        return found[0] if len(found) == 1 else None

    def check_members(self, seats: list[str], cards: Collection[str]) -> None:
        """Refuse a member that names no card at all: a file may seat members this panel does
        not have (nyk's files list every member), but a name no card has is a typo that
        would otherwise leave its seat on the default model without a word."""
        for member in self.seats:
            if self.seat_for(member, seats) is not None or member in cards:
                continue
            if any(card.endswith(f"-{member}") for card in cards):
                continue
            message = f"no persona card named '{member}' ('council personas list' shows them)"
            if self.source is None:
                raise ConfigError(f"seat slots: {message}")
            raise SourceError(
                self.source, message, line=self.lines.get(member), field=f"seats.{member}"
            )


def _preset(slot: _Slot) -> str | None:
    """The shipped command a slot names: nyk's exec_method, or Cursor, which has no API."""
    preset = EXEC_METHODS.get(slot.exec_method or "")
    return preset or ("cursor-agent" if slot.provider == "cursor_cli" else None)


def _command_model(slot: _Slot, member: str) -> str | None:
    """``cli/NAME[:MODEL]`` for a command seat (its command registered), else None."""
    if slot.command is not None:
        argv = shlex.split(slot.command) if isinstance(slot.command, str) else slot.command
        spec = CommandSpec(tuple(argv), needs_model=any("{model}" in part for part in argv))
        base = slugify(Path(argv[0]).name, "command")
    elif (preset := _preset(slot)) is not None:
        spec, base = PRESETS[preset], preset
    else:
        return None
    changes = {
        key: getattr(slot, key)
        for key in ("prompt", "timeout_s", "max_output_bytes")
        if getattr(slot, key) is not None
    }
    spec = replace(spec, **changes)
    known = command_spec(base)  # the name is the program's, unless another command has it
    name = base if known is None or known == replace(spec, name=base) else f"{base}-{member}"
    register_command(name, spec)
    return f"{CLI_PROVIDER}/{name}:{slot.model}" if slot.model else f"{CLI_PROVIDER}/{name}"


def _model(slot: _Slot, plan: SeatSlots, member: str) -> str:
    command = _command_model(slot, member)
    if command is not None:
        return command
    assert slot.provider and slot.model  # checked when the file was read
    if slot.base_url:  # an OpenAI-compatible endpoint, whoever runs it
        model = f"openai/{slot.model}"
        plan.endpoints[model] = slot.base_url
        if slot.api_key_env:
            plan.api_key_envs[model] = slot.api_key_env
        return model
    if "/" in slot.model and slot.model.split("/")[0] in _PROVIDERS.values():
        return slot.model
    return f"{_PROVIDERS.get(slot.provider, slot.provider)}/{slot.model}"


def read_seat_slots(path: Path | str) -> SeatSlots:
    text, where = read_text(path, SourceError)
    data, node = load_yaml(text, where, SourceError)
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a seat-slot file is a mapping with 'seats'")
    spec = validate(_SlotsFile, data, node, where, SourceError)
    plan = SeatSlots(source=where)
    for member, slot in spec.seats.items():
        plan.seats[member] = _model(slot, plan, member)
        line = locate(node, ["seats", member])
        if line is not None:
            plan.lines[member] = line + 1
    plan.fallback = _model(spec.fallback, plan, "fallback") if spec.fallback else None
    plan.chairman = _model(spec.chairman, plan, "chairman") if spec.chairman else None
    slots = {**spec.seats, "chair": spec.chairman} if spec.chairman else spec.seats
    plan.reasoning_efforts = {
        member: slot.reasoning_effort for member, slot in slots.items() if slot.reasoning_effort
    }
    return plan
