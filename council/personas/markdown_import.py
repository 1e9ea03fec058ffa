"""Persona write-ups in plain Markdown as cards: a title and labelled fields.

Researchers describe personas as prose: a ``# Title`` and fields such as ``**Asks:** ...``,
``**Core orientation:** ...``, ``- **Blind spots:** ...`` or ``## Asks`` with a list under it
(as in Kaminski & Gracia's reflection personas). The title gives the name and figure, each
recognised label fills the matching card field, and the whole write-up, escaped, is the body:
nothing the author wrote is lost from the prompt.

Write-ups as notes apps and static-site generators publish them open with front matter that is
not a card (``title``, ``author``, dates, links to the source). It is kept: whole under
``extensions.markdown.front_matter``, and who, where and when under ``extensions.provenance``.
An addendum (a framework-grounded rendition of a persona written up elsewhere) is marked as
one by its front matter, title or file name; ``addenda.pair_write_ups`` pairs it with its
write-up.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from council.base.errors import CardError
from council.personas.card import slugify, split_front_matter
from council.personas.front_matter import read_front_matter
from council.personas.importing import (
    TOPIC_LINE,
    ImportedCard,
    as_list,
    summary,
    validated_fields,
)
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
# Front matter keys that say where a write-up came from, by what they mean (first found wins).
PROVENANCE = {
    "author": ("author", "authors", "creator", "by"),
    "source": ("source", "source_url", "url", "link", "links", "canonical_url", "doi", "permalink"),
    "date": ("date", "published", "created", "updated", "modified", "lastmod"),
}
_ADDENDUM = re.compile(r"\baddend(?:um|a)\b", re.IGNORECASE)
_SEPARATORS = " \t,:;.()[]—–-_"


def _field_for(label: str) -> str | None:
    lowered = label.lower()
    return next((field for words, field in LABELS if any(w in lowered for w in words)), None)


def _bullets(text: str) -> list[str]:
    """A list's items, each with the wrapped lines under it."""
    items: list[str] = []
    for line in text.splitlines():
        bullet = _BULLET.match(line)
        if bullet:
            items.append(bullet.group(1).strip())
        elif items and line[:1].isspace() and line.strip():
            items[-1] += " " + line.strip()
    return [item for item in items if item]


def _items(text: str) -> list[str]:
    """A value as a list: its bullets, else its sentences or semicolon-separated parts."""
    bullets = _bullets(text)
    if bullets:
        return bullets
    flat = " ".join(text.split())
    parts = re.split(r";\s+|(?<=\?)\s+", flat)
    return [
        p.strip().rstrip(".") if not p.strip().endswith("?") else p.strip()
        for p in parts
        if p.strip()
    ]


def _inline(text: str) -> list[tuple[str, str]]:
    """Each ``**Label:** value``, its value running on over wrapped lines until a blank line,
    a heading, a list item or the next label."""
    found: list[tuple[str, str]] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = _INLINE.match(line)
        if match is None:
            continue
        value = [match.group(2).strip()]
        for more in lines[index + 1 :]:
            if not more.strip() or more.lstrip().startswith("#") or _INLINE.match(more):
                break
            if _BULLET.match(more):
                break
            value.append(more.strip())
        found.append((match.group(1), " ".join(value)))
    return found


def _labelled(text: str) -> dict[str, str]:
    """Each recognised label's text, from inline ``**Label:** value`` and ``## Label`` parts."""
    found: dict[str, str] = {}
    for label, value in _inline(text):
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


def _front(text: str, path: Path) -> tuple[dict[str, Any], str, list[str]]:
    """A write-up's front matter (title, author, dates, links: not a card), its Markdown and
    notes on front matter read leniently; a file without front matter has none."""
    if not text.startswith("---"):
        return {}, text, []
    front, body, _ = split_front_matter(text, path)
    data, _node, notes = read_front_matter(front, path)
    if data is None:
        return {}, body, notes
    if not isinstance(data, dict):
        raise CardError(path, "front matter must be a mapping", line=2)
    return {str(key): value for key, value in data.items()}, body, notes


def provenance(front: dict[str, Any]) -> dict[str, Any]:
    """Who wrote a write-up, where it was published and when, from its front matter."""
    lowered = {key.lower(): value for key, value in front.items()}
    found = {}
    for meaning, keys in PROVENANCE.items():
        value = next((lowered[k] for k in keys if lowered.get(k) not in (None, "", [])), None)
        if value is not None:
            found[meaning] = value
    return found


def _without_marker(text: str) -> str:
    """A title or file stem with its addendum marker cut: "Nurse - Addendum" -> "Nurse"."""
    match = _ADDENDUM.search(text)
    if match is None:
        return text.strip(_SEPARATORS)
    before, after = text[: match.start()].strip(_SEPARATORS), text[match.end() :]
    return before or after.strip(_SEPARATORS)


def _said(front: dict[str, Any], *keys: str) -> str:
    """The first of ``keys`` the front matter gives as text, on one line."""
    value = next((front[k] for k in keys if isinstance(front.get(k), str)), "")
    return summary(value)


def is_addendum(front: dict[str, Any], title: str, path: Path) -> bool:
    """An addendum, a framework-grounded rendition of a persona written up elsewhere, says so
    in its front matter (``addendum: true``, or ``type``/``kind``/``variant``/``rendition``
    naming an addendum or a framework rendition), its title or its file name."""
    flag = front.get("addendum")
    if isinstance(flag, bool):
        return flag
    kinds = " ".join(str(front.get(k, "")) for k in ("type", "kind", "variant", "rendition"))
    stem = re.sub(r"[_.]", " ", path.stem)
    return bool(_ADDENDUM.search(f"{title} {stem}") or re.search(r"addend|framework", kinds, re.I))


def persona_key(front: dict[str, Any], path: Path) -> str:
    """What pairs a write-up with its addendum: front matter ``persona:``, else the file name
    without its addendum marker (``nurse.md`` and ``nurse-addendum.md`` are ``nurse``)."""
    named = front.get("persona")
    if isinstance(named, str) and named.strip():
        return slugify(named)
    return slugify(_without_marker(re.sub(r"[_.]", " ", path.stem)))


def markdown_persona_card(text: str, path: Path) -> ImportedCard:
    front, text, notes = _front(text, path)
    title = _TITLE.search(text)
    given = front.get("title")
    if title is None and not (isinstance(given, str) and given.strip()):
        raise CardError(path, "a Markdown persona needs a '# Title' line naming the persona")
    heading = title.group(1).strip() if title else str(given).strip()
    addendum = is_addendum(front, heading, path)
    display = (_without_marker(heading) or heading) if addendum else heading
    figure = re.split(r"\s*[,:—–]\s*|\s+-\s+", display, maxsplit=1)[0]
    labelled = _labelled(text)
    values: dict[str, Any] = {}
    for field, raw in labelled.items():
        values[field] = _items(raw) if field in LIST_FIELDS else " ".join(raw.split())
    after_title = text[title.end() :] if title else text
    prose = next(
        (
            p
            for p in re.split(r"\n\s*\n", after_title)
            if p.strip() and not _INLINE.match(p) and not p.lstrip().startswith("#")
        ),
        "",
    )
    subtitle = display[len(figure) :].strip(" ,:—–-")
    markdown = {
        "title": heading,
        "labels": sorted(labelled),
        "persona": persona_key(front, path),
        "addendum": addendum,
        **({"front_matter": front} if front else {}),
    }
    found = provenance(front)
    values |= {
        "name": slugify(f"{display} addendum" if addendum else display),
        "figure": figure,
        "description": values.get("description")
        or _said(front, "description", "summary")
        or summary(prose)
        or display,
        "tags": [slugify(str(tag)) for tag in as_list(front.get("tags")) if str(tag).strip()],
        "role": values.get("role") or (subtitle[:1].upper() + subtitle[1:]) or "Persona",
        "extensions": {"markdown": markdown, **({"provenance": found} if found else {})},
    }
    if not labelled:
        notes.append("no labelled fields recognised: the write-up is the body only")
    if found:
        notes.append(f"front matter kept as provenance ({', '.join(found)}) under extensions")

    def where(key: str) -> tuple[str, int | None]:
        return key, None

    body = f"You are {escape_jinja(display)}.\n\n{escape_jinja(text.strip())}{TOPIC_LINE}"
    return ImportedCard(validated_fields(values, path, where), body, path, notes)


# Keys that make front matter a Claude Code subagent's rather than a write-up's.
SUBAGENT_KEYS = frozenset({"name", "tools", "model", "color", "council"})


def front_matter_kind(text: str, path: Path) -> str:
    """What a Markdown file with front matter is: a council card (it has a ``role``), a Claude
    Code subagent (``name``, ``tools``, ``model``, ``color`` or a ``council:`` block) or, with
    none of those and a title, a write-up whose front matter says where it came from."""
    front, body, _ = split_front_matter(text, path)
    try:
        data = read_front_matter(front, path)[0]
    except CardError:
        return "claude-code"  # read again there, and the error said with its line
    keys = {str(key) for key in data} if isinstance(data, dict) else set()
    if "role" in keys and not {"tools", "color"} & keys:
        return "council"
    if keys & SUBAGENT_KEYS:
        return "claude-code"
    return "markdown" if "title" in keys or _TITLE.search(body) else "claude-code"
