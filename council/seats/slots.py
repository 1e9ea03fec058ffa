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
``council-socrates``). Keys the file carries for other tools (``reasoning_mode``,
``strategy``, ``profile``) are kept out of the way, not refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from council.errors import ConfigError, SourceError
from council.sourcefile import load_yaml, read_text, validate

# nyk's provider names -> litellm's.
_PROVIDERS = {"google": "gemini", "xai": "xai", "meta": "meta_llama", "nvidia_nim": "nvidia_nim"}


class _Slot(BaseModel):
    model_config = ConfigDict(extra="ignore")

    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)
    base_url: str | None = None
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


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

    def seat_for(self, member: str, seats: list[str]) -> str | None:
        """The seat a file's member names: itself, or the one seat ending in ``-member``."""
        if member in seats:
            return member
        found = [s for s in seats if s.endswith(f"-{member}")]
        return found[0] if len(found) == 1 else None


def _model(slot: _Slot, plan: SeatSlots) -> str:
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
    plan = SeatSlots()
    for member, slot in spec.seats.items():
        plan.seats[member] = _model(slot, plan)
    plan.fallback = _model(spec.fallback, plan) if spec.fallback else None
    plan.chairman = _model(spec.chairman, plan) if spec.chairman else None
    return plan
