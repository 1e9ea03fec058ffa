"""Front matter read as the tools that write it read it.

Strict YAML first. Where it fails, the simple ``key: value`` lines are read as Claude Code
reads a subagent's front matter: one key per line, the value the rest of the line (with any
indented lines under it that are not a list or a mapping). Subagent files circulate with a
one-line ``description`` such as ``Triggers on: 'analyze A/B test', ...``: an unquoted ``: ``
that YAML refuses and Claude Code loads. Each such line is quoted and the whole read again, so
line numbers still hold; what is still unreadable is refused as YAML would refuse it, with the
line and the key it sits under. The import report names every line read this way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from council.base.errors import CardError
from council.text.sourcefile import load_yaml

# A top-level key with a plain value on its line: one that opens with YAML syntax (a quote, a
# flow collection, a block scalar, an anchor or tag) was meant as YAML, and its error stands.
_KEY_LINE = re.compile(r"^([A-Za-z_][\w.-]*)[ \t]*:[ \t]+([^\s\"'\[\]{}|>&*!%@`#].*?)[ \t]*$")
_TOP_KEY = re.compile(r"^([A-Za-z_][\w.-]*)[ \t]*:")
# An indented line that belongs to a block (a list item or a nested key), not to a scalar.
_BLOCK_LINE = re.compile(r"^\s+(?:-\s|-$|[\w.-]+\s*:(?:\s|$))")


def _parses(text: str) -> bool:
    try:
        yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return True


def _continuation(lines: list[str], start: int) -> int:
    """Where the plain-scalar lines under the key line at ``start`` end."""
    end = start + 1
    while end < len(lines):
        line = lines[end]
        if not line.strip() or not line[:1].isspace() or _BLOCK_LINE.match(line):
            break
        end += 1
    return end


def _read_as_lines(front: str) -> tuple[str, list[tuple[int, str]]]:
    """The front matter with each key line strict YAML refuses quoted (its continuation
    folded in and blanked, so line numbers hold), and which lines (1-based) were changed."""
    lines = front.split("\n")
    changed: list[tuple[int, str]] = []
    index = 0
    while index < len(lines):
        match = _KEY_LINE.match(lines[index])
        end = _continuation(lines, index) if match else index + 1
        if match and not _parses("\n".join(lines[index:end])):
            value = " ".join([match.group(2), *(line.strip() for line in lines[index + 1 : end])])
            lines[index] = f"{match.group(1)}: {json.dumps(value, ensure_ascii=False)}"
            lines[index + 1 : end] = [""] * (end - index - 1)
            changed.append((index + 1, match.group(1)))
        index = end
    return "\n".join(lines), changed


def _key_at(front: str, line: int | None) -> str | None:
    """The top-level key a front matter line (1-based) sits under."""
    if line is None:
        return None
    for text in reversed(front.split("\n")[:line]):
        match = _TOP_KEY.match(text)
        if match:
            return match.group(1)
    return None


def read_front_matter(
    front: str, path: Path, *, first_line: int = 2
) -> tuple[Any, yaml.Node | None, list[str]]:
    """The front matter's data, its node tree (for locating fields) and notes on what was
    read leniently. ``first_line`` is the file line the front matter starts on."""
    offset = first_line - 1
    try:
        data, node = load_yaml(front, path, CardError, line_offset=offset)
        return data, node, []
    except CardError as strict:
        repaired, changed = _read_as_lines(front)
        field = _key_at(front, None if strict.line is None else strict.line - offset)
        if changed:
            try:
                data, node = load_yaml(repaired, path, CardError, line_offset=offset)
            except CardError:
                pass  # refused below, as strict YAML refused it
            else:
                where = ", ".join(f"{line + offset} ({key})" for line, key in changed)
                note = (
                    f"front matter line {where} is not strict YAML: read as Claude Code "
                    "reads it, one key a line, the value the rest of the line"
                )
                return data, node, [note]
        raise CardError(path, strict.message, line=strict.line, field=field) from None
