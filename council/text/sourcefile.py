"""Loading user-authored YAML as data, with line numbers for every error.

Cards and protocols are data, never code: YAML goes through ``yaml.safe_load`` only. Pydantic
validation errors are mapped back to the line of the offending field by walking the YAML node
tree that the same safe loader composes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from council.base.errors import ConfigError, SourceError

ModelT = TypeVar("ModelT", bound=BaseModel)

# Every character str.splitlines() breaks on; an error message echoing user text escapes them.
_LINE_BREAKS = str.maketrans({c: repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"})


def one_line(text: str) -> str:
    """``text`` with its line breaks escaped (``\\n``), so an error stays one line."""
    return text.translate(_LINE_BREAKS)


MAX_FILE_BYTES = 1024 * 1024  # a card or protocol file; the shipped ones are under 10 KB
MAX_YAML_NODES = 20_000  # after anchors and aliases are expanded
MAX_SCALAR_CHARS = 100_000  # one value


def read_bytes(
    path: Path | str,
    error: type[SourceError],
    limit: int = MAX_FILE_BYTES,
    *,
    what: str = "file",
    not_a: str | None = "a card or protocol",
) -> bytes:
    """A user file's bytes, refused past ``limit`` before more than that is read; the errors
    name it as ``what`` (and, when too big, what it therefore is not)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise error(path, f"cannot read {what}: {exc.strerror or exc}") from None
    if len(data) > limit:
        size = f"{limit // 2**20} MiB" if limit > 2**20 else f"{limit // 1024} KB"
        raise error(path, f"{what} is larger than {size}" + (f": not {not_a}" if not_a else ""))
    return data


def write_plain_file(path: Path, text: str) -> None:
    """Write a new or existing plain file, never through a symbolic link (even a dangling one,
    which would put the file outside the folder named)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_scaffold_file(path: Path, text: str, *, force: bool = False) -> Path:
    """Write a scaffolded file (a card, a protocol) and its folder; an existing file is never
    overwritten without ``force``. Every failure is one ``ConfigError`` line naming the file."""
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists; use --force to overwrite it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_plain_file(path, text)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def read_text(path: Path | str, error: type[SourceError]) -> tuple[str, Path]:
    """Read a user file as UTF-8 text; an unreadable or oversized file is ``error`` naming it."""
    path = Path(path)
    data = read_bytes(path, error)
    try:
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n"), path
    except UnicodeDecodeError as exc:
        raise error(
            path, f"cannot read file: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None


class _NamedErrors:
    """Scalar constructors that fail as YAML errors at the node's line.

    The safe constructors raise plain Python errors on text they cannot build (``2024-02-30``
    as a date, ``!!bool maybe``, ``!!int ''``, a 5000-digit number); this names the value.
    """

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)  # type: ignore[misc]
        except (ValueError, LookupError, AttributeError, TypeError) as exc:
            kind = str(node.tag).rsplit(":", 1)[-1]
            value = node.value if isinstance(node.value, str) else ""
            shown = repr(value) if len(value) <= 40 else f"{value[:37]!r}..."
            reason = f": {exc}" if isinstance(exc, ValueError) else ""
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {shown} as !!{kind}{reason}", node.start_mark
            ) from None


class _SafeLoader(_NamedErrors, yaml.SafeLoader):
    """The pure-Python safe loader: its messages and lines are the ones users see."""


# libyaml's parser, where PyYAML has it: the same nodes and data, several times faster. A file
# it refuses is parsed again by the pure-Python loader, so every error reads as before.
_FastLoader: type | None = (
    type("_FastLoader", (_NamedErrors, yaml.CSafeLoader), {})
    if getattr(yaml, "__with_libyaml__", False)
    else None
)


def _parse(
    loader_type: type, text: str, path: Path, error: type[SourceError], line_offset: int
) -> tuple[Any, yaml.Node | None]:
    loader = loader_type(text)  # a safe loader: data only, never objects
    try:
        node = loader.get_single_node()
        _check_size(node, path, error, line_offset)
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return data, node


def load_yaml(
    text: str, path: Path, error: type[SourceError], *, line_offset: int = 0
) -> tuple[Any, yaml.Node | None]:
    """Parse YAML text safely; return the data and its node tree (for locating fields)."""
    if _FastLoader is not None:
        try:
            return _parse(_FastLoader, text, path, error, line_offset)
        except (yaml.YAMLError, RecursionError):
            pass  # said below, in the pure-Python parser's words
    try:
        return _parse(_SafeLoader, text, path, error, line_offset)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 + line_offset if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
        raise error(path, f"invalid YAML: {one_line(problem)}", line=line) from None
    except RecursionError:  # [[[[...]]]] thousands deep: the parser recurses per level
        raise error(path, "invalid YAML: nested too deeply") from None


def locate(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """0-based line of the deepest YAML node along a location (keys and list indexes)."""
    return resolve(node, loc)[1]


def resolve(
    node: yaml.Node | None, loc: Sequence[int | str], *, missing: bool = False
) -> tuple[list[int | str], int | None]:
    """Walk a pydantic error location through the YAML tree.

    Returns the location without the parts pydantic adds for unions (a discriminator's value,
    a member type's name), which name nothing in the file, and the 0-based line reached.
    """
    if node is None:  # data built in code: no file to walk, the location is the field
        return list(loc), None
    line = node.start_mark.line
    clean: list[int | str] = []
    for position, key in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(node, yaml.MappingNode) and isinstance(key, str):
            match = next(((k, v) for k, v in node.value if k.value == key), None)
            if match is None:
                if last and missing:  # a missing field: point at the mapping that lacks it
                    clean.append(key)
                continue  # a union tag, not a key of the file
            clean.append(key)
            key_node, node = match
            # An unknown or invalid field is reported on its key's line.
            line = (key_node if last else node).start_mark.line
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            if key >= len(node.value):
                clean.append(key)
                break
            clean.append(key)
            node = node.value[key]
            line = node.start_mark.line
        elif isinstance(key, int):
            clean.append(key)
        # any other str here is a union member's type name: dropped
    return clean, line


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
        loc = list(first["loc"])
        if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc.append(str(first.get("ctx", {}).get("discriminator", "")).strip("'"))
        loc, line = resolve(node, loc, missing=first["type"] == "missing")
        field = describe_loc(loc) if describe_loc else ".".join(str(p) for p in loc) or None
        message = one_line(first["msg"].removeprefix("Value error, "))
        if first["type"] == "extra_forbidden":
            message = "unknown field (not allowed here)"
        if first["type"] == "missing":  # a first draft is told every missing field at once
            message += _also_missing(exc.errors()[1:], node, line_offset, describe_loc)
        raise error(
            path,
            message,
            line=line + 1 + line_offset if line is not None else None,
            field=one_line(field) if field else field,
        ) from None


def _also_missing(
    errors: Sequence[Any],
    node: yaml.Node | None,
    line_offset: int,
    describe_loc: Callable[[Sequence[int | str]], str] | None,
) -> str:
    """The other required fields a file lacks, each with its line: '' when there are none."""
    found: list[str] = []
    for problem in errors:
        if problem["type"] != "missing":
            continue
        loc, line = resolve(node, list(problem["loc"]), missing=True)
        field = describe_loc(loc) if describe_loc else ".".join(str(p) for p in loc)
        found.append(f"{field} (line {line + 1 + line_offset})" if line is not None else field)
    return f"; also missing: {', '.join(dict.fromkeys(found))}" if found else ""


def _check_size(
    root: yaml.Node | None, path: Path, error: type[SourceError], line_offset: int
) -> None:
    """Refuse YAML whose aliases expand past ``MAX_YAML_NODES`` (a "billion laughs") or with a
    value longer than ``MAX_SCALAR_CHARS``, before any of it is built."""
    if root is None:
        return
    expanded: dict[int, int] = {}  # node id -> nodes it stands for, aliases expanded
    open_nodes: set[int] = set()  # being counted: meeting one again is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        line = node.start_mark.line + 1 + line_offset
        if isinstance(node, yaml.ScalarNode):
            if len(node.value) > MAX_SCALAR_CHARS:
                raise error(
                    path, f"a value is longer than {MAX_SCALAR_CHARS} characters", line=line
                )
            expanded[id(node)] = 1
            continue
        children = [part for item in node.value for part in _parts(item)]
        if not children_done:
            if id(node) in open_nodes:
                raise error(path, "YAML value contains itself (a recursive alias)", line=line)
            open_nodes.add(id(node))
            stack.append((node, True))
            stack += [(child, False) for child in children if id(child) not in expanded]
            continue
        open_nodes.discard(id(node))
        total = 1 + sum(expanded.get(id(child), 1) for child in children)
        if total > MAX_YAML_NODES:
            raise error(
                path,
                f"YAML expands to more than {MAX_YAML_NODES} values (anchors and aliases)",
                line=line,
            )
        expanded[id(node)] = total


def _parts(item: Any) -> tuple[yaml.Node, ...]:
    return item if isinstance(item, tuple) else (item,)  # mapping pairs, sequence items
