"""The settings a run is convened with, and ``RunConfig``: everything it takes to convene it again.

They live at the bottom layer because every layer above reads them: seats (call settings), the
engine (sampling, budgets), the store (the recorded configuration) and the application (resume).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 0.7
    seed: int | None = None
    # Every turn's token cap, replacing the protocol's (raising or lowering them); None keeps
    # the protocol's caps (``council.engine.lengths``).
    max_tokens: int | None = None


@dataclass(frozen=True)
class CallSettings:
    """How real model calls behave: per-call timeout, retry budget, streaming."""

    timeout_s: float = 120.0
    max_attempts: int = 4
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0  # also caps a provider's Retry-After
    max_in_flight: int = 16  # calls one run has open at once
    max_in_flight_per_provider: int = 16  # of those, calls to one provider
    stream: bool = True  # replies arrive piece by piece (shown live); off for a server that cannot
    # A reply cut off at its token cap is asked once to continue (council.engine.lengths).
    continue_truncated: bool = False
    # activations/ seats only: "p90" caps at that percentile of the axis's persona replies, a
    # number caps at that projection (the ceiling 'council experiment capping' calibrates).
    activation_cap: str | None = None
    # When the chair fails: first the pool's model of another family, then the verdict council
    # assembles from the tally (nyk's STEP 7 fallback). Off: a failed chair fails the run.
    chair_fallback: bool = True


@dataclass(frozen=True)
class Budget:
    max_tokens: int | None = None  # prompt + completion tokens over the whole run
    max_usd: float | None = None  # calls with unknown cost count as 0
    max_wall_s: float | None = None


class RecordedCard(BaseModel):
    """A persona card as it was seated: where it came from (if a file) and its exact text."""

    model_config = ConfigDict(frozen=True)

    name: str
    path: str | None = None  # None: the card was defined in code
    text: str  # the card's source text; its SHA-256 is the seat's card_hash


class RunConfig(BaseModel):
    """What resume and replay need to convene the same council again.

    Cards and the protocol are kept as text, so a run convened from cards defined in code (or
    from files since deleted) can still be resumed exactly as it ran.
    """

    model_config = ConfigDict(frozen=True)

    panel: list[RecordedCard]
    chair: RecordedCard
    protocol_path: str | None
    protocol_text: str
    seats: dict[str, list[str] | None]  # seat -> model chain; None: a model object, not a string
    endpoints: dict[str, str] = Field(default_factory=dict)
    api_key_envs: dict[str, str] = Field(default_factory=dict)  # variable names, never values
    sampling: SamplingSettings = SamplingSettings()
    calls: CallSettings = CallSettings()
    budget: Budget | None = None
    label_seed: str
    switches: dict[str, bool] = Field(default_factory=dict)  # protocol switches, as they ran
    weights: dict[str, float] = Field(default_factory=dict)  # seat -> vote weight, 1 if absent
    reasoning_effort: dict[str, str] = Field(default_factory=dict)  # seat -> effort it was given
