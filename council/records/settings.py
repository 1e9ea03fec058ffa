"""The settings a run is convened with, and ``RunConfig``: everything it takes to convene it again.

They live at the bottom layer because every layer above reads them: seats (call settings), the
engine (sampling, budgets), the store (the recorded configuration) and the application (resume).
``SamplingSettings``, ``CallSettings`` and ``Budget`` are parts of ``CouncilSpec``
(``council.records.spec``), where their defaults are stated.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from council.records.spec import Budget, CallSettings, CouncilSpec, SamplingSettings

__all__ = ["Budget", "CallSettings", "CouncilSpec", "RecordedCard", "RunConfig", "SamplingSettings"]

# What a RunConfig recorded before it carried the spec, by the spec field it now is.
_BEFORE_SPEC = (
    "endpoints",
    "api_key_envs",
    "sampling",
    "calls",
    "budget",
    "switches",
    "weights",
    "reasoning_effort",
)


class RecordedCard(BaseModel):
    """A persona card as it was seated: where it came from (if a file) and its exact text."""

    model_config = ConfigDict(frozen=True)

    name: str
    path: str | None = None  # None: the card was defined in code
    text: str  # the card's source text; its SHA-256 is the seat's card_hash


class RunConfig(BaseModel):
    """What resume and replay need to convene the same council again: the spec it ran with,
    resolved (each seat's model chain, its weights and reasoning efforts as they were), and the
    cards and protocol it read.

    Cards and the protocol are kept as text, so a run convened from cards defined in code (or
    from files since deleted) can still be resumed exactly as it ran. A configuration recorded
    before the spec (its settings at the top level) is read into one.
    """

    model_config = ConfigDict(frozen=True)

    spec: CouncilSpec = CouncilSpec()
    panel: list[RecordedCard]
    chair: RecordedCard
    protocol_path: str | None
    protocol_text: str
    # seat -> model chain as it ran; None: a model object, not a string. The spec's seats and
    # fallbacks say the same of the string chains.
    seats: dict[str, list[str] | None]
    label_seed: str

    def __init__(self, **data: Any) -> None:
        """Keyword arguments of either shape: ``spec=``, or the settings a configuration
        held before the spec (``sampling=``, ``calls=``...; the store's legacy reader)."""
        super().__init__(**data)

    @model_validator(mode="before")
    @classmethod
    def _settings_into_spec(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "spec" in data:
            return data
        data = dict(data)
        spec = {key: data.pop(key) for key in _BEFORE_SPEC if key in data}
        if spec.get("budget") is None:
            spec.pop("budget", None)  # no budget: the spec's, which limits nothing
        chains = {seat: chain for seat, chain in (data.get("seats") or {}).items() if chain}
        spec["seats"] = {seat: chain[0] for seat, chain in chains.items()}
        spec["fallbacks"] = {seat: chain[1:] for seat, chain in chains.items() if chain[1:]}
        data["spec"] = spec
        return data

    # The settings as RunConfig held them before the spec, for readers of that shape.
    @property
    def sampling(self) -> SamplingSettings:
        return self.spec.sampling

    @property
    def calls(self) -> CallSettings:
        return self.spec.calls

    @property
    def budget(self) -> Budget:
        return self.spec.budget

    @property
    def endpoints(self) -> dict[str, str]:
        return self.spec.endpoints

    @property
    def api_key_envs(self) -> dict[str, str]:
        return self.spec.api_key_envs

    @property
    def switches(self) -> dict[str, bool]:
        return self.spec.switches

    @property
    def weights(self) -> dict[str, float]:
        return self.spec.weights

    @property
    def reasoning_effort(self) -> dict[str, str]:
        return dict(self.spec.reasoning_effort)
