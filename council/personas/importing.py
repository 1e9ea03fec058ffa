"""What every importer shares: the card it makes, its notes, and validation that names the
foreign field a problem came from."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from council.base.errors import CardError
from council.personas.card import CardFields, dump_card

TOPIC_LINE = "\n\nThe council is deliberating: {{ topic }}\n"


@dataclass(frozen=True)
class ImportedCard:
    """A card converted from a foreign file, not yet written."""

    fields: CardFields
    body: str
    source: Path
    notes: list[str] = field(default_factory=list)  # what was kept aside or guessed

    def text(self) -> str:
        return dump_card(self.fields, self.body)


def summary(text: str, limit: int = 200) -> str:
    """First sentence (or line) of prose, on one line: our ``description`` is a one-liner."""
    first = next((line for line in text.strip().splitlines() if line.strip()), "")
    sentence = re.split(r"(?<=[.!?])\s", " ".join(first.split()), maxsplit=1)[0]
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rsplit(" ", 1)[0] + "…"


def as_list(value: Any) -> list[Any]:
    return [] if value is None else list(value) if isinstance(value, list) else [value]


def validated_fields(
    values: dict[str, Any], path: Path, where: Callable[[str], tuple[str, int | None]]
) -> CardFields:
    """Validate converted values; an error names the foreign field it came from."""
    try:
        return CardFields.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field, line = where(str(first["loc"][0]) if first["loc"] else "")
        raise CardError(path, first["msg"], line=line, field=field) from None
