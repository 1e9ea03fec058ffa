"""Persona write-ups in plain Markdown as cards: a title and labelled fields.

Researchers describe personas as prose: a ``# Title`` and fields such as ``**Asks:** ...``,
``**Core orientation:** ...``, ``- **Blind spots:** ...`` or ``## Asks`` with a list under it
(as in Kaminski & Gracia's reflection personas). The title gives the name and figure, each
recognised label fills the matching card field, and the whole write-up, escaped, is the body:
nothing the author wrote is lost from the prompt.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from council.errors import CardError
from council.personas.card import slugify
from council.personas.importing import TOPIC_LINE, ImportedCard, summary, validated_fields
from council.personas.prompt import escape_jinja

# A label's words -> the card field it fills; the first rule whose word appears wins.
LABELS: list[tuple[tuple[str, ...], str]] = [
    (("blind spot", "tends to miss", "misses", "weakness"), "blind_spots"),
    (("asks", "question"), "asks"),
    (("orientation", "framework", "draws on", "theor", "lens"), "framework"),
    (("reasoning", "method", "approach"), "reasoning_method"),
    (("trait", "personality", "temperament", "voice"), "traits"),
    (("domain", "expertise", "field of"), "domain"),
    (("role", "profession", "discipline", "occupation"), "role"),
    (("description", "summary", "who"), "description"),
]
LIST_FIELDS = {"blind_spots", "asks", "framework", "traits"}
_TITLE = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)
_INLINE = re.compile(r"^\s*(?:[-*]\s+)?\*\*([^*\n]{1,60}?):?\*\*:?\s*(.+)$", re.MULTILINE)
_HEADING = re.compile(r"^##+\s+(.+?)\s*$", re.MULTILINE)
_BULLET = re.compile(r"^\s*(?:[-*]|\d+\.)\s+(.+)$", re.MULTILINE)


def _field_for(label: str) -> str | None:
    lowered = label.lower()
    return next((field for words, field in LABELS if any(w in lowered for w in words)), None)


def _items(text: str) -> list[str]:
    """A value as a list: its bullets, else its sentences or semicolon-separated parts."""
    bullets = [b.strip() for b in _BULLET.findall(text) if b.strip()]
    if bullets:
        return bullets
    flat = " ".join(text.split())
    parts = re.split(r";\s+|(?<=\?)\s+", flat)
    return [p.strip().rstrip(".") if not p.strip().endswith("?") else p.strip()
            for p in parts if p.strip()]  # fmt: skip


def _labelled(text: str) -> dict[str, str]:
    """Each recognised label's text, from inline ``**Label:** value`` and ``## Label`` parts."""
    found: dict[str, str] = {}
    for label, value in _INLINE.findall(text):
        field = _field_for(label)
        if field and field not in found:
            found[field] = value.strip()
    marks = list(_HEADING.finditer(text))
    ends = [m.start() for m in marks[1:]] + [len(text)]
    for mark, end in zip(marks, ends[: len(marks)], strict=True):
        field = _field_for(mark.group(1))
        if field and field not in found:
            found[field] = text[mark.end() : end].strip()
    return found


def markdown_persona_card(text: str, path: Path) -> ImportedCard:
    title = _TITLE.search(text)
    if title is None:
        raise CardError(path, "a Markdown persona needs a '# Title' line naming the persona")
    display = title.group(1).strip()
    figure = re.split(r"\s*[,:—–]\s*|\s+-\s+", display, maxsplit=1)[0]
    labelled = _labelled(text)
    values: dict[str, Any] = {}
    for field, raw in labelled.items():
        values[field] = _items(raw) if field in LIST_FIELDS else " ".join(raw.split())
    after_title = text[title.end() :]
    prose = next((p for p in re.split(r"\n\s*\n", after_title) if p.strip()
                  and not _INLINE.match(p) and not p.lstrip().startswith("#")), "")  # fmt: skip
    subtitle = display[len(figure) :].strip(" ,:—–-")
    values |= {
        "name": slugify(display),
        "figure": figure,
        "description": values.get("description") or summary(prose) or display,
        "role": values.get("role") or (subtitle[:1].upper() + subtitle[1:]) or "Persona",
        "extensions": {"markdown": {"title": display, "labels": sorted(labelled)}},
    }
    notes = [] if labelled else ["no labelled fields recognised: the write-up is the body only"]

    def where(key: str) -> tuple[str, int | None]:
        return key, None

    body = f"You are {escape_jinja(display)}.\n\n{escape_jinja(text.strip())}{TOPIC_LINE}"
    return ImportedCard(validated_fields(values, path, where), body, path, notes)
