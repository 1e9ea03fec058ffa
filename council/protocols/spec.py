"""The protocol file format: a list of stages, each a pydantic model with ``extra="forbid"``.

Stage kinds so far:

- ``statement``: each seat answers alone, seeing nothing but the question (a blind round).
- ``response``: each seat answers after reading the stages named in ``sees``, optionally with
  the other seats shown anonymously as Member A, B, ...
- ``synthesis``: one seat (by default the chair, outside the panel) writes the council's answer.

New kinds (votes, rankings, loops) join the ``Stage`` union with their own model.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

STAGE_ID_PATTERN = r"^[a-z][a-z0-9_-]*$"


class StageBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=STAGE_ID_PATTERN)
    title: str | None = None
    prompt: str = Field(min_length=1, description="Jinja template of the stage's instruction")
    after: list[str] = Field(default_factory=list, description="stages that must finish first")
    max_tokens: int | None = Field(default=None, gt=0)
    min_turns: int = Field(
        default=1, ge=0, description="fewest successful turns for the run to go on (quorum)"
    )

    @property
    def label(self) -> str:
        return self.title or self.id.replace("_", " ").replace("-", " ").capitalize()

    @property
    def depends_on(self) -> list[str]:
        return list(dict.fromkeys(self.after))


class StatementStage(StageBase):
    kind: Literal["statement"]
    seats: Literal["panel"] = "panel"


class ResponseStage(StageBase):
    kind: Literal["response"]
    seats: Literal["panel"] = "panel"
    sees: list[str] = Field(min_length=1, description="earlier stages whose turns are shown")
    anonymize: bool = Field(default=False, description="show other seats as Member A, B, ...")

    @property
    def depends_on(self) -> list[str]:
        return list(dict.fromkeys([*self.sees, *self.after]))


class SynthesisStage(StageBase):
    kind: Literal["synthesis"]
    seats: Literal["chair"] = "chair"
    sees: list[str] = Field(min_length=1)
    anonymize: bool = False
    min_turns: int = Field(default=1, ge=1, description="a run without its synthesis has failed")

    @property
    def depends_on(self) -> list[str]:
        return list(dict.fromkeys([*self.sees, *self.after]))


Stage = Annotated[StatementStage | ResponseStage | SynthesisStage, Field(discriminator="kind")]


class ProtocolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = Field(min_length=1)
    origin: str | None = Field(default=None, description="the published design it reproduces")
    version: int = 1
    max_tokens: int = Field(default=256, gt=0, description="default per-turn token cap")
    stages: list[Stage] = Field(min_length=1)
