"""The assistant axis as it is stored: a direction in one layer's residual stream of an
open-weight model, the samples it was fitted on and how well it separates, with provenance.

A record, read by the activation seat backend (to cap along it) and by the meter (to measure
drift along it); how it is fitted is the meter's (``council/meter/activations/axis.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from council.base.errors import ConfigError, first_problem
from council.records.record import utc_now


def axis_dir(override: str | os.PathLike[str] | None = None) -> Path:
    if override is not None:
        return Path(override)
    default = Path.home() / ".cache" / "council" / "axes"
    return Path(os.environ.get("COUNCIL_AXIS_DIR", default))


def axis_path(model: str, directory: str | os.PathLike[str] | None = None) -> Path:
    return axis_dir(directory) / f"{model.rpartition('/')[2]}.json"


class AxisSample(BaseModel):
    """One reply the axis was built from: who spoke, to which prompt, and where it projects."""

    model_config = ConfigDict(frozen=True)

    side: Literal["assistant", "persona"]
    speaker: str  # "assistant#<n>" for a plain system prompt, else the persona's name
    prompt: int  # index into the axis's prompts
    held_out: bool  # scored, not fitted, when the held-out AUC was measured
    projection: float  # on the stored axis
    reply: str


class PersonaVector(BaseModel):
    """A polarity pair's direction at the axis's layer: the mean of the first pole's replies
    minus the second's. Its held-out AUC is cross-fitted by prompt: each reply is scored on a
    direction fitted without its prompt, so every reply of both poles is held out once."""

    model_config = ConfigDict(frozen=True)

    pair: tuple[str, str]
    direction: list[float]  # unit length, second pole -> first
    held_out_auc: float
    samples: int
    axis_cosine: float  # with the assistant axis: how much of the pair is "more assistant"
    # Replies scored per pole, and how (absent from axes built before cross-fitting, which
    # fitted on even prompts and scored the odd: half of each pole's replies).
    held_out_per_side: int | None = None
    auc_method: str | None = None


class AssistantAxis(BaseModel):
    """A direction in one layer's residual stream, and everything needed to reproduce it."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    model: str  # the bundled model string, local/<name>
    model_sha256: str
    layer: int
    num_layers: int
    hidden_size: int
    direction: list[float]  # unit length, persona -> assistant
    origin: list[float]  # midpoint of the two means: projections are measured from here
    assistant_projection: float  # the mean projection of the assistant replies
    persona_projection: float  # and of the persona replies
    prompts: list[str]
    assistant_systems: list[str]
    personas: dict[str, str]  # name -> card hash
    reply_tokens: int
    samples: list[AxisSample]
    # Interval.bounds_json() at the axis's layer, and under 'held_out' what it rests on (counted)
    held_out_auc: dict[str, Any]
    layer_auc: dict[int, float] = Field(default_factory=dict)  # held-out AUC at every layer
    persona_vectors: list[PersonaVector] = Field(default_factory=list)
    built_at: datetime = Field(default_factory=utc_now)
    build_seconds: float | None = None

    @property
    def axis_id(self) -> str:
        canonical = json.dumps([self.model_sha256, self.layer, self.direction, self.origin])
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def project(self, vector: Any) -> float:
        import numpy as np  # records are read on the way to the first call; numpy is not

        return float((np.asarray(vector, dtype=np.float64) - self.origin) @ self.direction)

    def position(self, projection: float) -> float:
        """0 at the persona replies' mean projection, 1 at the assistant replies' (unclipped),
        the same scale as the embedding meter's drift position."""
        span = self.assistant_projection - self.persona_projection
        return (projection - self.persona_projection) / span if span else float("nan")

    def assistant_replies(self) -> list[str]:
        return [s.reply for s in self.samples if s.side == "assistant" and s.reply]

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(self.model_dump_json(indent=1), encoding="utf-8")
        partial.replace(path)
        return path


def load_axis(path: Path) -> AssistantAxis:
    try:
        return AssistantAxis.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the axis: {exc.strerror}") from None
    except ValidationError as exc:
        raise ConfigError(f"{path}: not an assistant axis: {first_problem(exc, '(top)')}") from None


def stored_axis(
    model: str, directory: str | os.PathLike[str] | None = None
) -> AssistantAxis | None:
    path = axis_path(model, directory)
    return load_axis(path) if path.is_file() else None
