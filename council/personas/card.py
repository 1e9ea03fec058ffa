"""Persona cards: YAML front matter (validated) plus a Jinja body (the system prompt)."""

from __future__ import annotations

import hashlib
import keyword
import re
import unicodedata
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from council.base.errors import CardError
from council.text.sourcefile import load_yaml, read_text, validate

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
# Jinja's own literals; a variable by these names could never be referenced in a template.
_JINJA_WORDS = frozenset({"true", "false", "none", "loop", "self", "super", "varargs", "kwargs"})


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
    reasoning_method: str | None = Field(
        default=None, description="how the persona reasons (a panel seats each method once)"
    )
    domain: str | None = Field(default=None, description="what the persona knows best")
    polarity: str | None = Field(default=None, description="its stance, in a phrase")
    triads: list[str] = Field(
        default_factory=list, description="named panels (of three) this persona sits on"
    )
    profiles: list[str] = Field(default_factory=list, description="larger named panels")
    duo_keywords: list[str] = Field(
        default_factory=list, description="questions with these words seat it in a duo"
    )
    tier: Literal["high", "mid", "low"] | None = Field(
        default=None, description="how strong a model it wants, in any provider's terms"
    )
    model: str | None = Field(default=None, description="model hint in litellm form")
    provider_affinity: list[str] = Field(
        default_factory=list, description="model families this persona is best voiced by"
    )
    tags: list[str] = Field(default_factory=list)
    variables: dict[str, str] = Field(
        default_factory=dict, description="defaults for extra template variables of the body"
    )
    extensions: dict[str, Any] = Field(default_factory=dict)

    @field_validator("model")
    @classmethod
    def _model_string(cls, value: str | None) -> str | None:
        if value is not None and "/" not in value:
            raise ValueError("model hint must be a litellm model string 'provider/model'")
        return value

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, value: dict[str, str]) -> dict[str, str]:
        # A variable may not shadow a card field or the council's topic: the body would render
        # something other than what the front matter says.
        for key in value:
            if not key.isidentifier() or keyword.iskeyword(key) or key in _JINJA_WORDS:
                raise ValueError(f"variable '{key}' is not a valid template variable name")
            if key == "topic" or key in cls.model_fields:
                raise ValueError(f"variable '{key}' would shadow the card field or 'topic'")
        return value


class PersonaCard(BaseModel):
    """A loaded card: its fields, its template body, its source text and where it came from.

    A card built in code has no ``path``; its ``text`` is the card file it would be. The
    ``content_hash`` is the SHA-256 of ``text``, fixed at load: a run records the card it
    actually rendered, whatever happens to the file afterwards.
    """

    model_config = ConfigDict(frozen=True)

    fields: CardFields
    body: str
    path: Path | None = None
    body_line: int = 1  # 1-based line of the file where the body starts, for template errors
    text: str = ""  # the card's source text; filled in from fields and body when left empty

    @model_validator(mode="after")
    def _source_text(self) -> PersonaCard:
        if not self.text:
            text = dump_card(self.fields, self.body)
            object.__setattr__(self, "text", text)
            object.__setattr__(self, "body_line", text.count("\n", 0, text.index("\n---") + 1) + 2)
        return self

    @property
    def name(self) -> str:
        return self.fields.name

    @property
    def where(self) -> Path:
        """The file to name in messages; a card built in code gets a readable stand-in."""
        return self.path if self.path is not None else Path(f"<card '{self.name}' built in code>")

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


# The body a card built in code gets when it is given none: every field the card has, in the
# order the shipped cards use, so a few lines of Python still seat a full persona.
DEFAULT_BODY = """## Identity

You are {{ figure or name }}: {{ description }} Your role: {{ role }}.
{% if traits %}You are {{ traits | join(', ') }}.
{% endif %}
The council is deliberating: {{ topic }}
{% if framework %}
## Method

Reason with your frameworks:
{% for f in framework %}- {{ f }}
{% endfor %}{% endif %}{% if asks %}
## Questions you ask
{% for a in asks %}- {{ a }}
{% endfor %}{% endif %}{% if blind_spots %}
## What you tend to miss
{% for b in blind_spots %}- {{ b }}
{% endfor %}{% endif %}
Stay in character; say "I don't know" rather than invent facts.
"""


class Persona(PersonaCard):
    """A persona card written in Python, checked exactly as a card file is::

        Persona("skeptic", description="Doubts every claim.", role="Sceptic",
                asks=["What would change your mind?"])

    Any card field is a keyword; ``body`` is the Jinja system prompt (a template naming every
    field by default). A bad field raises ``CardError`` naming the field, as a file would.
    """

    def __init__(self, name: str, *, body: str | None = None, **fields: Any) -> None:
        where = Path(f"<card '{name}' built in code>")
        checked = validate(CardFields, {"name": name, **fields}, None, where, CardError)
        super().__init__(fields=checked, body=DEFAULT_BODY if body is None else body)


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*\r?\n?", re.DOTALL | re.MULTILINE)


def split_front_matter(text: str, path: Path) -> tuple[str, str, int]:
    """(front matter, body, 1-based line where the body starts) of a Markdown file."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise CardError(path, "missing YAML front matter: the file must start with a '---' line")
    return match.group(1), text[match.end() :], text[: match.end()].count("\n") + 1


def parse_card(text: str, path: Path) -> PersonaCard:
    """Parse the text of a card file; errors name the file, line and field."""
    front, body, body_line = split_front_matter(text, path)
    # Front matter starts on line 2 of the file: YAML line 0 is file line 2.
    data, node = load_yaml(front, path, CardError, line_offset=1)
    if not isinstance(data, dict):
        raise CardError(path, "front matter must be a mapping of fields", line=2)
    fields = validate(CardFields, data, node, path, CardError, line_offset=1)
    if fields.name != path.stem and path.suffix == ".md":
        raise CardError(
            path, f"name '{fields.name}' must match the file name '{path.stem}'", field="name"
        )
    return PersonaCard(fields=fields, body=body, path=path, body_line=body_line, text=text)


def load_card(path: Path | str) -> PersonaCard:
    return parse_card(*read_text(path, CardError))


def slugify(text: str, default: str = "persona") -> str:
    """A valid card name from any display name: "Data Analyst" -> "data-analyst"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or default


class _CardDumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so written cards stay readable."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_CardDumper.add_representer(str, _str_representer)


# Fields most cards leave empty: a written card names them only when it uses them.
_OMITTED_WHEN_UNSET = (
    "variables",
    "reasoning_method",
    "domain",
    "polarity",
    "triads",
    "profiles",
    "duo_keywords",
    "tier",
)


def dump_card(fields: CardFields, body: str) -> str:
    """The text of a card file: front matter (``variables`` only when used), then the body."""
    unset = {key for key in _OMITTED_WHEN_UNSET if not getattr(fields, key)}
    data = fields.model_dump(mode="json", exclude=unset)
    front = yaml.dump(
        data, Dumper=_CardDumper, sort_keys=False, allow_unicode=True, width=1_000_000
    )
    return f"---\n{front}---\n{body.rstrip()}\n"
