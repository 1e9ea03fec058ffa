"""Persona cards: YAML front matter (validated) plus a Jinja body (the system prompt)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from council.errors import CardError
from council.sourcefile import load_yaml, read_text, validate

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"


class CardFields(BaseModel):
    """The front matter of a persona card. Unknown keys are refused; ``extensions`` is free-form."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description="lowercase letters, digits, hyphens")
    description: str = Field(min_length=1)
    role: str = Field(min_length=1)
    figure: str | None = None
    traits: list[str] = Field(default_factory=list)
    framework: list[str] = Field(
        default_factory=list, description="named analytical frameworks the persona reasons with"
    )
    asks: list[str] = Field(default_factory=list, description="questions the persona asks")
    blind_spots: list[str] = Field(default_factory=list)
    polarity_pairs: list[str] = Field(default_factory=list)
    model: str | None = Field(default=None, description="model hint in litellm form")
    provider_affinity: list[str] = Field(
        default_factory=list, description="model families this persona is best voiced by"
    )
    tags: list[str] = Field(default_factory=list)
    extensions: dict[str, Any] = Field(default_factory=dict)

    @field_validator("model")
    @classmethod
    def _model_string(cls, value: str | None) -> str | None:
        if value is not None and "/" not in value:
            raise ValueError("model hint must be a litellm model string 'provider/model'")
        return value


class PersonaCard(BaseModel):
    """A loaded card: its fields, its template body, and where it came from."""

    model_config = ConfigDict(frozen=True)

    fields: CardFields
    body: str
    path: Path
    body_line: int  # 1-based line of the file where the body starts, for template errors

    @property
    def name(self) -> str:
        return self.fields.name

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*\r?\n?", re.DOTALL | re.MULTILINE)


def parse_card(text: str, path: Path) -> PersonaCard:
    """Parse the text of a card file; errors name the file, line and field."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise CardError(path, "missing YAML front matter: the file must start with a '---' line")
    front = match.group(1)
    # Front matter starts on line 2 of the file: YAML line 0 is file line 2.
    data, node = load_yaml(front, path, CardError, line_offset=1)
    if not isinstance(data, dict):
        raise CardError(path, "front matter must be a mapping of fields", line=2)
    fields = validate(CardFields, data, node, path, CardError, line_offset=1)
    if fields.name != path.stem and path.suffix == ".md":
        raise CardError(
            path, f"name '{fields.name}' must match the file name '{path.stem}'", field="name"
        )
    body_line = text[: match.end()].count("\n") + 1
    return PersonaCard(fields=fields, body=text[match.end() :], path=path, body_line=body_line)


def load_card(path: Path | str) -> PersonaCard:
    return parse_card(*read_text(path, CardError))
