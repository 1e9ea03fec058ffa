"""An eval dataset: JSON Lines of questions with fixed options and one gold answer.

Each line is ``{"id", "question", "options", "answer", "category"?}``: ``answer`` is one of
``options`` (compared exactly), ``id`` is unique in the file. A line that breaks any of this is
refused in one line naming the file, the line and the field, before any model is called.
``council/data/eval/basic.jsonl`` is the project's own (``examples/eval/make_basic.py`` writes
it; ``docs/eval.md`` says how to convert public benchmarks).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from council.base.errors import SourceError


class DatasetError(SourceError):
    """A dataset line is not an eval item (its file, line and field named)."""


class EvalItem(BaseModel):
    """One question with fixed options and its gold answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    options: list[str] = Field(min_length=2)
    answer: str = Field(min_length=1)
    category: str = "uncategorised"

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("options")
    @classmethod
    def _distinct(cls, options: list[str]) -> list[str]:
        if any(not o.strip() for o in options):
            raise ValueError("an option is empty")
        if len({o.strip().lower() for o in options}) < len(options):
            raise ValueError("options repeat (compared without case)")
        return options


def shipped_dataset() -> Path:
    """The project's own dataset (package data: present in a wheel and a checkout alike)."""
    found = resources.files("council").joinpath("data", "eval", "basic.jsonl")
    return Path(str(found))


def _item(data: Any, path: Path, number: int) -> EvalItem:
    if not isinstance(data, dict):
        raise DatasetError(path, "a line must be a JSON object", line=number)
    try:
        item = EvalItem.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or None
        raise DatasetError(path, error["msg"], line=number, field=field) from None
    if item.answer not in item.options:
        raise DatasetError(
            path, f"'{item.answer}' is not one of the options", line=number, field="answer"
        )
    return item


def read_dataset(path: Path | str) -> list[EvalItem]:
    """Every item of a JSONL dataset, in file order; blank lines are skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(path, f"cannot be read ({type(exc).__name__})") from None
    items: list[EvalItem] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(path, f"not JSON ({exc.msg})", line=number) from None
        item = _item(data, path, number)
        if item.id in seen:
            raise DatasetError(
                path, f"'{item.id}' repeats line {seen[item.id]}", line=number, field="id"
            )
        seen[item.id] = number
        items.append(item)
    if not items:
        raise DatasetError(path, "no items")
    return items
