"""Loading user-authored YAML as data, with line numbers for every error.

Cards and protocols are data, never code: YAML goes through ``yaml.safe_load`` only. Pydantic
validation errors are mapped back to the line of the offending field by walking the YAML node
tree that the same safe loader composes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from council.errors import SourceError

ModelT = TypeVar("ModelT", bound=BaseModel)


def load_yaml(
    text: str, path: Path, error: type[SourceError], *, line_offset: int = 0
) -> tuple[Any, yaml.Node | None]:
    """Parse YAML text safely; return the data and its node tree (for locating fields)."""
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 + line_offset if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(path, f"invalid YAML: {problem}", line=line) from None
    return data, node


def locate(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """0-based line of the deepest node along a pydantic error location."""
    line = node.start_mark.line if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == key), None)
            if match is None:
                # The key is missing or unknown: point at the key itself when it exists.
                key_node = next((k for k, _ in node.value if k.value == key), None)
                return key_node.start_mark.line if key_node is not None else line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        line = node.start_mark.line
    return line


def validate(
    model: type[ModelT],
    data: Any,
    node: yaml.Node | None,
    path: Path,
    error: type[SourceError],
    *,
    line_offset: int = 0,
    describe_loc: Callable[[Sequence[int | str]], str] | None = None,
) -> ModelT:
    """Validate parsed YAML against a pydantic model, raising ``error`` at the first problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [part for part in first["loc"] if not _is_union_tag(part)]
        line = locate(node, loc)
        field = describe_loc(loc) if describe_loc else ".".join(str(p) for p in loc) or None
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown field (not allowed here)"
        raise error(
            path, message, line=line + 1 + line_offset if line is not None else None, field=field
        ) from None


def _is_union_tag(part: int | str) -> bool:
    # Pydantic inserts the chosen union member (e.g. "StatementStage") into error locations.
    return isinstance(part, str) and part[:1].isupper()
